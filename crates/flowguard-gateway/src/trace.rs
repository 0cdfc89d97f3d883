//! OpenTelemetry traces (ROADMAP H3): a span per client request, a child per pipeline stage and
//! per upstream exchange, exported over OTLP/HTTP by `flowguard-export`'s background thread.
//!
//! The client's W3C `traceparent` is taken from its HTTP header or, in a request's
//! `params._meta` (2026-07-28), and the upstream exchange's context is passed on in
//! `params._meta.traceparent` (every transport) and, to remote servers, as a header too.
//! Off unless `[tracing]` is set; when off, nothing here runs.

use flowguard_export::{Context, Kind, Span, SpanExporter};
use std::cell::RefCell;
use std::sync::{Arc, RwLock};

pub struct Tracer {
    exporter: RwLock<Option<SpanExporter>>,
    /// Requests without a client's context are traced when a random u64 is below this.
    threshold: u64,
}

tokio::task_local! {
    /// The client's context from its HTTP header, set around a POST when tracing is on.
    static INCOMING: Option<Context>;
    /// The request's root span while the router decides.
    static ROOT: RefCell<Option<Span>>;
}

impl Tracer {
    pub fn start(t: &flowguard_config::TracingSettings) -> Arc<Tracer> {
        let mut c = flowguard_export::exporter::Config::new(&t.otlp_endpoint, &t.service_name);
        c.service_version = env!("CARGO_PKG_VERSION").into();
        c.headers = t.headers.clone();
        let exporter = SpanExporter::start(c, Arc::new(flowguard_export::PlainHttp));
        Arc::new(Tracer {
            exporter: RwLock::new(Some(exporter)),
            threshold: (t.sample_ratio * u64::MAX as f64) as u64,
        })
    }

    pub fn export(&self, span: Span) {
        if let Some(e) = &*self.exporter.read().unwrap_or_else(|e| e.into_inner()) {
            e.export(span);
        }
    }

