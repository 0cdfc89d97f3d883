//! Translation between the eras on the way up. Every server behind the gateway is initialized in
//! the handshake era, and a dual-era server (the Python SDK 2.x, for one) locks a connection to
//! the era of its first message: once initialized, a request whose `params._meta` carries the
//! 2026-07-28 envelope (`io.modelcontextprotocol/protocolVersion`, ...) is refused with -32600.
//! So the envelope keys, which only the gateway acts on, are removed before a stateless
//! client's request goes up; everything else in `params` (`progressToken`, other `_meta` keys,
//! arguments) is kept. The way back is `call::complete` (`resultType`, serverInfo).

use flowguard_protocol::{encode, modern};
use serde_json::Value;

/// The `_meta` keys of the 2026-07-28 request envelope: what a handshake-era server must not see.
const ENVELOPE_KEYS: [&str; 4] = [
    modern::META_PROTOCOL_VERSION,
    modern::META_CLIENT_CAPABILITIES,
    modern::META_CLIENT_INFO,
    modern::META_LOG_LEVEL,
];

/// `params` without the envelope keys (and without `_meta` when nothing else was in it), or
/// `None` when there was nothing to remove.
pub(crate) fn handshake_params(params: &Value) -> Option<Value> {
    let meta = params.get("_meta")?.as_object()?;
    if !ENVELOPE_KEYS.iter().any(|k| meta.contains_key(*k)) {
        return None;
    }
    let mut out = params.clone();
    let obj = out.as_object_mut()?;
    let meta = obj.get_mut("_meta")?.as_object_mut()?;
    for k in ENVELOPE_KEYS {
        meta.remove(k);
    }
    if meta.is_empty() {
        obj.remove("_meta");
    }
    Some(out)
}

/// The request re-encoded for a handshake-era server, or `None` when it can go up as it is.
pub(crate) fn handshake_request(id: &str, method: &str, params: &Value) -> Option<Vec<u8>> {
    let params = handshake_params(params)?;
    let raw = serde_json::value::to_raw_value(&params).ok()?;
    Some(encode::request(id, method, Some(&raw)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_keys_are_removed_and_the_rest_kept() {
        let p = json!({
            "name": "get_current_time",
            "arguments": {"timezone": "UTC"},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
                "io.modelcontextprotocol/logLevel": "info",
                "progressToken": 7,
                "io.modelcontextprotocol/related-task": {"taskId": "t"}
            }
        });
        let out = handshake_params(&p).expect("keys to remove");
        assert_eq!(
            out,
            json!({
                "name": "get_current_time",
                "arguments": {"timezone": "UTC"},
                "_meta": {"progressToken": 7, "io.modelcontextprotocol/related-task": {"taskId": "t"}}
            })
        );
    }

    #[test]
    fn an_empty_meta_is_dropped_and_clean_params_are_left_alone() {
        let p = json!({"name": "x", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        assert_eq!(handshake_params(&p), Some(json!({"name": "x"})));
        assert_eq!(
            handshake_params(&json!({"name": "x", "_meta": {"progressToken": 1}})),
            None
        );
        assert_eq!(handshake_params(&json!({"name": "x"})), None);
        assert_eq!(handshake_params(&Value::Null), None);
    }

    #[test]
    fn the_request_is_re_encoded_with_its_id() {
        let p = json!({"name": "x", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        let bytes = handshake_request("\"a\"", "tools/call", &p).expect("re-encoded");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}})
        );
    }
}
