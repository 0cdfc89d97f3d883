//! What a JSON parser may accept and a server's parser still refuse, checked once at the door
//! so such a message is answered with an error instead of reaching a server that cannot read
//! it. serde_json (as `Value` or any typed struct) refuses three things that the gateway's own
//! envelope parse lets through, because `params`, `result` and `error` stay raw:
//!
//! - nesting deeper than [`MAX_DEPTH`]: `serde_json::from_str::<Value>` takes 127 levels of
//!   `[`/`{` and refuses the 128th ("recursion limit exceeded"), counting the message's own
//!   object as level 1;
//! - a lone UTF-16 surrogate escape: `"\ud800"` not followed by `\udc00`..`\udfff`, or a low
//!   one (`"\udc00"`) not preceded by a high one;
//! - a number beyond `f64` (`1e400`, or an integer of 310 digits): "number out of range".
//!
//! Most messages cost one vectorized pass (`Summary`): with at most 127 brackets, no
//! backslash, no digit followed by `e` and at most 300 digits, none of the three can occur. A
//! message with backslashes then has its escapes visited, one with a digit followed by `e`
//! its exponents, and only one with many brackets (or many digits, or an exponent that may be
//! out of range) gets the full scan: strings skipped eight bytes at a time, depth and numbers
//! counted outside them, numbers with an exponent handed to serde_json. It runs after serde
//! has accepted the text, so syntax is known good, but it never panics on any input.

/// The deepest nesting accepted, the message's own object being level 1: exactly what
/// `serde_json::from_str::<serde_json::Value>` accepts (its limit of 128 refuses the 128th).
pub const MAX_DEPTH: usize = 127;

/// Why a message that is syntactically JSON is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A `[` or `{` at byte `at` opens level `MAX_DEPTH + 1`.
    TooDeep { at: usize },
    /// The escape `\u{code:04x}` at byte `at` is a surrogate without its other half.
    LoneSurrogate { code: u16, at: usize },
    /// The number starting at byte `at` does not fit an `f64`.
    NumberOutOfRange { at: usize },
}

/// Checks one JSON text (a whole message). `Ok` means serde_json parses it into a `Value`
/// whenever it parses at all.
pub fn check(bytes: &[u8]) -> Result<(), Refusal> {
    let s = Summary::of(bytes);
    if s.opens > MAX_DEPTH || s.digits > 300 {
        return scan(bytes);
    }
    if s.backslash {
        surrogates(bytes)?;
    }
    if s.exponent && exponents(bytes) {
        return scan(bytes);
    }
    Ok(())
}

/// Lone surrogates, in a text known to be JSON: every backslash is in a string and starts an
/// escape unless the escape before it took it (`\\`), so no string state is needed. (memchr's
/// search is vectorized: cheaper here than eight bytes at a time unless escapes are dense.)
fn surrogates(bytes: &[u8]) -> Result<(), Refusal> {
    let mut next = 0; // where the last escape ended
    for at in memchr::memchr_iter(b'\\', bytes) {
        if at >= next {
            next = match bytes.get(at + 1) {
                Some(b'u') => unicode_escape(bytes, at)?,
                _ => at + 2,
            };
        }
    }
    Ok(())
}

/// Whether some `e`/`E` may end a number out of range (`may_overflow`), eight bytes at a time.
fn exponents(bytes: &[u8]) -> bool {
    (0..bytes.len()).step_by(8).any(|base| {
        let mut hits = has(word(bytes, base) | (ONES * 0x20), b'e');
        while hits != 0 {
            let at = base + hits.trailing_zeros() as usize / 8;
            hits &= hits - 1;
            // `has` may also mark a `d` after an `e`: looked at again.
            if bytes[at] | 0x20 == b'e' && may_overflow(bytes, at) {
                return true;
            }
        }
        false
    })
}

/// Whether the `e`/`E` at `at`, after a digit, may end a number out of range: the run of number
/// characters around it, read as a number, has an integer part and a positive exponent that
/// add up to 300 digits or more. Runs inside strings ("9e1f" in a commit hash) are taken too,
/// which only costs the full scan, where strings are told apart.
fn may_overflow(bytes: &[u8], at: usize) -> bool {
    if at == 0 || !bytes[at - 1].is_ascii_digit() || bytes.get(at + 1) == Some(&b'-') {
        return false;
    }
    let number_char = |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    let start = bytes[..at]
        .iter()
        .rposition(|&b| !number_char(b))
        .map_or(0, |p| p + 1);
    let integer_digits = bytes[start..at]
        .iter()
        .take_while(|&&b| b != b'.')
        .filter(|b| b.is_ascii_digit())
        .count();
    let exponent = bytes[at + 1..]
        .iter()
        .skip_while(|&&b| b == b'+')
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |e, &d| {
            (e * 10 + usize::from(d - b'0')).min(100_000)
        });
    integer_digits + exponent >= 300
}

