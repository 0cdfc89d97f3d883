//! W3C Trace Context (`traceparent`), so a gateway span joins the trace its caller started and
//! the upstream call carries it on; and the random ids for new traces and spans.
//!
//! Ids come from a per-thread SplitMix64 generator seeded once from the OS: ids need to be
//! unique, not secret, and making one runs on every request, so it must not be a system call.

use std::cell::Cell;
use std::fmt;

/// A 16-byte trace id. All zeros is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id. All zeros is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub [u8; 8]);

/// The `sampled` trace flag.
pub const SAMPLED: u8 = 0x01;

/// What a `traceparent` header says: the trace, the caller's span (the parent of ours) and the
/// trace flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Context {
    pub trace_id: TraceId,
    pub parent: SpanId,
    pub flags: u8,
}

impl Context {
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }
}

impl TraceId {
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }
}

impl SpanId {
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// Parses a `traceparent` header value; `None` for anything the spec says to ignore (the
/// caller then starts a new trace).
///
/// Version `00` must be exactly 55 characters. A later version (not `ff`) is read by its
/// first four fields when it is at least 55 characters and, if longer, goes on with `-`; of
/// its flags only `sampled` is kept, since the other bits may mean something else there.
pub fn parse(header: &str) -> Option<Context> {
    let s = header.trim_matches([' ', '\t']).as_bytes();
    if s.len() < 55 {
        return None;
    }
    let version = lower_hex::<1>(&s[0..2])?[0];
    if version == 0xff || s[2] != b'-' || s[35] != b'-' || s[52] != b'-' {
        return None;
    }
    let trace_id = TraceId(lower_hex(&s[3..35])?);
    let parent = SpanId(lower_hex(&s[36..52])?);
    let mut flags = lower_hex::<1>(&s[53..55])?[0];
    if version == 0 {
        if s.len() != 55 {
            return None;
        }
    } else {
        if s.len() > 55 && s[55] != b'-' {
            return None;
        }
        flags &= SAMPLED;
    }
    if !trace_id.is_valid() || !parent.is_valid() {
        return None;
    }
    Some(Context {
        trace_id,
        parent,
        flags,
    })
}

/// The version-00 header value for a context: `00-<trace id>-<parent id>-<flags>`.
pub fn format(c: &Context) -> String {
    let mut s = String::with_capacity(55);
    s.push_str("00-");
    hex_into(&mut s, &c.trace_id.0);
    s.push('-');
    hex_into(&mut s, &c.parent.0);
    s.push('-');
    hex_into(&mut s, &[c.flags]);
    s
}

/// A new random, non-zero trace id.
pub fn new_trace_id() -> TraceId {
    loop {
        let (a, b) = (next_u64(), next_u64());
        if a | b != 0 {
            let mut id = [0; 16];
            id[..8].copy_from_slice(&a.to_be_bytes());
            id[8..].copy_from_slice(&b.to_be_bytes());
            return TraceId(id);
        }
    }
}

/// A new random, non-zero span id.
pub fn new_span_id() -> SpanId {
    loop {
        let a = next_u64();
        if a != 0 {
            return SpanId(a.to_be_bytes());
        }
    }
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// SplitMix64: a bijection of a counter, so one thread never repeats an id before 2^64 of them,
/// and threads start at independent random points.
fn next_u64() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// From the OS; if that fails (it should not), from std's per-process random hash keys mixed
/// with the time and the thread, which is still unique enough for ids.
fn seed() -> u64 {
    if let Ok(x) = getrandom::u64() {
        return x;
    }
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::time::SystemTime::now().hash(&mut h);
    std::thread::current().id().hash(&mut h);
    h.finish()
}

fn lower_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let v = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (o, p) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = v(p[0])? << 4 | v(p[1])?;
    }
    Some(out)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    hex_into(&mut s, b);
    s
}

fn hex_into(s: &mut String, b: &[u8]) {
    const D: &[u8; 16] = b"0123456789abcdef";
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the W3C Trace Context recommendation, section 3.2.
    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example_and_formats_it_back() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent.to_string(), "00f067aa0ba902b7");
        assert_eq!(c.flags, 1);
        assert!(c.sampled());
        assert_eq!(format(&c), EXAMPLE);
        let unsampled = parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!unsampled.sampled());
        // Optional whitespace around the value, as an HTTP header may carry it.
        assert_eq!(parse(&format!(" {EXAMPLE}\t")), Some(c));
    }

    #[test]
    fn rejects_what_the_spec_rejects() {
        let bad = [
            // version ff is invalid
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // all-zero trace id, all-zero parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // upper-case hex anywhere
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
            "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
            // too short, one digit short per field, no dashes, wrong separators
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "004bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b701",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            // version 00 must be exactly 55 characters
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds",
            // non-hex
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "",
            "00-",
        ];
        for h in bad {
            assert_eq!(parse(h), None, "{h:?} should be rejected");
        }
    }

    #[test]
    fn later_versions_keep_the_first_four_fields() {
        let c = parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(c.parent.to_string(), "00f067aa0ba902b7");
        let c =
            parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-the-future-holds")
                .unwrap();
        assert_eq!(
            c.flags, SAMPLED,
            "only the sampled bit is kept from a later version"
        );
        assert_eq!(
            format(&c),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        // A later version must still go on with '-' after the flags.
        assert_eq!(
            parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what"),
            None
        );
        // ...and is still held to the field rules.
        assert_eq!(
            parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x-"),
            None
        );
    }

    #[test]
    fn non_ascii_input_is_rejected_not_a_panic() {
        // 55 bytes with a multi-byte character across a field boundary.
        let s = "00-4bf92f3577b34da6a3ce929d0e0e473é00f067aa0ba902b7-01";
        assert_eq!(parse(s), None);
        assert_eq!(parse(&"é".repeat(40)), None);
    }

    #[test]
    fn new_ids_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(new_span_id()));
        }
        let (a, b) = (new_trace_id(), new_trace_id());
        assert!(a.is_valid() && b.is_valid() && a != b);
        let other = std::thread::spawn(new_trace_id).join().unwrap();
        assert_ne!(other, a);
        let c = Context {
            trace_id: a,
            parent: new_span_id(),
            flags: SAMPLED,
        };
        assert_eq!(parse(&format(&c)), Some(c));
    }
}
