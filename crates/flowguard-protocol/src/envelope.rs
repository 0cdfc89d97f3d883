//! JSON-RPC 2.0 envelopes. Only `id` and `method` are decoded; `params`, `result` and `error` stay
//! raw JSON text (`RawValue`) so that a message is forwarded byte for byte, unknown fields and all
//! (DESIGN-NOTES §2). Encoding builds messages by concatenation for the same reason.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A JSON-RPC id kept as the exact JSON text the sender used (`"abc"`, `42`, `0`, `-1`), so that it
/// is restored exactly when a reply goes back.
pub type RawId = Box<RawValue>;

/// A message borrowed from the buffer it was parsed from.
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    pub jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "raw_id")]
    pub id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "borrowed_str")]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub error: Option<&'a RawValue>,
}

/// A string borrowed from the message unless it has escapes. (serde borrows a `Cow<str>` field
/// only when it is not wrapped in an `Option`; wrapped, every `jsonrpc` and `method` was copied.)
fn borrowed_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(d)?.map(|b| b.0))
}

/// `"id": null` is kept as absent: a request may never use it, and an error reply to an
/// unparseable request carries it.
fn raw_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    let raw: &'de RawValue = Deserialize::deserialize(d)?;
    Ok(if raw.get() == "null" { None } else { Some(raw) })
}

/// What a message is, decided from which envelope fields are present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// Why a body is not a JSON-RPC message we can act on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the body is not valid JSON: {0}")]
    Parse(String),
    #[error("batches (JSON arrays) are not supported; send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
}

impl<'a> Envelope<'a> {
    /// Parses one message. Arrays are refused: batching was removed from MCP in 2025-06-18.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            return Err(EnvelopeError::Batch);
        }
        // One UTF-8 check of the whole message, then serde's `&str` reader, which trusts it:
        // from bytes, serde validates every string and raw value again (with the byte-level
        // `Accept` parse, this took a routed call from 36.5k to 35.5k instructions; History in
        // docs/benchmarks.md).
        let text = std::str::from_utf8(bytes)
            .map_err(|e| EnvelopeError::Parse(format!("it is not UTF-8 ({e})")))?;
        let env: Envelope<'a> =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Parse(e.to_string()))?;
        env.kind()?;
        Ok(env)
    }

    pub fn kind(&self) -> Result<Kind, EnvelopeError> {
        if self.jsonrpc.as_deref() != Some("2.0") {
            return Err(EnvelopeError::Invalid("\"jsonrpc\" must be \"2.0\""));
        }
        match (&self.method, &self.id) {
            (Some(_), Some(id)) if is_valid_id(id) => Ok(Kind::Request),
            (Some(_), Some(_)) => Err(EnvelopeError::Invalid(
                "\"id\" must be a string or an integer",
            )),
            (Some(_), None) => Ok(Kind::Notification),
            (None, _) if self.result.is_some() || self.error.is_some() => Ok(Kind::Response),
            (None, _) => Err(EnvelopeError::Invalid(
                "no \"method\", \"result\" or \"error\"",
            )),
        }
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }
}

/// Strings and integers are valid ids; fractions, objects, arrays and booleans are not.
fn is_valid_id(id: &RawValue) -> bool {
    let t = id.get();
    if t.starts_with('"') {
        return true;
    }
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// JSON-RPC error codes the gateway itself uses; `docs/errors.md` lists each with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Parse = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    Internal = -32603,
    /// The upstream server is not available (exited, failed to start, connection refused).
    Unavailable = -32000,
    /// The upstream server did not answer within the request timeout.
    Timeout = -32001,
    /// 2026-07-28: an HTTP header is missing or disagrees with the body.
    HeaderMismatch = -32020,
    /// 2026-07-28: serving the request needs a client capability it did not declare.
    MissingCapability = -32021,
    /// 2026-07-28: the request's protocol version is not one the gateway speaks.
    UnsupportedVersion = -32022,
}

/// Builders for outgoing messages. Raw parts are spliced in unchanged.
pub mod encode {
    use super::*;

    fn push_str(out: &mut Vec<u8>, s: &str) {
        serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
    }

    pub fn request(id: &str, method: &str, params: Option<&RawValue>) -> Vec<u8> {
        call(Some(id), method, params)
    }

    pub fn notification(method: &str, params: Option<&RawValue>) -> Vec<u8> {
        call(None, method, params)
    }

