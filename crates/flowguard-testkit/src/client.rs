//! [`McpClient`]: one MCP client session over Streamable HTTP, as a real client runs it:
//! `initialize`, `notifications/initialized`, then requests that carry `Mcp-Session-Id` and
//! `MCP-Protocol-Version`. Replies are read as JSON or as an SSE stream to its end, and every
//! message is returned in order (notifications first, the final response last). Server-to-client
//! requests that arrive on a reply stream (sampling, elicitation, roots) can be answered by
//! POSTing a response to the same endpoint, which is how the gateway expects them back.

use crate::http::{self, HttpClient, HttpReply, SseStream, HTTP_TIMEOUT};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};

/// The revision the client asks for.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Answers a server-to-client request: `Ok(result)` or `Err(error object)`.
type Answerer<'a> = dyn FnMut(&Value) -> Result<Value, Value> + 'a;

pub struct McpClient {
    http: HttpClient,
    url: String,
    session: String,
    protocol_version: String,
    next_id: AtomicI64,
    /// The gateway's `InitializeResult`.
    pub init_result: Value,
    /// Headers every request of the session carries (credentials: `connect_as`).
    identity: Vec<(String, String)>,
}

/// Whether a message is a request (it has both `method` and `id`).
pub fn is_request(msg: &Value) -> bool {
    msg.get("method").is_some() && msg.get("id").is_some()
}

/// The text of the first content block of a `tools/call` response.
pub fn tool_text(response: &Value) -> &str {
    response
        .pointer("/result/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("not a tool result with text: {response}"))
}

/// `error.code` of a response, if it is an error.
pub fn error_code(response: &Value) -> Option<i64> {
    response.pointer("/error/code").and_then(Value::as_i64)
}

/// `error.message` of a response; panics if it is not an error.
pub fn error_message(response: &Value) -> &str {
    response
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("not an error response: {response}"))
}

/// The body of an `initialize` request with id 0 and these client capabilities.
pub fn initialize_body(capabilities: &Value) -> String {
    json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": capabilities,
            "clientInfo": { "name": "flowguard-testkit", "version": "0" },
        },
    })
    .to_string()
}

/// POSTs an `initialize` without a session and returns the raw reply (for tests of the
/// handshake itself, or of endpoints that refuse it).
pub async fn initialize_reply(url: &str, capabilities: &Value) -> HttpReply {
    http::post_json(url, &[], &initialize_body(capabilities)).await
}

impl McpClient {
    /// `initialize` + `notifications/initialized` on `url` (an `/mcp` or `/mcp/<id>` URL), with
    /// these client capabilities (`json!({})` for none, `json!({"sampling": {}})`, ...).
    pub async fn connect(url: &str, capabilities: Value) -> Self {
        Self::connect_with_headers(url, capabilities, &[]).await
    }

    /// [`McpClient::connect`] with extra headers on `initialize` (`ENV_<NAME>`, identity, ...).
    pub async fn connect_with_headers(
        url: &str,
        capabilities: Value,
        headers: &[(&str, &str)],
    ) -> Self {
        Self::connect_keeping(url, capabilities, headers, &[]).await
    }

    /// A session whose every request carries `credentials` (an API key, a bearer token).
    pub async fn connect_as(url: &str, credentials: &[(&str, &str)]) -> Self {
        Self::connect_keeping(url, json!({}), credentials, credentials).await
    }

