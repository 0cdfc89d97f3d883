//! Canonical JSON (object keys sorted by their UTF-8 bytes, no whitespace, strings and numbers
//! as serde_json writes them) and its SHA-256: the same item hashes the same whatever the key
//! order and spacing a server sends it in (ROADMAP G1).

use serde_json::Value;

/// The canonical text of `v`.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v);
    out
}

fn write(out: &mut String, v: &Value) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write(out, &o[k]);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, x);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Lower-case hex SHA-256 of the canonical text of `v`.
pub fn hash(v: &Value) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, canonical(v).as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_and_spacing_do_not_change_the_hash() {
        let a: Value =
            serde_json::from_str(r#"{"name":"t","inputSchema":{"type":"object","properties":{"a":{"type":"string"},"b":{}}}}"#)
                .unwrap();
        let b: Value = serde_json::from_str(
            "{ \"inputSchema\" : { \"properties\" : { \"b\" : { }, \"a\" : { \"type\" : \"string\" } }, \"type\" : \"object\" },\n \"name\" : \"t\" }",
        )
        .unwrap();
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(
            canonical(&a),
            r#"{"inputSchema":{"properties":{"a":{"type":"string"},"b":{}},"type":"object"},"name":"t"}"#
        );
    }

    #[test]
    fn any_change_changes_the_hash() {
        let a = json!({"name": "t", "description": "Reads a file."});
        let b = json!({"name": "t", "description": "Reads a file. "});
        let c = json!({"name": "t", "description": "Reads a file.", "annotations": {}});
        assert_ne!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
        // Array order is meaning (enum values, required lists are compared as sent).
        assert_ne!(hash(&json!([1, 2])), hash(&json!([2, 1])));
        assert_eq!(
            canonical(&json!({"k": "é\n\u{200b}"})),
            "{\"k\":\"é\\n\u{200b}\"}"
        );
    }
}
