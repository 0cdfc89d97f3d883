//! OpenTelemetry traces (ROADMAP H3): a span per client request, a child per pipeline stage and
//! per upstream exchange, exported over OTLP/HTTP by `flowguard-export`'s background thread.
//!
//! The client's W3C `traceparent` is taken from its HTTP header or, in a request's
//! `params._meta` (2026-07-28), and the upstream exchange's context is passed on in
//! `params._meta.traceparent` (every transport) and, to remote servers, as a header too.
//! Off unless `[tracing]` is set; when off, nothing here runs.

use flowguard_export::{Context, Kind, Span, SpanExporter};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

pub struct Tracer {
    exporter: Mutex<Option<SpanExporter>>,
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
            exporter: Mutex::new(Some(exporter)),
        })
    }

    pub fn export(&self, span: Span) {
        if let Some(e) = &*self.exporter.lock().unwrap_or_else(|e| e.into_inner()) {
            e.export(span);
        }
    }

    /// Sends what is queued (a few seconds at most), at shutdown.
    pub fn shutdown(&self) {
        let e = self
            .exporter
            .lock()
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
pub async fn around<F: std::future::Future>(
    method: &str,
    meta: Option<&serde_json::value::RawValue>,
    f: F,
) -> (F::Output, Option<Span>) {
    let parent = INCOMING
        .try_with(|c| *c)
        .ok()
        .flatten()
        .or_else(|| meta.and_then(traceparent_in_params));
    let mut root = Span::start(method.to_string(), Kind::Server, parent.as_ref());
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
        let mut up = root.child(format!("upstream {server}"), Kind::Client);
        up.set("mcp.server", server);
        Some((root, up))
    })
    .ok()
    .flatten()
}

/// `params` with `_meta.traceparent` set to `ctx` (the object made when missing).
pub fn with_traceparent(
    params: Option<&serde_json::value::RawValue>,
    ctx: &Context,
) -> Option<Box<serde_json::value::RawValue>> {
    let mut v: serde_json::Value = match params {
        Some(p) => serde_json::from_str(p.get()).ok()?,
        None => serde_json::json!({}),
    };
    let obj = v.as_object_mut()?;
    let meta = obj.entry("_meta").or_insert_with(|| serde_json::json!({}));
    meta.as_object_mut()?.insert(
        "traceparent".into(),
        flowguard_export::traceparent::format(ctx).into(),
    );
    serde_json::value::to_raw_value(&v).ok()
}
