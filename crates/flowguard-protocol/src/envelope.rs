//! JSON-RPC 2.0 envelopes. Only `id` and `method` are decoded; `params`, `result` and `error` stay
//! raw JSON text (`RawValue`) so that a message is forwarded byte for byte, unknown fields and all
//! (DESIGN-NOTES §2). Encoding builds messages by concatenation for the same reason.

use crate::door;
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
    /// `"id": null` was sent (`id` is then `None`): an error reply to an unreadable request may
    /// carry it, a request never (JSON-RPC 2.0 and MCP: an id is a string or a number).
    #[serde(skip)]
    pub id_null: bool,
}

/// A string borrowed from the message unless it has escapes. (serde borrows a `Cow<str>` field
/// only when it is not wrapped in an `Option`; wrapped, every `jsonrpc` and `method` was copied.)
fn borrowed_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(d)?.map(|b| b.0))
}

/// The id's raw text, `null` included (an `Option<&RawValue>` would read `null` as absent);
/// [`Envelope::parse`] turns `null` into `id: None, id_null: true`.
fn raw_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    Ok(Some(Deserialize::deserialize(d)?))
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
    /// A request (it has a `method`) with `"id": null`: not a notification, which has no `id`.
    #[error("not a JSON-RPC 2.0 message: \"id\" must be a string or an integer, not null")]
    NullId,
    /// Valid JSON that serde_json (and so many servers) cannot read: see [`crate::door`]
    /// (`door::MAX_DEPTH` is 127).
    #[error("the message is nested deeper than 127 levels (byte {at} opens level 128)")]
    TooDeep { at: usize },
    #[error("the message holds a lone UTF-16 surrogate escape (\\u{code:04x}) at byte {at}")]
    LoneSurrogate { code: u16, at: usize },
    #[error("the message holds a number out of the range of a 64-bit float at byte {at}")]
    NumberOutOfRange { at: usize },
}

impl EnvelopeError {
    /// The JSON-RPC code to answer with: -32700 (Parse error) when the text is not JSON a
    /// server can read, -32600 (Invalid Request) when it is JSON but not a usable message.
    pub fn code(&self) -> ErrorCode {
        if self.is_parse() {
            ErrorCode::Parse
        } else {
            ErrorCode::InvalidRequest
        }
    }

    /// Whether the text itself is refused (-32700), rather than the message in it (-32600).
    pub fn is_parse(&self) -> bool {
        matches!(
            self,
            EnvelopeError::Parse(_)
                | EnvelopeError::TooDeep { .. }
                | EnvelopeError::LoneSurrogate { .. }
                | EnvelopeError::NumberOutOfRange { .. }
        )
    }
}

impl From<door::Refusal> for EnvelopeError {
    fn from(r: door::Refusal) -> Self {
        match r {
            door::Refusal::TooDeep { at } => EnvelopeError::TooDeep { at },
            door::Refusal::LoneSurrogate { code, at } => EnvelopeError::LoneSurrogate { code, at },
            door::Refusal::NumberOutOfRange { at } => EnvelopeError::NumberOutOfRange { at },
        }
    }
}

