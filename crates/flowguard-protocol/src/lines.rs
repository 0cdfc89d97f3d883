//! The line framing of stdio transports, as pure steps that a reader drives: one JSON-RPC
//! message per line, at most `max` bytes kept of a line. A longer line is skipped whole; its
//! first and last bytes are kept so that the reply it carried can be failed by id at once.

/// How many bytes of each end of an oversized line are kept.
pub const SNIFF: usize = 512;
/// Between the two ends of an oversized line longer than `2 * SNIFF`.
pub const ELISION: &[u8] = " … ".as_bytes();

/// What one capped line read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A line (without its `\n`) is in the buffer.
    Line,
    /// Longer than the cap: the line was skipped; the buffer holds its first `SNIFF` bytes
    /// and, if it is longer than `2 * SNIFF`, `ELISION` and its last `SNIFF` bytes (else the
    /// whole line). The same whatever the pieces it arrived in.
    TooLong,
    /// The input ended with no line begun.
    Eof,
}

/// One line read piece by piece from a buffered reader: `feed` what the reader has, consume
/// what it says, until it says the line ended; `finish` at the end of the input.
#[derive(Debug)]
pub struct CappedLine {
    max: usize,
    len: usize,
    too_long: bool,
    /// Of an oversized line: its last bytes (at least `2 * SNIFF` of them once there are).
    tail: Vec<u8>,
}

impl CappedLine {
    pub fn new(max: usize) -> Self {
        CappedLine {
            max,
            len: 0,
            too_long: false,
            tail: Vec::new(),
        }
    }

    /// Takes what the reader has buffered (`avail`, not empty) into `buf`: how many bytes to
    /// consume, and the outcome once the line ended (its `\n` is consumed, not kept).
    pub fn feed(&mut self, buf: &mut Vec<u8>, avail: &[u8]) -> (usize, Option<LineRead>) {
        match memchr::memchr(b'\n', avail) {
            Some(i) => {
                self.push(buf, &avail[..i]);
                (i + 1, Some(self.end(buf)))
            }
            None => {
                self.push(buf, avail);
                (avail.len(), None)
            }
        }
    }

    /// The input ended: a last line without `\n` counts as a line.
    pub fn finish(&mut self, buf: &mut Vec<u8>) -> LineRead {
        if self.len == 0 {
            LineRead::Eof
        } else {
            self.end(buf)
        }
    }

    fn push(&mut self, buf: &mut Vec<u8>, piece: &[u8]) {
        self.len += piece.len();
        if !self.too_long {
            if self.len <= self.max {
                buf.extend_from_slice(piece);
                return;
            }
            // Over the cap: what was kept so far starts the tail, and its start is the head.
            self.too_long = true;
            self.tail.clear();
            self.tail
                .extend_from_slice(&buf[buf.len().saturating_sub(2 * SNIFF)..]);
            buf.truncate(SNIFF);
        }
        let room = SNIFF.saturating_sub(buf.len());
        buf.extend_from_slice(&piece[..room.min(piece.len())]);
        if piece.len() >= 2 * SNIFF {
            self.tail.clear();
        }
        self.tail
            .extend_from_slice(&piece[piece.len().saturating_sub(2 * SNIFF)..]);
        if self.tail.len() > 4 * SNIFF {
            self.tail.drain(..self.tail.len() - 2 * SNIFF);
        }
    }

    fn end(&mut self, buf: &mut Vec<u8>) -> LineRead {
        let read = if self.too_long {
            let rest = if self.len > 2 * SNIFF {
                buf.extend_from_slice(ELISION);
                SNIFF
            } else {
                self.len.saturating_sub(SNIFF)
            };
            buf.extend_from_slice(&self.tail[self.tail.len() - rest..]);
            LineRead::TooLong
        } else {
            LineRead::Line
        };
        *self = CappedLine::new(self.max);
        read
    }
}

