//! The 2026-07-28 ("stateless") revision's wire details that the gateway acts on: the reserved
//! `_meta` keys, the encoded header values of `Mcp-Name`, log levels, and splicing the fields
//! every modern result carries (`resultType`, `_meta` serverInfo) into a result's raw text
//! without re-serializing it.

use serde_json::value::RawValue;
use std::collections::HashMap;

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Request headers of the revision (names are case-insensitive; axum lowercases them).
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";

/// Log levels from least to most severe (RFC 5424 names, as MCP uses them).
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The severity rank of a log level name, `None` for an unknown name.
pub fn log_rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

/// A header value as the client meant it: `=?base64?<b64>?=` is decoded (values that are not
/// plain ASCII travel that way); anything else is taken as it is. `None` when the encoded form
/// is not valid base64 of UTF-8 text.
pub fn decode_header_value(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(b64) => String::from_utf8(base64_decode(b64)?).ok(),
        None => Some(value.to_string()),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= sextet(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// `result` (a JSON object's text) with `fields` added at its top level and `meta` entries
/// added to its `_meta`, each only where the key is absent; values are JSON text. Everything
/// already there is copied as it was. A result that is not an object is returned unchanged.
pub fn splice_result(result: &str, fields: &[(&str, &str)], meta: &[(&str, &str)]) -> String {
    let Ok(top) = serde_json::from_str::<HashMap<String, &RawValue>>(result) else {
        return result.to_string();
    };
    let mut out = result.to_string();
    let mut top_add: Vec<String> = pairs(fields, |k| top.contains_key(k));
    match top.get("_meta") {
        Some(m) if m.get().starts_with('{') => {
            let existing: HashMap<String, &RawValue> =
                serde_json::from_str(m.get()).unwrap_or_default();
            let add = pairs(meta, |k| existing.contains_key(k));
            // The `_meta` value is a slice of `result`: its offset is where to insert.
            let at = m.get().as_ptr() as usize - result.as_ptr() as usize + 1;
            insert_pairs(&mut out, at, &add, !existing.is_empty());
        }
        Some(_) => {}
        None if !meta.is_empty() => {
            let inner = pairs(meta, |_| false).join(",");
            top_add.push(format!("\"_meta\":{{{inner}}}"));
        }
        None => {}
    }
    let at = result.find('{').map_or(0, |i| i + 1);
    insert_pairs(&mut out, at, &top_add, !top.is_empty());
    out
}

fn pairs(items: &[(&str, &str)], present: impl Fn(&str) -> bool) -> Vec<String> {
    items
        .iter()
        .filter(|(k, _)| !present(k))
        .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(*k)))
        .collect()
}

fn insert_pairs(out: &mut String, at: usize, add: &[String], object_has_keys: bool) {
    if add.is_empty() {
        return;
    }
    let mut text = add.join(",");
    if object_has_keys {
        text.push(',');
    }
    out.insert_str(at, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_decode_base64_sentinels() {
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        // "héllo" in base64
        assert_eq!(
            decode_header_value("=?base64?aMOpbGxv?=").as_deref(),
            Some("héllo")
        );
        assert_eq!(decode_header_value("=?base64?!!?="), None);
    }

    #[test]
    fn splicing_adds_only_what_is_absent_and_keeps_the_rest() {
        let info = r#"{"name":"fg"}"#;
        let fields = [("resultType", r#""complete""#)];
        let meta = [(META_SERVER_INFO, info)];
        let out = splice_result(r#"{"content":[1, 2]}"#, &fields, &meta);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["resultType"], "complete");
        assert_eq!(v["_meta"][META_SERVER_INFO]["name"], "fg");
        assert!(out.contains("[1, 2]"), "values copied as text: {out}");

        let out = splice_result(r#"{}"#, &fields, &meta);
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );

        let out = splice_result(
            r#"{"resultType":"input_required","_meta":{"x":1}}"#,
            &fields,
            &meta,
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["resultType"], "input_required");
        assert_eq!(v["_meta"]["x"], 1);
        assert_eq!(v["_meta"][META_SERVER_INFO]["name"], "fg");

        let out = splice_result(r#"{"_meta":{}}"#, &fields, &meta);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["_meta"][META_SERVER_INFO]["name"], "fg");
        assert_eq!(splice_result("[1]", &fields, &meta), "[1]");
    }

    #[test]
    fn log_levels_are_ordered() {
        assert!(log_rank("error") > log_rank("info"));
        assert_eq!(log_rank("loud"), None);
    }
}
