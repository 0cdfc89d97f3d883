//! The audit as the gateway runs it (ROADMAP H1): a record per verdict of the pipeline, built on
//! the request path and written by a thread of its own (`flowguard-audit` seals, checkpoints
//! and rotates). The queue is bounded; when it is full the configured choice applies: the
//! request waits, or it fails closed. A record is never dropped: a failed write is retried with
//! the next batch and counted.

use flowguard_guard::{Decision, Principal, Verdict};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;

/// Arguments longer than this (as JSON) are replaced by their size.
const MAX_ARGS_BYTES: usize = 4096;
/// Strings inside arguments are cut here.
const MAX_STRING: usize = 256;
const BATCH: usize = 4096;
/// The least time between two syncs of the log.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

pub struct Auditor {
    tx: RwLock<Option<mpsc::Sender<String>>>,
    fail_closed: bool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub written: Arc<AtomicU64>,
    pub write_errors: Arc<AtomicU64>,
    /// Copies to storage that failed or were given up (the file keeps every record).
    pub store_errors: Arc<AtomicU64>,
    label_claims: Vec<String>,
}

/// The queue was full and the audit fails closed.
#[derive(Debug)]
pub struct Full;

impl Auditor {
    /// Opens the log (continuing its chain) and starts the writer thread.
    pub fn start(
        opts: flowguard_audit::Options,
        queue: usize,
        fail_closed: bool,
        store: Option<Arc<flowguard_store::Store>>,
        checkpoint_webhook: Option<String>,
    ) -> Result<Arc<Auditor>, flowguard_audit::log::AuditError> {
        let mut opts = opts;
        opts.keep_made = checkpoint_webhook.is_some();
        let mut log = flowguard_audit::Log::open(opts)?;
        for n in std::mem::take(&mut log.notes) {
            tracing::warn!("audit: {n}");
        }
        let (tx, rx) = mpsc::channel::<String>(queue.max(1));
        let written = Arc::new(AtomicU64::new(0));
        let write_errors = Arc::new(AtomicU64::new(0));
        let store_errors = Arc::new(AtomicU64::new(0));
        let feed = store.map(|s| crate::audit_store::Feed::start(s, store_errors.clone()));
        let pusher = checkpoint_webhook.map(crate::checkpoint_push::Pusher::start);
        let (w, e) = (written.clone(), write_errors.clone());
        let thread = std::thread::Builder::new()
            .name("flowguard-audit".into())
            .spawn(move || writer(log, rx, w, e, feed, pusher))
            .map_err(|e| flowguard_audit::log::AuditError::Io {
                path: "audit writer thread".into(),
                why: e.to_string(),
            })?;
        Ok(Arc::new(Auditor {
            tx: RwLock::new(Some(tx)),
            fail_closed,
            thread: Mutex::new(Some(thread)),
            written,
            write_errors,
            store_errors,
            label_claims: Vec::new(),
        }))
    }