    async fn connect_keeping(
        url: &str,
        capabilities: Value,
        headers: &[(&str, &str)],
        keep: &[(&str, &str)],
    ) -> Self {
        let reply = http::post_json(url, headers, &initialize_body(&capabilities)).await;
        assert_eq!(reply.status, 200, "initialize on {url}: {}", reply.text());
        let session = reply
            .header("mcp-session-id")
            .unwrap_or_else(|| panic!("initialize on {url} gave no Mcp-Session-Id"))
            .to_string();
        let response = reply.messages().pop().expect("initialize has a response");
        let init_result = response
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("initialize on {url} failed: {response}"));
        let protocol_version = init_result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION)
            .to_string();
        let client = McpClient {
            http: http::client(),
            url: url.to_string(),
            session,
            protocol_version,
            next_id: AtomicI64::new(1),
            init_result,
            identity: keep
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let ack = client
            .notify("notifications/initialized", Value::Null)
            .await;
        assert_eq!(ack.status, 202, "notifications/initialized: {}", ack.text());
        client
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn session_id(&self) -> &str {
        &self.session
    }

    pub fn protocol_version(&self) -> &str {
        &self.protocol_version
    }

    /// A fresh request id, unique within this client.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The headers every POST of this session carries.
    fn default_headers(&self) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            (
                "accept".into(),
                "application/json, text/event-stream".into(),
            ),
            ("mcp-session-id".into(), self.session.clone()),
            ("mcp-protocol-version".into(), self.protocol_version.clone()),
        ]
        .into_iter()
        .chain(self.identity.iter().cloned())
        .collect()
    }

    /// Merges `overrides` into the defaults: a header named there replaces the default of the
    /// same name, and an empty value removes it.
    fn headers_with(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut headers = self.default_headers();
        for (name, value) in overrides {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if !value.is_empty() {
                headers.push((name.to_string(), value.to_string()));
            }
        }
        headers
    }

    async fn send(
        &self,
        method: &str,
        overrides: &[(&str, &str)],
        body: String,
    ) -> hyper::Response<hyper::body::Incoming> {
        let headers = self.headers_with(overrides);
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        http::send(&self.http, http::build(method, &self.url, &refs, body)).await
    }

    /// POSTs `body` with this session's headers, changed by `headers` (same name replaces,
    /// empty value removes), and returns the whole reply.
    pub async fn raw_post(&self, headers: &[(&str, &str)], body: impl Into<String>) -> HttpReply {
        http::read(self.send("POST", headers, body.into()).await).await
    }

    /// Sends a notification; the gateway answers 202.
    pub async fn notify(&self, method: &str, params: Value) -> HttpReply {
        let mut msg = json!({ "jsonrpc": "2.0", "method": method });
        if !params.is_null() {
            msg["params"] = params;
        }
        self.raw_post(&[], msg.to_string()).await
    }

    /// Sends a request and returns every message of its reply, the final response last.
    pub async fn request(&self, method: &str, params: Value) -> Vec<Value> {
        let id = json!(self.next_id());
        self.exchange(id, method, params, None).await
    }

    /// [`McpClient::request`] with a chosen id (`json!("abc")`, `json!(-1)`, ...).
    pub async fn request_with_id(&self, id: Value, method: &str, params: Value) -> Vec<Value> {
        self.exchange(id, method, params, None).await
    }

    /// Sends a request and answers the server's requests that arrive on its reply stream:
    /// `answer` gets each request and returns `Ok(result)` or `Err(error object)`, which is
    /// POSTed back to the endpoint with the request's id.
    pub async fn request_answering(
        &self,
        method: &str,
        params: Value,
        mut answer: impl FnMut(&Value) -> Result<Value, Value>,
    ) -> Vec<Value> {
        let id = json!(self.next_id());
        self.exchange(id, method, params, Some(&mut answer)).await
    }

    /// The final response of a request.
    pub async fn response(&self, method: &str, params: Value) -> Value {
        let mut msgs = self.request(method, params).await;
        msgs.pop()
            .unwrap_or_else(|| panic!("{method}: an empty reply"))
    }

    /// `tools/call` and its final response.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Value {
        self.response(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await
    }

    /// Every tool of `tools/list` (one page; the gateway does not paginate by default).
    pub async fn tools(&self) -> Vec<Value> {
        let resp = self.response("tools/list", json!({})).await;
        resp.pointer("/result/tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| panic!("tools/list: {resp}"))
    }

    /// The names of [`McpClient::tools`].
    pub async fn tool_names(&self) -> Vec<String> {
        self.tools()
            .await
            .iter()
            .map(|t| t["name"].as_str().expect("a tool has a name").to_string())
            .collect()
    }

    async fn exchange(
        &self,
        id: Value,
        method: &str,
        params: Value,
        mut answer: Option<&mut Answerer<'_>>,
    ) -> Vec<Value> {
        let mut msg = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if !params.is_null() {
            msg["params"] = params;
        }
        let resp = self.send("POST", &[], msg.to_string()).await;
        let is_sse =
            http::content_type(resp.headers()).is_some_and(|c| c.starts_with("text/event-stream"));
        if !is_sse {
            let reply = http::read(resp).await;
            assert_eq!(reply.status, 200, "{method}: {}", reply.text());
            return reply.messages();
        }
        let mut stream = SseStream::new(resp);
        assert_eq!(stream.status, 200, "{method} answered with an SSE error");
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout(HTTP_TIMEOUT, stream.next()).await;
            let Ok(next) = next else {
                panic!("{method}: the reply stream stalled for {HTTP_TIMEOUT:?} after {out:?}");
            };
            let Some(msg) = next else {
                return out;
            };
            if let (true, Some(answer)) = (is_request(&msg), answer.as_mut()) {
                self.answer(&msg, answer(&msg)).await;
            }
            out.push(msg);
        }
    }

    /// POSTs the response to a server's request; the gateway acknowledges it with 202.
    async fn answer(&self, request: &Value, outcome: Result<Value, Value>) {
        let mut msg = json!({ "jsonrpc": "2.0", "id": request["id"].clone() });
        match outcome {
            Ok(result) => msg["result"] = result,
            Err(error) => msg["error"] = error,
        }
        let reply = self.raw_post(&[], msg.to_string()).await;
        assert_eq!(reply.status, 202, "answering {request}: {}", reply.text());
    }

    /// Opens the session's GET stream (server-initiated messages).
    pub async fn open_stream(&self) -> SseStream {
        let resp = self
            .send(
                "GET",
                &[("accept", "text/event-stream"), ("content-type", "")],
                String::new(),
            )
            .await;
        SseStream::new(resp)
    }

    /// Ends the session (`DELETE`).
    pub async fn delete(&self) -> HttpReply {
        http::read(
            self.send("DELETE", &[("content-type", "")], String::new())
                .await,
        )
        .await
    }
}
