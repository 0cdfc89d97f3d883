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
    // JSON-RPC messages are serialized compactly, so they hold no raw line break; one that
    // does (JSON whitespace) is split, each line a `data:` field, `\r\n`, `\r` and `\n` alike,
    // since a client's parser ends a line at any of them.
    let mut rest = data;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"\ndata: ");
        let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
        rest = &rest[i + 1 + usize::from(crlf)..];
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(EVENT_END);
    Bytes::from(out)
}

/// Whether `data` holds a line break (`\n` or `\r`), which an event's data must not (each line
/// is a `data:` field). The memchr crate's vectorized search: the slice method reads a word at a
/// time, and took a tenth of the gateway's time on a unified list of 1,000 tools (200 kB).
pub fn has_newline(data: &[u8]) -> bool {
    memchr::memchr2(b'\n', b'\r', data).is_some()
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

/// Incremental parser: feed chunks as they arrive, take complete events out. Lines end with
/// `\n`, `\r\n` or a lone `\r`, and a BOM at the start of the stream is dropped, as the SSE
/// specification says; every byte is looked at once, however the stream is cut.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    /// The last line ended with a `\r` at the very end of a chunk: a `\n` first in the next
    /// one belongs to it.
    after_cr: bool,
    /// The first line was seen (a BOM before it is dropped).
    started: bool,
    current: Event,
    has_data: bool,
    last_event_id: Option<String>,
}

impl Parser {
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) {
        let mut chunk = chunk;
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            chunk = chunk.strip_prefix(b"\n").unwrap_or(chunk);
        }
        let scanned = self.buf.len(); // what is already in `buf` holds no line end
        self.buf.extend_from_slice(chunk);
        let buf = std::mem::take(&mut self.buf);
        let mut start = 0;
        let mut from = scanned;
        while let Some(p) = memchr::memchr2(b'\n', b'\r', &buf[from..]) {
            let end = from + p;
            let mut next = end + 1;
            if buf[end] == b'\r' {
                match buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            self.line(&buf[start..end], out);
            (start, from) = (next, next);
        }
        self.buf = buf;
        self.buf.drain(..start);
    }

    /// The id of the last event that set one, dispatched or not: a priming event (an id and
    /// empty data) is not handed out, but a client resumes with its id as `Last-Event-ID`.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        };
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
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            // An id with a NUL is ignored (SSE spec).
            "id" if !value.contains('\0') => {
                self.current.id = Some(value.to_string());
                self.last_event_id = Some(value.to_string());
            }
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
    fn lines_end_at_cr_lf_or_crlf_even_split_between_chunks() {
        let stream = b"\xEF\xBB\xBFdata: a\r\rdata: b\r\n\r\ndata: c\n\n";
        let mut whole = vec![];
        Parser::default().feed(stream, &mut whole);
        let data: Vec<&str> = whole.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b", "c"]);
        for cut in 0..=stream.len() {
            let (mut p, mut out) = (Parser::default(), vec![]);
            p.feed(&stream[..cut], &mut out);
            p.feed(&stream[cut..], &mut out);
            assert_eq!(out, whole, "cut at {cut}");
        }
    }

    #[test]
    fn a_priming_event_is_not_handed_out_but_its_id_is_kept() {
        let (mut p, mut out) = (Parser::default(), vec![]);
        p.feed(b"id: prime-1\ndata:\n\nid: x\0y\ndata: z\n\n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].id.as_deref(), out[0].data.as_str()), (None, "z"));
        assert_eq!(p.last_event_id(), Some("prime-1"));
    }

    #[test]
    fn data_with_any_line_break_is_split_into_fields() {
        let event = message_event(None, b"{\r\n\"a\":1,\r\"b\":\n2}");
        assert_eq!(
            &event[..],
            b"event: message\ndata: {\ndata: \"a\":1,\ndata: \"b\":\ndata: 2}\n\n"
        );
        let mut out = vec![];
        Parser::default().feed(&event, &mut out);
        assert_eq!(out[0].data, "{\n\"a\":1,\n\"b\":\n2}");
        assert!(has_newline(b"a\rb") && has_newline(b"a\nb") && !has_newline(b"ab"));
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