/// The full pass: depth and numbers outside strings, escapes inside.
fn scan(bytes: &[u8]) -> Result<(), Refusal> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => i = skip_string(bytes, i + 1)?,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Refusal::TooDeep { at: i });
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => i = skip_number(bytes, i)?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// From just after an opening quote to just after the closing one (or the end of the text).
fn skip_string(bytes: &[u8], mut i: usize) -> Result<usize, Refusal> {
    loop {
        let Some(at) = find(bytes, i, |w| has(w, b'"') | has(w, b'\\')) else {
            return Ok(bytes.len());
        };
        // A backslash: `\\`, `\"` and the other two-byte escapes are skipped whole, so an
        // escaped backslash before `u` (`\\ud800`) is not taken for an escape.
        i = match (bytes[at], bytes.get(at + 1)) {
            (b'"', _) => return Ok(at + 1),
            (_, Some(b'u')) => unicode_escape(bytes, at)?,
            _ => at + 2,
        };
    }
}

const ONES: u64 = u64::MAX / 255;

/// The high bit of each byte of `w` that equals `b` (and maybe of bytes after one that does:
/// only the lowest set bit is exact).
#[inline(always)]
fn has(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * b as u64);
    x.wrapping_sub(ONES) & !x & (ONES << 7)
}

/// The eight bytes at `at` as one word, zeros past the end (which match none of the bytes
/// looked for).
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    match bytes.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("eight bytes")),
        None => {
            let mut w = [0u8; 8];
            let rest = bytes.get(at..).unwrap_or(&[]);
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// The first byte from `from` on that `hits` marks, eight bytes at a time (serde_json skips
/// strings the same way).
#[inline(always)]
fn find(bytes: &[u8], from: usize, hits: impl Fn(u64) -> u64) -> Option<usize> {
    let hay = bytes.get(from..)?;
    let mut words = hay.chunks_exact(8);
    for (k, chunk) in words.by_ref().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let found = hits(u64::from_le_bytes(w));
        if found != 0 {
            return Some(from + 8 * k + found.trailing_zeros() as usize / 8);
        }
    }
    let rest = words.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    // Only bytes of the text count: the zeros after them are masked off.
    let found = hits(u64::from_le_bytes(w)) & !(u64::MAX << (8 * rest.len()));
    let base = hay.len() - rest.len();
    (found != 0).then(|| from + base + found.trailing_zeros() as usize / 8)
}

/// A `\uXXXX` escape at `at`; returns where the string goes on.
fn unicode_escape(bytes: &[u8], at: usize) -> Result<usize, Refusal> {
    let Some(code) = hex4(bytes, at + 2) else {
        return Ok(at + 2); // not an escape serde accepts; it refused the text already
    };
    match code {
        0xD800..=0xDBFF => {
            let low = bytes
                .get(at + 6..at + 8)
                .filter(|next| *next == b"\\u")
                .and_then(|_| hex4(bytes, at + 8));
            match low {
                Some(0xDC00..=0xDFFF) => Ok(at + 12),
                _ => Err(Refusal::LoneSurrogate { code, at }),
            }
        }
        0xDC00..=0xDFFF => Err(Refusal::LoneSurrogate { code, at }),
        _ => Ok(at + 6),
    }
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u16, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc << 4 | v as u16)
    })
}

/// A number token from `at`. Only one with an exponent, or longer than any `f64` integer part
/// can be without overflowing, is handed to serde_json to see whether it is in range.
fn skip_number(bytes: &[u8], at: usize) -> Result<usize, Refusal> {
    let mut end = at;
    let mut exponent = false;
    while let Some(&b) = bytes.get(end) {
        match b {
            b'0'..=b'9' | b'-' | b'+' | b'.' => {}
            b'e' | b'E' => exponent = true,
            _ => break,
        }
        end += 1;
    }
    let token = &bytes[at..end];
    if (exponent || token.len() > 300) && !number_in_range(token) {
        return Err(Refusal::NumberOutOfRange { at });
    }
    Ok(end)
}

/// Whether serde_json reads the number as a `Value`. Within a message serde has accepted, the
/// token is exactly one valid number, so the only way to fail is being out of range.
#[cold]
fn number_in_range(token: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(token).is_ok()
}

mod summary;
use summary::Summary;

#[cfg(test)]
mod tests;
