//! Webhook alerts: a thread of its own POSTs Slack-compatible JSON for the alerts that pass the
//! severity and rule filters. [`Alerter::send`] never blocks the request path.
//!
//! Repeats are folded: the first alert with a `dedup_key` is sent and opens a window; the same
//! key within the window is only counted; the first one after it is sent with `"suppressed": n`,
//! the number folded, and opens the next window. Delivery is retried (after 0.5 s, 1 s, 2 s)
//! when there was no answer or a 5xx or 429; other answers are final.
//!
//! The body (`text` is what Slack, Mattermost and most chat webhooks show):
//!
//! ```json
//! {"text":"[critical] Tool call denied (4 more suppressed)",
//!  "attachments":[{"color":"danger","fields":[{"title":"tool","value":"exec","short":true}]}],
//!  "flowguard":{"rule":"deny-exec","severity":"critical","title":"Tool call denied",
//!               "fields":{"tool":"exec"},"suppressed":4,"time":"2026-12-03T15:40:05.123Z"}}
//! ```

use crate::http::{describe, Transport};
use crate::json;
use crate::worker::{join_by, LastError, Stop};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

const BACKOFF: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// Past this many dedup keys, keys whose window has ended are forgotten (and, if all are still
/// in their window, the oldest), so a flood of distinct keys cannot grow the map.
const MAX_KEYS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// `info`, `warning` (or `warn`), `critical`; any case.
    pub fn parse(s: &str) -> Result<Severity, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            _ => Err(format!(
                "unknown alert severity {s:?}: use info, warning or critical"
            )),
        }
    }

    fn color(self) -> &'static str {
        match self {
            Severity::Info => "#439fe0",
            Severity::Warning => "warning",
            Severity::Critical => "danger",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// The id of the rule that fired.
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    /// Shown in order, as `key: value`.
    pub fields: Vec<(String, String)>,
    /// Alerts with the same key are folded within the window; an empty key is never folded.
    pub dedup_key: String,
}

