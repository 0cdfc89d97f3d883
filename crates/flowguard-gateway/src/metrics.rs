//! Prometheus metrics (ROADMAP H2), in the text exposition format at `/metrics`.
//!
//! Counters and histograms live in families keyed by their label values; a counted event looks
//! its series up under a read lock (one hash of a few short strings, no allocation once the
//! series exists) and adds with a relaxed atomic. Gauges (sessions, servers, breakers, the audit
//! queue) are read when scraped. Families are bounded: past [`MAX_SERIES`] label sets, new ones
//! count under `"(other)"`, so a client cannot grow memory by inventing names.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

pub const MAX_SERIES: usize = 10_000;
const OTHER: &str = "(other)";
const SEP: char = '\u{1}';

/// Upper bounds of the duration histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

thread_local! {
    static KEY: RefCell<String> = RefCell::new(String::with_capacity(128));
}

type Map<T> = RwLock<HashMap<Box<str>, Arc<T>, flowguard_guard::hash::Keyed>>;

/// A family of series of type `T` with `N` labels.
pub struct Family<T, const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    map: Map<T>,
}

impl<T: Default, const N: usize> Family<T, N> {
    fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Family {
            name,
            help,
            labels,
            map: RwLock::new(HashMap::with_hasher(Default::default())),
        }
    }

    /// The series for `values` (made when new).
    pub fn with(&self, values: [&str; N], f: impl FnOnce(&T)) {
        KEY.with(|k| {
            let mut key = k.borrow_mut();
            key.clear();
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    key.push(SEP);
                }
                key.push_str(v);
            }
            if let Some(s) = self
                .map
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(key.as_str())
            {
                return f(s);
            }
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_SERIES && !map.contains_key(key.as_str()) {
                key.clear();
                for i in 0..N {
                    if i > 0 {
                        key.push(SEP);
                    }
                    key.push_str(OTHER);
                }
            }
            let s = map.entry(key.as_str().into()).or_default().clone();
            drop(map);
            f(&s)
        })
    }

    fn series(&self) -> Vec<(Box<str>, Arc<T>)> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// `{a="x",b="y"}` for a key, with `extra` (`le="0.5"`) appended.
    fn label_set(&self, out: &mut String, key: &str, extra: Option<(&str, &str)>) {
        if N == 0 && extra.is_none() {
            return;
        }
        out.push('{');
        let mut first = true;
        if N > 0 {
            for (name, value) in self.labels.iter().zip(key.split(SEP)) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(name);
                out.push_str("=\"");
                escape(out, value);
                out.push('"');
            }
        }
        if let Some((name, value)) = extra {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "{name}=\"{value}\"");
        }
        out.push('}');
    }
}

fn escape(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl<const N: usize> Family<AtomicU64, N> {
    pub fn inc(&self, values: [&str; N]) {
        self.with(values, |c| {
            c.fetch_add(1, Ordering::Relaxed);
        });
    }

    fn render(&self, out: &mut String) {
        self.header(out, "counter");
        for (k, c) in self.series() {
            out.push_str(self.name);
            self.label_set(out, &k, None);
            let _ = writeln!(out, " {}", c.load(Ordering::Relaxed));
        }
    }
}

/// One histogram series: counts per bucket (not cumulative; summed when rendered).
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add((secs * 1e9) as u64, Ordering::Relaxed);
    }
}

impl<const N: usize> Family<Histogram, N> {
    pub fn observe(&self, values: [&str; N], secs: f64) {
        self.with(values, |h| h.observe(secs));
    }

