//! `[storage]`, `[metrics]`, `[tracing]` and `[alerts]`, checked and with defaults filled in.
//! Values that hold secrets (a PostgreSQL password, a webhook URL, header values) are never
//! repeated in an error.

use super::{Ctx, SignalSections};
use crate::model::{AlertSettings, MetricsSettings, StorageSettings, TracingSettings};
use crate::ConfigError;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) struct Signals {
    pub storage: StorageSettings,
    pub metrics: MetricsSettings,
    pub tracing: Option<TracingSettings>,
    pub alerts: Option<AlertSettings>,
}

pub(crate) fn all(s: SignalSections, ctx: &Ctx<'_>) -> Result<Signals, ConfigError> {
    Ok(Signals {
        storage: storage(s.storage, ctx)?,
        metrics: metrics(s.metrics, ctx)?,
        tracing: tracing(s.tracing, ctx)?,
        alerts: alerts(s.alerts, ctx)?,
    })
}

fn storage(
    s: Option<crate::raw::RawStorage>,
    ctx: &Ctx<'_>,
) -> Result<StorageSettings, ConfigError> {
    let Some(s) = s else {
        return Ok(StorageSettings::default());
    };
    let url = match s.url {
        Some(u) if u.trim().is_empty() => {
            return Err(ctx.invalid_hint(
                "storage.url",
                "is empty",
                "give `postgres://user@host:port/db`, `sqlite:PATH` or a file path, or leave it out for <data_dir>/flowguard.db",
            ))
        }
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => Some(u),
        Some(u) => {
            let path = u
                .strip_prefix("sqlite://")
                .or_else(|| u.strip_prefix("sqlite:"))
                .unwrap_or(&u);
            if let Some((scheme, _)) = path.split_once("://") {
                return Err(ctx.invalid_hint(
                    "storage.url",
                    format!("unknown scheme {scheme:?}"),
                    "use `postgres://…` (PostgreSQL), `sqlite:PATH` or a file path (SQLite)",
                ));
            }
            Some(format!("sqlite:{}", ctx.resolve(path)))
        }
        None => None,
    };
    if let Some(schema) = &s.schema {
        if !url.as_deref().is_some_and(|u| u.starts_with("postgres")) {
            return Err(ctx.invalid("storage.schema", "applies to a PostgreSQL url only"));
        }
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ctx.invalid("storage.schema", "use letters, digits and _ only"));
        }
    }
    Ok(StorageSettings {
        url,
        schema: s.schema,
        data_dir: s.data_dir.as_deref().map(|d| PathBuf::from(ctx.resolve(d))),
        secret_key_file: s
            .secret_key_file
            .as_deref()
            .map(|d| PathBuf::from(ctx.resolve(d))),
        configured: true,
    })
}

fn metrics(
    m: Option<crate::raw::RawMetrics>,
    ctx: &Ctx<'_>,
) -> Result<MetricsSettings, ConfigError> {
    let Some(m) = m else {
        return Ok(MetricsSettings::default());
    };
    let listen = match m.listen {
        Some(l) => Some(l.parse().map_err(|_| {
            ctx.invalid_hint(
                "metrics.listen",
                format!("{l:?} is not an address"),
                "write IP:PORT, e.g. \"127.0.0.1:9464\"",
            )
        })?),
        None => None,
    };
    Ok(MetricsSettings {
        enabled: m.enabled.unwrap_or(true),
        listen,
    })
}

fn headers(
    h: Option<std::collections::BTreeMap<String, String>>,
    path: &str,
    ctx: &Ctx<'_>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in h.unwrap_or_default() {
        let bad = |c: char| c.is_control();
        if k.is_empty() || k.contains(bad) || k.contains(':') || k.contains(' ') {
            return Err(ctx.invalid(format!("{path}.{k}"), "is not a header name"));
        }
        if v.contains(bad) {
            return Err(ctx.invalid(
                format!("{path}.{k}"),
                "holds a control character (CR, LF, …)",
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// An http(s) URL, described without its secrets when it is wrong.
fn url(u: &str, path: &str, ctx: &Ctx<'_>) -> Result<(), ConfigError> {
    if u.starts_with("https://") {
        return Err(ctx.invalid_hint(
            path,
            "https:// is not supported here yet",
            "point it at a collector or relay on this machine or a private network over http://",
        ));
    }
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
        return Err(ctx.invalid_hint(
            path,
            "is not an http:// or https:// URL",
            "write the full URL, e.g. \"http://127.0.0.1:4318/v1/traces\"",
        ));
    }
    Ok(())
}

fn tracing(
    t: Option<crate::raw::RawTracing>,
    ctx: &Ctx<'_>,
) -> Result<Option<TracingSettings>, ConfigError> {
    let Some(t) = t else { return Ok(None) };
    let endpoint = match t.otlp_endpoint {
        Some(e) => e,
        None => match std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .ok()
            .or_else(|| {
                std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .ok()
                    .map(|e| format!("{}/v1/traces", e.trim_end_matches('/')))
            }) {
            Some(e) => e,
            None => {
                return Err(ctx.invalid_hint(
                    "tracing.otlp_endpoint",
                    "is not set",
                    "set it (e.g. \"http://127.0.0.1:4318/v1/traces\") or OTEL_EXPORTER_OTLP_ENDPOINT, or remove [tracing]",
                ))
            }
        },
    };
    url(&endpoint, "tracing.otlp_endpoint", ctx)?;
    let sample_ratio = t.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(ctx.invalid_hint(
            "tracing.sample_ratio",
            format!("{sample_ratio} is not between 0 and 1"),
            "1 traces every request, 0.1 one in ten",
        ));
    }
    Ok(Some(TracingSettings {
        sample_ratio,
        otlp_endpoint: endpoint,
        service_name: t.service_name.unwrap_or_else(|| "flowguard".into()),
        headers: headers(t.headers, "tracing.headers", ctx)?,
    }))
}

fn alerts(
    a: Option<crate::raw::RawAlerts>,
    ctx: &Ctx<'_>,
) -> Result<Option<AlertSettings>, ConfigError> {
    let Some(a) = a else { return Ok(None) };
    url(&a.webhook, "alerts.webhook", ctx)?;
    let min_severity = match a.min_severity.as_deref().unwrap_or("warning") {
        "info" => 0,
        "warning" => 1,
        "critical" => 2,
        other => {
            return Err(ctx.invalid_hint(
                "alerts.min_severity",
                format!("{other:?} is not a severity"),
                "use \"info\", \"warning\" or \"critical\"",
            ))
        }
    };
    Ok(Some(AlertSettings {
        webhook: a.webhook,
        min_severity,
        rules: a.rules,
        window: a.window.map_or(Duration::from_secs(60), |w| w.0),
        queue: a.queue.map_or(256, |q| q.0.clamp(1, 65_536) as usize),
        headers: headers(a.headers, "alerts.headers", ctx)?,
    }))
}
