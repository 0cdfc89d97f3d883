//! Server-Sent Events: encoding frames for clients and an incremental parser for SSE replies
//! from upstream HTTP servers.

use bytes::Bytes;

/// What comes before a message's data in an event without an id, and what ends every event.
pub const MESSAGE_OPENING: &[u8] = b"event: message\ndata: ";
pub const EVENT_END: &[u8] = b"\n\n";

/// One `message` event carrying a JSON-RPC message, with an optional event id.
pub fn message_event(id: Option<&str>, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 40);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(MESSAGE_OPENING);
    // JSON-RPC messages are serialized compactly, so they hold no raw newline; split defensively.
    if has_newline(data) {
        for (i, line) in data.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\ndata: ");
            }
            out.extend_from_slice(line);
        }
    } else {
        out.extend_from_slice(data);
    }
    out.extend_from_slice(EVENT_END);
    Bytes::from(out)
}

/// Whether `data` holds a newline, which an event's data must not (each line is a `data:`
/// field). The memchr crate's vectorized search: the slice method reads a word at a time, and
/// took a tenth of the gateway's time on a unified list of 1,000 tools (200 kB).
pub fn has_newline(data: &[u8]) -> bool {
    memchr::memchr(b'\n', data).is_some()
}

/// A comment line that keeps idle connections open through proxies.
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// An event as read from a stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Incremental parser: feed chunks as they arrive, take complete events out.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    current: Event,
    has_data: bool,
}

impl Parser {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line(&String::from_utf8_lossy(&line), out);
        }
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            // An event with empty data (a priming event) is not dispatched, as the SSE spec says.
            if self.has_data && !self.current.data.is_empty() {
                out.push(std::mem::take(&mut self.current));
            } else {
                self.current = Event::default();
            }
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.current.id = Some(value.to_string()),
            "event" => self.current.event = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = Parser::default();
        let mut out = vec![];
        p.feed(b"id: 1\nevent: message\nda", &mut out);
        assert!(out.is_empty());
        p.feed(
            b"ta: {\"a\":1}\r\n\r\n: comment\n\nid: 2\ndata:\n\ndata: x\n\n",
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[0].id.as_deref(), Some("1"));
        assert_eq!(out[1].data, "x");
    }

    #[test]
    fn encoded_events_parse_back() {
        let mut p = Parser::default();
        let mut out = vec![];
        p.feed(&message_event(Some("s1-3"), b"{\"x\":2}"), &mut out);
        assert_eq!(out[0].data, "{\"x\":2}");
        assert_eq!(out[0].id.as_deref(), Some("s1-3"));
    }
}