    /// Sends what is queued (a few seconds at most), at shutdown.
    pub fn shutdown(&self) {
        let e = self
            .exporter
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(e) = e {
            let stats = e.shutdown();
            if stats.dropped > 0 || stats.failed_batches > 0 {
                tracing::warn!(
                    "traces: {} span(s) exported, {} dropped, {} batch(es) failed{}",
                    stats.exported,
                    stats.dropped,
                    stats.failed_batches,
                    stats
                        .last_error
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

/// Runs `f` with the client's `traceparent` header (when it parses).
pub async fn with_incoming<F: std::future::Future>(header: Option<&str>, f: F) -> F::Output {
    let ctx = header.and_then(flowguard_export::traceparent::parse);
    INCOMING.scope(ctx, f).await
}

/// Runs `f` (the router's decision) under a root span for `method`; returns the span, ended
/// unless the request was forwarded (then the upstream exchange took it, see [`upstream`]).
/// A request that is not sampled (the client's context says so, or `sample_ratio`) runs
/// without spans.
pub async fn around<F: std::future::Future>(
    tracer: &Tracer,
    method: &str,
    meta: Option<&serde_json::value::RawValue>,
    f: F,
) -> (F::Output, Option<Span>) {
    let parent = INCOMING
        .try_with(|c| *c)
        .ok()
        .flatten()
        .or_else(|| meta.and_then(traceparent_in_params));
    let sampled = match &parent {
        Some(p) => p.sampled(),
        None => {
            tracer.threshold == u64::MAX
                || u64::from_le_bytes(flowguard_export::traceparent::new_span_id().0)
                    < tracer.threshold
        }
    };
    if !sampled {
        return (f.await, None);
    }
    let mut root = Span::start(span_name(method), Kind::Server, parent.as_ref());
    root.set("mcp.method.name", method);
    if let Some(id) = crate::request_id::current() {
        root.set("flowguard.request_id", id.to_string());
    }
    let cell = RefCell::new(Some(root));
    let (out, cell) = ROOT
        .scope(cell, async {
            let out = f.await;
            (out, ROOT.with(|c| c.borrow_mut().take()))
        })
        .await;
    (out, cell)
}

/// `params._meta.traceparent` of a request, when it has one.
fn traceparent_in_params(params: &serde_json::value::RawValue) -> Option<Context> {
    let text = params.get();
    memchr::memmem::find(text.as_bytes(), b"traceparent")?;
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    flowguard_export::traceparent::parse(v.pointer("/_meta/traceparent")?.as_str()?)
}

/// A finished child of the current request's span (a pipeline stage), with attributes.
pub fn stage(tracer: &Tracer, name: &'static str, started_ns: u64, attrs: &[(&'static str, &str)]) {
    let _ = ROOT.try_with(|c| {
        if let Some(root) = &*c.borrow() {
            let mut s = root.child(name, Kind::Internal);
            s.start_ns = started_ns;
            for (k, v) in attrs {
                s.set(k, *v);
            }
            s.end();
            tracer.export(s);
        }
    });
}

/// Starts the upstream exchange of the current request: its span (a child of the root) and the
/// root itself move into the returned pair, to end with the final reply.
pub fn upstream(server: &str) -> Option<(Span, Span)> {
    ROOT.try_with(|c| {
        let root = c.borrow_mut().take()?;
        let mut up = root.child("upstream", Kind::Client);
        up.set("mcp.server", server);
        Some((root, up))
    })
    .ok()
    .flatten()
}

/// The root span's name: MCP's method (a static string for the known ones).
fn span_name(method: &str) -> std::borrow::Cow<'static, str> {
    match crate::metrics::method_label(method) {
        "other" => std::borrow::Cow::Owned(method.to_string()),
        known => std::borrow::Cow::Borrowed(known),
    }
}

/// `params` with `_meta.traceparent` set to `ctx` (the object made when missing). Params
/// without a `_meta` key get it spliced in as text (no parse); others are rewritten.
pub fn with_traceparent(
    params: Option<&serde_json::value::RawValue>,
    ctx: &Context,
) -> Option<Box<serde_json::value::RawValue>> {
    let tp = flowguard_export::traceparent::format(ctx);
    if let Some(p) = params {
        let text = p.get();
        let body = text.trim_start();
        if let Some(rest) = body.strip_prefix('{') {
            if memchr::memmem::find(rest.as_bytes(), b"\"_meta\"").is_none() {
                let sep = if rest.trim_start().starts_with('}') {
                    ""
                } else {
                    ","
                };
                let mut spliced = String::with_capacity(text.len() + 80);
                spliced.push_str("{\"_meta\":{\"traceparent\":\"");
                spliced.push_str(&tp);
                spliced.push_str("\"}");
                spliced.push_str(sep);
                spliced.push_str(rest);
                return serde_json::value::RawValue::from_string(spliced).ok();
            }
        }
    }
    let mut v: serde_json::Value = match params {
        Some(p) => serde_json::from_str(p.get()).ok()?,
        None => serde_json::json!({}),
    };
    let obj = v.as_object_mut()?;
    let meta = obj.entry("_meta").or_insert_with(|| serde_json::json!({}));
    meta.as_object_mut()?
        .insert("traceparent".into(), tp.into());
    serde_json::value::to_raw_value(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_spliced_or_merged_into_params() {
        let ctx = flowguard_export::traceparent::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.into()).unwrap();
        for (params, want) in [
            (
                Some(raw(r#"{"name":"echo","arguments":{"m":"x"}}"#)),
                serde_json::json!({"name":"echo","arguments":{"m":"x"}}),
            ),
            (Some(raw(" { } ")), serde_json::json!({})),
            (None, serde_json::json!({})),
            (
                Some(raw(r#"{"_meta":{"progressToken":1},"name":"e"}"#)),
                serde_json::json!({"_meta":{"progressToken":1},"name":"e"}),
            ),
        ] {
            let out = with_traceparent(params.as_deref(), &ctx).unwrap();
            let mut v: serde_json::Value = serde_json::from_str(out.get()).unwrap();
            assert_eq!(
                v["_meta"]["traceparent"],
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            );
            v["_meta"].as_object_mut().unwrap().remove("traceparent");
            if v["_meta"].as_object().unwrap().is_empty() {
                v.as_object_mut().unwrap().remove("_meta");
            }
            assert_eq!(v, want);
        }
    }
}
