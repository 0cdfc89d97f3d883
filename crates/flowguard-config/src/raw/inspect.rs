//! `[inspect]`: pinned tools and the poisoning scan (docs/inspection.md).

use schemars::JsonSchema;
use serde::Deserialize;

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
}