    fn render(&self, out: &mut String) {
        self.header(out, "histogram");
        let bucket = format!("{}_bucket", self.name);
        for (k, h) in self.series() {
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                out.push_str(&bucket);
                self.label_set(out, &k, Some(("le", &b.to_string())));
                let _ = writeln!(out, " {cumulative}");
            }
            let count = h.count.load(Ordering::Relaxed);
            out.push_str(&bucket);
            self.label_set(out, &k, Some(("le", "+Inf")));
            let _ = writeln!(out, " {count}");
            let _ = write!(out, "{}_sum", self.name);
            self.label_set(out, &k, None);
            let _ = writeln!(out, " {}", h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9);
            let _ = write!(out, "{}_count", self.name);
            self.label_set(out, &k, None);
            let _ = writeln!(out, " {count}");
        }
    }
}

/// Everything counted.
pub struct Metrics {
    pub enabled: bool,
    pub requests: Family<AtomicU64, 3>,
    pub durations: Family<Histogram, 2>,
    pub tool_calls: Family<AtomicU64, 4>,
    pub auth_failures: Family<AtomicU64, 1>,
    pub rate_limited: Family<AtomicU64, 2>,
}

impl Metrics {
    pub fn new(enabled: bool) -> Metrics {
        Metrics {
            enabled,
            requests: Family::new(
                "flowguard_requests_total",
                "JSON-RPC requests from clients, by server (\"(gateway)\" when the gateway answered), method and status (ok, error, limited, cancelled).",
                ["server", "method", "status"],
            ),
            durations: Family::new(
                "flowguard_request_duration_seconds",
                "Time from a client request's arrival to its final reply.",
                ["server", "method"],
            ),
            tool_calls: Family::new(
                "flowguard_tool_calls_total",
                "tools/call verdicts by server, tool, decision (allow, deny, modify) and client.",
                ["server", "tool", "decision", "client"],
            ),
            auth_failures: Family::new(
                "flowguard_auth_failures_total",
                "Requests refused before identity was established, by reason.",
                ["reason"],
            ),
            rate_limited: Family::new(
                "flowguard_rate_limited_total",
                "Requests refused by a rate or call limit, by server and rule.",
                ["server", "rule"],
            ),
        }
    }

    /// Starts timing a forwarded request; it is counted (and its spans end) when its reply
    /// ends or it is dropped.
    pub fn track(
        self: &Arc<Self>,
        server: &str,
        method: &str,
        spans: Option<Spans>,
    ) -> Option<Track> {
        (self.enabled || spans.is_some()).then(|| Track {
            metrics: self.enabled.then(|| self.clone()),
            server: server.into(),
            method: method_label(method),
            started: Instant::now(),
            done: false,
            spans: spans.map(Box::new),
        })
    }

    /// A request the gateway answered itself.
    pub fn answered(&self, server: &str, method: &str, status: &str, started: Instant) {
        if !self.enabled {
            return;
        }
        let m = method_label(method);
        self.requests.inc([server, m, status]);
        self.durations
            .observe([server, m], started.elapsed().as_secs_f64());
    }

    pub fn render(&self, gw: &crate::gateway::Gateway) -> String {
        let mut out = String::with_capacity(8192);
        self.requests.render(&mut out);
        self.durations.render(&mut out);
        self.tool_calls.render(&mut out);
        self.auth_failures.render(&mut out);
        self.rate_limited.render(&mut out);
        gauges(&mut out, gw);
        out
    }
}

/// The status of a reply: `error` when it is a JSON-RPC error, else `ok`.
pub fn status_of(reply: &[u8]) -> &'static str {
    let head = &reply[..reply.len().min(512)];
    let mut at = 0;
    while let Some(i) = memchr::memmem::find(&head[at..], b"\"error\":") {
        let pos = at + i;
        if pos == 0 || head[pos - 1] != b'\\' {
            return "error";
        }
        at = pos + 1;
    }
    "ok"
}

