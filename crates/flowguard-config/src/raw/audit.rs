//! `[audit]`: the tamper-evident audit log (docs/audit.md). Keys in snake_case in both shapes.

use schemars::JsonSchema;
use serde::Deserialize;

use super::values::{Count, DurationValue};

/// The audit log: one record per verdict of the guard, chained, tagged and checkpointed.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    /// The active log file (JSONL), relative to the config's folder. Rotated files are
    /// `<log>.<first seq>`, checkpoints `<log>.checkpoints`. `--audit-log` overrides it.
    pub log: String,
    /// The seal state (the current key and the checkpoint signing key) [default: `<log>.seal`];
    /// made at first use. `--audit-key` overrides it.
    pub key: Option<String>,
    /// Where the verification key is written at first use [default: `<log>.verify-key`]. Copy it
    /// off the machine: it verifies the log, and could tag records of any epoch.
    pub verify_key: Option<String>,
    /// A signed checkpoint after this many records [default: 10000]...
    pub checkpoint_records: Option<Count>,
    /// ...or this long after the last one [default: "60s"]; also at rotation and shutdown.
    pub checkpoint_interval: Option<DurationValue>,
    /// Rotate the active file past this many bytes [default: 67108864, 64 MiB].
    pub rotate_bytes: Option<Count>,
    /// Keep at most this many rotated files; older ones are deleted and a signed checkpoint says
    /// so [default: keep all].
    pub keep_files: Option<Count>,
    /// Records waiting for the writer at most [default: 65536].
    pub queue: Option<Count>,
    /// With the queue full: `"wait"` (the request waits for room) or `"fail"` (the request is
    /// refused, closed) [default: "wait"]. No record is ever dropped.
    pub on_full: Option<OnFull>,
    /// Copy each record to storage for `flowguard audit query` [default: true].
    pub store: Option<bool>,
    /// Token claims (dotted paths) whose values label each record, as
    /// `X-FlowGuard-Label-<name>` headers do [default: none].
    pub label_claims: Option<Vec<String>>,
    /// POST each signed checkpoint here as it is made (`http://…`), to keep a copy off the
    /// machine [default: none].
    pub checkpoint_webhook: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OnFull {
    Wait,
    Fail,
}
