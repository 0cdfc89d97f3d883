//! Plain HTTP/1.1 to the gateway (hyper-util's client, 127.0.0.1 only) and a small SSE reader.
//! Written independently of the gateway's own SSE code, so a bug there cannot hide in both.
//!
//! Headers are sent exactly as given: the `Host` header is filled in from the URL only when the
//! caller did not set one, which is what lets a test send a foreign `Host`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// How long any single HTTP exchange may take before the test fails: generous for a loaded
/// machine, short enough that a hung gateway fails the test instead of the whole suite.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client bound to the current tokio runtime (pooled connections belong to it).
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A whole response.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing the body) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body ({e}), got {} {:?}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The JSON-RPC messages of the body: one for a JSON body, every event for an SSE body.
    pub fn messages(&self) -> Vec<Value> {
        if self
            .content_type()
            .is_some_and(|c| c.starts_with("text/event-stream"))
        {
            let mut parser = SseParser::default();
            let mut out = parser.feed(&self.body);
            out.extend(parser.finish());
            out
        } else if self.body.is_empty() {
            vec![]
        } else {
            vec![self.json()]
        }
    }

    /// The JSON-RPC `error.code` of the (single) message in the body, if any.
    pub fn error_code(&self) -> Option<i64> {
        self.messages()
            .last()
            .and_then(|m| m.pointer("/error/code"))
            .and_then(Value::as_i64)
    }
}

/// Builds a request with exactly these headers.
pub fn build(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a valid method"))
        .uri(url)
        .body(Full::new(body.into()))
        .expect("a valid request");
    for (name, value) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
    }
    req
}

/// Sends a request and returns the response head with its body unread (for streams).
pub async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> Response<Incoming> {
    let what = format!("{} {}", req.method(), req.uri());
    match tokio::time::timeout(HTTP_TIMEOUT, client.request(req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => panic!("{what}: {e:?}"),
        Err(_) => panic!("{what}: no response within {HTTP_TIMEOUT:?}"),
    }
}

/// Reads a whole response body (bounded by [`HTTP_TIMEOUT`]).
pub async fn read(resp: Response<Incoming>) -> HttpReply {
    let (parts, body) = resp.into_parts();
    let body = match tokio::time::timeout(HTTP_TIMEOUT, body.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(e)) => panic!("reading a {} response body: {e}", parts.status),
        Err(_) => panic!(
            "a {} response body did not end within {HTTP_TIMEOUT:?}",
            parts.status
        ),
    };
    HttpReply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// One request on a fresh connection, read to the end.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> HttpReply {
    let client = client();
    read(send(&client, build(method, url, headers, body)).await).await
}

/// POSTs `body` with `Content-Type: application/json` and an Accept of JSON and SSE, plus
/// `headers` (no session): what a client sends before it has one.
pub async fn post_json(url: &str, headers: &[(&str, &str)], body: &str) -> HttpReply {
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    request("POST", url, &all, body.to_string()).await
}

/// Incremental SSE parsing: feed bytes, take out the JSON of each complete event's data.
#[derive(Debug, Default)]
struct SseParser {
    buf: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) -> Vec<Value> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                out.extend(self.dispatch());
            } else if let Some(rest) = line.strip_prefix("data:") {
                self.data
                    .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            }
            // Comments (`:`), `event:`, `id:` and `retry:` carry nothing a test checks.
        }
        out
    }

    fn dispatch(&mut self) -> Option<Value> {
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        if data.trim().is_empty() {
            return None;
        }
        Some(
            serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("an SSE event's data is not JSON ({e}): {data:?}")),
        )
    }

    /// The end of the stream completes a last event that had no blank line after it.
    fn finish(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            out = self.feed(b"\n");
        }
        out.extend(self.dispatch());
        out
    }
}

/// An open `text/event-stream` response, read one JSON-RPC message at a time.
pub struct SseStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Incoming,
    parser: SseParser,
    ready: std::collections::VecDeque<Value>,
    ended: bool,
}

impl SseStream {
    pub fn new(resp: Response<Incoming>) -> Self {
        let (parts, body) = resp.into_parts();
        SseStream {
            status: parts.status,
            headers: parts.headers,
            body,
            parser: SseParser::default(),
            ready: Default::default(),
            ended: false,
        }
    }

    /// The next message; `None` when the stream ended. Cancel-safe: a timeout around it loses
    /// nothing.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(msg) = self.ready.pop_front() {
                return Some(msg);
            }
            if self.ended {
                return None;
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let msgs = self.parser.feed(&data);
                        self.ready.extend(msgs);
                    }
                }
                Some(Err(e)) => panic!("reading an SSE stream: {e}"),
                None => {
                    self.ended = true;
                    self.ready.extend(self.parser.finish());
                }
            }
        }
    }

    /// The next message within `timeout`; `None` on timeout or at the end of the stream.
    pub async fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        tokio::time::timeout(timeout, self.next())
            .await
            .ok()
            .flatten()
    }

    /// Waits (at most `timeout`) for a message `want` accepts, skipping others.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.next())
                .await
                .ok()
                .flatten()?;
            if want(&msg) {
                return Some(msg);
            }
        }
    }
}

/// Opens `path` as an event stream over a raw connection (the old HTTP+SSE transport, whose
/// first event is not JSON) and yields each `data:` line's text.
pub async fn open_events(port: u16, path: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the gateway accepts connections");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .expect("the request is sent");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(data) = line.strip_prefix("data: ") {
                if tx.send(data.to_string()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// The next text of [`open_events`], within 10 s.
pub async fn next_event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event in time")
        .expect("stream open")
}

/// `Content-Type` of a response head.
pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_joins_data_lines_and_skips_comments() {
        let mut p = SseParser::default();
        let mut out =
            p.feed(b": keepalive\n\nevent: message\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: {\"b");
        assert_eq!(out, vec![serde_json::json!({"a": 1})]);
        out = p.feed(b"\":2}");
        assert!(out.is_empty());
        assert_eq!(p.finish(), vec![serde_json::json!({"b": 2})]);
    }
}
