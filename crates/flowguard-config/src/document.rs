//! From a parsed tree to a raw document: shape detection, fields refused with a reason, and
//! deserialization whose errors carry the config path and a did-you-mean.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::raw::{McpDocument, PortAndDomain, ServersDocument};
use crate::suggest::{did_you_mean, expected_names, quoted_name};
use crate::validate::{Document, Shape};
use crate::ConfigError;

/// Top-level keys, for suggestions when neither server key is present.
const TOP_LEVEL_KEYS: [&str; 18] = [
    "servers",
    "mcpServers",
    "gateway",
    "virtual_servers",
    "virtualServers",
    "auth",
    "policy",
    "roles",
    "role_mappings",
    "roleMappings",
    "limits",
    "audit",
    "storage",
    "metrics",
    "tracing",
    "alerts",
    "inspect",
    "plugins",
];

/// Decides the shape from the top-level keys.
pub(crate) fn detect_shape(tree: &Value, source: &str) -> Result<Shape, ConfigError> {
    let no_servers = || ConfigError::NoServers {
        source_name: source.to_owned(),
    };
    let map = match tree {
        Value::Object(map) => map,
        Value::Null => return Err(no_servers()),
        other => {
            return Err(ConfigError::Invalid {
                source_name: source.to_owned(),
                path: ".".into(),
                message: format!(
                    "expected a table of settings at the top level, found {}",
                    kind(other)
                ),
                hint: None,
            })
        }
    };
    match (map.contains_key("servers"), map.contains_key("mcpServers")) {
        (true, true) => Err(ConfigError::Invalid {
            source_name: source.to_owned(),
            path: ".".into(),
            message: "both `servers` and `mcpServers` are set".into(),
            hint: Some("use one shape: [servers.<id>] with snake_case keys, or mcpServers with camelCase keys".into()),
        }),
        // `servers:` with nothing under it (YAML) means no servers, not a type error.
        (true, false) if map["servers"].is_null() => Err(no_servers()),
        (false, true) if map["mcpServers"].is_null() => Err(no_servers()),
        (true, false) => Ok(Shape::Servers),
        (false, true) => Ok(Shape::McpServers),
        (false, false) => {
            let expected: Vec<String> = TOP_LEVEL_KEYS.iter().map(|k| k.to_string()).collect();
            for key in map.keys().filter(|k| !expected.contains(k) && *k != "$schema") {
                if let Some(suggestion) = did_you_mean(key, &expected) {
                    return Err(ConfigError::UnknownField {
                        source_name: source.to_owned(),
                        path: key.clone(),
                        suggestion: Some(suggestion.to_owned()),
                        expected,
                    });
                }
            }
            Err(no_servers())
        }
    }
}

/// Refuses fields whose meaning a user would rely on but this version does not implement.
/// Runs before `${VAR}` expansion, so an unset `${API_KEY}` does not hide the real problem.
/// (Nothing is refused this way at present; the hook stays for the next such field.)
pub(crate) fn reject_unsupported(
    _tree: &Value,
    _shape: Shape,
    _source: &str,
) -> Result<(), ConfigError> {
    Ok(())
}

/// Deserializes the (expanded) tree in its shape into the common raw types.
pub(crate) fn deserialize(
    tree: Value,
    shape: Shape,
    source: &str,
) -> Result<Document, ConfigError> {
    match shape {
        Shape::Servers => {
            let doc: ServersDocument = from_tree(tree, source)?;
            Ok(Document {
                gateway: doc.gateway.unwrap_or_default(),
                port_and_domain: PortAndDomain::default(),
                servers: doc.servers,
                virtual_servers: doc.virtual_servers.unwrap_or_default(),
                guard: crate::validate::GuardSections {
                    auth: doc.auth,
                    policy: doc.policy,
                    roles: doc.roles,
                    role_mappings: doc.role_mappings,
                    limits: doc.limits,
                },
                audit: doc.audit,
                inspect: doc.inspect,
                plugins: doc.plugins,
                signals: crate::validate::SignalSections {
                    storage: doc.storage,
                    metrics: doc.metrics,
                    tracing: doc.tracing,
                    alerts: doc.alerts,
                },
            })
        }
        Shape::McpServers => {
            let doc: McpDocument = from_tree(tree, source)?;
            let (gateway, port_and_domain) = doc.gateway.unwrap_or_default().into_parts();
            let servers = doc
                .mcp_servers
                .into_iter()
                .map(|(id, s)| (id, s.into()))
                .collect();
            Ok(Document {
                gateway,
                port_and_domain,
                servers,
                virtual_servers: doc.virtual_servers.unwrap_or_default(),
                guard: crate::validate::GuardSections {
                    auth: doc.auth,
                    policy: doc.policy,
                    roles: doc.roles,
                    role_mappings: doc.role_mappings,
                    limits: doc.limits,
                },
                audit: doc.audit,
                inspect: doc.inspect,
                plugins: doc.plugins,
                signals: crate::validate::SignalSections {
                    storage: doc.storage,
                    metrics: doc.metrics,
                    tracing: doc.tracing,
                    alerts: doc.alerts,
                },
            })
        }
    }
}

fn from_tree<T: DeserializeOwned>(tree: Value, source: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        path_error(path, message, source)
    })
}

/// Turns serde's message into an unknown-field error with a suggestion, or an invalid value.
fn path_error(path: String, message: String, source: &str) -> ConfigError {
    let expected = expected_names(&message);
    if message.starts_with("unknown field") {
        let field = quoted_name(&message).unwrap_or_default().to_owned();
        let path = match path.as_str() {
            "." => field.clone(),
            p if p.ends_with(&format!(".{field}")) || p == field => path,
            p => format!("{p}.{field}"),
        };
        let suggestion = did_you_mean(&field, &expected).map(str::to_owned);
        return ConfigError::UnknownField {
            source_name: source.to_owned(),
            path,
            suggestion,
            expected,
        };
    }
    let mut message = message;
    if message.starts_with("unknown variant") {
        if let Some(s) = quoted_name(&message).and_then(|v| did_you_mean(v, &expected)) {
            message = format!("{message}; did you mean `{s}`?");
        }
    }
    ConfigError::Invalid {
        source_name: source.to_owned(),
        path,
        message,
        hint: None,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}
