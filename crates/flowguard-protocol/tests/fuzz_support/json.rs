//! Generators of raw JSON text (not `serde_json::Value`, which cannot hold what the door is
//! about: lone surrogate escapes, nesting past serde's limit, numbers beyond `f64`), of
//! JSON-RPC messages made of it, and of mutations of those.

use proptest::prelude::*;

/// A string literal: plain characters, brackets and quotes that must not count as structure,
/// and escapes, surrogate ones often.
pub fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9 ,:éあ🙂]{0,6}",
        1 => Just(r"\\".to_string()),
        1 => Just(r#"\""#.to_string()),
        1 => Just(r"\n".to_string()),
        1 => Just("[{]}".to_string()),
        1 => Just(r"\\u".to_string()), // an escaped backslash before `u`: not an escape
        1 => (0u32..0x10000).prop_map(|c| format!("\\u{c:04x}")),
        2 => (0xd7f0u32..0xe010).prop_map(|c| format!("\\u{c:04X}")),
        1 => (0xd800u32..0xdc00, 0xdc00u32..0xe000)
            .prop_map(|(h, l)| format!("\\u{h:04x}\\u{l:04x}")),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// A number: small, large, with exponents around `f64`'s limits, very long.
pub fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<i64>().prop_map(|n| n.to_string()),
        2 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
        2 => ("-?[1-9][0-9]{0,3}(\\.[0-9]{1,3})?", "[eE][+-]?", 290u32..330)
            .prop_map(|(m, e, x)| format!("{m}{e}{x}")),
        1 => ("-?[1-9]", 280usize..330).prop_map(|(d, n)| format!("{d}{}", "9".repeat(n))),
        1 => "-?0\\.[0-9]{1,400}",
    ]
}

/// Any JSON value as text, nested up to about `depth` levels, with now and then a run of
/// arrays around a value that goes past (or stops just short of) serde's 128 levels.
pub fn value(depth: u32) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        number(),
        string(),
    ];
    let nested = leaf.prop_recursive(depth, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((string(), inner), 0..6).prop_map(|m| {
                let members: Vec<String> = m.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    });
    (nested, prop_oneof![8 => Just(0usize), 1 => 110usize..135])
        .prop_map(|(v, deep)| format!("{}{v}{}", "[".repeat(deep), "]".repeat(deep)))
}

/// A JSON-RPC message, fields in any order, some missing or of the wrong type.
pub fn message() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just(None),
        any::<i64>().prop_map(|n| Some(n.to_string())),
        string().prop_map(Some),
        Just(Some("null".to_string())),
        Just(Some("1.5".to_string())),
        Just(Some("[1]".to_string())),
    ];
    let method = prop_oneof![
        Just(None),
        Just(Some(r#""tools/call""#.to_string())),
        Just(Some(r#""notifications/progress""#.to_string())),
        string().prop_map(Some),
    ];
    let version = prop_oneof![8 => Just(Some(r#""2.0""#.to_string())), 1 => Just(None),
        1 => Just(Some(r#""1.0""#.to_string()))];
    let payload = prop::option::of(value(4));
    let which = prop_oneof![Just("params"), Just("result"), Just("error"), Just("extra")];
    (
        version,
        id,
        method,
        payload,
        which,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(version, id, method, payload, which, order)| {
            let mut fields: Vec<String> = [
                version.map(|v| format!(r#""jsonrpc":{v}"#)),
                id.map(|v| format!(r#""id":{v}"#)),
                method.map(|v| format!(r#""method":{v}"#)),
                payload.map(|v| format!(r#""{which}":{v}"#)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let turn = order.index(fields.len().max(1)).min(fields.len());
            fields.rotate_left(turn);
            format!("{{{}}}", fields.join(","))
        })
}

/// Changes to a message: cut short, a byte changed, inserted or removed, a BOM before it,
/// CRLF or NUL after it, wrapped in an array, doubled.
pub fn mutated(text: String) -> impl Strategy<Value = Vec<u8>> {
    let bytes = text.into_bytes();
    let len = bytes.len();
    (0usize..=len, any::<u8>(), 0u8..9).prop_map(move |(at, byte, how)| {
        let mut b = bytes.clone();
        match how {
            0 => b.truncate(at),
            1 if at < len => b[at] = byte,
            2 => b.insert(at, byte),
            3 if at < len => {
                b.remove(at);
            }
            4 => b.splice(0..0, *b"\xEF\xBB\xBF").for_each(drop),
            5 => b.extend_from_slice(b"\r\n"),
            6 => b.insert(at, 0),
            7 => {
                b.insert(0, b'[');
                b.push(b']');
            }
            _ => b.extend_from_slice(&bytes),
        }
        b
    })
}
