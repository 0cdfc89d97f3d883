//! Raw model → runtime model: every check that needs more than a type.
//!
//! Errors name the path in the shape the user wrote (`servers.echo.working_directory` or
//! `mcpServers.echo.cwd`), which is why the shape travels with the context.

mod checks;
mod gateway;
mod isolation;
mod server;
mod signals;
mod virtual_servers;

pub use isolation::is_dangerous_env_name;

use std::collections::{BTreeMap, BTreeSet};

use crate::raw::{PortAndDomain, RawGateway, RawServer, RawVirtualServer};
use crate::{Config, ConfigError};

/// Which document shape the configuration uses; decides key spelling in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `[servers.<id>]`, snake_case keys.
    Servers,
    /// `{"mcpServers": {...}}`, camelCase keys.
    McpServers,
}

impl Shape {
    /// The top-level key holding the servers.
    pub(crate) fn servers_key(self) -> &'static str {
        match self {
            Shape::Servers => "servers",
            Shape::McpServers => "mcpServers",
        }
    }

    /// A key as this shape spells it, from its snake_case name.
    pub(crate) fn key(self, snake: &str) -> String {
        match (self, snake) {
            (Shape::Servers, _) => snake.to_owned(),
            (Shape::McpServers, "working_directory") => "cwd".to_owned(),
            (Shape::McpServers, _) => {
                let mut parts = snake.split('_');
                let mut camel = parts.next().unwrap_or_default().to_owned();
                for part in parts {
                    let mut chars = part.chars();
                    camel.extend(chars.next().map(|c| c.to_ascii_uppercase()));
                    camel.push_str(chars.as_str());
                }
                camel
            }
        }
    }
}

/// What validation needs besides the raw values.
pub(crate) struct Ctx<'a> {
    /// File path or `<stdin>`.
    pub source: &'a str,
    pub shape: Shape,
    /// Paths of values that `${...}` expansion made empty (not the passthrough marker).
    pub emptied: &'a BTreeSet<String>,
    /// The config file's folder, against which relative paths are resolved.
    pub base: Option<&'a std::path::Path>,
}

impl Ctx<'_> {
    /// `path` as the config means it: relative paths are relative to the config file's folder.
    pub(crate) fn resolve(&self, path: &str) -> String {
        match self.base {
            Some(base) if std::path::Path::new(path).is_relative() => {
                base.join(path).display().to_string()
            }
            _ => path.to_string(),
        }
    }
}

