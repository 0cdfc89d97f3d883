//! A finished span as the exporter takes it: plain data, built by the gateway around a request
//! and handed over whole when it ends.

use crate::traceparent::{self, Context, SpanId, TraceId, SAMPLED};
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// OTLP `SpanKind` (the numbers are the protocol's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// How the operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    /// An error, with a message for whoever reads the trace.
    Error(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// The caller's span; `None` for the root of a trace.
    pub parent: Option<SpanId>,
    pub name: Cow<'static, str>,
    pub kind: Kind,
    /// Unix time in nanoseconds.
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub status: Status,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
}

impl Span {
    /// A span starting now: a child of `parent` (a caller's `traceparent`) or, without one, the
    /// root of a new sampled trace. `end_ns` is `start_ns` until [`Span::end`].
    pub fn start(name: impl Into<Cow<'static, str>>, kind: Kind, parent: Option<&Context>) -> Span {
        let (trace_id, parent_id, flags) = match parent {
            Some(c) => (c.trace_id, Some(c.parent), c.flags),
            None => (traceparent::new_trace_id(), None, SAMPLED),
        };
        let now = now_ns();
        Span {
            trace_id,
            span_id: traceparent::new_span_id(),
            parent: parent_id,
            name: name.into(),
            kind,
            start_ns: now,
            end_ns: now,
            attributes: Vec::new(),
            status: Status::Unset,
            flags,
        }
    }

    /// A child of this span, starting now (for example the upstream call inside a request).
    pub fn child(&self, name: impl Into<Cow<'static, str>>, kind: Kind) -> Span {
        Span::start(name, kind, Some(&self.context()))
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.attributes.push((key, value.into()));
    }

    /// Sets the end time to now.
    pub fn end(&mut self) {
        self.end_ns = now_ns().max(self.start_ns);
    }

    /// The context to send on as `traceparent`, naming this span as the parent.
    pub fn context(&self) -> Context {
        Context {
            trace_id: self.trace_id,
            parent: self.span_id,
            flags: self.flags,
        }
    }
}

/// Unix time now, in nanoseconds.
pub fn now_ns() -> u64 {
    unix_ns(SystemTime::now())
}

/// Unix time in nanoseconds (0 before 1970, saturating after 2554).
pub fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_spans_join_the_callers_trace() {
        let caller =
            traceparent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let mut s = Span::start("tools/call", Kind::Server, Some(&caller));
        assert_eq!(s.trace_id, caller.trace_id);
        assert_eq!(s.parent, Some(caller.parent));
        assert_eq!(s.flags, 0);
        s.set("mcp.tool", "search");
        s.set("mcp.denied", false);
        s.end();
        assert!(s.end_ns >= s.start_ns && s.start_ns > 1_600_000_000_000_000_000);

        let up = s.child("upstream", Kind::Client);
        assert_eq!(up.trace_id, s.trace_id);
        assert_eq!(up.parent, Some(s.span_id));
        assert_eq!(
            traceparent::format(&s.context())[36..52],
            s.span_id.to_string()
        );

        let root = Span::start("request", Kind::Server, None);
        assert!(root.parent.is_none() && root.trace_id.is_valid() && root.flags == SAMPLED);
    }

    #[test]
    fn unix_ns_saturates() {
        assert_eq!(unix_ns(UNIX_EPOCH), 0);
        assert_eq!(unix_ns(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
    }
}
