//! One HTTP/1.1 keep-alive connection per task (`hyper::client::conn::http1`), MCP requests over
//! it, and the checks every reply goes through. Replies are read to the end, as JSON or as SSE.

use crate::stats::{ErrorKind, Failure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::borrow::Cow;
use std::future::Future;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub const PROTOCOL_VERSION: &str = "2025-06-18";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

pub type Sender = SendRequest<Full<Bytes>>;

/// Where the requests go: `http://host:port/path`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub path: String,
    pub timeout: Duration,
    /// An `Authorization` header sent with every request (a bearer token), if any.
    pub authorization: Option<HeaderValue>,
}

impl Target {
    pub fn parse(url: &str, timeout: Duration) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let hostport = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Target {
            addr,
            host: HeaderValue::from_str(authority).map_err(|e| format!("{url}: {e}"))?,
            path: path.to_string(),
            timeout,
            authorization: None,
        })
    }
}

/// Opens one connection, runs `work` with its sender, and drives the connection in the same
/// task until `work` is done (then gives it a moment to close cleanly).
pub async fn with_connection<F, Fut, T>(target: &Target, work: F) -> Result<T, Failure>
where
    F: FnOnce(Sender) -> Fut,
    Fut: Future<Output = T>,
{
    let stream = tokio::time::timeout(target.timeout, TcpStream::connect(target.addr))
        .await
        .map_err(|_| Failure::new(ErrorKind::Transport, "connect: timed out"))?
        .map_err(|e| Failure::new(ErrorKind::Transport, format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::new(ErrorKind::Transport, format!("handshake: {e}")))?;
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work(sender));
    let mut conn_done = false;
    let out = loop {
        tokio::select! {
            _ = &mut conn, if !conn_done => conn_done = true,
            out = &mut work => break out,
        }
    };
    if !conn_done {
        let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
    }
    Ok(out)
}

/// A whole reply.
pub struct Reply {
    /// When the last byte of the body arrived (latencies stop here, before any checking).
    pub done: Instant,
    pub status: StatusCode,
    pub sse: bool,
    pub session: Option<HeaderValue>,
    pub body: Bytes,
}

impl Reply {
    fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut s: String = text.chars().take(200).collect();
        if text.chars().count() > 200 {
            s.push('…');
        }
        s
    }
}

/// POSTs one JSON-RPC message and reads the reply to its end.
pub async fn post(
    sender: &mut Sender,
    target: &Target,
    session: Option<&HeaderValue>,
    with_version: bool,
    body: Vec<u8>,
) -> Result<Reply, Failure> {
    let exchange = async {
        sender
            .ready()
            .await
            .map_err(|e| Failure::new(ErrorKind::Transport, format!("connection: {e}")))?;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(target.path.as_str())
            .header(HOST, target.host.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, ACCEPT_BOTH);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s.clone());
        }
        if let Some(a) = &target.authorization {
            req = req.header(hyper::header::AUTHORIZATION, a.clone());
        }
        if with_version {
            req = req.header("mcp-protocol-version", PROTOCOL_VERSION);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::new(ErrorKind::Transport, format!("request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Failure::new(ErrorKind::Transport, format!("request: {e}")))?;
        let status = resp.status();
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let session = resp.headers().get("mcp-session-id").cloned();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::new(ErrorKind::Transport, format!("reading the body: {e}")))?
            .to_bytes();
        Ok(Reply {
            done: Instant::now(),
            status,
            sse,
            session,
            body,
        })
    };
    match tokio::time::timeout(target.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            ErrorKind::Transport,
            format!("no complete reply within {:?}", target.timeout),
        )),
    }
}

/// The data of each event of an SSE body (events without data are skipped). Lines of a
/// multi-line event are joined with `\n`, as the SSE spec says.
pub fn sse_events(body: &[u8]) -> Vec<Cow<'_, [u8]>> {
    let mut out = Vec::new();
    let mut cur: Option<Cow<'_, [u8]>> = None;
    for mut line in body.split(|&b| b == b'\n') {
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.is_empty() {
            out.extend(cur.take());
        } else if let Some(mut data) = line.strip_prefix(b"data:") {
            if data.first() == Some(&b' ') {
                data = &data[1..];
            }
            cur = Some(match cur.take() {
                None => Cow::Borrowed(data),
                Some(prev) => {
                    let mut v = prev.into_owned();
                    v.push(b'\n');
                    v.extend_from_slice(data);
                    Cow::Owned(v)
                }
            });
        }
    }
    out.extend(cur);
    out.retain(|d| !d.iter().all(u8::is_ascii_whitespace));
    out
}

