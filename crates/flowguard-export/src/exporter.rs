//! The span exporter: a thread of its own that batches finished spans and POSTs them to an
//! OTLP/HTTP collector. [`SpanExporter::export`] never blocks the request path: when the
//! bounded queue is full the span is dropped and counted.
//!
//! The queue is a buffer under a mutex that the thread empties every [`POLL`]: the request path
//! never wakes the thread (a wake-up per span cost more CPU than the span itself).
//!
//! A batch goes when it reaches `max_batch` spans or `interval` after its first span came. A
//! batch that fails is tried up to three more times (after 100 ms, 400 ms, 1.6 s) when the
//! failure may pass (no answer, or 429/502/503/504, the codes OTLP/HTTP calls retryable);
//! then it is dropped and counted in `failed_batches`.

use crate::http::{describe, Transport};
use crate::otlp;
use crate::span::Span;
use crate::worker::{join_by, LastError, Stop};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the thread takes what is queued.
const POLL: Duration = Duration::from_millis(20);

const BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1600),
];

#[derive(Debug, Clone)]
pub struct Config {
    /// The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// Resource attribute `service.name`.
    pub service_name: String,
    /// Resource attribute `service.version` (left out when empty).
    pub service_version: String,
    /// Spans waiting to be sent; past this they are dropped.
    pub max_queue: usize,
    /// Spans per request.
    pub max_batch: usize,
    /// A partial batch goes this long after the last request.
    pub interval: Duration,
    /// For one request; also how long `shutdown` waits.
    pub timeout: Duration,
    /// Sent with every request (an API key, say).
    pub headers: Vec<(String, String)>,
}

impl Config {
    pub fn new(endpoint: impl Into<String>, service_name: impl Into<String>) -> Config {
        Config {
            endpoint: endpoint.into(),
            service_name: service_name.into(),
            service_version: String::new(),
            max_queue: 16384,
            max_batch: 512,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            headers: Vec::new(),
        }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans dropped unsent: the queue was full, or shutdown's deadline came first.
    pub dropped: u64,
    /// Batches given up on after their retries (or refused outright, as a 400 is).
    pub failed_batches: u64,
    /// What went wrong last, for the operator's log.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Vec<Span>>,
    max_queue: usize,
    /// No more spans come: send what is queued and end.
    closed: AtomicBool,
    exported: AtomicU64,
    dropped: AtomicU64,
    failed_batches: AtomicU64,
    last_error: LastError,
    stop: Stop,
}

/// Dropping it without [`SpanExporter::shutdown`] lets its thread send what is queued in the
/// background (with the usual retries) and then end.
pub struct SpanExporter {
    running: bool,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    timeout: Duration,
}

impl SpanExporter {
    /// Starts the exporter thread. Nothing is checked against the collector here: delivery
    /// errors show in [`SpanExporter::stats`].
    pub fn start(mut config: Config, transport: Arc<dyn Transport>) -> SpanExporter {
        config.max_queue = config.max_queue.max(1);
        config.max_batch = config.max_batch.max(1);
        let shared = Arc::new(Shared {
            max_queue: config.max_queue,
            ..Shared::default()
        });
        let timeout = config.timeout;
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("flowguard-otlp".into())
            .spawn(move || run(config, &*transport, &s));
        let thread = match spawned {
            Ok(h) => Some(h),
            Err(e) => {
                shared.last_error.set(format!(
                    "could not start the span exporter thread ({e}); spans are dropped"
                ));
                None
            }
        };
        SpanExporter {
            running: thread.is_some(),
            thread,
            shared,
            timeout,
        }
    }

    /// Queues a finished span. Never blocks: a full queue drops it (counted).
    pub fn export(&self, span: Span) {
        if self.running {
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() < self.shared.max_queue {
                q.push(span);
                return;
            }
        }
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            exported: s.exported.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
            last_error: s.last_error.get(),
        }
    }