    /// Queues a record: waits for room, or refuses when the audit fails closed.
    pub async fn submit(&self, line: String) -> Result<(), Full> {
        // The common case under the lock, without cloning the sender.
        let line = {
            let guard = self.tx.read().unwrap_or_else(|e| e.into_inner());
            let Some(tx) = guard.as_ref() else {
                return Err(Full);
            };
            match tx.try_send(line) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(line)) => line,
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Full),
            }
        };
        let tx = self.tx.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(tx) = tx else {
            return Err(Full);
        };
        match tx.try_send(line) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(line)) if !self.fail_closed => {
                tx.send(line).await.map_err(|_| Full)
            }
            Err(_) => {
                tracing::warn!(
                    "audit: the queue is full; the request is refused (audit fails closed)"
                );
                Err(Full)
            }
        }
    }

    /// Token claims whose values label each record.
    pub fn label_claims(&self) -> &[String] {
        &self.label_claims
    }

    /// With these token claims as labels (`[audit] label_claims`).
    pub fn with_label_claims(mut self: Arc<Self>, claims: Vec<String>) -> Arc<Self> {
        if let Some(a) = Arc::get_mut(&mut self) {
            a.label_claims = claims;
        }
        self
    }

    /// Records waiting for the writer now.
    pub fn queue_depth(&self) -> usize {
        match &*self.tx.read().unwrap_or_else(|e| e.into_inner()) {
            Some(tx) => tx.max_capacity() - tx.capacity(),
            None => 0,
        }
    }

    /// Whether the writer thread still runs.
    pub fn running(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Writes what is queued and the shutdown checkpoint.
    pub fn close(&self) {
        self.tx.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

fn writer(
    mut log: flowguard_audit::Log,
    mut rx: mpsc::Receiver<String>,
    written: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    feed: Option<crate::audit_store::Feed>,
    pusher: Option<crate::checkpoint_push::Pusher>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("audit: cannot start the writer: {e}");
            return;
        }
    };
    let mut batch: Vec<String> = Vec::new();
    rt.block_on(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut open = true;
        let mut last_sync = tokio::time::Instant::now();
        while open || !batch.is_empty() {
            if open {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(line) => batch.push(line),
                        None => open = false,
                    },
                    _ = tick.tick() => {}
                }
                // Group commit: at most one sync every SYNC_EVERY; records arriving meanwhile
                // join the batch (each sync costs the machine far more than a record).
                if open && !batch.is_empty() {
                    tokio::time::sleep_until(last_sync + SYNC_EVERY).await;
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(line) => batch.push(line),
                        Err(_) => break,
                    }
                }
            }
            last_sync = tokio::time::Instant::now();
            let first = log.seq() + 1;
            let appended = log.append(&batch);
            if let Some(p) = &pusher {
                for line in log.take_made() {
                    p.push(line);
                }
            }
            match appended {
                Ok(()) => {
                    written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    match &feed {
                        // The records are in the file; storage gets them for queries.
                        Some(f) => f.send(first, std::mem::take(&mut batch)),
                        None => batch.clear(),
                    }
                }
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        "audit: writing {} record(s) failed, retrying: {e}",
                        batch.len()
                    );
                    if !open {
                        tracing::error!(
                            "audit: {} record(s) could not be written at shutdown",
                            batch.len()
                        );
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    });
    let (closed, made) = log.close_taking();
    if let Err(e) = closed {
        tracing::error!("audit: the shutdown checkpoint failed: {e}");
    }
    if let Some(p) = pusher {
        for line in made {
            p.push(line);
        }
        p.close();
    }
    if let Some(f) = feed {
        f.close();
    }
}

/// Refuses an unauthenticated request (guard/oauth.rs) and records the verdict.
pub async fn refused(
    gw: &crate::gateway::Gateway,
    scope: &crate::session::Scope,
    e: &crate::guard::AuthError,
    method: &str,
) -> axum::response::Response {
    use crate::guard::AuthError;
    let (rule, reason) = match e {
        AuthError::Missing => ("(no-credential)", "missing"),
        AuthError::Invalid(_) => ("(invalid-credential)", "invalid"),
        AuthError::Scope(_) => ("(insufficient-scope)", "insufficient-scope"),
    };
    if gw.metrics.enabled {
        gw.metrics.auth_failures.inc([reason]);
    }
    if gw.alerts.is_none() && gw.audit.get().is_none() {
        return crate::guard::refuse(gw, scope, e);
    }
    let v = Verdict::deny(flowguard_guard::Stage::Authenticate, rule, e.message());
    if let (Some(al), AuthError::Invalid(_)) = (&gw.alerts, e) {
        al.verdict(&v, None, None, None);
    }
    if let Some(a) = gw.audit.get() {
        let line = record(&Event {
            method,
            id: "null",
            server: None,
            tool: None,
            arguments: Arguments::None,
            who: &Principal::anonymous(),
            session: "",
            verdict: &v,
            latency_us: 0,
            label_claims: &[],
        });
        // Refused either way; a full queue under `on_full = "fail"` changes nothing here.
        let _ = a.submit(line).await;
    }
    crate::guard::refuse(gw, scope, e)
}

