//! API keys for named clients: only SHA-256 digests are stored (`sha256:<hex>`), and a
//! presented key is compared against every digest in constant time.

use ring::digest::{digest, SHA256};
use subtle::ConstantTimeEq;

/// The digest form a config stores for `key`.
pub fn digest_of(key: &str) -> String {
    let d = digest(&SHA256, key.as_bytes());
    let mut s = String::from("sha256:");
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses `sha256:<64 hex>` into bytes.
pub fn parse_digest(s: &str) -> Result<[u8; 32], String> {
    let hex = s.strip_prefix("sha256:").ok_or_else(|| {
        "must be \"sha256:<64 hex digits>\"; `flowguard auth hash-key` prints it for a key"
            .to_string()
    })?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be \"sha256:\" followed by 64 hex digits".into());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The index of the digest `key` hashes to. Every digest is compared (no early exit), each in
/// constant time.
pub fn find(key: &str, digests: &[[u8; 32]]) -> Option<usize> {
    let d = digest(&SHA256, key.as_bytes());
    let mut found = None;
    for (i, want) in digests.iter().enumerate() {
        if bool::from(d.as_ref().ct_eq(want)) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Whether two secrets are equal, compared in constant time (their lengths may show).
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    // Every byte is read whatever the others hold, eight at a time (a token is compared on
    // every request: `subtle`'s byte-at-a-time comparison cost more than the rest of
    // authentication); the accumulated difference is hidden from the optimiser.
    let mut diff = 0u64;
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in ac.clone().zip(bc.clone()) {
        let x = u64::from_ne_bytes(x.try_into().expect("eight bytes"));
        let y = u64::from_ne_bytes(y.try_into().expect("eight bytes"));
        diff |= x ^ y;
    }
    for (x, y) in ac.remainder().iter().zip(bc.remainder()) {
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// A new random key: 32 bytes of the system's randomness, base64url, prefixed `fg_`.
pub fn generate() -> Result<String, String> {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut b = [0u8; 32];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| "the system's random source failed".to_string())?;
    Ok(format!("fg_{}", crate::b64::encode_url(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_round_trip() {
        let k = generate().unwrap();
        let d = parse_digest(&digest_of(&k)).unwrap();
        let other = parse_digest(&digest_of("other")).unwrap();
        assert_eq!(find(&k, &[other, d]), Some(1));
        assert_eq!(find("nope", &[other, d]), None);
        assert!(parse_digest("abc").is_err());
        assert_eq!(
            digest_of("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn same_compares_every_byte() {
        let t = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        assert!(same(t, t));
        assert!(same("", ""));
        for i in 0..t.len() {
            let mut b = t.as_bytes().to_vec();
            b[i] ^= 1;
            assert!(!same(t, std::str::from_utf8(&b).unwrap()), "byte {i}");
        }
        assert!(!same(t, &t[..t.len() - 1]));
        assert!(!same("abcdefgh", "abcdefgi"));
    }
}
