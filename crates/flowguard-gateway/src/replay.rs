//! Resumable SSE streams (Streamable HTTP, 2025-03-26 and later). Every event a session's
//! streams carry gets an id `<stream>.<seq>`; stream 0 is the session's GET stream, and each
//! POST answered with a stream gets the next number. The last events of every stream are kept,
//! so a client whose connection broke can `GET` with `Last-Event-ID` and receive the rest of
//! that one stream, nothing of the others (MCP transports spec, "Resumability and
//! Redelivery"). Kept per session: at most [`MAX_STREAMS`] streams of at most [`MAX_EVENTS`]
//! events and [`MAX_BYTES`] bytes each; older events are dropped, and a resumption that finds
//! its events gone says so in the log.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub const MAX_STREAMS: usize = 16;
pub const MAX_EVENTS: usize = 128;
pub const MAX_BYTES: usize = 1 << 20;

/// The stream number of a session's GET stream.
pub const GET_STREAM: u32 = 0;

/// One stream's kept events.
struct Log {
    stream: u32,
    /// (sequence number, the JSON-RPC message).
    events: VecDeque<(u64, Bytes)>,
    bytes: usize,
    next_seq: u64,
    /// The stream's final message was recorded: a follower stops after it.
    ended: bool,
    changed: Arc<Notify>,
}

impl Log {
    fn new(stream: u32) -> Self {
        Log {
            stream,
            events: VecDeque::new(),
            bytes: 0,
            // 0 is the priming event's sequence number: resuming from it replays everything.
            next_seq: 1,
            ended: false,
            changed: Arc::new(Notify::new()),
        }
    }
}

#[derive(Default)]
pub struct Replay {
    logs: Mutex<Logs>,
}

#[derive(Default)]
struct Logs {
    next_stream: u32,
    logs: VecDeque<Log>,
}

/// Where a follower is: the events it has not seen yet, whether the stream is over, and what to
/// wait on for more.
pub struct Catchup {
    pub events: Vec<(u64, Bytes)>,
    pub ended: bool,
    pub changed: Arc<Notify>,
    /// Events after the position were dropped before the client came back.
    pub lost: bool,
}

/// An event id: `<stream>.<seq>`.
pub fn event_id(stream: u32, seq: u64) -> String {
    format!("{stream}.{seq}")
}

/// Parses a `Last-Event-ID` this gateway issued.
pub fn parse_event_id(id: &str) -> Option<(u32, u64)> {
    let (s, n) = id.trim().split_once('.')?;
    Some((s.parse().ok()?, n.parse().ok()?))
}

impl Replay {
    fn lock(&self) -> std::sync::MutexGuard<'_, Logs> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new POST stream's number.
    pub fn open(&self) -> u32 {
        let mut l = self.lock();
        // Starts above GET_STREAM (0).
        l.next_stream += 1;
        let stream = l.next_stream;
        l.insert(Log::new(stream));
        stream
    }

    /// Keeps `msg` as the next event of `stream` and returns its sequence number; `last` marks
    /// the stream's final message.
    pub fn record(&self, stream: u32, msg: &Bytes, last: bool) -> u64 {
        let mut l = self.lock();
        if l.find(stream).is_none() {
            l.insert(Log::new(stream));
        }
        let log = l.find(stream).expect("inserted above");
        let seq = log.next_seq;
        log.next_seq += 1;
        log.bytes += msg.len();
        log.events.push_back((seq, msg.clone()));
        while log.events.len() > MAX_EVENTS || (log.bytes > MAX_BYTES && log.events.len() > 1) {
            if let Some((_, old)) = log.events.pop_front() {
                log.bytes -= old.len();
            }
        }
        log.ended |= last;
        log.changed.notify_waiters();
        seq
    }

    /// The events of `stream` after `after`, or `None` when the stream is unknown (never
    /// issued, or forgotten).
    pub fn catch_up(&self, stream: u32, after: u64) -> Option<Catchup> {
        let mut l = self.lock();
        let log = l.find(stream)?;
        let first_kept = log.events.front().map_or(log.next_seq, |(s, _)| *s);
        Some(Catchup {
            events: log
                .events
                .iter()
                .filter(|(s, _)| *s > after)
                .cloned()
                .collect(),
            ended: log.ended,
            changed: log.changed.clone(),
            lost: first_kept > after + 1,
        })
    }

    /// The next sequence number of `stream`: where a new follower of it starts.
    pub fn position(&self, stream: u32) -> u64 {
        let mut l = self.lock();
        l.find(stream).map_or(0, |log| log.next_seq - 1)
    }
}

impl Logs {
    fn find(&mut self, stream: u32) -> Option<&mut Log> {
        self.logs.iter_mut().find(|l| l.stream == stream)
    }

    /// Adds a log, forgetting the oldest ended one (else the oldest) beyond the limit. The GET
    /// stream's log is never forgotten while there are others.
    fn insert(&mut self, log: Log) {
        if self.logs.len() >= MAX_STREAMS {
            let victim = self
                .logs
                .iter()
                .position(|l| l.ended && l.stream != GET_STREAM)
                .or_else(|| self.logs.iter().position(|l| l.stream != GET_STREAM));
            if let Some(i) = victim {
                if let Some(old) = self.logs.remove(i) {
                    old.changed.notify_waiters();
                }
            }
        }
        self.logs.push_back(log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_gets_only_its_streams_events_after_its_position() {
        let r = Replay::default();
        let a = r.open();
        let b = r.open();
        assert_ne!(a, b);
        r.record(a, &Bytes::from_static(b"a1"), false);
        r.record(b, &Bytes::from_static(b"b1"), false);
        let s2 = r.record(a, &Bytes::from_static(b"a2"), true);
        let c = r.catch_up(a, 1).unwrap();
        assert_eq!(c.events, vec![(s2, Bytes::from_static(b"a2"))]);
        assert!(c.ended && !c.lost);
        assert!(r.catch_up(99, 0).is_none());
    }

    #[test]
    fn kept_events_are_bounded_and_a_gap_is_reported() {
        let r = Replay::default();
        let s = r.open();
        for _ in 0..MAX_EVENTS + 10 {
            r.record(s, &Bytes::from_static(b"x"), false);
        }
        let c = r.catch_up(s, 0).unwrap();
        assert_eq!(c.events.len(), MAX_EVENTS);
        assert!(c.lost);
    }

    #[test]
    fn ended_streams_are_forgotten_first_and_the_get_stream_is_kept() {
        let r = Replay::default();
        r.record(GET_STREAM, &Bytes::from_static(b"g"), false);
        let first = r.open();
        r.record(first, &Bytes::from_static(b"done"), true);
        let open = r.open();
        r.record(open, &Bytes::from_static(b"still going"), false);
        for _ in 0..MAX_STREAMS * 2 {
            let s = r.open();
            r.record(s, &Bytes::from_static(b"m"), true);
        }
        assert!(r.catch_up(first, 0).is_none(), "ended streams go first");
        assert!(
            r.catch_up(open, 0).is_some(),
            "a stream still going is kept"
        );
        assert!(r.catch_up(GET_STREAM, 0).is_some());
    }

    #[test]
    fn event_ids_round_trip() {
        assert_eq!(parse_event_id(&event_id(3, 17)), Some((3, 17)));
        assert_eq!(parse_event_id("nonsense"), None);
        assert_eq!(parse_event_id("1.x"), None);
    }
}