/// The numeric id of an oversized reply from what `LineRead::TooLong` kept of it, so that its
/// request can be failed at once: the top-level `"id"` among the first `SNIFF` bytes (keys in
/// nested objects do not count), or `"id":N}` at the very end (the TypeScript SDK writes
/// `{"result":…,"jsonrpc":"2.0","id":N}`). `None` for a message with a `method` (a request or
/// notification from the server, whose id is its own) and for string ids.
pub fn sniff_reply_id(kept: &[u8]) -> Option<u64> {
    let mut head = Head {
        text: &kept[..kept.len().min(SNIFF)],
        at: 0,
    };
    match head.top_level_id() {
        HeadId::Found(id) => Some(id),
        HeadId::NotAReply => None,
        HeadId::Unknown => id_at_end(kept),
    }
}

enum HeadId {
    Found(u64),
    NotAReply,
    Unknown,
}

/// A reading of the start of a message, key by key at the top level.
struct Head<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Head<'a> {
    /// Key by key until a `method` (not a reply), or the end of what is kept or of the object.
    fn top_level_id(&mut self) -> HeadId {
        self.skip(b"\xEF\xBB\xBF");
        if !self.token(b'{') {
            return HeadId::Unknown;
        }
        let mut id = None;
        while let Some(key) = self.string() {
            if !self.token(b':') {
                break;
            }
            match key {
                b"method" => return HeadId::NotAReply,
                // A string or a fraction is not one of the gateway's ids.
                b"id" => match self.unsigned() {
                    Some(n) => id = Some(n),
                    None => return HeadId::NotAReply,
                },
                _ if !self.value() => break,
                _ => {}
            }
            if !self.token(b',') {
                break;
            }
        }
        id.map_or(HeadId::Unknown, HeadId::Found)
    }

    fn ws(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn skip(&mut self, prefix: &[u8]) {
        if self.text[self.at..].starts_with(prefix) {
            self.at += prefix.len();
        }
    }

    fn token(&mut self, b: u8) -> bool {
        self.ws();
        let found = self.text.get(self.at) == Some(&b);
        self.at += usize::from(found);
        found
    }

    /// A string's raw text between its quotes, if it ends within the text.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.token(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            match *self.text.get(self.at)? {
                b'"' => break,
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        let text = self.text;
        Some(&text[start..self.at - 1])
    }

    /// An integer that ends within the text (so that it is not cut short).
    fn unsigned(&mut self) -> Option<u64> {
        self.ws();
        let digits = self.text[self.at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = self.at + digits;
        let next = self.text.get(end)?;
        if digits == 0 || !(next.is_ascii_whitespace() || matches!(next, b',' | b'}')) {
            return None;
        }
        let number = std::str::from_utf8(&self.text[self.at..end])
            .ok()?
            .parse()
            .ok();
        self.at = end;
        number
    }

    /// Skips one value; false if it does not end within the text.
    fn value(&mut self) -> bool {
        self.ws();
        let mut depth = 0usize;
        loop {
            let Some(&b) = self.text.get(self.at) else {
                return false;
            };
            match b {
                b'"' => {
                    if self.string().is_none() {
                        return false;
                    }
                    continue;
                }
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b',' | b']' | b'}' => return true,
                _ => {}
            }
            self.at += 1;
            if depth == 0 && matches!(b, b']' | b'}') {
                return true;
            }
        }
    }
}

/// `"id":N}` closing the message, whitespace allowed between tokens.
fn id_at_end(kept: &[u8]) -> Option<u64> {
    let text = kept.trim_ascii_end().strip_suffix(b"}")?.trim_ascii_end();
    let digits = text.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (rest, number) = text.split_at(text.len() - digits);
    let rest = rest.trim_ascii_end().strip_suffix(b":")?.trim_ascii_end();
    let rest = rest.strip_suffix(b"\"id\"")?.trim_ascii_end();
    if digits == 0 || !(rest.ends_with(b",") || rest.ends_with(b"{")) {
        return None;
    }
    std::str::from_utf8(number).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
