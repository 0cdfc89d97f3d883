//! mcpx's per-server lists (`allow_tools`, `deny_tools`, `read_only`, `tool_rules`) and
//! per-client overrides, decided as mcpx's code does: exact tool names, deny before allow, a
//! non-empty allow list denies the rest, `read_only` blocks every call and hides every tool,
//! argument constraints ANDed with non-scalars denied, and a client's override intersected
//! with the server's policy (both must allow), so an override can only narrow.

use super::eval::{constraint as check, M};
use super::native::{constraint, PolicyError, RawConstraint};
use super::Constraint;
use crate::principal::Principal;
use crate::verdict::{Stage, Verdict};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// A server's tool policy in mcpx's form (`[servers.<id>.policy]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServerPolicy {
    /// Only these tools (exact names) may be called; empty or absent means all.
    pub allow_tools: Option<Vec<String>>,
    /// These tools (exact names) may not be called; wins over `allow_tools`.
    pub deny_tools: Option<Vec<String>>,
    /// No tool may be called, and (as in mcpx with list filtering) none is listed. Default false.
    pub read_only: Option<bool>,
    /// Argument constraints per tool: `{ read_file = { args = { path = { prefix = "/data/" } } } }`.
    pub tool_rules: Option<BTreeMap<String, RawToolRule>>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawToolRule {
    /// Argument name → constraints (ANDed).
    #[serde(default)]
    pub args: BTreeMap<String, RawConstraint>,
}

/// One compiled server policy.
#[derive(Debug, Clone, Default)]
pub struct ServerPolicy {
    allow: Vec<String>,
    deny: Vec<String>,
    read_only: bool,
    rules: HashMap<String, Vec<(String, Constraint)>>,
}

impl RawServerPolicy {
    pub fn compile(&self, at: &str) -> Result<ServerPolicy, PolicyError> {
        let mut rules = HashMap::new();
        for (tool, r) in self.tool_rules.iter().flatten() {
            let mut list = Vec::new();
            for (arg, c) in &r.args {
                list.push((
                    arg.clone(),
                    constraint(c, &format!("{at}.tool_rules.{tool}.args.{arg}"))?,
                ));
            }
            rules.insert(tool.clone(), list);
        }
        Ok(ServerPolicy {
            allow: self.allow_tools.clone().unwrap_or_default(),
            deny: self.deny_tools.clone().unwrap_or_default(),
            read_only: self.read_only.unwrap_or(false),
            rules,
        })
    }
}

impl ServerPolicy {
    /// Whether `tool` shows in lists (argument rules never hide a tool).
    pub fn visible(&self, tool: &str) -> bool {
        !self.read_only && self.name_allowed(tool)
    }

    fn name_allowed(&self, tool: &str) -> bool {
        !self.deny.iter().any(|d| d == tool)
            && (self.allow.is_empty() || self.allow.iter().any(|a| a == tool))
    }

    /// Why a call is refused, or `None`. `rule` names the list that refused it.
    pub fn refuse(&self, tool: &str, args: Option<&Value>) -> Option<(&'static str, String)> {
        if self.read_only {
            return Some((
                "read_only",
                "the server is read-only: no tool may be called".into(),
            ));
        }
        if self.deny.iter().any(|d| d == tool) {
            return Some(("deny_tools", format!("tool {tool:?} is denied")));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|a| a == tool) {
            return Some((
                "allow_tools",
                format!("tool {tool:?} is not in allow_tools"),
            ));
        }
        for (arg, c) in self.rules.get(tool).into_iter().flatten() {
            let value = args.and_then(|a| a.get(arg));
            if check(c, value) != M::Yes {
                return Some((
                    "tool_rules",
                    format!("argument {arg:?} of tool {tool:?} breaks its tool_rules constraint"),
                ));
            }
        }
        None
    }
}

/// Every server's policies and the clients' overrides. A server may have several (the
/// config's and a file's): every one must allow.
#[derive(Debug, Clone, Default)]
pub struct ServerPolicies {
    pub servers: HashMap<String, Vec<ServerPolicy>>,
    /// client → server → overrides.
    pub clients: HashMap<String, HashMap<String, Vec<ServerPolicy>>>,
}