impl<'a> Envelope<'a> {
    /// Parses one message. Arrays are refused: batching was removed from MCP in 2025-06-18.
    /// So is JSON that a server's parser would refuse though serde reads it here with
    /// `params` raw: deeper than 127 levels, lone surrogate escapes, numbers beyond `f64`
    /// ([`crate::door`]). For messages from clients, which go on to servers.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        Self::parse_inner::<true>(bytes)
    }

    /// [`Envelope::parse`] without the door's checks, for messages from servers: their reader
    /// is a client, and refusing one would leave its request waiting instead of failing it.
    /// The door's pass costs about 2 instructions a byte, and the full scan, for a message
    /// with more than 127 brackets (a 200 kB `tools/list` reply), about 8.
    pub fn parse_lenient(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
        Self::parse_inner::<false>(bytes)
    }

    #[inline(always)]
    fn parse_inner<const DOOR: bool>(bytes: &'a [u8]) -> Result<Self, EnvelopeError> {
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
        let mut env: Envelope<'a> =
            serde_json::from_str(text).map_err(|e| EnvelopeError::Parse(e.to_string()))?;
        if DOOR {
            door::check(bytes)?;
        }
        if env.id.is_some_and(|id| id.get() == "null") {
            // A client's request with a null id is refused (`NullId`); what a server sends is
            // read as before: a message with a method and a null id is a notification.
            (env.id, env.id_null) = (None, DOOR);
        }
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
            (Some(_), None) if self.id_null => Err(EnvelopeError::NullId),
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
    /// A rate limit or the session's call limit was reached; `data.retryAfter` says when to
    /// try again (HTTP answers 429 with `Retry-After`).
    RateLimited = -32029,
    /// The policy denied the request; the message names the rule.
    Denied = -32040,
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
    fn a_null_id_makes_a_request_invalid_not_a_notification() {
        let k = |s: &str| Envelope::parse(s.as_bytes()).and_then(|e| e.kind());
        let err = k(r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{}}"#);
        assert_eq!(err, Err(EnvelopeError::NullId));
        assert_eq!(err.unwrap_err().code(), ErrorCode::InvalidRequest);
        assert_eq!(
            EnvelopeError::NullId.to_string(),
            "not a JSON-RPC 2.0 message: \"id\" must be a string or an integer, not null"
        );
        let reply = Envelope::parse(br#"{"jsonrpc":"2.0","id" : null,"error":{}}"#).unwrap();
        assert_eq!((reply.kind(), reply.id_null), (Ok(Kind::Response), true));
        assert!(reply.id.is_none());
        let note = Envelope::parse(br#"{"jsonrpc":"2.0","method":"x"}"#).unwrap();
        assert_eq!((note.kind(), note.id_null), (Ok(Kind::Notification), false));
    }

    #[test]
    fn what_a_server_cannot_read_is_refused_at_the_door() {
        let msg = |params: &str| {
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#)
        };
        // The message is level 1, params level 2: 125 more arrays make 127 levels in all.
        let deep = |n: usize| msg(&format!("{}{}", "[".repeat(n), "]".repeat(n)));
        assert!(Envelope::parse(deep(126).as_bytes()).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&deep(126)).is_ok());
        let err = Envelope::parse(deep(127).as_bytes()).unwrap_err();
        assert!(serde_json::from_str::<serde_json::Value>(&deep(127)).is_err());
        assert_eq!(err, EnvelopeError::TooDeep { at: 181 });
        assert_eq!(
            err.to_string(),
            "the message is nested deeper than 127 levels (byte 181 opens level 128)"
        );
        assert_eq!(err.code(), ErrorCode::Parse);

        let lone = msg(r#"{"name":"x","arguments":{"q":"\ud800"}}"#);
        let err = Envelope::parse(lone.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            EnvelopeError::LoneSurrogate {
                code: 0xd800,
                at: 85
            }
        );
        assert_eq!(
            err.to_string(),
            "the message holds a lone UTF-16 surrogate escape (\\ud800) at byte 85"
        );
        assert_eq!(err.code(), ErrorCode::Parse);
        let pair = msg(r#"{"q":"\ud83d\ude00","r":"\\ud800"}"#);
        assert!(Envelope::parse(pair.as_bytes()).is_ok());

        let huge = msg(r#"{"n":1e400}"#);
        let err = Envelope::parse(huge.as_bytes()).unwrap_err();
        assert_eq!(err, EnvelopeError::NumberOutOfRange { at: 60 });
        assert_eq!(err.code(), ErrorCode::Parse);
        // Outside params too: a deep id, an unknown field.
        let unknown = r#"{"jsonrpc":"2.0","method":"x","extra":"\udc00"}"#;
        assert!(Envelope::parse(unknown.as_bytes()).is_err());
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

    #[test]
    fn a_null_id_is_refused_from_clients_and_read_as_a_notification_from_servers() {
        let msg = br#"{"jsonrpc":"2.0","id":null,"method":"notifications/progress","params":{}}"#;
        assert_eq!(Envelope::parse(msg).unwrap_err(), EnvelopeError::NullId);
        let env = Envelope::parse_lenient(msg).expect("a server's message");
        assert_eq!(env.kind(), Ok(Kind::Notification));
    }
}