/// A request's arguments as the audit gets them.
#[derive(Clone, Copy)]
pub enum Arguments<'a> {
    None,
    Value(&'a Value),
    /// The JSON text as the client sent it.
    Raw(&'a str),
}

/// What one verdict is about.
pub struct Event<'a> {
    pub method: &'a str,
    /// The JSON-RPC id as sent.
    pub id: &'a str,
    pub server: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub arguments: Arguments<'a>,
    pub who: &'a Principal,
    pub session: &'a str,
    pub verdict: &'a Verdict,
    pub latency_us: u64,
    /// Token claims (dotted paths) whose values become labels (`[audit] label_claims`).
    pub label_claims: &'a [String],
}

/// The record's JSON (field names as mcpgw's where they mean the same), written directly: it
/// is built on the request path.
pub fn record(e: &Event<'_>) -> String {
    let v = e.verdict;
    let blocked = v.blocks();
    let mut o = String::with_capacity(512);
    o.push_str("{\"type\":\"record\",\"timestamp\":\"");
    o.push_str(&flowguard_audit::time::now());
    o.push_str("\",\"direction\":\"c2s\",\"kind\":\"request\",\"method\":");
    string(&mut o, e.method);
    o.push_str(",\"id\":");
    // The id as the client sent it, when it is valid JSON (it was parsed already).
    match serde_json::from_str::<&serde_json::value::RawValue>(e.id) {
        Ok(raw) => o.push_str(raw.get()),
        Err(_) => o.push_str("null"),
    }
    o.push_str(",\"action\":");
    o.push_str(if blocked { "\"block\"" } else { "\"pass\"" });
    o.push_str(",\"decision\":\"");
    o.push_str(v.decision.as_str());
    o.push_str("\",\"enforced\":");
    o.push_str(if v.decision != Decision::Deny || blocked {
        "true"
    } else {
        "false"
    });
    o.push_str(",\"stage\":\"");
    o.push_str(v.stage.as_str());
    o.push_str("\",\"rule\":");
    string(&mut o, &v.rule);
    o.push_str(",\"reason\":");
    string(&mut o, &v.reason);
    o.push_str(",\"subject\":");
    match e.who.subject.as_deref() {
        Some(s) => string(&mut o, &crate::identity::loggable(s)),
        None => o.push_str("null"),
    }
    o.push_str(",\"client\":");
    opt(&mut o, e.who.client.as_deref());
    o.push_str(",\"auth_method\":\"");
    o.push_str(auth_method(e.who.method));
    o.push_str("\",\"roles\":[");
    for (i, r) in e.who.roles.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        string(&mut o, r);
    }
    o.push_str("],\"session\":");
    string(&mut o, e.session);
    o.push_str(",\"upstream\":");
    opt(&mut o, e.server);
    o.push_str(",\"tool_name\":");
    opt(&mut o, e.tool);
    o.push_str(",\"tool_args\":");
    match e.arguments {
        // Short, on one line, and naming nothing that looks like a secret: as sent (no string in
        // it can be over the cut, and the envelope was parsed already, so it is JSON).
        Arguments::Raw(r)
            if r.len() <= MAX_STRING
                && !r.bytes().any(|b| b == b'\n' || b == b'\r')
                && !secret_key(r) =>
        {
            o.push_str(r)
        }
        Arguments::Raw(r) => match serde_json::from_str::<Value>(r) {
            Ok(v) => arguments(&mut o, &v),
            Err(_) => o.push_str("null"),
        },
        Arguments::Value(v) => arguments(&mut o, v),
        Arguments::None => o.push_str("null"),
    }
    o.push_str(",\"request_id\":");
    opt(&mut o, crate::request_id::current().as_deref());
    o.push_str(",\"latency_us\":");
    o.push_str(&e.latency_us.to_string());
    labels(&mut o, e);
    o.push('}');
    o
}