    /// A request (with an id) or a notification (without).
    fn call(id: Option<&str>, method: &str, params: Option<&RawValue>) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + params.map_or(0, |p| p.get().len()));
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",");
        if let Some(id) = id {
            out.extend_from_slice(b"\"id\":");
            out.extend_from_slice(id.as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"method\":");
        push_str(&mut out, method);
        if let Some(p) = params {
            out.extend_from_slice(b",\"params\":");
            out.extend_from_slice(p.get().as_bytes());
        }
        out.push(b'}');
        out
    }

    /// A reply with `result` or `error` spliced in raw (exactly one of them should be given).
    pub fn response(id: &str, result: Option<&RawValue>, error: Option<&RawValue>) -> Vec<u8> {
        let body = result.or(error).map_or("null", |r| r.get());
        let mut out = Vec::with_capacity(40 + id.len() + body.len());
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(if error.is_some() && result.is_none() {
            b",\"error\":"
        } else {
            b",\"result\":"
        });
        out.extend_from_slice(body.as_bytes());
        out.push(b'}');
        out
    }

    /// A success reply around a result the caller built as JSON text itself (no re-validation:
    /// the caller guarantees it is one JSON value).
    pub fn result_json(id: &str, result: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(40 + id.len() + result.len());
        result_opening(&mut out, id);
        out.extend_from_slice(result);
        out.push(b'}');
        out
    }

    /// The start of a result reply, up to the result itself (which the caller writes, then
    /// `}`): for results built in place rather than copied in.
    pub fn result_opening(out: &mut Vec<u8>, id: &str) {
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b",\"result\":");
    }

    pub fn result_value(id: &str, result: &serde_json::Value) -> Vec<u8> {
        let raw = serde_json::value::to_raw_value(result).expect("a Value always serializes");
        response(id, Some(&raw), None)
    }

    /// An error reply; `id` is `None` when the request's id could not be read.
    pub fn error(id: Option<&str>, code: ErrorCode, message: &str) -> Vec<u8> {
        error_with_data(id, code as i64, message, None)
    }

    pub fn error_with_data(
        id: Option<&str>,
        code: i64,
        message: &str,
        data: Option<&serde_json::Value>,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(80 + message.len());
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(id.unwrap_or("null").as_bytes());
        out.extend_from_slice(format!(",\"error\":{{\"code\":{code},\"message\":").as_bytes());
        push_str(&mut out, message);
        if let Some(d) = data {
            out.extend_from_slice(b",\"data\":");
            serde_json::to_writer(&mut out, d).expect("writing to a Vec cannot fail");
        }
        out.extend_from_slice(b"}}");
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_that_is_not_utf8_is_a_parse_error_that_says_so() {
        let bad = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"\xff\"}}";
        match super::Envelope::parse(bad) {
            Err(super::EnvelopeError::Parse(e)) => assert!(e.contains("not UTF-8"), "{e}"),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn method_and_version_are_borrowed_unless_escaped() {
        use std::borrow::Cow;
        let plain = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#;
        let env = super::Envelope::parse(plain).expect("valid");
        assert!(matches!(env.method, Some(Cow::Borrowed("tools/call"))));
        assert!(matches!(env.jsonrpc, Some(Cow::Borrowed("2.0"))));
        let escaped = br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call"}"#;
        let env = super::Envelope::parse(escaped).expect("valid");
        assert_eq!(env.method(), "tools/call");
        assert!(matches!(env.method, Some(Cow::Owned(_))));
        let null_method = br#"{"jsonrpc":"2.0","id":1,"method":null,"result":{}}"#;
        let env = super::Envelope::parse(null_method).expect("valid");
        assert!(env.method.is_none());
    }

    use super::*;

    #[test]
    fn kinds_are_told_apart() {
        let k = |s: &str| Envelope::parse(s.as_bytes()).and_then(|e| e.kind());
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Kind::Request)
        );
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","method":"x"}"#),
            Ok(Kind::Notification)
        );
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Kind::Response)
        );
        assert_eq!(
            k(r#"{"jsonrpc":"2.0","id":null,"error":{}}"#),
            Ok(Kind::Response)
        );
        assert!(k(r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#).is_err());
        assert!(k(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#).is_err());
        assert_eq!(k("[1]").unwrap_err(), EnvelopeError::Batch);
        assert!(matches!(k("{nope"), Err(EnvelopeError::Parse(_))));
    }

    #[test]
    fn ids_round_trip_exactly() {
        for id in [r#""abc""#, "42", "0", "-1", r#""""#, r#""a\"b""#] {
            let text =
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m","params":{{"a":[1, 2]}}}}"#);
            let env = Envelope::parse(text.as_bytes()).unwrap();
            assert_eq!(env.id.unwrap().get(), id);
            let again = encode::request(env.id.unwrap().get(), env.method(), env.params);
            let back = Envelope::parse(&again).unwrap();
            assert_eq!(back.id.unwrap().get(), id);
            assert_eq!(back.params.unwrap().get(), r#"{"a":[1, 2]}"#);
        }
    }

    #[test]
    fn error_replies_are_valid_json() {
        let e = encode::error(Some("7"), ErrorCode::Timeout, "no \"reply\"");
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["error"]["code"], -32001);
        assert_eq!(v["id"], 7);
        let e = encode::error(None, ErrorCode::Parse, "bad");
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert!(v["id"].is_null());
    }
}