impl Alert {
    /// An alert without fields, deduplicated by rule and title.
    pub fn new(rule: impl Into<String>, severity: Severity, title: impl Into<String>) -> Alert {
        let (rule, title) = (rule.into(), title.into());
        Alert {
            dedup_key: format!("{rule}\n{title}"),
            rule,
            severity,
            title,
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Alert {
        self.fields.push((key.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The webhook URL.
    pub url: String,
    /// Alerts below this are not sent.
    pub min_severity: Severity,
    /// Only these rule ids; `None` for all.
    pub rules: Option<Vec<String>>,
    /// The dedup window.
    pub window: Duration,
    /// Alerts waiting to be sent; past this they are dropped.
    pub max_queue: usize,
    /// For one request; also how long `shutdown` waits.
    pub timeout: Duration,
    /// Sent with every request.
    pub headers: Vec<(String, String)>,
}

impl Config {
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            min_severity: Severity::Info,
            rules: None,
            window: Duration::from_secs(60),
            max_queue: 256,
            timeout: Duration::from_secs(5),
            headers: Vec::new(),
        }
    }
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Alerts the webhook accepted (2xx).
    pub sent: u64,
    /// Alerts folded into an earlier one with the same key.
    pub suppressed: u64,
    /// Alerts dropped unsent: the queue was full, or shutdown's deadline came first.
    pub dropped: u64,
    /// Alerts refused, or still failing after their retries.
    pub failed: u64,
    /// Alerts below `min_severity` or from a rule not listed.
    pub filtered: u64,
    /// What went wrong last, for the operator's log.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    suppressed: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    filtered: AtomicU64,
    last_error: LastError,
    stop: Stop,
}

struct Queued {
    alert: Alert,
    suppressed: u64,
    at: SystemTime,
}

struct Seen {
    /// When the last alert with this key was queued; `None` if it was dropped.
    sent: Option<Instant>,
    /// Folded since.
    folded: u64,
}

/// Dropping it without [`Alerter::shutdown`] lets its thread send what is queued in the
/// background (with the usual retries) and then end.
pub struct Alerter {
    tx: Option<SyncSender<Queued>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    seen: Mutex<HashMap<String, Seen>>,
    min_severity: Severity,
    rules: Option<Vec<String>>,
    window: Duration,
    timeout: Duration,
}

impl Alerter {
    /// Starts the sender thread. Delivery errors show in [`Alerter::stats`].
    pub fn start(config: Config, transport: Arc<dyn Transport>) -> Alerter {
        let (tx, rx) = mpsc::sync_channel::<Queued>(config.max_queue.max(1));
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let (url, timeout, headers) = (config.url, config.timeout, config.headers);
        let spawned = std::thread::Builder::new()
            .name("flowguard-alerts".into())
            .spawn(move || {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                while let Ok(q) = rx.recv() {
                    deliver(&*transport, &url, &h, timeout, &q, &s);
                }
            });
        let (tx, thread) = match spawned {
            Ok(h) => (Some(tx), Some(h)),
            Err(e) => {
                shared.last_error.set(format!(
                    "could not start the alert thread ({e}); alerts are dropped"
                ));
                (None, None)
            }
        };
        Alerter {
            tx,
            thread,
            shared,
            seen: Mutex::new(HashMap::new()),
            min_severity: config.min_severity,
            rules: config.rules,
            window: config.window,
            timeout,
        }
    }

    /// Filters, folds repeats, and queues the alert. Never blocks on the network.
    pub fn send(&self, alert: Alert) {
        let s = &self.shared;
        let listed = |rules: &Vec<String>| rules.contains(&alert.rule);
        if alert.severity < self.min_severity || !self.rules.as_ref().is_none_or(listed) {
            s.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let key = (!alert.dedup_key.is_empty()).then(|| alert.dedup_key.clone());
        let mut suppressed = 0;
        if let Some(k) = &key {
            if let Some(e) = seen.get_mut(k) {
                if e.sent.is_some_and(|t| now.duration_since(t) < self.window) {
                    e.folded += 1;
                    s.suppressed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                suppressed = e.folded;
            } else if seen.len() >= MAX_KEYS {
                self.forget(&mut seen, now);
            }
        }
        let q = Queued {
            alert,
            suppressed,
            at: SystemTime::now(),
        };
        let queued = self.tx.as_ref().is_some_and(|tx| tx.try_send(q).is_ok());
        if !queued {
            s.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(k) = key {
            // A dropped alert opens no window, and what it would have carried waits for the next.
            let sent = queued.then_some(now);
            let folded = if queued { 0 } else { suppressed };
            seen.insert(k, Seen { sent, folded });
        }
    }

    /// Makes room for a new key: keys past their window go, else the oldest one.
    fn forget(&self, seen: &mut HashMap<String, Seen>, now: Instant) {
        seen.retain(|_, e| e.sent.is_some_and(|t| now.duration_since(t) < self.window));
        if seen.len() >= MAX_KEYS {
            let oldest = seen
                .iter()
                .min_by_key(|(_, e)| e.sent)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                seen.remove(&k);
            }
        }
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        Stats {
            sent: s.sent.load(Ordering::Relaxed),
            suppressed: s.suppressed.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            filtered: s.filtered.load(Ordering::Relaxed),
            last_error: s.last_error.get(),
        }
    }

    /// Sends what is queued and stops, waiting at most `timeout`. Returns the final stats.
    pub fn shutdown(mut self) -> Stats {
        let deadline = Instant::now() + self.timeout;
        self.shared.stop.begin(deadline);
        self.tx = None;
        if let Some(h) = self.thread.take() {
            if !join_by(h, deadline) {
                self.shared
                    .last_error
                    .set("shutdown: the alert thread was still sending at the deadline".into());
            }
        }
        self.stats()
    }
}

fn deliver(
    transport: &dyn Transport,
    url: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
    q: &Queued,
    s: &Shared,
) {
    let body = body(q);
    let mut attempt = 0;
    let error = loop {
        let Some(t) = s.stop.budget(timeout) else {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (error, retry) = match transport.post(url, "application/json", headers, &body, t) {
            Ok(200..=299) => {
                s.sent.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(status) => (
                format!("POST {}: the webhook answered {status}", describe(url)),
                status == 429 || status >= 500,
            ),
            Err(e) => (e, true),
        };
        if !retry || attempt == BACKOFF.len() || !s.stop.pause(BACKOFF[attempt]) {
            break error;
        }
        attempt += 1;
    };
    s.failed.fetch_add(1, Ordering::Relaxed);
    s.last_error.set(format!(
        "{error} ({} tries; alert {:?} from rule {:?} was not delivered)",
        attempt + 1,
        q.alert.title,
        q.alert.rule
    ));
}

/// The Slack-compatible JSON body.
fn body(q: &Queued) -> Vec<u8> {
    let a = &q.alert;
    let mut text = format!("[{}] {}", a.severity, a.title);
    if q.suppressed > 0 {
        text += &format!(" ({} more suppressed)", q.suppressed);
    }
    let mut o = String::with_capacity(256);
    o.push_str("{\"text\":");
    json::string(&mut o, &text);
    if !a.fields.is_empty() {
        o.push_str(",\"attachments\":[{\"color\":");
        json::string(&mut o, a.severity.color());
        o.push_str(",\"fields\":[");
        for (i, (k, v)) in a.fields.iter().enumerate() {
            o.push_str(if i == 0 {
                "{\"title\":"
            } else {
                ",{\"title\":"
            });
            json::string(&mut o, k);
            o.push_str(",\"value\":");
            json::string(&mut o, v);
            o.push_str(",\"short\":true}");
        }
        o.push_str("]}]");
    }
    o.push_str(",\"flowguard\":{\"rule\":");
    json::string(&mut o, &a.rule);
    o.push_str(",\"severity\":");
    json::string(&mut o, a.severity.as_str());
    o.push_str(",\"title\":");
    json::string(&mut o, &a.title);
    o.push_str(",\"fields\":{");
    for (i, (k, v)) in a.fields.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        json::string(&mut o, k);
        o.push(':');
        json::string(&mut o, v);
    }
    o.push_str(&format!(
        "}},\"suppressed\":{},\"time\":\"{}\"}}}}",
        q.suppressed,
        json::rfc3339(q.at)
    ));
    o.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::PlainHttp;
    use crate::testserver::{Reply, Server};
    use std::time::UNIX_EPOCH;

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn the_body_is_the_documented_json() {
        let q = Queued {
            alert: Alert::new("deny-exec", Severity::Critical, "Tool call \"denied\"")
                .field("tool", "exec")
                .field("why", "line\nbreak\\"),
            suppressed: 4,
            at: UNIX_EPOCH + Duration::from_millis(1_796_312_405_123),
        };
        assert_eq!(
            text(&body(&q)),
            concat!(
                r#"{"text":"[critical] Tool call \"denied\" (4 more suppressed)","#,
                r#""attachments":[{"color":"danger","fields":["#,
                r#"{"title":"tool","value":"exec","short":true},"#,
                r#"{"title":"why","value":"line\nbreak\\","short":true}]}],"#,
                r#""flowguard":{"rule":"deny-exec","severity":"critical","#,
                r#""title":"Tool call \"denied\"","fields":{"tool":"exec","why":"line\nbreak\\"},"#,
                r#""suppressed":4,"time":"2026-12-03T15:40:05.123Z"}}"#
            )
        );
        let q = Queued {
            alert: Alert::new("r", Severity::Info, "t"),
            suppressed: 0,
            at: UNIX_EPOCH,
        };
        assert_eq!(
            text(&body(&q)),
            r#"{"text":"[info] t","flowguard":{"rule":"r","severity":"info","title":"t","fields":{},"suppressed":0,"time":"1970-01-01T00:00:00.000Z"}}"#
        );
    }

    #[test]
    fn severities_are_ordered_and_parse() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
        assert_eq!(Severity::parse("WARN"), Ok(Severity::Warning));
        assert!(Severity::parse("fatal")
            .unwrap_err()
            .contains("info, warning or critical"));
    }

    #[test]
    fn repeats_within_the_window_are_folded() {
        let srv = Server::start(|_| Reply::Status(200));
        let mut c = Config::new(srv.url("/hook"));
        c.window = Duration::from_secs(1);
        let al = Alerter::start(c, Arc::new(PlainHttp));
        let opened = Instant::now();
        for i in 0..5 {
            al.send(Alert::new("r1", Severity::Warning, "same").field("n", i.to_string()));
        }
        assert!(srv.wait_for(Duration::from_secs(5), |r| r.len() == 1));
        let first = text(&srv.requests()[0].body);
        assert!(
            first.contains(r#""suppressed":0"#) && first.contains(r#""n":"0""#),
            "{first}"
        );
        assert_eq!(al.stats().suppressed, 4);
        // The window runs from the first alert; wait it out, then the next one goes.
        std::thread::sleep(Duration::from_millis(1050).saturating_sub(opened.elapsed()));
        al.send(Alert::new("r1", Severity::Warning, "same").field("n", "5"));
        assert!(srv.wait_for(Duration::from_secs(5), |r| r.len() == 2));
        let second = text(&srv.requests()[1].body);
        assert!(second.contains(r#""suppressed":4"#), "{second}");
        assert!(second.contains("(4 more suppressed)") && second.contains(r#""n":"5""#));
        let st = al.shutdown();
        assert_eq!(
            (st.sent, st.suppressed, st.dropped, st.failed),
            (2, 4, 0, 0)
        );
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    }

    #[test]
    fn filters_by_severity_and_rule() {
        let srv = Server::start(|_| Reply::Status(200));
        let mut c = Config::new(srv.url("/hook"));
        c.min_severity = Severity::Warning;
        c.rules = Some(vec!["wanted".into()]);
        let al = Alerter::start(c, Arc::new(PlainHttp));
        al.send(Alert::new("wanted", Severity::Info, "too low"));
        al.send(Alert::new("other", Severity::Critical, "not listed"));
        al.send(Alert::new("wanted", Severity::Critical, "yes"));
        let st = al.shutdown();
        assert_eq!((st.sent, st.filtered), (1, 2));
        assert!(text(&srv.requests()[0].body).contains("[critical] yes"));
    }

    #[test]
    fn server_errors_are_retried_until_delivered() {
        let srv = Server::start(|n| Reply::Status(if n < 2 { 500 } else { 200 }));
        let al = Alerter::start(Config::new(srv.url("/hook")), Arc::new(PlainHttp));
        let t = Instant::now();
        al.send(Alert::new("r", Severity::Critical, "x"));
        assert!(srv.wait_for(Duration::from_secs(5), |r| r.len() == 3));
        // Two pauses: 0.5 s and 1 s.
        assert!(t.elapsed() >= Duration::from_millis(1500));
        let st = al.shutdown();
        assert_eq!((st.sent, st.failed), (1, 0));
        let reqs = srv.requests();
        assert_eq!(reqs.len(), 3);
        assert!(
            reqs.iter().all(|r| r.body == reqs[0].body),
            "the same alert each time"
        );
    }

    #[test]
    fn client_errors_are_not_retried() {
        let srv = Server::start(|_| Reply::Status(404));
        let url = srv.url("/hook?token=secret");
        let al = Alerter::start(Config::new(url), Arc::new(PlainHttp));
        al.send(Alert::new("r", Severity::Critical, "x"));
        let st = al.shutdown();
        assert_eq!((st.sent, st.failed), (0, 1));
        assert_eq!(srv.requests().len(), 1);
        let e = st.last_error.unwrap();
        assert!(e.contains("answered 404") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn a_full_queue_drops_and_never_blocks() {
        let srv = Server::start(|_| Reply::Stall(Duration::from_secs(20)));
        let mut c = Config::new(srv.url("/hook"));
        c.timeout = Duration::from_millis(300);
        let al = Alerter::start(c, Arc::new(PlainHttp));
        for i in 0..10_000 {
            let mut a = Alert::new("r", Severity::Critical, "flood");
            a.dedup_key = i.to_string();
            al.send(a);
        }
        let st = al.stats();
        assert!(st.dropped > 0 && st.suppressed == 0, "{st:?}");
        assert!(al.seen.lock().unwrap().len() <= MAX_KEYS);
        let t = Instant::now();
        al.shutdown();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn a_dropped_alert_opens_no_window() {
        let mut c = Config::new("http://127.0.0.1:9/");
        c.max_queue = 1;
        c.window = Duration::from_secs(60);
        let mut al = Alerter::start(c, Arc::new(PlainHttp));
        // Stop the sender so the queue stays full.
        al.tx = None;
        al.send(Alert::new("r", Severity::Info, "x"));
        al.send(Alert::new("r", Severity::Info, "x"));
        let st = al.stats();
        assert_eq!((st.dropped, st.suppressed), (2, 0));
    }

    struct Accept;

    impl Transport for Accept {
        fn post(
            &self,
            _: &str,
            _: &str,
            _: &[(&str, &str)],
            _: &[u8],
            _: Duration,
        ) -> Result<u16, String> {
            Ok(200)
        }
    }

    #[test]
    fn dedup_keys_are_bounded() {
        let mut c = Config::new("http://127.0.0.1:9/");
        c.max_queue = 2 * MAX_KEYS;
        let al = Alerter::start(c, Arc::new(Accept));
        for i in 0..(MAX_KEYS + 10) {
            let mut a = Alert::new("r", Severity::Info, "x");
            a.dedup_key = i.to_string();
            al.send(a);
        }
        // All still in their window: the oldest made room.
        assert_eq!(al.seen.lock().unwrap().len(), MAX_KEYS);
        assert!(!al.seen.lock().unwrap().contains_key("0"));
        let mut a = Alert::new("r", Severity::Info, "x");
        a.dedup_key = (MAX_KEYS + 9).to_string();
        al.send(a);
        let st = al.shutdown();
        assert_eq!(
            (st.sent, st.suppressed, st.dropped),
            (MAX_KEYS as u64 + 10, 1, 0)
        );
    }
}