/// `,"labels":{...}` from the configured claims and the request's `X-FlowGuard-Label-*`
/// headers (a header label does not replace a claim's); nothing when there are none. A label
/// whose name looks like a secret's keeps its name only.
fn labels(o: &mut String, e: &Event<'_>) {
    let headers = crate::request_id::labels();
    let claims = e.who.claims.as_deref();
    if headers.is_none() && (claims.is_none() || e.label_claims.is_empty()) {
        return;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut first = true;
    let mut add = |o: &mut String, name: &str, value: &str| {
        if seen.iter().any(|s| s == name) {
            return;
        }
        seen.push(name.to_string());
        o.push_str(if first { ",\"labels\":{" } else { "," });
        first = false;
        string(o, name);
        o.push(':');
        if secret_key(name) {
            string(o, "[REDACTED]");
        } else {
            let v: String = value.chars().take(MAX_STRING).collect();
            string(o, &v);
        }
    };
    if let Some(c) = claims {
        for path in e.label_claims {
            let mut at = c.get(path.split('.').next().unwrap_or(""));
            for part in path.split('.').skip(1) {
                at = at.and_then(|v| v.get(part));
            }
            let text = match at {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                Some(Value::Null) | None => continue,
                Some(v) => v.to_string(),
            };
            add(o, path, &text);
        }
    }
    for (name, value) in headers.iter().flat_map(|l| l.iter()) {
        add(o, name, value);
    }
    if !first {
        o.push('}');
    }
}

fn arguments(o: &mut String, a: &Value) {
    if needs_redaction(a, 0) {
        o.push_str(&redact(a).to_string());
        return;
    }
    let text = a.to_string();
    if text.len() > MAX_ARGS_BYTES {
        o.push_str(&json!({ "_omitted": format!("{} bytes", text.len()) }).to_string());
    } else {
        o.push_str(&text);
    }
}

fn auth_method(m: flowguard_guard::AuthMethod) -> &'static str {
    use flowguard_guard::AuthMethod::*;
    match m {
        Anonymous => "anonymous",
        AgentId => "agent_id",
        ApiKey => "api_key",
        Jwt => "jwt",
        Configured => "configured",
    }
}

fn opt(o: &mut String, s: Option<&str>) {
    match s {
        Some(s) => string(o, s),
        None => o.push_str("null"),
    }
}

/// A JSON string.
fn string(o: &mut String, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        o.push('"');
        o.push_str(s);
        o.push('"');
    } else {
        o.push_str(&Value::from(s).to_string());
    }
}

