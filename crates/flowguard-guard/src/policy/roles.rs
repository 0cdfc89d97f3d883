//! Roles with permissions (object type, server, object name) and claim-to-role mappings, the
//! model of mcp-gateway (seed 003). A caller may use an item when one of its roles has a
//! permission naming it. mcp-gateway's own files compare each field exactly or as `*`; the
//! native form takes globs.

use super::native::{err, PolicyError};
use crate::glob::Glob;
use crate::principal::{claim_strings, Principal};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A role (`[roles.<name>]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    /// What the role may use; none means nothing.
    #[serde(default)]
    pub permissions: Vec<RawPermission>,
}

/// One permission. Each field is a glob; `*` is anything.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPermission {
    /// `tools`, `prompts`, `resources` or `*`. Default `*`.
    #[serde(rename = "type", alias = "object_type")]
    pub object_type: Option<String>,
    /// Server id. Default `*`.
    #[serde(alias = "proxy")]
    pub server: Option<String>,
    /// Tool or prompt name, or resource URI. Default `*`.
    #[serde(alias = "object_name")]
    pub name: Option<String>,
}

/// A claim-to-role mapping (`[[role_mappings]]`): a token whose claim holds the value (or an
/// array claim holding it) gets the roles.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRoleMapping {
    /// Claim name, or a dotted path into nested claims.
    #[serde(alias = "attribute_key")]
    pub claim: String,
    /// The value (a glob) the claim must hold; `true`/`false` for boolean claims.
    #[serde(alias = "attribute_value")]
    pub value: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone)]
enum Pat {
    Any,
    Exact(String),
    Glob(Glob),
}

impl Pat {
    fn new(p: Option<&str>, exact_only: bool) -> Pat {
        match p {
            None | Some("*") => Pat::Any,
            Some(p) if exact_only || !p.contains(['*', '?']) => Pat::Exact(p.to_string()),
            Some(p) => Pat::Glob(Glob::new(p)),
        }
    }
    fn matches(&self, s: &str) -> bool {
        match self {
            Pat::Any => true,
            Pat::Exact(e) => e == s,
            Pat::Glob(g) => g.matches(s),
        }
    }
}

#[derive(Debug, Clone)]
struct Permission {
    object_type: Pat,
    server: Pat,
    name: Pat,
}

#[derive(Debug, Clone)]
struct Mapping {
    claim: String,
    value: Pat,
    roles: Vec<Arc<str>>,
}

/// Compiled roles and mappings.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    roles: BTreeMap<String, Vec<Permission>>,
    mappings: Vec<Mapping>,
    /// mcp-gateway's rule: a caller with a role that does not exist is denied everything.
    strict_missing: bool,
}

impl Roles {
    /// Native roles and mappings (globs).
    pub fn compile(
        roles: &BTreeMap<String, RawRole>,
        mappings: &[RawRoleMapping],
    ) -> Result<Roles, PolicyError> {
        Self::build(roles, mappings, false, "")
    }

    fn build(
        roles: &BTreeMap<String, RawRole>,
        mappings: &[RawRoleMapping],
        exact_only: bool,
        prefix: &str,
    ) -> Result<Roles, PolicyError> {
        let mut out = Roles {
            strict_missing: exact_only,
            ..Roles::default()
        };
        for (name, r) in roles {
            let mut perms = Vec::new();
            for (i, p) in r.permissions.iter().enumerate() {
                if let Some(t) = p.object_type.as_deref() {
                    if !["*", "tools", "prompts", "resources"].contains(&t) {
                        return Err(err(
                            format!("{prefix}roles.{name}.permissions[{i}].type"),
                            format!("must be tools, prompts, resources or *, not {t:?}"),
                        ));
                    }
                }
                perms.push(Permission {
                    object_type: Pat::new(p.object_type.as_deref(), true),
                    server: Pat::new(p.server.as_deref(), exact_only),
                    name: Pat::new(p.name.as_deref(), exact_only),
                });
            }
            out.roles.insert(name.clone(), perms);
        }
        for (i, m) in mappings.iter().enumerate() {
            for r in &m.roles {
                // mcp-gateway accepts a mapping to a role that is gone, and then denies every
                // caller it maps (the role fails to load); native roles must exist.
                if !roles.contains_key(r) && !exact_only {
                    return Err(err(
                        format!("{prefix}role_mappings[{i}].roles"),
                        format!("role {r:?} is not defined; define it under roles first"),
                    ));
                }
            }
            out.mappings.push(Mapping {
                claim: m.claim.clone(),
                value: Pat::new(Some(&m.value), exact_only),
                roles: m.roles.iter().map(|r| Arc::from(r.as_str())).collect(),
            });
        }
        Ok(out)
    }

    /// Whether any role grants anything: then every item needs a permission.
    pub fn is_enforcing(&self) -> bool {
        !self.roles.is_empty()
    }

    pub fn defines(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Roles a token's claims map to.
    pub fn roles_for_claims(&self, who: &Principal) -> Vec<Arc<str>> {
        let mut out = Vec::new();
        for m in &self.mappings {
            let values = if self.strict_missing {
                gateway_claim(who, &m.claim)
            } else {
                who.claim(&m.claim).map(claim_strings).unwrap_or_default()
            };
            if values.iter().any(|v| m.value.matches(v)) {
                out.extend(m.roles.iter().cloned());
            }
        }
        out
    }

    /// Whether the caller's roles permit `kind` (`tools`, `prompts`, `resources`) `name` on
    /// `server`.
    pub fn permits(&self, who: &Principal, kind: &str, server: &str, name: &str) -> bool {
        if self.strict_missing && who.roles.iter().any(|r| !self.roles.contains_key(&**r)) {
            return false;
        }
        who.roles.iter().any(|r| {
            self.roles.get(&**r).is_some_and(|perms| {
                perms.iter().any(|p| {
                    p.object_type.matches(kind) && p.server.matches(server) && p.name.matches(name)
                })
            })
        })
    }
}

/// mcp-gateway's roles and attribute mappings as JSON, loaded as its code reads them (each
/// field exactly equal or `*`; top-level claims).
pub fn load_mcp_gateway(doc: &Value) -> Result<Roles, PolicyError> {
    // Unknown keys are refused: the README's camelCase (`objectType`) would otherwise be
    // dropped and leave a field that matches anything. mcp-gateway itself fails on them too.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Role {
        name: String,
        #[serde(default)]
        permissions: Vec<Perm>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Perm {
        object_type: Option<String>,
        proxy: Option<String>,
        object_name: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Map {
        attribute_key: String,
        attribute_value: String,
        roles: Vec<String>,
    }
    let roles: Vec<Role> = match doc.get("roles") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| err("roles", camel_hint(e)))?,
        None => Vec::new(),
    };
    let maps: Vec<Map> = match doc.get("attribute_to_roles") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| err("attribute_to_roles", camel_hint(e)))?,
        None => Vec::new(),
    };
    let roles: BTreeMap<String, RawRole> = roles
        .into_iter()
        .map(|r| {
            let perms = r
                .permissions
                .into_iter()
                .map(|p| RawPermission {
                    object_type: p.object_type,
                    server: p.proxy,
                    name: p.object_name,
                })
                .collect();
            (r.name, RawRole { permissions: perms })
        })
        .collect();
    let maps: Vec<RawRoleMapping> = maps
        .into_iter()
        .map(|m| RawRoleMapping {
            claim: m.attribute_key,
            value: m.attribute_value,
            roles: m.roles,
        })
        .collect();
    Roles::build(&roles, &maps, true, "")
}

/// A claim's values as mcp-gateway reads them: top-level claims only; a string as it is, a bool
/// as `true`/`false`, each element of an array as Go's `fmt.Sprint` prints it (a number as
/// `%g`, e.g. `1e+06`; null as `<nil>`); a number, object or null at the top gives nothing.
fn gateway_claim(who: &Principal, claim: &str) -> Vec<String> {
    let Some(v) = who.claims.as_deref().and_then(|c| c.get(claim)) else {
        return Vec::new();
    };
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(super::text::go_g(n.as_f64().unwrap_or(f64::NAN))),
                Value::Null => Some("<nil>".into()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn camel_hint(e: serde_json::Error) -> String {
    format!("{e} (mcp-gateway's code reads snake_case keys: object_type, proxy, object_name, attribute_key, attribute_value; the README's camelCase ones are not read)")
}

/// Merges another set of roles and mappings in (a roles file beside the config's own).
impl Roles {
    pub fn merge(&mut self, other: Roles) {
        for (name, perms) in other.roles {
            self.roles.entry(name).or_default().extend(perms);
        }
        self.mappings.extend(other.mappings);
        self.strict_missing |= other.strict_missing;
    }
}

/// Whether a JSON document holds mcp-gateway roles or attribute mappings.
pub fn looks_like(doc: &Value) -> bool {
    doc.get("attribute_to_roles").is_some()
        || doc
            .get("roles")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().all(|x| x.get("name").is_some()))
}
