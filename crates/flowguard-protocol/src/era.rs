//! Translation between the eras on the way up (used by the gateway's stateless front end,
//! `flowguard-gateway/src/downstream/modern`). Every server behind the gateway is initialized in
//! the handshake era, and a dual-era server (the Python SDK 2.x, for one) locks a connection to
//! the era of its first message: once initialized, a request whose `params._meta` carries the
//! 2026-07-28 envelope (`io.modelcontextprotocol/protocolVersion`, ...) is refused with -32600.
//! So the envelope keys, which only the gateway acts on, are removed before a stateless
//! client's request goes up; everything else in `params` (`progressToken`, other `_meta` keys,
//! arguments) is kept as the client wrote it: members are spliced as raw text, in their order,
//! so numbers beyond f64 and key order survive (DESIGN-NOTES §2). The way back is the
//! gateway's `call::complete` (`resultType`, serverInfo, with [`crate::modern::splice_result`]).

use crate::{encode, modern};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The `_meta` keys of the 2026-07-28 request envelope: what a handshake-era server must not see.
const ENVELOPE_KEYS: [&str; 4] = [
    modern::META_PROTOCOL_VERSION,
    modern::META_CLIENT_CAPABILITIES,
    modern::META_CLIENT_INFO,
    modern::META_LOG_LEVEL,
];

/// A JSON object's members in their order, each value as its raw text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Ordered)
    }
}

impl Members<'_> {
    fn text(&self) -> String {
        let mut out = String::from("{");
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).expect("a string serializes"));
            out.push(':');
            out.push_str(v.get());
        }
        out.push('}');
        out
    }
}

/// `params` without the envelope keys (and without `_meta` when nothing else was in it), as
/// text, or `None` when there was nothing to remove.
pub fn handshake_params(params: &RawValue) -> Option<String> {
    let mut top: Members = serde_json::from_str(params.get()).ok()?;
    let at = top.0.iter().position(|(k, _)| k == "_meta")?;
    let mut meta: Members = serde_json::from_str(top.0[at].1.get()).ok()?;
    let before = meta.0.len();
    meta.0.retain(|(k, _)| !ENVELOPE_KEYS.contains(&k.as_str()));
    if meta.0.len() == before {
        return None;
    }
    let meta_text = meta.text();
    let meta_raw;
    if meta.0.is_empty() {
        top.0.remove(at);
    } else {
        meta_raw = RawValue::from_string(meta_text).ok()?;
        top.0[at].1 = &meta_raw;
    }
    Some(top.text())
}

/// The request re-encoded for a handshake-era server, or `None` when it can go up as it is.
pub fn handshake_request(id: &str, method: &str, params: Option<&RawValue>) -> Option<Vec<u8>> {
    let text = handshake_params(params?)?;
    let raw = RawValue::from_string(text).ok()?;
    Some(encode::request(id, method, Some(&raw)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn envelope_keys_are_removed_and_the_rest_kept_byte_for_byte() {
        let p = raw(
            r#"{"name":"get_current_time","arguments":{"z":1,"a":12345678901234567890123,"t":"UTC"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":7,"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"io.modelcontextprotocol/logLevel":"info","io.modelcontextprotocol/related-task":{"taskId":"t"}}}"#,
        );
        let out = handshake_params(&p).expect("keys to remove");
        assert_eq!(
            out,
            r#"{"name":"get_current_time","arguments":{"z":1,"a":12345678901234567890123,"t":"UTC"},"_meta":{"progressToken":7,"io.modelcontextprotocol/related-task":{"taskId":"t"}}}"#
        );
    }

    #[test]
    fn an_empty_meta_is_dropped_and_clean_params_are_left_alone() {
        let p =
            raw(r#"{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#);
        assert_eq!(handshake_params(&p).as_deref(), Some(r#"{"name":"x"}"#));
        assert_eq!(
            handshake_params(&raw(r#"{"name":"x","_meta":{"progressToken":1}}"#)),
            None
        );
        assert_eq!(handshake_params(&raw(r#"{"name":"x"}"#)), None);
        assert_eq!(handshake_params(&raw("null")), None);
        assert_eq!(handshake_params(&raw(r#"{"_meta":7}"#)), None);
    }

    #[test]
    fn the_request_is_re_encoded_with_its_id() {
        let p =
            raw(r#"{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#);
        let bytes = handshake_request("\"a\"", "tools/call", Some(&p)).expect("re-encoded");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}})
        );
    }
}