    /// Sends what is queued and stops, waiting at most `timeout` (what is still unsent then is
    /// dropped, and a request still out is left to finish on its own). Returns the final stats.
    pub fn shutdown(mut self) -> Stats {
        let deadline = Instant::now() + self.timeout;
        self.shared.closed.store(true, Ordering::Release);
        self.shared.stop.begin(deadline);
        self.running = false;
        if let Some(h) = self.thread.take() {
            if !join_by(h, deadline) {
                self.shared
                    .last_error
                    .set("shutdown: the exporter thread was still sending at the deadline".into());
            }
        }
        self.stats()
    }
}

impl Drop for SpanExporter {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.stop.wake();
    }
}

fn run(config: Config, transport: &dyn Transport, shared: &Shared) {
    let headers: Vec<(&str, &str)> = config
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut batch: Vec<Span> = Vec::new();
    let mut spare: Vec<Span> = Vec::new();
    let mut due = Instant::now() + config.interval;
    loop {
        let closed = shared.closed.load(Ordering::Acquire);
        std::mem::swap(
            &mut *shared.queue.lock().unwrap_or_else(|p| p.into_inner()),
            &mut spare,
        );
        batch.append(&mut spare);
        while batch.len() >= config.max_batch {
            let rest = batch.split_off(config.max_batch);
            send(&config, transport, &headers, &batch, shared);
            batch = rest;
            due = Instant::now() + config.interval;
        }
        if !batch.is_empty() && (closed || Instant::now() >= due) {
            send(&config, transport, &headers, &batch, shared);
            batch.clear();
        }
        if closed {
            return;
        }
        if batch.is_empty() {
            due = Instant::now() + config.interval;
        }
        shared.stop.nap(POLL);
    }
}