/// A bounded method label: MCP's methods as they are, anything else `other`.
pub(crate) fn method_label(m: &str) -> &'static str {
    use flowguard_protocol::methods::*;
    const KNOWN: &[&str] = &[
        INITIALIZE,
        PING,
        TOOLS_LIST,
        TOOLS_CALL,
        PROMPTS_LIST,
        PROMPTS_GET,
        RESOURCES_LIST,
        RESOURCES_READ,
        RESOURCES_SUBSCRIBE,
        RESOURCES_UNSUBSCRIBE,
        COMPLETE,
        SET_LEVEL,
        "resources/templates/list",
        "server/discover",
    ];
    KNOWN.iter().find(|k| **k == m).copied().unwrap_or("other")
}

/// The root span of a forwarded request and its upstream exchange, with the tracer.
pub struct Spans {
    pub root: flowguard_export::Span,
    pub upstream: flowguard_export::Span,
    pub tracer: Arc<crate::trace::Tracer>,
}

/// A forwarded request being timed.
pub struct Track {
    metrics: Option<Arc<Metrics>>,
    server: Box<str>,
    method: &'static str,
    started: Instant,
    done: bool,
    spans: Option<Box<Spans>>,
}

impl Track {
    pub fn finish(&mut self, status: &str) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(m) = &self.metrics {
            m.requests.inc([&self.server, self.method, status]);
            m.durations.observe(
                [&self.server, self.method],
                self.started.elapsed().as_secs_f64(),
            );
        }
        if let Some(s) = self.spans.take() {
            let mut s = *s;
            let st = if status == "ok" {
                flowguard_export::Status::Ok
            } else {
                flowguard_export::Status::Error(status.to_string())
            };
            for span in [&mut s.upstream, &mut s.root] {
                span.set("flowguard.status", status);
                span.status = st.clone();
                span.end();
            }
            s.tracer.export(s.upstream);
            s.tracer.export(s.root);
        }
    }
}

impl Drop for Track {
    fn drop(&mut self) {
        self.finish("cancelled");
    }
}

