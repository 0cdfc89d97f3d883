//! The audit as the gateway runs it (ROADMAP H1): a record per verdict of the pipeline, built on
//! the request path and written by a thread of its own (`flowguard-audit` seals, checkpoints
//! and rotates). The queue is bounded; when it is full the configured choice applies: the
//! request waits, or it fails closed. A record is never dropped: a failed write is retried with
//! the next batch and counted.

use flowguard_guard::{Decision, Principal, Verdict};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Arguments longer than this (as JSON) are replaced by their size.
const MAX_ARGS_BYTES: usize = 4096;
/// Strings inside arguments are cut here.
const MAX_STRING: usize = 256;
const BATCH: usize = 4096;

pub struct Auditor {
    tx: Mutex<Option<mpsc::Sender<String>>>,
    fail_closed: bool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    pub written: Arc<AtomicU64>,
    pub write_errors: Arc<AtomicU64>,
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
    ) -> Result<Arc<Auditor>, flowguard_audit::log::AuditError> {
        let mut log = flowguard_audit::Log::open(opts)?;
        for n in std::mem::take(&mut log.notes) {
            tracing::warn!("audit: {n}");
        }
        let (tx, rx) = mpsc::channel::<String>(queue.max(1));
        let written = Arc::new(AtomicU64::new(0));
        let write_errors = Arc::new(AtomicU64::new(0));
        let (w, e) = (written.clone(), write_errors.clone());
        let thread = std::thread::Builder::new()
            .name("flowguard-audit".into())
            .spawn(move || writer(log, rx, w, e))
            .map_err(|e| flowguard_audit::log::AuditError::Io {
                path: "audit writer thread".into(),
                why: e.to_string(),
            })?;
        Ok(Arc::new(Auditor {
            tx: Mutex::new(Some(tx)),
            fail_closed,
            thread: Mutex::new(Some(thread)),
            written,
            write_errors,
        }))
    }

    /// Queues a record: waits for room, or refuses when the audit fails closed.
    pub async fn submit(&self, line: String) -> Result<(), Full> {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
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

    /// Writes what is queued and the shutdown checkpoint.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
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
        while open || !batch.is_empty() {
            if open {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(line) => batch.push(line),
                        None => open = false,
                    },
                    _ = tick.tick() => {}
                }
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(line) => batch.push(line),
                        Err(_) => break,
                    }
                }
            }
            match log.append(&batch) {
                Ok(()) => {
                    written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    batch.clear();
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
    if let Err(e) = log.close() {
        tracing::error!("audit: the shutdown checkpoint failed: {e}");
    }
}

/// Refuses an unauthenticated request (guard/oauth.rs) and records the verdict.
pub async fn refused(
    gw: &crate::gateway::Gateway,
    scope: &crate::session::Scope,
    e: &crate::guard::AuthError,
    method: &str,
) -> axum::response::Response {
    if let Some(a) = gw.audit.get() {
        use crate::guard::AuthError;
        let rule = match e {
            AuthError::Missing => "(no-credential)",
            AuthError::Invalid(_) => "(invalid-credential)",
            AuthError::Scope(_) => "(insufficient-scope)",
        };
        let v = Verdict::deny(flowguard_guard::Stage::Authenticate, rule, e.message());
        let line = record(&Event {
            method,
            id: "null",
            server: None,
            tool: None,
            arguments: None,
            who: &Principal::anonymous(),
            session: "",
            verdict: &v,
            latency_us: 0,
        });
        // Refused either way; a full queue under `on_full = "fail"` changes nothing here.
        let _ = a.submit(line).await;
    }
    crate::guard::refuse(gw, scope, e)
}

/// What one verdict is about.
pub struct Event<'a> {
    pub method: &'a str,
    /// The JSON-RPC id as sent.
    pub id: &'a str,
    pub server: Option<&'a str>,
    pub tool: Option<&'a str>,
    pub arguments: Option<&'a Value>,
    pub who: &'a Principal,
    pub session: &'a str,
    pub verdict: &'a Verdict,
    pub latency_us: u64,
}

/// The record's JSON (field names as mcpgw's where they mean the same).
pub fn record(e: &Event<'_>) -> String {
    let v = e.verdict;
    let blocked = v.blocks();
    let mut m = Map::new();
    m.insert("type".into(), "record".into());
    m.insert("timestamp".into(), flowguard_audit::time::now().into());
    m.insert("direction".into(), "c2s".into());
    m.insert("kind".into(), "request".into());
    m.insert("method".into(), e.method.into());
    m.insert(
        "id".into(),
        serde_json::from_str(e.id).unwrap_or(Value::Null),
    );
    m.insert(
        "action".into(),
        if blocked { "block" } else { "pass" }.into(),
    );
    m.insert("decision".into(), v.decision.as_str().into());
    m.insert(
        "enforced".into(),
        (v.decision != Decision::Deny || blocked).into(),
    );
    m.insert("stage".into(), v.stage.as_str().into());
    m.insert("rule".into(), (*v.rule).into());
    m.insert("reason".into(), v.reason.clone().into());
    m.insert(
        "subject".into(),
        e.who
            .subject
            .as_deref()
            .map(crate::identity::loggable)
            .into(),
    );
    m.insert("client".into(), e.who.client.as_deref().into());
    m.insert(
        "auth_method".into(),
        json!(format!("{:?}", e.who.method).to_lowercase()),
    );
    m.insert(
        "roles".into(),
        e.who.roles.iter().map(|r| Value::from(&**r)).collect(),
    );
    m.insert("session".into(), session_hash(e.session).into());
    m.insert("upstream".into(), e.server.into());
    m.insert("tool_name".into(), e.tool.into());
    m.insert(
        "tool_args".into(),
        e.arguments.map(redact).unwrap_or(Value::Null),
    );
    m.insert("latency_us".into(), e.latency_us.into());
    Value::Object(m).to_string()
}

/// A session id as the audit shows it: enough to group records, not enough to use it.
fn session_hash(id: &str) -> String {
    if id.is_empty() {
        return String::new();
    }
    let d = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
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
    let k = k.to_ascii_lowercase();
    [
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
    ]
    .iter()
    .any(|s| k.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
