//! The audit's keys. The *seal state* stays with the gateway: the current epoch, its HMAC key
//! and the Ed25519 signing key of checkpoints; it is rewritten (and the old key overwritten) at
//! every evolution. The *verification key* is the first epoch's HMAC key and the checkpoint
//! public key; it is written once, at first use, and belongs off the machine: whoever holds it
//! can verify, and could tag records of any epoch.

use crate::hex;
use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

const EVOLVE: &[u8] = b"flowguard-audit-evolve-v1\n";

/// The next epoch's key. One-way: the earlier key cannot be computed from it.
pub fn evolve(key: &[u8; 32]) -> [u8; 32] {
    let mut input = Vec::with_capacity(EVOLVE.len() + 32);
    input.extend_from_slice(EVOLVE);
    input.extend_from_slice(key);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, &input).as_ref());
    out
}

/// The key of `epoch`, from the first epoch's.
pub fn key_at(key0: &[u8; 32], epoch: u64) -> [u8; 32] {
    let mut k = *key0;
    for _ in 0..epoch {
        k = evolve(&k);
    }
    k
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("the system's random source failed")]
    Random,
}

fn file_err(path: &Path, why: impl ToString) -> KeyError {
    KeyError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// What the writer needs, and nothing it must not keep.
pub struct SealState {
    pub epoch: u64,
    pub key: [u8; 32],
    signing: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SealFile {
    version: u32,
    epoch: u64,
    key: String,
    signing_key: String,
}

/// The verification key, as written to its file.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct VerifyKey {
    pub version: u32,
    /// The HMAC key of epoch 0 (hex).
    pub key0: String,
    /// The Ed25519 public key of checkpoints (hex).
    pub public_key: String,
    pub created: String,
}

impl VerifyKey {
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
        let k: VerifyKey = serde_json::from_str(&text)
            .map_err(|e| file_err(path, format!("not a FlowGuard audit verification key: {e}")))?;
        k.key0_bytes().map_err(|w| file_err(path, w))?;
        k.public_key_bytes().map_err(|w| file_err(path, w))?;
        Ok(k)
    }

    pub fn key0_bytes(&self) -> Result<[u8; 32], String> {
        hex::decode(&self.key0)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| "key0 is not 64 hex digits".to_string())
    }

    pub fn public_key_bytes(&self) -> Result<Vec<u8>, String> {
        hex::decode(&self.public_key)
            .filter(|v| v.len() == 32)
            .ok_or_else(|| "public_key is not 64 hex digits".to_string())
    }
}

impl SealState {
    /// New keys: the seal state and the verification key that goes with it.
    pub fn generate() -> Result<(SealState, VerifyKey), KeyError> {
        let rng = SystemRandom::new();
        let mut key = [0u8; 32];
        rng.fill(&mut key).map_err(|_| KeyError::Random)?;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::Random)?
            .as_ref()
            .to_vec();
        let signing = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Random)?;
        let verify = VerifyKey {
            version: 1,
            key0: hex::encode(&key),
            public_key: hex::encode(signing.public_key().as_ref()),
            created: crate::time::now(),
        };
        Ok((
            SealState {
                epoch: 0,
                key,
                signing,
                pkcs8,
            },
            verify,
        ))
    }

    pub fn load(path: &Path) -> Result<SealState, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
        let f: SealFile = serde_json::from_str(&text)
            .map_err(|e| file_err(path, format!("not a FlowGuard audit seal state: {e}")))?;
        let key = hex::decode(&f.key)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| file_err(path, "key is not 64 hex digits"))?;
        let pkcs8 =
            hex::decode(&f.signing_key).ok_or_else(|| file_err(path, "signing_key is not hex"))?;
        let signing = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| file_err(path, "signing_key is not an Ed25519 PKCS#8 key"))?;
        Ok(SealState {
            epoch: f.epoch,
            key,
            signing,
            pkcs8,
        })
    }

    /// Writes the state atomically (a temporary file, synced, renamed over the old one, the
    /// directory synced), readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let f = SealFile {
            version: 1,
            epoch: self.epoch,
            key: hex::encode(&self.key),
            signing_key: hex::encode(&self.pkcs8),
        };
        let text = serde_json::to_string_pretty(&f).expect("a seal state serialises");
        write_private(path, text.as_bytes()).map_err(|e| file_err(path, e))
    }

    /// Moves to the next epoch; the caller saves the state.
    pub fn evolve(&mut self) {
        self.key = evolve(&self.key);
        self.epoch += 1;
    }

    pub fn sign(&self, msg: &[u8]) -> String {
        hex::encode(self.signing.sign(msg).as_ref())
    }

    pub fn public_key(&self) -> String {
        hex::encode(self.signing.public_key().as_ref())
    }
}

/// Writes a file only its owner can read, atomically.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let tmp = path.with_extension("tmp");
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(d) = dir {
        if let Ok(d) = std::fs::File::open(d) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evolution_is_deterministic_and_saved_state_round_trips() {
        let (mut s, v) = SealState::generate().unwrap();
        let k0 = v.key0_bytes().unwrap();
        assert_eq!(s.key, k0);
        s.evolve();
        s.evolve();
        assert_eq!(s.key, key_at(&k0, 2));
        assert_ne!(s.key, key_at(&k0, 1));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("seal");
        s.save(&p).unwrap();
        let t = SealState::load(&p).unwrap();
        assert_eq!((t.epoch, t.key), (2, s.key));
        assert_eq!(t.public_key(), v.public_key);
    }
}
