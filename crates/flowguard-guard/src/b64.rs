//! Base64 (RFC 4648) for tokens and keys: the URL-safe alphabet without padding, as JOSE uses
//! it (RFC 7515 §2), and the standard alphabet for PEM bodies.
//!
//! Decoding is strict where strictness costs nothing: a character outside the alphabet, a length
//! that cannot come from an encoder, or non-zero unused bits in the last character are refused,
//! so every byte string has exactly one accepted encoding (no malleable tokens).

const URL_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const STD_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks a byte outside the alphabet in the decode tables.
const INVALID: u8 = 0xFF;

const fn decode_table(alphabet: &[u8; 64]) -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}

static URL_TABLE: [u8; 256] = decode_table(URL_ALPHABET);
static STD_TABLE: [u8; 256] = decode_table(STD_ALPHABET);

/// Decodes base64url without padding (RFC 4648 §5, as in JWS compact serialization).
///
/// Refuses `=` padding, whitespace, characters of the standard alphabet (`+`, `/`), a length of
/// 4k+1, and non-zero unused bits in the last character. `None` on any of these.
pub fn decode_url(s: &str) -> Option<Vec<u8>> {
    let input = s.as_bytes();
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut chunks = input.chunks_exact(4);
    for chunk in &mut chunks {
        let a = URL_TABLE[chunk[0] as usize];
        let b = URL_TABLE[chunk[1] as usize];
        let c = URL_TABLE[chunk[2] as usize];
        let d = URL_TABLE[chunk[3] as usize];
        if (a | b | c | d) & 0xC0 != 0 {
            return None; // INVALID has the top bits set, valid sextets never do
        }
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    let mut rest = [0u8; 3];
    let tail = chunks.remainder();
    for (slot, &byte) in rest.iter_mut().zip(tail) {
        *slot = URL_TABLE[byte as usize];
        if *slot == INVALID {
            return None;
        }
    }
    finish_tail(&rest[..tail.len()], &mut out)?;
    Some(out)
}

/// Decodes the 2 or 3 sextets left after the last full quantum, refusing non-zero unused bits.
fn finish_tail(sextets: &[u8], out: &mut Vec<u8>) -> Option<()> {
    match *sextets {
        [] => Some(()),
        [a, b] => {
            if b & 0x0F != 0 {
                return None;
            }
            out.push((a << 2) | (b >> 4));
            Some(())
        }
        [a, b, c] => {
            if c & 0x03 != 0 {
                return None;
            }
            out.push((a << 2) | (b >> 4));
            out.push((b << 4) | (c >> 2));
            Some(())
        }
        _ => None,
    }
}

/// Encodes as base64url without padding.
pub fn encode_url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    let symbol = |n: u32, shift: u32| char::from(URL_ALPHABET[((n >> shift) & 0x3F) as usize]);
    for chunk in &mut chunks {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(symbol(n, shift));
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.push(symbol(n, 18));
            out.push(symbol(n, 12));
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.push(symbol(n, 18));
            out.push(symbol(n, 12));
            out.push(symbol(n, 6));
        }
        _ => {}
    }
    out
}

/// Decodes standard base64 (RFC 4648 §4), as in PEM bodies: ASCII whitespace anywhere is
/// ignored, padding is optional but when present must complete the last quantum and come only
/// at the end. Non-zero unused bits are refused as in [`decode_url`].
pub fn decode_std(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    let mut quantum = [0u8; 4];
    let mut filled = 0usize;
    let mut data_chars = 0usize;
    let mut padding = 0usize;
    for &byte in s.as_bytes() {
        if byte.is_ascii_whitespace() {
            continue;
        }
        if byte == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return None; // data after padding
        }
        let v = STD_TABLE[byte as usize];
        if v == INVALID {
            return None;
        }
        quantum[filled] = v;
        filled += 1;
        data_chars += 1;
        if filled == 4 {
            let [a, b, c, d] = quantum;
            out.push((a << 2) | (b >> 4));
            out.push((b << 4) | (c >> 2));
            out.push((c << 6) | d);
            filled = 0;
        }
    }
    if padding > 0 && (padding > 2 || !(data_chars + padding).is_multiple_of(4)) {
        return None;
    }
    finish_tail(&quantum[..filled], &mut out)?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors (the encoded forms without padding).
    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors_round_trip() {
        for &(plain, encoded) in VECTORS {
            assert_eq!(encode_url(plain.as_bytes()), encoded);
            assert_eq!(
                decode_url(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded}"
            );
            assert_eq!(
                decode_std(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded}"
            );
        }
    }

    #[test]
    fn padded_vectors_decode_with_the_standard_decoder_only() {
        let padded = [
            ("Zg==", "f"),
            ("Zm8=", "fo"),
            ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"),
        ];
        for (encoded, plain) in padded {
            assert_eq!(decode_std(encoded).as_deref(), Some(plain.as_bytes()));
            assert_eq!(decode_url(encoded), None, "{encoded}");
        }
    }

    #[test]
    fn url_alphabet_differs_from_standard() {
        let bytes = [0xFB, 0xFF, 0xBF];
        assert_eq!(encode_url(&bytes), "-_-_");
        assert_eq!(decode_url("-_-_").as_deref(), Some(&bytes[..]));
        assert_eq!(decode_url("+/+/"), None);
        assert_eq!(decode_std("+/+/").as_deref(), Some(&bytes[..]));
        assert_eq!(decode_std("-_-_"), None);
    }

    #[test]
    fn url_decoder_rejects_non_canonical_input() {
        assert_eq!(decode_url("Z"), None); // 4k+1 length
        assert_eq!(decode_url("Zh"), None); // unused bits set (canonical: "Zg")
        assert_eq!(decode_url("Zm9"), None); // unused bits set (canonical: "Zm8")
        assert_eq!(decode_url("Zm 9v"), None);
        assert_eq!(decode_url("Zm9v\n"), None);
        assert_eq!(decode_url("Zm9v="), None);
        assert_eq!(decode_url("Zm9\u{e9}"), None);
        assert_eq!(decode_url("Zm9v.A"), None);
    }

    #[test]
    fn std_decoder_handles_whitespace_and_rejects_bad_padding() {
        assert_eq!(
            decode_std(" Zm9v\r\nYmFy\n").as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(decode_std("Zm9vYg =\n=").as_deref(), Some(&b"foob"[..]));
        assert_eq!(decode_std("Zg="), None); // incomplete quantum
        assert_eq!(decode_std("Zg==="), None);
        assert_eq!(decode_std("Zg==Zg=="), None); // data after padding
        assert_eq!(decode_std("Zh=="), None); // unused bits set
        assert_eq!(decode_std("Z"), None);
        assert_eq!(decode_std("Zm9v!"), None);
    }

    #[test]
    fn all_byte_values_round_trip() {
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in 0..bytes.len() {
            let encoded = encode_url(&bytes[..len]);
            assert_eq!(encoded.len(), (len * 4).div_ceil(3));
            assert_eq!(decode_url(&encoded).as_deref(), Some(&bytes[..len]));
        }
    }
}