impl Ctx<'_> {
    pub(crate) fn invalid(
        &self,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            source_name: self.source.to_owned(),
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn invalid_hint(
        &self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            source_name: self.source.to_owned(),
            path: path.into(),
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// `gateway.<key>` in this shape's spelling.
    pub(crate) fn gateway_path(&self, snake: &str) -> String {
        format!("gateway.{}", self.shape.key(snake))
    }
}

/// A deserialized document, either shape, in the common raw types.
pub(crate) struct Document {
    pub gateway: RawGateway,
    pub port_and_domain: PortAndDomain,
    pub servers: BTreeMap<String, RawServer>,
    pub virtual_servers: BTreeMap<String, RawVirtualServer>,
    pub guard: GuardSections,
    pub audit: Option<crate::raw::RawAudit>,
    pub inspect: Option<crate::raw::RawInspect>,
    pub plugins: Option<Vec<crate::raw::RawPlugin>>,
    pub signals: SignalSections,
}

/// `[storage]`, `[metrics]`, `[tracing]` and `[alerts]` of a document.
#[derive(Default)]
pub(crate) struct SignalSections {
    pub storage: Option<crate::raw::RawStorage>,
    pub metrics: Option<crate::raw::RawMetrics>,
    pub tracing: Option<crate::raw::RawTracing>,
    pub alerts: Option<crate::raw::RawAlerts>,
}

/// The guard's sections of a document (the same in both shapes).
#[derive(Default)]
pub(crate) struct GuardSections {
    pub auth: Option<flowguard_guard::setup::RawAuth>,
    pub policy: Option<flowguard_guard::setup::RawPolicy>,
    pub roles: Option<BTreeMap<String, flowguard_guard::policy::roles::RawRole>>,
    pub role_mappings: Option<Vec<flowguard_guard::policy::roles::RawRoleMapping>>,
    pub limits: Option<flowguard_guard::setup::RawLimits>,
}

/// Validates a document into the runtime model.
pub(crate) fn build(document: Document, ctx: &Ctx<'_>) -> Result<Config, ConfigError> {
    if document.servers.is_empty() {
        return Err(ConfigError::NoServers {
            source_name: ctx.source.to_owned(),
        });
    }
    let gateway_ids = agent_ids(&document.gateway, ctx);
    let server_inspects: Vec<(String, crate::raw::RawInspect)> = document
        .servers
        .iter()
        .filter_map(|(id, s)| s.inspect.clone().map(|i| (id.clone(), i)))
        .collect();
    let gateway = gateway::settings(document.gateway, document.port_and_domain, ctx)?;
    let guard = guard(&document.guard, &document.servers, gateway_ids, ctx)?;
    let servers = document
        .servers
        .into_iter()
        .map(|(id, raw)| server::server(id, raw, &gateway, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let virtual_servers = virtual_servers::all(document.virtual_servers, &servers, &gateway, ctx)?;
    if let Some(w) = document
        .audit
        .as_ref()
        .and_then(|a| a.checkpoint_webhook.as_deref())
    {
        if !w.starts_with("http://") || w.len() < 10 {
            return Err(ctx.invalid_hint(
                "audit.checkpoint_webhook",
                "is not an http:// URL (https is not supported here yet)",
                "point it at a receiver on a machine you trust, e.g. \"http://10.0.0.5:8080/checkpoints\"",
            ));
        }
    }
    let audit = document.audit.map(|a| audit(a, ctx));
    let signals = signals::all(document.signals, ctx)?;
    let raw_inspect = match document.plugins {
        Some(p) => Some(plugins(document.inspect.unwrap_or_default(), p, ctx)?),
        None => document.inspect,
    };
    let mut inspect = match (&raw_inspect, server_inspects.is_empty()) {
        (None, false) => inspect(Some(crate::raw::RawInspect::all_off()), &servers, ctx)?,
        _ => inspect(raw_inspect.clone(), &servers, ctx)?,
    };
    if let Some(global) = inspect.as_mut() {
        let base = raw_inspect.unwrap_or_default();
        for (id, raw) in server_inspects {
            let own = self::inspect(Some(raw.over(&base)), &servers, ctx)
                .map_err(|e| match e {
                    // The key is the server's (or the global one it fell back to).
                    ConfigError::Invalid {
                        source_name,
                        path,
                        message,
                        hint,
                    } => ConfigError::Invalid {
                        source_name,
                        path: format!("servers.{id}.{path}"),
                        message,
                        hint,
                    },
                    other => other,
                })?
                .expect("a section was given");
            global.per_server.push((id, own));
        }
    }
    Ok(Config {
        gateway,
        servers,
        virtual_servers,
        source: ctx.source.to_owned(),
        guard,
        audit,
        storage: signals.storage,
        metrics: signals.metrics,
        tracing: signals.tracing,
        alerts: signals.alerts,
        inspect,
    })
}

/// mcpgw's `plugins` read into `[inspect]` keys the section does not set itself. Pins and the
/// poisoning scan, which mcpgw has not, are off unless `[inspect]` turns them on.
fn plugins(
    mut i: crate::raw::RawInspect,
    plugins: Vec<crate::raw::RawPlugin>,
    ctx: &Ctx<'_>,
) -> Result<crate::raw::RawInspect, ConfigError> {
    i.pins.get_or_insert_with(|| "off".into());
    i.poison.get_or_insert_with(|| "off".into());
    let (mut pii, mut injection, mut schema) = (false, false, false);
    for (n, p) in plugins.iter().enumerate() {
        let at = format!("plugins[{n}]");
        let c = p.config.clone().unwrap_or(serde_json::Value::Null);
        let text = |k: &str| c.get(k).and_then(|v| v.as_str()).map(str::to_string);
        match p.name.as_str() {
            "pii" => {
                pii = true;
                let mode = text("mode").unwrap_or_else(|| "detect".into());
                if !matches!(mode.as_str(), "detect" | "redact") {
                    return Err(ctx.invalid_hint(format!("{at}.config.mode"), format!("{mode:?} is not a pii mode"), "mcpgw's pii plugin takes \"detect\" or \"redact\""));
                }
                i.secrets_in.get_or_insert_with(|| mode.clone());
                i.secrets_out.get_or_insert_with(|| mode.clone());
                if let Some(names) = c.get("patterns").and_then(|v| v.as_array()) {
                    let mut rules = Vec::new();
                    for name in names.iter().filter_map(|v| v.as_str()) {
                        let id = match name {
                            "credit_card" => "pii.card",
                            "ssn" => "pii.ssn",
                            "email" => "pii.email",
                            "phone" => "pii.phone",
                            "aws_key" => "secret.aws-access-key",
                            "aws_secret" => "secret.aws-secret-key",
                            "high_entropy_token" => "secret.high-entropy",
                            other => return Err(ctx.invalid_hint(format!("{at}.config.patterns"), format!("{other:?} is not one of mcpgw's pii patterns"), "use credit_card, ssn, email, phone, aws_key, aws_secret or high_entropy_token")),
                        };
                        rules.push(id.to_string());
                    }
                    i.secret_rules.get_or_insert(rules);
                }
                if c.get("exclude_tools").is_some() {
                    return Err(ctx.invalid_hint(format!("{at}.config.exclude_tools"), "is not supported", "use [inspect] allow_secrets to let a server receive its own credentials"));
                }
            }
            "injection" => {
                injection = true;
                // mcpgw scans requests only, with its own scores.
                i.injection_in.get_or_insert_with(|| "block".into());
                i.injection_out.get_or_insert_with(|| "off".into());
                if let Some(s) = text("sensitivity") {
                    i.injection_sensitivity.get_or_insert(s);
                }
                if let Some(t) = c.get("threshold").and_then(|v| v.as_f64()) {
                    i.injection_threshold.get_or_insert(t);
                }
                i.injection_scores.get_or_insert_with(|| "mcpgw".into());
            }
            "schema" => {
                schema = true;
                let strict = c.get("strict").and_then(|v| v.as_bool()).unwrap_or(false);
                i.schema.get_or_insert_with(|| if strict { "strict".into() } else { "enforce".into() });
            }
            other => {
                return Err(ctx.invalid_hint(format!("{at}.name"), format!("{other:?} is not a plugin FlowGuard reads"), "mcpgw's plugins FlowGuard reads are pii, injection and schema (the rest of inspection is [inspect])"))
            }
        }
    }
    if !pii {
        i.secrets_in.get_or_insert_with(|| "off".into());
        i.secrets_out.get_or_insert_with(|| "off".into());
    }
    if !injection {
        i.injection_in.get_or_insert_with(|| "off".into());
        i.injection_out.get_or_insert_with(|| "off".into());
    }
    if !schema {
        i.schema.get_or_insert_with(|| "off".into());
    }
    Ok(i)
}

/// `[inspect]`, defaults filled in.
fn inspect(
    i: Option<crate::raw::RawInspect>,
    servers: &[crate::model::ServerConfig],
    ctx: &Ctx<'_>,
) -> Result<Option<crate::model::InspectSettings>, ConfigError> {
    use crate::model::InspectMode;
    let Some(i) = i else { return Ok(None) };
    let mode = |v: Option<&str>, key: &str, strict: &str| match v.unwrap_or(strict) {
        "off" => Ok(InspectMode::Off),
        "warn" => Ok(InspectMode::Warn),
        s if s == strict => Ok(InspectMode::Enforce),
        other => Err(ctx.invalid_hint(
            key,
            format!("{other:?} is not a mode"),
            format!("use \"off\", \"warn\" or \"{strict}\""),
        )),
    };
    use crate::model::SecretAction;
    let secret = |v: Option<&str>, key: &str| match v.unwrap_or("redact") {
        "off" => Ok(SecretAction::Off),
        "detect" => Ok(SecretAction::Detect),
        "redact" => Ok(SecretAction::Redact),
        "block" => Ok(SecretAction::Block),
        other => Err(ctx.invalid_hint(
            key,
            format!("{other:?} is not an action"),
            "use \"off\", \"detect\", \"redact\" or \"block\"",
        )),
    };
    let injection_out = match i.injection_out.as_deref() {
        None => InspectMode::Warn,
        v => mode(v, "inspect.injection_out", "block")?,
    };
    let threshold = i.injection_threshold.unwrap_or(0.7);
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ctx.invalid_hint(
            "inspect.injection_threshold",
            format!("{threshold} is not between 0 and 1"),
            "0.7 blocks one strong signal; lower blocks more",
        ));
    }
    let sensitivity = match i.injection_sensitivity.as_deref().unwrap_or("medium") {
        "low" => 0.7,
        "medium" => 1.0,
        "high" => 1.5,
        other => {
            return Err(ctx.invalid_hint(
                "inspect.injection_sensitivity",
                format!("{other:?} is not a sensitivity"),
                "use \"low\", \"medium\" or \"high\"",
            ))
        }
    };
    let known = |r: &str, key: &str| -> Result<(), ConfigError> {
        let ok = flowguard_inspect::secrets::RULES.iter().any(|x| {
            x.id == r || x.family == r || x.id.split_once('.').is_some_and(|(_, n)| n == r)
        });
        if ok {
            return Ok(());
        }
        let names: Vec<&str> = flowguard_inspect::secrets::RULES
            .iter()
            .map(|x| x.id)
            .collect();
        Err(ctx.invalid_hint(
            key,
            format!("{r:?} is not a secret rule"),
            format!("use \"secret\", \"pii\" or one of {}", names.join(", ")),
        ))
    };
    for r in i.secret_rules.iter().flatten() {
        known(r, "inspect.secret_rules")?;
    }
    for (server, rules) in i.allow_secrets.iter().flatten() {
        let key = format!("inspect.allow_secrets.{server}");
        if !servers.iter().any(|s| &s.id == server) {
            return Err(ctx.invalid_hint(
                &key,
                "names no configured server",
                "use a server id from [servers]",
            ));
        }
        for r in rules {
            known(r, &key)?;
        }
    }
    let patterns = i.response_patterns.unwrap_or_default();
    for (n, p) in patterns.iter().enumerate() {
        if let Err(e) = regex::Regex::new(p) {
            return Err(ctx.invalid_hint(
                format!("inspect.response_patterns[{n}]"),
                format!("is not a regular expression: {e}"),
                "write it in Rust's regex syntax (no look-around or back-references)",
            ));
        }
    }
    let (schema, schema_strict) = match i.schema.as_deref() {
        Some("strict") => (InspectMode::Enforce, true),
        v => (mode(v, "inspect.schema", "enforce")?, false),
    };
    let risk = match i.risk.as_deref() {
        None => InspectMode::Off,
        v => mode(v, "inspect.risk", "enforce")?,
    };
    let auto_approve = i.auto_approve.unwrap_or_else(|| vec!["low".into()]);
    for l in &auto_approve {
        if !matches!(l.as_str(), "low" | "medium" | "high") {
            return Err(ctx.invalid_hint(
                "inspect.auto_approve",
                format!("{l:?} is not a risk level"),
                "use \"low\", \"medium\" or \"high\"",
            ));
        }
    }
    Ok(Some(crate::model::InspectSettings {
        schema,
        schema_strict,
        risk,
        auto_approve,
        high_risk_tools: i.high_risk_tools,
        medium_risk_tools: i.medium_risk_tools,
        per_server: Vec::new(),
        pins: mode(i.pins.as_deref(), "inspect.pins", "enforce")?,
        poison: mode(i.poison.as_deref(), "inspect.poison", "quarantine")?,
        secrets_in: secret(i.secrets_in.as_deref(), "inspect.secrets_in")?,
        secrets_out: secret(i.secrets_out.as_deref(), "inspect.secrets_out")?,
        secret_rules: i.secret_rules,
        allow_secrets: i.allow_secrets.unwrap_or_default().into_iter().collect(),
        injection_in: mode(i.injection_in.as_deref(), "inspect.injection_in", "block")?,
        injection_out,
        injection_threshold: threshold as f32,
        injection_mcpgw_scores: match i.injection_scores.as_deref() {
            None | Some("flowguard") => false,
            Some("mcpgw") => true,
            Some(other) => {
                return Err(ctx.invalid_hint(
                    "inspect.injection_scores",
                    format!("{other:?} is not a set of scores"),
                    "use \"flowguard\" or \"mcpgw\"",
                ))
            }
        },
        injection_sensitivity: sensitivity,
        response_patterns: patterns,
        max_scan_bytes: i.max_scan_bytes.map_or(1 << 20, |c| c.0.max(1024) as usize),
    }))
}

/// `[audit]`, defaults filled in and paths resolved against the config's folder.
fn audit(a: crate::raw::RawAudit, ctx: &Ctx<'_>) -> crate::model::AuditSettings {
    let path = |p: &str| std::path::PathBuf::from(ctx.resolve(p));
    crate::model::AuditSettings {
        log: path(&a.log),
        key: a.key.as_deref().map(path),
        verify_key: a.verify_key.as_deref().map(path),
        checkpoint_records: a.checkpoint_records.map_or(10_000, |c| c.0.max(1)),
        checkpoint_interval: a
            .checkpoint_interval
            .map_or(std::time::Duration::from_secs(60), |d| d.0),
        rotate_bytes: a.rotate_bytes.map_or(64 << 20, |c| c.0.max(4096)),
        keep_files: a.keep_files.map(|c| c.0 as usize),
        queue: a.queue.map_or(65_536, |c| c.0.clamp(1, 1 << 24) as usize),
        fail_closed: a.on_full == Some(crate::raw::OnFull::Fail),
        store: a.store.unwrap_or(true),
        label_claims: a.label_claims.unwrap_or_default(),
        checkpoint_webhook: a.checkpoint_webhook,
    }
}

/// The gateway's agent ids with their config paths.
fn agent_ids(g: &RawGateway, ctx: &Ctx<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(id) = &g.agent_id {
        out.push((ctx.gateway_path("agent_id"), id.clone()));
    }
    if let Some(id) = &g.api_key {
        out.push((ctx.gateway_path("api_key"), id.clone()));
    }
    for (i, id) in g.agent_ids.iter().flatten().enumerate() {
        out.push((
            format!("{}[{i}]", ctx.gateway_path("agent_ids")),
            id.clone(),
        ));
    }
    out
}

/// `[auth]` with the gateway's agent ids (the MCP Gateway Specification's form) merged in.
fn spec_agent_ids(
    auth: Option<&flowguard_guard::setup::RawAuth>,
    ids: Vec<(String, String)>,
    ctx: &Ctx<'_>,
) -> Result<Option<flowguard_guard::setup::RawAuth>, ConfigError> {
    let Some((first_path, _)) = ids.first().cloned() else {
        return Ok(None);
    };
    let mut auth = auth.cloned().unwrap_or_default();
    if auth.agent_id.is_some() {
        return Err(ctx.invalid(
            first_path,
            "agent ids are set both here and in auth.agent_id; keep one",
        ));
    }
    for (path, id) in &ids {
        if id.trim().is_empty() {
            return Err(ctx.invalid(path.clone(), "an agent id must not be empty"));
        }
    }
    auth.agent_id = Some(flowguard_guard::setup::RawAgentId {
        allowed: Some(ids.into_iter().map(|(_, id)| id).collect()),
    });
    Ok(Some(auth))
}

/// Compiles the guard's sections; files they name are read relative to the config's folder.
fn guard(
    g: &GuardSections,
    servers: &BTreeMap<String, RawServer>,
    gateway_ids: Vec<(String, String)>,
    ctx: &Ctx<'_>,
) -> Result<crate::model::Guard, ConfigError> {
    // The specification's `gateway.agent_id` / `agent_ids` / `api_key`: a list of agent ids.
    let auth = spec_agent_ids(g.auth.as_ref(), gateway_ids, ctx)?;
    let sections = flowguard_guard::setup::Sections {
        auth: auth.as_ref().or(g.auth.as_ref()),
        policy: g.policy.as_ref(),
        roles: g.roles.as_ref(),
        role_mappings: g.role_mappings.as_deref(),
        limits: g.limits.as_ref(),
        server_policies: servers
            .iter()
            .filter_map(|(id, s)| s.policy.as_ref().map(|p| (id.as_str(), p)))
            .collect(),
    };
    let read = |f: &str| {
        let path = ctx.resolve(f);
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))
    };
    let mut setup = flowguard_guard::setup::Setup::build(&sections, &read)
        .map_err(|e| ctx.invalid(e.path, e.message))?;
    let ids: Vec<&str> = servers.keys().map(String::as_str).collect();
    if let Some(id) = setup.unknown_servers(&ids).next() {
        return Err(ctx.invalid(
            format!("limits.servers.{id}"),
            format!(
                "no server {id:?} is configured (configured: {})",
                ids.join(", ")
            ),
        ));
    }
    let strays: Vec<String> = setup
        .server_policies
        .servers
        .keys()
        .filter(|k| !ids.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in strays {
        setup.warnings.push(format!(
            "a policy file has a policy for server {k:?}, which is not configured here; it applies to nothing"
        ));
    }
    Ok(crate::model::Guard(std::sync::Arc::new(setup)))
}

#[cfg(test)]
mod tests {
    use super::Shape;

    #[test]
    fn keys_are_spelled_per_shape() {
        assert_eq!(Shape::Servers.key("entrypoint_args"), "entrypoint_args");
        assert_eq!(Shape::McpServers.key("entrypoint_args"), "entrypointArgs");
        assert_eq!(
            Shape::McpServers.key("session_idle_timeout"),
            "sessionIdleTimeout"
        );
        assert_eq!(Shape::McpServers.key("working_directory"), "cwd");
        assert_eq!(Shape::McpServers.key("url"), "url");
    }
}
