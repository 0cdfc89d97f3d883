//! Audit records copied to storage for queries (ROADMAP H1, I1). The file is the record of
//! truth: this copy runs on a thread of its own, after the file write, so a slow or absent
//! database never holds a request or the log. Batches that fail are kept and retried (up to
//! [`MAX_PENDING`] rows; past that the oldest are given up, counted and logged).

use flowguard_store::{AuditRow, Store};
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

const MAX_PENDING: usize = 200_000;
const RETRY: Duration = Duration::from_secs(1);
/// Records are gathered this long before one transaction stores them: a database's cost is
/// mostly per transaction (index pages written again each time), not per row.
const GATHER: Duration = Duration::from_millis(250);
const GATHER_MAX: usize = 20_000;

pub struct Feed {
    tx: SyncSender<(u64, Vec<String>)>,
    thread: std::thread::JoinHandle<()>,
    errors: Arc<AtomicU64>,
}

impl Feed {
    pub fn start(store: Arc<Store>, errors: Arc<AtomicU64>) -> Feed {
        let (tx, rx) = sync_channel(1024);
        let e = errors.clone();
        let thread = std::thread::Builder::new()
            .name("flowguard-audit-store".into())
            .spawn(move || run(store, rx, e))
            .expect("spawning the audit storage thread");
        Feed { tx, thread, errors }
    }

    /// Records `lines`, the first with sequence number `first`. Never blocks.
    pub fn send(&self, first: u64, lines: Vec<String>) {
        match self.tx.try_send((first, lines)) {
            Ok(()) => {}
            Err(TrySendError::Full((_, l))) | Err(TrySendError::Disconnected((_, l))) => {
                self.errors.fetch_add(l.len() as u64, Ordering::Relaxed);
                tracing::warn!(
                    "audit: storage is behind; {} record(s) are in the log file only",
                    l.len()
                );
            }
        }
    }

    /// Lets the thread store what it has (a few seconds at most), then ends it.
    pub fn close(self) {
        drop(self.tx);
        flowguard_export::join_by(
            self.thread,
            std::time::Instant::now() + Duration::from_secs(5),
        );
    }
}

fn run(store: Arc<Store>, rx: Receiver<(u64, Vec<String>)>, errors: Arc<AtomicU64>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut pending: Vec<AuditRow> = Vec::new();
    let mut failing = false;
    let mut open = true;
    let add = |pending: &mut Vec<AuditRow>, (first, lines): (u64, Vec<String>)| {
        pending.extend(
            lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| row(first + i as u64, l)),
        );
    };
    while open || !pending.is_empty() {
        if open {
            let got = if pending.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                // Waiting to retry: new records still join.
                rx.recv_timeout(RETRY)
            };
            match got {
                Ok(m) => add(&mut pending, m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
            let until = std::time::Instant::now() + GATHER;
            while open && pending.len() < GATHER_MAX {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(left) {
                    Ok(m) => add(&mut pending, m),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => open = false,
                }
            }
        }
        if pending.len() > MAX_PENDING {
            let cut = pending.len() - MAX_PENDING;
            pending.drain(..cut);
            errors.fetch_add(cut as u64, Ordering::Relaxed);
            tracing::error!(
                "audit: storage unreachable for long; {cut} record(s) are in the log file only"
            );
        }
        if pending.is_empty() {
            continue;
        }
        match store.add_audit(&pending) {
            Ok(()) => {
                if failing {
                    tracing::info!("audit: storage reachable again; records are copied to it");
                }
                failing = false;
                pending.clear();
            }
            Err(e) => {
                if !failing {
                    tracing::error!(
                        "audit: cannot copy records to storage (retrying; the log file has them): {e}"
                    );
                }
                failing = true;
                if !open {
                    errors.fetch_add(pending.len() as u64, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    timestamp: Option<&'a str>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    decision: Option<&'a str>,
    #[serde(borrow, default)]
    rule: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

/// The queryable columns of one record line; a line that does not parse is still stored.
fn row(seq: u64, line: String) -> AuditRow {
    let f: Option<Fields<'_>> = serde_json::from_str(&line).ok();
    let f = match f {
        Some(f) => f,
        None => {
            return AuditRow {
                seq: seq as i64,
                time_ms: flowguard_store::now_ms(),
                method: String::new(),
                decision: String::new(),
                rule: String::new(),
                record: line,
                ..Default::default()
            }
        }
    };
    let mut row = AuditRow {
        seq: seq as i64,
        time_ms: f
            .timestamp
            .and_then(flowguard_audit::time::parse_ms)
            .unwrap_or_else(flowguard_store::now_ms),
        request_id: f.request_id,
        subject: f.subject,
        client: f.client,
        server: f.upstream,
        tool: f.tool_name,
        method: f.method.unwrap_or_default().into_owned(),
        decision: f.decision.unwrap_or_default().to_string(),
        rule: f.rule.unwrap_or_default().into_owned(),
        record: String::new(),
    };
    row.record = line;
    row
}