/// The session as the audit names it (the first 8 bytes of the SHA-256 of its id): enough to
/// group records, not enough to use it; made once per session.
pub fn session_id(session: &crate::session::Session) -> &str {
    if session.stateless {
        return "";
    }
    session.audit_id.get_or_init(|| {
        let d = ring::digest::digest(&ring::digest::SHA256, session.id.as_bytes());
        d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Whether [`redact`] would change anything (most arguments: no, and they are written as
/// they are).
fn needs_redaction(v: &Value, depth: usize) -> bool {
    match v {
        Value::Object(o) => {
            depth >= 16
                || o.iter()
                    .any(|(k, x)| secret_key(k) || needs_redaction(x, depth + 1))
        }
        Value::Array(a) => depth >= 16 || a.iter().any(|x| needs_redaction(x, depth + 1)),
        Value::String(s) => s.len() > MAX_STRING,
        _ => false,
    }
}

/// Arguments with values under secret-looking keys replaced, long strings cut, and the whole
/// replaced by its size when it is still too large.
pub fn redact(v: &Value) -> Value {
    fn walk(v: &Value, depth: usize) -> Value {
        match v {
            Value::Object(o) if depth < 16 => Value::Object(
                o.iter()
                    .map(|(k, x)| {
                        let x = if secret_key(k) {
                            Value::from("[REDACTED]")
                        } else {
                            walk(x, depth + 1)
                        };
                        (k.clone(), x)
                    })
                    .collect(),
            ),
            Value::Array(a) if depth < 16 => {
                Value::Array(a.iter().map(|x| walk(x, depth + 1)).collect())
            }
            Value::Object(_) | Value::Array(_) => Value::from("[too deep]"),
            Value::String(s) if s.len() > MAX_STRING => {
                let mut cut = MAX_STRING;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                Value::from(format!("{}…[{} bytes]", &s[..cut], s.len()))
            }
            other => other.clone(),
        }
    }
    let out = walk(v, 0);
    let size = out.to_string().len();
    if size > MAX_ARGS_BYTES {
        json!({ "_omitted": format!("{size} bytes") })
    } else {
        out
    }
}

fn secret_key(k: &str) -> bool {
    const SECRET: [&str; 12] = [
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "api-key",
        "authorization",
        "cookie",
        "credential",
        "private_key",
        "privatekey",
    ];
    let k = k.as_bytes();
    SECRET.iter().any(|s| {
        k.windows(s.len())
            .any(|w| w.eq_ignore_ascii_case(s.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_labels() {
        let mut claims = serde_json::Map::new();
        claims.insert("team".into(), json!("payments"));
        claims.insert("org".into(), json!({"project": ["a", "b"], "n": 7}));
        claims.insert("session_token".into(), json!("tok"));
        let mut who = Principal::anonymous();
        who.claims = Some(std::sync::Arc::new(claims));
        let v = Verdict::allow(flowguard_guard::Stage::Policy, "r");
        let paths = vec![
            "team".to_string(),
            "org.project".into(),
            "org.n".into(),
            "missing".into(),
            "session_token".into(),
        ];
        let line = record(&Event {
            method: "tools/call",
            id: "1",
            server: None,
            tool: None,
            arguments: Arguments::None,
            who: &who,
            session: "",
            verdict: &v,
            latency_us: 0,
            label_claims: &paths,
        });
        let rec: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            rec["labels"],
            json!({"team": "payments", "org.project": "a,b", "org.n": "7", "session_token": "[REDACTED]"})
        );
    }

    #[test]
    fn secrets_and_sizes_are_kept_out() {
        let v = json!({"path": "/etc/x", "api_key": "sk-123", "nested": {"Password": "p"}, "long": "a".repeat(600)});
        let r = redact(&v);
        assert_eq!(r["api_key"], "[REDACTED]");
        assert_eq!(r["nested"]["Password"], "[REDACTED]");
        assert_eq!(r["path"], "/etc/x");
        assert!(r["long"].as_str().unwrap().ends_with("…[600 bytes]"));
        let big: Vec<String> = (0..100)
            .map(|i| format!("value-{i}-{}", "x".repeat(100)))
            .collect();
        assert!(redact(&json!({ "items": big }))["_omitted"].is_string());
        assert!(!r.to_string().contains("sk-123"));
    }

    #[test]
    fn records_are_json_whatever_the_text() {
        let mut who = Principal::agent("a\"b");
        who.client = Some("c\nd\u{1}é".into());
        let v = Verdict::deny(flowguard_guard::Stage::Policy, "r\\\"", "why \"so\"\t");
        let args = json!({"message": "x\"y", "token": "t"});
        let line = record(&Event {
            method: "tools/call",
            id: "\"id-1\"",
            server: Some("s"),
            tool: Some("t\u{2028}"),
            arguments: Arguments::Value(&args),
            who: &who,
            session: "0011",
            verdict: &v,
            latency_us: 7,
            label_claims: &[],
        });
        let r: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(r["client"], "c\nd\u{1}é");
        assert_eq!(r["rule"], "r\\\"");
        assert_eq!(r["id"], "id-1");
        assert_eq!(r["tool_args"]["token"], "[REDACTED]");
        assert_eq!(r["tool_args"]["message"], "x\"y");
        assert_eq!(r["action"], "block");
        assert_eq!(r["enforced"], true);
        assert_eq!(r["auth_method"], "agent_id");
        let raw = |text: &str| {
            let v = Verdict::allow(flowguard_guard::Stage::Policy, "r");
            let line = record(&Event {
                method: "tools/call",
                id: "1",
                server: None,
                tool: None,
                arguments: Arguments::Raw(text),
                who: &Principal::anonymous(),
                session: "",
                verdict: &v,
                latency_us: 0,
                label_claims: &[],
            });
            assert!(!line.contains('\n'));
            serde_json::from_str::<Value>(&line).unwrap()["tool_args"].clone()
        };
        assert_eq!(raw(r#"{"message":"hi"}"#), json!({"message": "hi"}));
        assert_eq!(raw("{\n \"message\": \"hi\"\n}"), json!({"message": "hi"}));
        assert_eq!(raw(r#"{"Access_Token":"x"}"#)["Access_Token"], "[REDACTED]");
    }
}