fn gauges(out: &mut String, gw: &crate::gateway::Gateway) {
    let _ = writeln!(
        out,
        "# HELP flowguard_sessions_open Client sessions open now."
    );
    let _ = writeln!(out, "# TYPE flowguard_sessions_open gauge");
    let _ = writeln!(out, "flowguard_sessions_open {}", gw.sessions.len());
    let _ = writeln!(
        out,
        "# HELP flowguard_server_up Whether each shared server is ready (1) or not (0)."
    );
    let _ = writeln!(out, "# TYPE flowguard_server_up gauge");
    let mut restarts = String::new();
    let mut breakers = String::new();
    for s in gw.servers() {
        let mut id = String::new();
        escape(&mut id, s.id());
        let st = s.state();
        let up = st.kind == flowguard_upstream::StateKind::Ready;
        let _ = writeln!(
            out,
            "flowguard_server_up{{server=\"{id}\"}} {}",
            u8::from(up)
        );
        let _ = writeln!(
            restarts,
            "flowguard_server_restarts_total{{server=\"{id}\"}} {}",
            st.restarts
        );
        if let Some((state, _)) = gw.guard.breaker_state(s.id()) {
            let open = u8::from(state != "closed");
            let _ = writeln!(breakers, "flowguard_breaker_open{{server=\"{id}\"}} {open}");
        }
    }
    let _ = writeln!(out, "# HELP flowguard_server_restarts_total Times each server's process or connection was started again.");
    let _ = writeln!(out, "# TYPE flowguard_server_restarts_total counter");
    out.push_str(&restarts);
    let _ = writeln!(out, "# HELP flowguard_breaker_open Whether a server's circuit breaker is open (1) or closed (0).");
    let _ = writeln!(out, "# TYPE flowguard_breaker_open gauge");
    out.push_str(&breakers);
    if let Some(a) = gw.audit.get() {
        let _ = writeln!(
            out,
            "# HELP flowguard_audit_queue_depth Audit records waiting for the writer."
        );
        let _ = writeln!(out, "# TYPE flowguard_audit_queue_depth gauge");
        let _ = writeln!(out, "flowguard_audit_queue_depth {}", a.queue_depth());
        let _ = writeln!(
            out,
            "# HELP flowguard_audit_records_total Audit records written to the log."
        );
        let _ = writeln!(out, "# TYPE flowguard_audit_records_total counter");
        let _ = writeln!(
            out,
            "flowguard_audit_records_total {}",
            a.written.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP flowguard_audit_write_errors_total Failed writes of the audit log (retried)."
        );
        let _ = writeln!(out, "# TYPE flowguard_audit_write_errors_total counter");
        let _ = writeln!(
            out,
            "flowguard_audit_write_errors_total {}",
            a.write_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP flowguard_audit_store_errors_total Audit records not copied to storage (the log has them).");
        let _ = writeln!(out, "# TYPE flowguard_audit_store_errors_total counter");
        let _ = writeln!(
            out,
            "flowguard_audit_store_errors_total {}",
            a.store_errors.load(Ordering::Relaxed)
        );
    }
    if let Some(s) = gw.alerts.as_ref().and_then(|a| a.stats()) {
        let _ = writeln!(out, "# HELP flowguard_alerts_total Webhook alerts by outcome (sent, suppressed as duplicates, filtered, dropped with the queue full, failed after retries).");
        let _ = writeln!(out, "# TYPE flowguard_alerts_total counter");
        for (k, n) in [
            ("sent", s.sent),
            ("suppressed", s.suppressed),
            ("filtered", s.filtered),
            ("dropped", s.dropped),
            ("failed", s.failed),
        ] {
            let _ = writeln!(out, "flowguard_alerts_total{{outcome=\"{k}\"}} {n}");
        }
    }
    let _ = writeln!(
        out,
        "# HELP flowguard_uptime_seconds Seconds since the gateway started."
    );
    let _ = writeln!(out, "# TYPE flowguard_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "flowguard_uptime_seconds {}",
        gw.started.elapsed().as_secs()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_escaped_labels_and_are_bounded() {
        let m = Metrics::new(true);
        m.tool_calls.inc(["fs", "read", "allow", "a\"b\\c\nd"]);
        m.tool_calls.inc(["fs", "read", "allow", "a\"b\\c\nd"]);
        let mut out = String::new();
        m.tool_calls.render(&mut out);
        assert!(out.contains(
            "flowguard_tool_calls_total{server=\"fs\",tool=\"read\",decision=\"allow\",client=\"a\\\"b\\\\c\\nd\"} 2"
        ), "{out}");
        for i in 0..MAX_SERIES + 5 {
            m.auth_failures.inc([&format!("r{i}")]);
        }
        let mut out = String::new();
        m.auth_failures.render(&mut out);
        assert!(
            out.contains("flowguard_auth_failures_total{reason=\"(other)\"} 5"),
            "{}",
            &out[out.len() - 200..]
        );
    }

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::new(true);
        m.durations.observe(["fs", "tools/call"], 0.0007);
        m.durations.observe(["fs", "tools/call"], 0.3);
        m.durations.observe(["fs", "tools/call"], 99.0);
        let mut out = String::new();
        m.durations.render(&mut out);
        assert!(out.contains("flowguard_request_duration_seconds_bucket{server=\"fs\",method=\"tools/call\",le=\"0.001\"} 1"), "{out}");
        assert!(out.contains("le=\"0.5\"} 2"), "{out}");
        assert!(out.contains("le=\"+Inf\"} 3"), "{out}");
        assert!(
            out.contains(
                "flowguard_request_duration_seconds_count{server=\"fs\",method=\"tools/call\"} 3"
            ),
            "{out}"
        );
    }

    #[test]
    fn reply_status() {
        assert_eq!(
            status_of(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1}}"#),
            "error"
        );
        assert_eq!(
            status_of(br#"{"jsonrpc":"2.0","id":1,"result":{"t":"say \"error\": no"}}"#),
            "ok"
        );
        assert_eq!(status_of(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#), "ok");
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("x/anything"), "other");
    }
}
