//! `[storage]`, `[metrics]`, `[tracing]` and `[alerts]`: where state is kept and what the
//! gateway tells operators. Keys in snake_case in both shapes.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

use super::values::{Count, DurationValue};

/// Where state that outlives a restart is kept (docs/config.md, Storage).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    /// `postgres://user@host:port/db`, `sqlite:PATH`, or a file path (SQLite)
    /// [default: `<data_dir>/flowguard.db`].
    pub url: Option<String>,
    /// PostgreSQL only: keep the tables in this schema (made when missing).
    pub schema: Option<String>,
    /// The data directory [default: `--data-dir`, else `FLOWGUARD_DATA_DIR`, else
    /// `$XDG_DATA_HOME/flowguard`, else `~/.local/share/flowguard`].
    pub data_dir: Option<String>,
    /// A file holding the 256-bit key that seals stored secrets (64 hex digits; later lines are
    /// earlier keys, still accepted for opening). `FLOWGUARD_SECRET_KEY` wins over it.
    pub secret_key_file: Option<String>,
}

/// Prometheus metrics (docs/observability.md).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    /// Serve `/metrics` [default: true].
    pub enabled: Option<bool>,
    /// Serve them on this address instead of the main listener, e.g. "127.0.0.1:9464".
    pub listen: Option<String>,
}

/// OpenTelemetry traces over OTLP/HTTP (docs/observability.md). Off unless an endpoint is set.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTracing {
    /// The OTLP/HTTP traces URL, e.g. "http://127.0.0.1:4318/v1/traces" [default:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + "/v1/traces"].
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans [default: "flowguard"].
    pub service_name: Option<String>,
    /// The share of requests traced when the client sent no sampled context, 0 to 1
    /// [default: 1]. A client's `traceparent` decides for its own requests.
    pub sample_ratio: Option<f64>,
    /// Extra headers sent with each export (for a collector's key).
    pub headers: Option<BTreeMap<String, String>>,
}

/// Webhook alerts on denials and violations (docs/observability.md).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    /// Where alerts are POSTed as Slack-compatible JSON.
    pub webhook: String,
    /// The least severity sent: "info", "warning" or "critical" [default: "warning"].
    pub min_severity: Option<String>,
    /// Only these rules (rule ids of verdicts) alert [default: every rule].
    pub rules: Option<Vec<String>>,
    /// Alerts with the same rule, server and subject within this window are sent once
    /// [default: "60s"].
    pub window: Option<DurationValue>,
    /// Alerts waiting to be sent at most [default: 256]; more are dropped and counted.
    pub queue: Option<Count>,
    /// Extra headers sent with each alert.
    pub headers: Option<BTreeMap<String, String>>,
}