impl ServerPolicies {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.clients.is_empty()
    }

    /// The client name overrides are keyed by: the API-key client, else the subject.
    fn client(who: &Principal) -> Option<&str> {
        who.client.as_deref().or(who.subject.as_deref())
    }

    /// Adds another source's policies: nothing is replaced, every one must allow.
    pub fn add(&mut self, other: ServerPolicies) {
        for (s, list) in other.servers {
            self.servers.entry(s).or_default().extend(list);
        }
        for (c, per) in other.clients {
            let mine = self.clients.entry(c).or_default();
            for (s, list) in per {
                mine.entry(s).or_default().extend(list);
            }
        }
    }

    fn layers<'a>(
        &'a self,
        who: &Principal,
        server: &str,
    ) -> impl Iterator<Item = (&'static str, &'a ServerPolicy)> {
        let base = self
            .servers
            .get(server)
            .into_iter()
            .flatten()
            .map(|p| ("server", p));
        let over = Self::client(who)
            .and_then(|c| self.clients.get(c))
            .and_then(|m| m.get(server))
            .into_iter()
            .flatten()
            .map(|p| ("client", p));
        base.chain(over)
    }

    pub fn visible(&self, who: &Principal, server: &str, tool: &str) -> bool {
        self.layers(who, server).all(|(_, p)| p.visible(tool))
    }

    /// The verdict on a `tools/call`; every other method passes (as in mcpx).
    pub fn decide_call(
        &self,
        who: &Principal,
        server: &str,
        tool: &str,
        args: Option<&Value>,
    ) -> Option<Verdict> {
        for (layer, p) in self.layers(who, server) {
            if let Some((list, why)) = p.refuse(tool, args) {
                let rule = format!("mcpx:{layer}:{server}:{list}");
                return Some(Verdict::deny(Stage::Policy, rule, why));
            }
        }
        None
    }
}

/// Reads an mcpx config file's `servers[].policy` and `clients` (everything else in it is
/// mcpx's own business). Unknown keys inside a policy block are ignored, as mcpx does, and
/// reported as warnings.
pub fn load(doc: &serde_yaml_ng::Value) -> Result<(ServerPolicies, Vec<String>), PolicyError> {
    use super::native::err;
    let mut out = ServerPolicies::default();
    let mut warnings = Vec::new();
    let read = |v: &serde_yaml_ng::Value,
                at: &str,
                warnings: &mut Vec<String>|
     -> Result<ServerPolicy, PolicyError> {
        let mut v = v.clone();
        strip(
            &mut v,
            &["allow_tools", "deny_tools", "read_only", "tool_rules"],
            at,
            warnings,
        );
        if let Some(rules) = v.get_mut("tool_rules").and_then(|r| r.as_mapping_mut()) {
            for (tool, rule) in rules.iter_mut() {
                let at = format!("{at}.tool_rules.{}", tool.as_str().unwrap_or("?"));
                strip(rule, &["args"], &at, warnings);
                if let Some(args) = rule.get_mut("args").and_then(|a| a.as_mapping_mut()) {
                    for (arg, c) in args.iter_mut() {
                        let at = format!("{at}.args.{}", arg.as_str().unwrap_or("?"));
                        let known = ["equals", "one_of", "prefix", "suffix", "regex", "required"];
                        strip(c, &known, &at, warnings);
                    }
                }
            }
        }
        let raw: RawServerPolicy =
            serde_yaml_ng::from_value(v).map_err(|e| err(at, e.to_string()))?;
        raw.compile(at)
    };
    for (i, s) in doc
        .get("servers")
        .and_then(|s| s.as_sequence())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(name) = s.get("name").and_then(|n| n.as_str()) else {
            return Err(err(
                format!("servers[{i}].name"),
                "each server needs a name",
            ));
        };
        if let Some(p) = s.get("policy") {
            let p = read(p, &format!("servers[{i}].policy"), &mut warnings)?;
            out.servers.entry(name.to_string()).or_default().push(p);
        }
    }
    if let Some(clients) = doc.get("clients").and_then(|c| c.as_mapping()) {
        for (client, body) in clients {
            let client = client.as_str().unwrap_or_default().to_string();
            let mut per: HashMap<String, Vec<ServerPolicy>> = HashMap::new();
            if let Some(servers) = body.get("servers").and_then(|s| s.as_mapping()) {
                for (server, p) in servers {
                    let server = server.as_str().unwrap_or_default().to_string();
                    let at = format!("clients.{client}.servers.{server}");
                    per.entry(server)
                        .or_default()
                        .push(read(p, &at, &mut warnings)?);
                }
            }
            out.clients.insert(client, per);
        }
    }
    Ok((out, warnings))
}

/// Drops the keys mcpx ignores (a misspelled one does nothing there), each with a warning.
fn strip(v: &mut serde_yaml_ng::Value, known: &[&str], at: &str, warnings: &mut Vec<String>) {
    let Some(m) = v.as_mapping_mut() else { return };
    let unknown: Vec<_> = m
        .keys()
        .filter(|k| !known.contains(&k.as_str().unwrap_or("")))
        .cloned()
        .collect();
    for k in unknown {
        warnings.push(format!(
            "{at}.{}: mcpx ignores this key, so it has no effect; check its spelling",
            k.as_str().unwrap_or("?")
        ));
        m.remove(&k);
    }
}

/// Whether a YAML document is an mcpx config (a `servers` list or a `clients` map).
pub fn looks_like(doc: &serde_yaml_ng::Value) -> bool {
    doc.get("servers").is_some_and(|s| s.is_sequence())
        || doc.get("clients").is_some_and(|c| c.is_mapping())
}
