//! One line of the chain: a JSON object whose last four fields are `seq`, `epoch`, `prev` and
//! `tag`, in that order. The tag is an HMAC over the line as written up to `,"tag":"`; the next
//! line's `prev` is the SHA-256 of the whole line (without its newline).

use crate::hex;
use ring::digest::{digest, SHA256};
use ring::hmac;

const TAG_LABEL: &[u8] = b"flowguard-audit-v1\n";
const TAG_FIELD: &str = ",\"tag\":\"";
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash a following line names in `prev`.
pub fn line_hash(line: &[u8]) -> String {
    hex::encode(digest(&SHA256, line).as_ref())
}

/// An epoch's key, ready to tag (its pads computed once).
pub struct TagKey(hmac::Key);

impl TagKey {
    pub fn new(key: &[u8; 32]) -> Self {
        TagKey(hmac::Key::new(hmac::HMAC_SHA256, key))
    }
}

fn tag_of(key: &[u8; 32], body: &[u8]) -> String {
    tag_with(&TagKey::new(key), body)
}

fn tag_with(k: &TagKey, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(&k.0);
    ctx.update(TAG_LABEL);
    ctx.update(body);
    hex::encode(ctx.sign().as_ref())
}

/// Seals `fields` (a JSON object's text, `{...}`, without the chain fields) as line `seq`.
pub fn seal(fields: &str, seq: u64, epoch: u64, prev: &str, key: &[u8; 32]) -> String {
    seal_with(fields, seq, epoch, prev, &TagKey::new(key))
}

/// [`seal`] with the epoch's key prepared.
pub fn seal_with(fields: &str, seq: u64, epoch: u64, prev: &str, key: &TagKey) -> String {
    debug_assert!(fields.starts_with('{') && fields.ends_with('}'));
    let inner = &fields[1..fields.len() - 1];
    let sep = if inner.trim().is_empty() { "" } else { "," };
    let body = format!("{{{inner}{sep}\"seq\":{seq},\"epoch\":{epoch},\"prev\":\"{prev}\"");
    let tag = tag_with(key, body.as_bytes());
    format!("{body}{TAG_FIELD}{tag}\"}}")
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
    /// The line's own hash.
    pub hash: String,
    body_len: usize,
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
        Some(Link {
            seq,
            epoch,
            prev,
            tag,
            hash: line_hash(line.as_bytes()),
            value,
            body_len: at,
        })
    }

    /// Whether the tag is right under `key`.
    pub fn tag_ok(&self, line: &str, key: &[u8; 32]) -> bool {
        let want = tag_of(key, &line.as_bytes()[..self.body_len]);
        // Tags are not secrets: whoever verifies knows the key.
        want == self.tag
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
        assert!(link.tag_ok(&l, &k));
        assert!(!link.tag_ok(&l, &[8u8; 32]));
        let edited = l.replace("echo", "ecko");
        assert!(!Link::parse(&edited).unwrap().tag_ok(&edited, &k));
        // The epoch is inside the tagged text.
        let moved = l.replace("\"epoch\":2", "\"epoch\":3");
        assert!(!Link::parse(&moved).unwrap().tag_ok(&moved, &k));
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
