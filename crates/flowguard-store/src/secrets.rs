//! Secrets at rest: AES-256-GCM (ring) under a 32-byte key from the environment or a file.
//!
//! - Each value gets a fresh random 96-bit nonce.
//! - The associated data binds the value to its row: `flowguard-secret-v1\0<name>`, so a sealed
//!   value copied to another row does not open.
//! - Each row keeps the id of the key that sealed it (the first 8 hex digits of
//!   SHA-256(`flowguard-secret-key-id-v1\0` ‖ key)). Rotation: make the new key current, list the
//!   old one as previous, and [`crate::Store::rekey_secrets`] re-seals every row.
//!
//! A key is given as 64 hex digits or as standard base64 of 32 bytes; nothing else is accepted,
//! so a passphrase cannot pass for a key.

use crate::{Result, StoreError};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// The environment variable holding the current key.
pub const KEY_ENV: &str = "FLOWGUARD_SECRET_KEY";
/// Earlier keys (comma-separated), still accepted for opening.
pub const PREVIOUS_ENV: &str = "FLOWGUARD_SECRET_KEY_PREVIOUS";

pub struct SecretKey {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

impl SecretKey {
    /// From 64 hex digits or base64 of 32 bytes (surrounding whitespace ignored). The error never
    /// repeats the text.
    pub fn parse(text: &str) -> std::result::Result<SecretKey, String> {
        let t = text.trim();
        let bytes = hex32(t)
            .or_else(|| base64_32(t))
            .ok_or_else(|| format!("not a 256-bit key: give 64 hex digits or the base64 of 32 bytes (got {} characters); make one with `openssl rand -hex 32`", t.len()))?;
        Ok(SecretKey::from_bytes(&bytes))
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"flowguard-secret-key-id-v1\0");
        ctx.update(bytes);
        let d = ctx.finish();
        let id = d.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte key"));
        SecretKey { id, key }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The current key and the earlier ones still accepted for opening.
#[derive(Debug)]
pub struct SecretKeys {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

/// A sealed value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRow {
    pub name: String,
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub sealed: Vec<u8>,
}

impl SecretKeys {
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> SecretKeys {
        SecretKeys { current, previous }
    }

    /// From `FLOWGUARD_SECRET_KEY` (and `FLOWGUARD_SECRET_KEY_PREVIOUS`), else from `file`
    /// (one key, or several lines: the first is current, the rest previous). `Ok(None)` when
    /// neither is set.
    pub fn from_env_or_file(file: Option<&std::path::Path>) -> Result<Option<SecretKeys>> {
        let bad = |from: &str, why: String| StoreError::Config(format!("{from}: {why}"));
        let (current, mut previous) = if let Ok(v) = std::env::var(KEY_ENV) {
            (
                SecretKey::parse(&v).map_err(|e| bad(KEY_ENV, e))?,
                Vec::new(),
            )
        } else if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad(
                    &format!("secret key file {}", path.display()),
                    e.to_string(),
                )
            })?;
            let mut keys = text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(SecretKey::parse);
            let first = keys
                .next()
                .ok_or_else(|| bad(&path.display().to_string(), "holds no key".into()))?
                .map_err(|e| bad(&path.display().to_string(), e))?;
            let rest = keys
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad(&path.display().to_string(), e))?;
            (first, rest)
        } else {
            return Ok(None);
        };
        if let Ok(v) = std::env::var(PREVIOUS_ENV) {
            for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                previous.push(SecretKey::parse(part).map_err(|e| bad(PREVIOUS_ENV, e))?);
            }
        }
        Ok(Some(SecretKeys::new(current, previous)))
    }

    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    pub fn seal(&self, name: &str, value: &[u8]) -> Result<SealedRow> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Secret {
                name: name.into(),
                why: "the system's random source failed".into(),
            })?;
        let mut sealed = value.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(name)),
                &mut sealed,
            )
            .map_err(|_| StoreError::Secret {
                name: name.into(),
                why: "sealing failed".into(),
            })?;
        Ok(SealedRow {
            name: name.into(),
            key_id: self.current.id.clone(),
            nonce: nonce.to_vec(),
            sealed,
        })
    }

    pub fn open(&self, row: &SealedRow) -> Result<Vec<u8>> {
        let err = |why: String| StoreError::Secret {
            name: row.name.clone(),
            why,
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == row.key_id)
            .ok_or_else(|| {
                err(format!(
                    "sealed under key {}, which is not set (current key {}): add that key to {PREVIOUS_ENV} or the key file",
                    row.key_id, self.current.id
                ))
            })?;
        let nonce = Nonce::try_assume_unique_for_key(&row.nonce)
            .map_err(|_| err("the stored nonce is not 12 bytes".into()))?;
        let mut buf = row.sealed.clone();
        let plain = key
            .key
            .open_in_place(nonce, Aad::from(aad(&row.name)), &mut buf)
            .map_err(|_| err("does not open: altered, or moved from another row".into()))?;
        Ok(plain.to_vec())
    }
}

fn aad(name: &str) -> Vec<u8> {
    let mut a = b"flowguard-secret-v1\0".to_vec();
    a.extend_from_slice(name.as_bytes());
    a
}

fn hex32(t: &str) -> Option<[u8; 32]> {
    if t.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in t.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn base64_32(t: &str) -> Option<[u8; 32]> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = t.trim_end_matches('=');
    if body.len() != 43 {
        return None;
    }
    let mut out = Vec::with_capacity(33);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | val(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]),
            3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
            _ => return None,
        }
    }
    out.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> SecretKey {
        SecretKey::from_bytes(&[b; 32])
    }

    #[test]
    fn parses_hex_and_base64_only() {
        let hex = "00".repeat(31) + "ff";
        assert!(SecretKey::parse(&hex).is_ok());
        let b64 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP8=";
        assert_eq!(
            SecretKey::parse(b64).unwrap().id(),
            SecretKey::parse(&hex).unwrap().id()
        );
        let e = SecretKey::parse("correct horse battery staple").unwrap_err();
        assert!(!e.contains("horse"), "{e}");
        assert!(SecretKey::parse(&"0g".repeat(32)).is_err());
    }

    #[test]
    fn sealed_values_open_only_in_their_row_and_with_their_key() {
        let k = SecretKeys::new(keys(1), vec![]);
        let row = k.seal("github", b"ghp_secret").unwrap();
        assert!(!row.sealed.windows(10).any(|w| w == b"ghp_secret"));
        assert_eq!(k.open(&row).unwrap(), b"ghp_secret");
        let moved = SealedRow {
            name: "slack".into(),
            ..row.clone()
        };
        assert!(k.open(&moved).is_err());
        let mut flipped = row.clone();
        flipped.sealed[0] ^= 1;
        assert!(k.open(&flipped).is_err());
        // A new current key opens old rows only while the old key is listed.
        let rotated = SecretKeys::new(keys(2), vec![keys(1)]);
        assert_eq!(rotated.open(&row).unwrap(), b"ghp_secret");
        let e = SecretKeys::new(keys(2), vec![])
            .open(&row)
            .unwrap_err()
            .to_string();
        assert!(e.contains(keys(1).id()), "{e}");
    }
}
