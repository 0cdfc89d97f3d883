//! One line of the chain: a JSON object whose last four fields are `seq`, `epoch`, `prev` and
//! `tag`, in that order. With `body` the line as written up to `,"tag":"` and
//! `d = SHA-256(body)`: `tag = HMAC-SHA256(key, label ‖ d)`, and the next line's `prev` is
//! `SHA-256(d ‖ tag)`, which anyone can compute from the line without the key. The body is
//! hashed once.

use crate::hex;
use ring::digest::{digest, Context, SHA256};
use ring::hmac;
use std::fmt::Write;

const TAG_LABEL: &[u8] = b"flowguard-audit-v1\n";
const TAG_FIELD: &str = ",\"tag\":\"";
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An epoch's key, ready to tag (its pads computed once).
pub struct TagKey(hmac::Key);

impl TagKey {
    pub fn new(key: &[u8; 32]) -> Self {
        TagKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }
}

fn tag_of(k: &TagKey, d: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(&k.0);
    ctx.update(TAG_LABEL);
    ctx.update(d);
    ctx.sign()
}

/// `prev` of the line after one with body digest `d` and tag `tag`.
fn link_hash(d: &[u8], tag: &[u8]) -> String {
    let mut c = Context::new(&SHA256);
    c.update(d);
    c.update(tag);
    hex::encode(c.finish().as_ref())
}

/// Seals `fields` (a JSON object's text, `{...}`, without the chain fields) as line `seq`.
pub fn seal(fields: &str, seq: u64, epoch: u64, prev: &str, key: &[u8; 32]) -> String {
    let mut out = String::new();
    seal_into(&mut out, fields, seq, epoch, prev, &TagKey::new(key));
    out
}

/// Appends the sealed line (without a newline) to `out`; returns the hash the next line names.
pub fn seal_into(
    out: &mut String,
    fields: &str,
    seq: u64,
    epoch: u64,
    prev: &str,
    key: &TagKey,
) -> String {
    debug_assert!(fields.starts_with('{') && fields.ends_with('}'));
    let inner = &fields[1..fields.len() - 1];
    let start = out.len();
    out.push('{');
    out.push_str(inner);
    if !inner.trim().is_empty() {
        out.push(',');
    }
    let _ = write!(out, "\"seq\":{seq},\"epoch\":{epoch},\"prev\":\"{prev}\"");
    let d = digest(&SHA256, &out.as_bytes()[start..]);
    let tag = tag_of(key, d.as_ref());
    out.push_str(TAG_FIELD);
    hex::encode_into(out, tag.as_ref());
    out.push_str("\"}");
    link_hash(d.as_ref(), tag.as_ref())
}

/// The chain fields of a line, read back.
#[derive(Debug, Clone)]
pub struct Link {
    pub seq: u64,
    pub epoch: u64,
    pub prev: String,
    pub tag: String,
    /// The JSON object, parsed.
    pub value: serde_json::Value,
    /// What the next line names in `prev`.
    pub hash: String,
    /// SHA-256 of the body.
    digest: Vec<u8>,
}

impl Link {
    /// `None` when the line is not a sealed line (not JSON, or the chain fields are missing or
    /// not where the format puts them).
    pub fn parse(line: &str) -> Option<Link> {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let seq = value.get("seq")?.as_u64()?;
        let epoch = value.get("epoch")?.as_u64()?;
        let prev = value.get("prev")?.as_str()?.to_string();
        let tag = value.get("tag")?.as_str()?.to_string();
        let at = line.rfind(TAG_FIELD)?;
        if line.len() != at + TAG_FIELD.len() + tag.len() + 2 || !line.ends_with("\"}") {
            return None;
        }
        let tag_bytes = hex::decode(&tag).filter(|t| t.len() == 32)?;
        let d = digest(&SHA256, &line.as_bytes()[..at]);
        Some(Link {
            seq,
            epoch,
            prev,
            hash: link_hash(d.as_ref(), &tag_bytes),
            tag,
            digest: d.as_ref().to_vec(),
            value,
        })
    }

    /// Whether the tag is right under `key`.
    pub fn tag_ok(&self, key: &TagKey) -> bool {
        // Tags are not secrets: whoever verifies knows the key.
        hex::encode(tag_of(key, &self.digest).as_ref()) == self.tag
    }

    pub fn kind(&self) -> &str {
        self.value
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("")
    }
}

/// Signs a checkpoint's fields (a JSON object's text) and appends `"sig"`.
pub fn sign_checkpoint(fields: &str, sign: impl Fn(&[u8]) -> String) -> String {
    let body = &fields[..fields.len() - 1];
    let sig = sign(body.as_bytes());
    format!("{body},\"sig\":\"{sig}\"}}")
}

/// Checks a checkpoint line's signature: `Some(value)` when it is good.
pub fn checkpoint_ok(line: &str, public_key: &[u8]) -> Option<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let sig = hex::decode(value.get("sig")?.as_str()?)?;
    let at = line.rfind(",\"sig\":\"")?;
    let pk = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key);
    pk.verify(&line.as_bytes()[..at], &sig).ok()?;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_lines_parse_and_verify() {
        let k = [7u8; 32];
        let l = seal(r#"{"type":"record","tool_name":"echo"}"#, 5, 2, GENESIS, &k);
        let link = Link::parse(&l).unwrap();
        assert_eq!((link.seq, link.epoch, link.kind()), (5, 2, "record"));
        let key = TagKey::new(&k);
        assert!(link.tag_ok(&key));
        assert!(!link.tag_ok(&TagKey::new(&[8u8; 32])));
        let edited = l.replace("echo", "ecko");
        assert!(!Link::parse(&edited).unwrap().tag_ok(&key));
        // The epoch is inside the tagged text.
        let moved = l.replace("\"epoch\":2", "\"epoch\":3");
        assert!(!Link::parse(&moved).unwrap().tag_ok(&key));
        assert!(Link::parse("{\"seq\":1}").is_none());
        assert_eq!(
            seal("{}", 1, 0, GENESIS, &k)
                .split("\"tag\"")
                .next()
                .unwrap(),
            format!("{{\"seq\":1,\"epoch\":0,\"prev\":\"{GENESIS}\",")
        );
    }
}