/// The JSON-RPC response to request `id` in a reply (JSON or SSE), other messages skipped.
pub fn response(reply: &Reply, id: u64) -> Result<Value, Failure> {
    if reply.status != StatusCode::OK {
        return Err(Failure::new(
            ErrorKind::HttpStatus,
            format!("HTTP {}: {}", reply.status, reply.snippet()),
        ));
    }
    let messages: Vec<Value> = if reply.sse {
        let mut v = Vec::new();
        for data in sse_events(&reply.body) {
            // An event whose data spans several lines keeps its line breaks, which JSON allows.
            let msg = serde_json::from_slice::<Value>(&data).map_err(|e| {
                Failure::new(
                    ErrorKind::Parse,
                    format!("SSE event is not JSON ({e}): {}", reply.snippet()),
                )
            })?;
            v.push(msg);
        }
        v
    } else {
        vec![serde_json::from_slice::<Value>(&reply.body).map_err(|e| {
            Failure::new(
                ErrorKind::Parse,
                format!("body is not JSON ({e}): {}", reply.snippet()),
            )
        })?]
    };
    let mut other = None;
    for msg in messages {
        let is_response =
            msg.get("id").is_some() && (msg.get("result").is_some() || msg.get("error").is_some());
        if !is_response {
            continue;
        }
        if msg.get("id").and_then(Value::as_u64) == Some(id) {
            return Ok(msg);
        }
        other = Some(msg);
    }
    match other {
        Some(msg) => Err(Failure::new(
            ErrorKind::WrongId,
            format!("expected id {id}, got {}", msg["id"]),
        )),
        None => Err(Failure::new(
            ErrorKind::Parse,
            format!("no JSON-RPC response in the reply: {}", reply.snippet()),
        )),
    }
}

/// The `result` of a response; an `error` reply is a failure.
pub fn result(msg: &Value) -> Result<&Value, Failure> {
    if let Some(err) = msg.get("error") {
        return Err(Failure::new(ErrorKind::ErrorReply, format!("error {err}")));
    }
    msg.get("result")
        .ok_or_else(|| Failure::new(ErrorKind::ErrorReply, "no result"))
}

/// Checks a `tools/call` reply: our id, a result, `isError` false, the message echoed back.
pub fn check_call(reply: &Reply, id: u64, message: &str) -> Result<(), Failure> {
    let msg = response(reply, id)?;
    let result = result(&msg)?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(Failure::new(
            ErrorKind::ErrorReply,
            format!("isError: {result}"),
        ));
    }
    let text = result.pointer("/content/0/text").and_then(Value::as_str);
    if text != Some(message) {
        return Err(Failure::new(
            ErrorKind::WrongContent,
            format!("expected {message:?} echoed, got {result}"),
        ));
    }
    Ok(())
}

pub fn request_body(id: u64, method: &str, params: &Value) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    )
    .expect("a Value serializes")
}

/// `initialize` then `notifications/initialized`; returns the session id (if the server gave one).
pub async fn initialize(
    sender: &mut Sender,
    target: &Target,
    id: u64,
) -> Result<Option<HeaderValue>, Failure> {
    let params = serde_json::json!({
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "fg-load", "version": env!("CARGO_PKG_VERSION")},
    });
    let reply = post(
        sender,
        target,
        None,
        false,
        request_body(id, "initialize", &params),
    )
    .await?;
    let msg = response(&reply, id)?;
    let result = result(&msg)?;
    if result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(Failure::new(
            ErrorKind::WrongContent,
            format!("initialize result without protocolVersion: {result}"),
        ));
    }
    let session = reply.session;
    let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec();
    let reply = post(sender, target, session.as_ref(), true, note).await?;
    if !reply.status.is_success() {
        return Err(Failure::new(
            ErrorKind::HttpStatus,
            format!(
                "notifications/initialized: HTTP {}: {}",
                reply.status,
                reply.snippet()
            ),
        ));
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_split_and_empty_ones_skipped() {
        let body = b"id: 1\ndata: \n\nevent: message\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\n\ndata: {\"c\":\ndata: 3}";
        let ev: Vec<String> = sse_events(body)
            .into_iter()
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .collect();
        assert_eq!(ev, vec!["{\"a\":1}", "{\"b\":2}", "{\"c\":\n3}"]);
    }

    fn reply(sse: bool, body: &str) -> Reply {
        Reply {
            done: Instant::now(),
            status: StatusCode::OK,
            sse,
            session: None,
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn call_replies_are_checked() {
        let ok = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}],"isError":false}}"#;
        assert!(check_call(&reply(false, ok), 7, "hi").is_ok());
        let sse = format!("event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}}\n\nevent: message\ndata: {ok}\n\n");
        assert!(check_call(&reply(true, &sse), 7, "hi").is_ok());
        let kind = |r: Reply, id, m| check_call(&r, id, m).unwrap_err().kind;
        assert_eq!(kind(reply(false, ok), 8, "hi"), ErrorKind::WrongId);
        assert_eq!(kind(reply(false, ok), 7, "ho"), ErrorKind::WrongContent);
        assert_eq!(kind(reply(false, "{"), 7, "hi"), ErrorKind::Parse);
        assert_eq!(
            kind(
                reply(
                    false,
                    r#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"x"}}"#
                ),
                7,
                "hi"
            ),
            ErrorKind::ErrorReply
        );
        assert_eq!(
            kind(
                reply(
                    false,
                    r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}],"isError":true}}"#
                ),
                7,
                "hi"
            ),
            ErrorKind::ErrorReply
        );
        let mut bad = reply(false, ok);
        bad.status = StatusCode::BAD_GATEWAY;
        assert_eq!(kind(bad, 7, "hi"), ErrorKind::HttpStatus);
    }
}
