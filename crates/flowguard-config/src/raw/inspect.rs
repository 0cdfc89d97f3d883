//! `[inspect]`: pinned tools and the poisoning scan (docs/inspection.md).

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Inspection of what servers offer (ROADMAP G1, G2). Off unless the section is written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInspect {
    /// Tool, prompt and resource-template pins, and server definition pins: "off", "warn"
    /// (a change is logged and audited) or "enforce" (a changed item is held back until
    /// `flowguard pins approve`) [default: "enforce"].
    pub pins: Option<String>,
    /// The poisoning scan of descriptions, schemas and `instructions`: "off", "warn" or
    /// "quarantine" (a flagged item is held back) [default: "quarantine"].
    pub poison: Option<String>,
    /// Secrets and personal data in tool arguments (client to server): "off", "detect" (logged
    /// and audited), "redact" (replaced by `[REDACTED:<rule>]`) or "block" [default: "redact"].
    pub secrets_in: Option<String>,
    /// The same in tool results (server to client) [default: "redact"].
    pub secrets_out: Option<String>,
    /// Only these rules: ids (`secret.github-token`, `pii.email`), names (`github-token`) or
    /// families (`secret`, `pii`) [default: all].
    pub secret_rules: Option<Vec<String>>,
    /// Per server, the rules whose findings it may receive and send (its own credential):
    /// `{ github = ["secret.github-token"] }`.
    pub allow_secrets: Option<BTreeMap<String, Vec<String>>>,
    /// Injection heuristics on tool arguments: "off", "warn" or "block" [default: "block"].
    pub injection_in: Option<String>,
    /// Injection heuristics on tool results: "off", "warn" or "block" [default: "warn"].
    pub injection_out: Option<String>,
    /// The score at which injection findings count, 0 to 1 [default: 0.7].
    pub injection_threshold: Option<f64>,
    /// "low" (scores ×0.7), "medium" or "high" (×1.5) [default: "medium"].
    pub injection_sensitivity: Option<String>,
    /// Regular expressions that block a tool result when they match it (mcpgw's
    /// `response_patterns`; the first MiB is scanned).
    pub response_patterns: Option<Vec<String>>,
    /// Tool arguments checked against the tool's `inputSchema`: "off", "warn", "enforce" (a
    /// call that does not fit is refused, naming the field) or "strict" (also refusing
    /// properties the schema does not name) [default: "enforce"].
    pub schema: Option<String>,
    /// Server risk from its tool names (mcpgw's server evaluation): "off", "warn" or
    /// "enforce" (the tools of a server that is pending or denied are held back until
    /// `flowguard servers approve`) [default: "off"].
    pub risk: Option<String>,
    /// The risk levels approved without asking: any of "low", "medium", "high"
    /// [default: ["low"]].
    pub auto_approve: Option<Vec<String>>,
    /// Tool-name patterns (`*` any run) for high risk [default: mcpgw's `exec_*`, `run_*`,
    /// `send_*`, `delete_*`, `write_*`, `sql_*`].
    pub high_risk_tools: Option<Vec<String>>,
    /// Tool-name patterns for medium risk [default: `read_file`, `get_env`, `list_env`,
    /// `list_*`].
    pub medium_risk_tools: Option<Vec<String>>,
    /// The injection rules' scores: "flowguard" (one strong signal blocks) or "mcpgw" (its
    /// plugin's, where one rule alone scores 0.3 to 0.5) [default: "flowguard"].
    pub injection_scores: Option<String>,
    /// Bytes of one string the detectors look at [default: 1048576].
    pub max_scan_bytes: Option<super::values::Count>,
}

/// One of mcpgw's plugins (`plugins: [{name: pii, config: {mode: redact}}]`), read into
/// `[inspect]` (docs/inspection.md, mcpgw's plugins).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlugin {
    /// "pii", "injection" or "schema".
    pub name: String,
    /// The plugin's settings as mcpgw reads them.
    pub config: Option<serde_json::Value>,
}

impl RawInspect {
    /// These settings over `base`: a key set here wins.
    pub(crate) fn over(self, base: &RawInspect) -> RawInspect {
        let b = base.clone();
        RawInspect {
            pins: self.pins.or(b.pins),
            poison: self.poison.or(b.poison),
            secrets_in: self.secrets_in.or(b.secrets_in),
            secrets_out: self.secrets_out.or(b.secrets_out),
            secret_rules: self.secret_rules.or(b.secret_rules),
            allow_secrets: self.allow_secrets.or(b.allow_secrets),
            injection_in: self.injection_in.or(b.injection_in),
            injection_out: self.injection_out.or(b.injection_out),
            injection_threshold: self.injection_threshold.or(b.injection_threshold),
            injection_sensitivity: self.injection_sensitivity.or(b.injection_sensitivity),
            response_patterns: self.response_patterns.or(b.response_patterns),
            schema: self.schema.or(b.schema),
            risk: self.risk.or(b.risk),
            auto_approve: self.auto_approve.or(b.auto_approve),
            high_risk_tools: self.high_risk_tools.or(b.high_risk_tools),
            medium_risk_tools: self.medium_risk_tools.or(b.medium_risk_tools),
            injection_scores: self.injection_scores.or(b.injection_scores),
            max_scan_bytes: self.max_scan_bytes.or(b.max_scan_bytes),
        }
    }

    /// Everything off (the global settings when only servers have an `inspect` section).
    pub(crate) fn all_off() -> RawInspect {
        let off = || Some("off".to_string());
        RawInspect {
            pins: off(),
            poison: off(),
            secrets_in: off(),
            secrets_out: off(),
            injection_in: off(),
            injection_out: off(),
            schema: off(),
            risk: off(),
            ..RawInspect::default()
        }
    }
}