fn send(
    config: &Config,
    transport: &dyn Transport,
    headers: &[(&str, &str)],
    batch: &[Span],
    shared: &Shared,
) {
    let n = batch.len() as u64;
    let body = otlp::encode(batch, &config.service_name, &config.service_version);
    let mut attempt = 0;
    let error = loop {
        let Some(timeout) = shared.stop.budget(config.timeout) else {
            shared.dropped.fetch_add(n, Ordering::Relaxed);
            return;
        };
        let (error, retry) = match transport.post(
            &config.endpoint,
            "application/x-protobuf",
            headers,
            &body,
            timeout,
        ) {
            Ok(200..=299) => {
                shared.exported.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Ok(status) => (
                format!(
                    "POST {}: the collector answered {status}",
                    describe(&config.endpoint)
                ),
                matches!(status, 429 | 502 | 503 | 504),
            ),
            Err(e) => (e, true),
        };
        if !retry || attempt == BACKOFF.len() || !shared.stop.pause(BACKOFF[attempt]) {
            break error;
        }
        attempt += 1;
    };
    shared.failed_batches.fetch_add(1, Ordering::Relaxed);
    shared.last_error.set(format!(
        "{error} ({} tries; a batch of {n} spans was dropped)",
        attempt + 1
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::PlainHttp;
    use crate::otlp::pb;
    use crate::span::Kind;
    use crate::testserver::{Reply, Server};
    use std::sync::Mutex;

    fn spans(n: usize) -> impl Iterator<Item = Span> {
        (0..n).map(|i| {
            let mut s = Span::start("tools/call", Kind::Server, None);
            s.set("i", i as i64);
            s.end();
            s
        })
    }

    #[test]
    fn delivers_every_span_in_batches() {
        let srv = Server::start(|_| Reply::Status(200));
        let mut c = Config::new(srv.url("/v1/traces"), "flowguard-test");
        c.max_batch = 10;
        c.interval = Duration::from_secs(1);
        c.headers = vec![("x-api-key".into(), "k".into())];
        let ex = SpanExporter::start(c, Arc::new(PlainHttp));
        for s in spans(25) {
            ex.export(s);
        }
        // Two full batches go at once, the last five after the interval.
        let count = |r: &[crate::testserver::Request]| -> usize {
            r.iter().map(|r| pb::count_spans(&r.body)).sum()
        };
        assert!(srv.wait_for(Duration::from_secs(10), |r| count(r) == 25));
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 3);
        let sizes: Vec<_> = reqs.iter().map(|r| pb::count_spans(&r.body)).collect();
        assert_eq!(sizes, [10, 10, 5]);
        for r in &reqs {
            assert_eq!(r.line, "POST /v1/traces HTTP/1.1");
            assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
            assert_eq!(r.header("x-api-key"), Some("k"));
        }
        let st = ex.shutdown();
        assert_eq!((st.exported, st.dropped, st.failed_batches), (25, 0, 0));
    }

    #[test]
    fn shutdown_flushes_what_is_queued() {
        let srv = Server::start(|_| Reply::Status(200));
        let mut c = Config::new(srv.url("/v1/traces"), "flowguard-test");
        c.interval = Duration::from_secs(60);
        let ex = SpanExporter::start(c, Arc::new(PlainHttp));
        for s in spans(7) {
            ex.export(s);
        }
        let t = Instant::now();
        let st = ex.shutdown();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(st.exported, 7);
        assert_eq!(pb::count_spans(&srv.requests()[0].body), 7);
    }

    /// A transport that answers from a script and records when it was called.
    struct Scripted {
        answers: Mutex<Vec<Result<u16, String>>>,
        calls: Mutex<Vec<Instant>>,
    }

    impl Transport for Scripted {
        fn post(
            &self,
            _: &str,
            _: &str,
            _: &[(&str, &str)],
            _: &[u8],
            _: Duration,
        ) -> Result<u16, String> {
            self.calls.lock().unwrap().push(Instant::now());
            let mut a = self.answers.lock().unwrap();
            if a.is_empty() {
                Ok(200)
            } else {
                a.remove(0)
            }
        }
    }

    fn scripted(answers: Vec<Result<u16, String>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answers: Mutex::new(answers),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn config() -> Config {
        let mut c = Config::new("http://127.0.0.1:9/v1/traces?key=secret", "t");
        c.max_batch = 3;
        c
    }

    #[test]
    fn retries_with_backoff_then_gives_up() {
        let t = scripted(vec![Err("no".into()), Ok(503), Ok(429), Ok(502)]);
        let ex = SpanExporter::start(config(), t.clone());
        for s in spans(3) {
            ex.export(s);
        }
        let st = ex.shutdown();
        // The shutdown deadline (5 s) leaves room for all four tries: 0.1 + 0.4 + 1.6 s.
        assert_eq!((st.exported, st.failed_batches), (0, 1));
        let e = st.last_error.unwrap();
        assert!(e.contains("answered 502") && e.contains("4 tries"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let calls = t.calls.lock().unwrap();
        let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps.len(), 3);
        for (gap, want) in gaps.iter().zip(BACKOFF) {
            assert!(
                *gap >= want && *gap < want + Duration::from_millis(500),
                "{gaps:?}"
            );
        }
    }

    #[test]
    fn a_retry_that_succeeds_counts_as_exported() {
        let t = scripted(vec![Ok(503)]);
        let ex = SpanExporter::start(config(), t.clone());
        for s in spans(3) {
            ex.export(s);
        }
        let st = ex.shutdown();
        assert_eq!(
            (st.exported, st.failed_batches, st.last_error),
            (3, 0, None)
        );
        assert_eq!(t.calls.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_bad_request_is_not_retried() {
        let t = scripted(vec![Ok(400)]);
        let ex = SpanExporter::start(config(), t.clone());
        for s in spans(3) {
            ex.export(s);
        }
        let st = ex.shutdown();
        assert_eq!((st.exported, st.failed_batches), (0, 1));
        assert_eq!(t.calls.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_full_queue_drops_without_blocking() {
        let srv = Server::start(|_| Reply::Stall(Duration::from_secs(20)));
        let mut c = Config::new(srv.url("/v1/traces"), "t");
        c.max_queue = 16;
        c.max_batch = 4;
        c.timeout = Duration::from_millis(300);
        let ex = SpanExporter::start(c, Arc::new(PlainHttp));
        for s in spans(2000) {
            ex.export(s);
        }
        assert!(ex.stats().dropped > 0);
        let t = Instant::now();
        let st = ex.shutdown();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(st.exported, 0);
    }
}
