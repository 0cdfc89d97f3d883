//! The guard's verdicts are the same on every downstream transport and every endpoint kind.
//!
//! Transports: Streamable HTTP with a handshake session (2025-11-25), stateless Streamable HTTP
//! (2026-07-28, no session), the old HTTP+SSE transport (replies on the event stream), and stdio
//! (`flowguard stdio -c CONFIG [--server ID]`, `flowguard wrap -c CONFIG -- fake`), there both
//! with a handshake and with stateless 2026-07-28 lines. Endpoints: routed (`/mcp/fake`),
//! unified (`/mcp`, tools named `fake___<tool>`) and a virtual server (`/mcp/picked`).
//!
//! Verdicts: a tool a native rule denies outright (`add`) is absent from `tools/list` and is
//! answered exactly like a tool that does not exist; an argument rule (`echo` with a secret
//! message) gives -32040 naming the rule while a harmless `echo` works; a per-client rate limit
//! refuses the call after its burst with -32029 (and, where the reply is a plain HTTP response,
//! HTTP 429 with `Retry-After`).
//!
//! HTTP clients authenticate with API keys (one per transport and endpoint, so each has its own
//! bucket); the stdio front ends have no headers and are `auth.stdio_subject`. The allow rule
//! for the session's methods requires a subject, so an identity that did not arrive would show
//! as an implicit deny everywhere.

use bytes::Bytes;
use flowguard_guard::apikey;
use flowguard_testkit::client::{error_code, error_message, tool_text};
use flowguard_testkit::config::fake_server;
use flowguard_testkit::http::{self, post_json};
use flowguard_testkit::{fake_bin, flowguard_bin, GatewayProcess, McpClient};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The burst of the per-client rate limit: this many requests pass, the next is refused.
const BURST: usize = 3;
/// The stateless revision.
const V2026: &str = "2026-07-28";
/// The subject of the stdio front ends.
const STDIO_SUBJECT: &str = "stdio-user";
/// How long any one reply may take on the event stream or on stdout.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Endpoints and the configuration
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Routed,
    Unified,
    Virtual,
}

impl Endpoint {
    const ALL: [Endpoint; 3] = [Endpoint::Routed, Endpoint::Unified, Endpoint::Virtual];

    fn label(self) -> &'static str {
        match self {
            Endpoint::Routed => "routed",
            Endpoint::Unified => "unified",
            Endpoint::Virtual => "virtual",
        }
    }

    /// The Streamable HTTP endpoint.
    fn path(self) -> &'static str {
        match self {
            Endpoint::Routed => "/mcp/fake",
            Endpoint::Unified => "/mcp",
            Endpoint::Virtual => "/mcp/picked",
        }
    }

    /// The old HTTP+SSE transport's stream.
    fn sse_path(self) -> &'static str {
        match self {
            Endpoint::Routed => "/mcp/fake/sse",
            Endpoint::Unified => "/sse",
            Endpoint::Virtual => "/mcp/picked/sse",
        }
    }

    /// The name a client of this endpoint uses for the fake server's tool `own`.
    fn tool(self, own: &str) -> String {
        match self {
            Endpoint::Unified => format!("fake___{own}"),
            Endpoint::Routed | Endpoint::Virtual => own.to_string(),
        }
    }
}

/// The HTTP transports (a key per transport, endpoint and client letter).
const HTTP_TRANSPORTS: [&str; 3] = ["session", "stateless", "legacy"];

fn client_name(transport: &str, ep: Endpoint, which: char) -> String {
    format!("{transport}-{}-{which}", ep.label())
}

fn key_of(name: &str) -> String {
    format!("fg-key-{name}-0123456789abcdef")
}

/// The whole config: an API key for every HTTP client, the stdio subject, the rules, the fake
/// server, the virtual server `picked`, and (with `limits`) the per-client rate limit.
fn config(limits: bool) -> String {
    let mut text = format!("[auth]\nstdio_subject = \"{STDIO_SUBJECT}\"\n\n");
    for transport in HTTP_TRANSPORTS {
        for ep in Endpoint::ALL {
            for which in ['a', 'b'] {
                let name = client_name(transport, ep, which);
                text.push_str(&format!(
                    "[[auth.api_keys]]\nname = \"{name}\"\ndigest = \"{}\"\n\n",
                    apikey::digest_of(&key_of(&name))
                ));
            }
        }
    }
    text.push_str(
        "[policy]\nrules = [\n\
         { name = \"no-add\", action = \"deny\", match = { tools = [\"add\"] } },\n\
         { name = \"no-secrets\", action = \"deny\", match = { tools = [\"echo\"], arguments = { message = [\"*secret*\"] } } },\n\
         { name = \"session\", action = \"allow\", match = { subjects = [\"*\"], methods = [\"initialize\", \"notifications/*\", \"tools/list\", \"tools/call\", \"ping\", \"server/discover\", \"subscriptions/listen\"] } },\n\
         ]\n\n",
    );
    if limits {
        text.push_str(&format!(
            "[limits]\n[[limits.rate]]\nper = \"client\"\nrps = 0.01\nburst = {BURST}\n\n"
        ));
    }
    text.push_str(&fake_server("fake", &[], ""));
    text.push_str("\n[virtual_servers.picked]\ntools = [\"fake/echo\", \"fake/add\"]\n");
    text
}

fn start(limits: bool) -> GatewayProcess {
    GatewayProcess::start(&config(limits), "toml", &[])
}

// ---------------------------------------------------------------------------------------------
// One client, whatever its transport
// ---------------------------------------------------------------------------------------------

/// A reply: the final JSON-RPC message, and for a plain HTTP response its status and
/// `Retry-After` (`None` when the reply came on an event stream or on stdout).
struct Reply {
    msg: Value,
    http: Option<(u16, Option<String>)>,
}

enum Client {
    /// Streamable HTTP, 2025-11-25, in a session.
    Session(McpClient),
    /// Streamable HTTP, 2026-07-28, each request on its own.
    Stateless { url: String, key: String, next: i64 },
    /// HTTP+SSE: POSTs to the message URL, replies on the stream.
    Legacy(Legacy),
    /// stdio (`flowguard stdio`, `flowguard wrap`).
    Stdio(StdioClient),
}

impl Client {
    async fn session(gw: &GatewayProcess, ep: Endpoint, key: &str) -> Self {
        Client::Session(McpClient::connect_as(&gw.url(ep.path()), &[("x-api-key", key)]).await)
    }

    fn stateless(gw: &GatewayProcess, ep: Endpoint, key: &str) -> Self {
        Client::Stateless {
            url: gw.url(ep.path()),
            key: key.to_string(),
            next: 1,
        }
    }

    async fn legacy(gw: &GatewayProcess, ep: Endpoint, key: &str) -> Self {
        Client::Legacy(Legacy::open(gw, ep, key).await)
    }

    async fn request(&mut self, method: &str, params: Value) -> Reply {
        match self {
            Client::Session(c) => {
                let body = json!({"jsonrpc": "2.0", "id": c.next_id(), "method": method, "params": params});
                let reply = c.raw_post(&[], body.to_string()).await;
                let msg = reply
                    .messages()
                    .pop()
                    .unwrap_or_else(|| panic!("{method}: no message in {}", reply.text()));
                let retry = reply.header("retry-after").map(str::to_string);
                Reply {
                    msg,
                    http: Some((reply.status.as_u16(), retry)),
                }
            }
            Client::Stateless { url, key, next } => {
                *next += 1;
                let (msg, status, retry) = stateless_post(url, key, *next, method, params).await;
                Reply {
                    msg,
                    http: Some((status, retry)),
                }
            }
            Client::Legacy(l) => Reply {
                msg: l.request(method, params).await,
                http: None,
            },
            Client::Stdio(s) => Reply {
                msg: s.request(method, params).await,
                http: None,
            },
        }
    }

    async fn call(&mut self, name: &str, arguments: Value) -> Reply {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    async fn tool_names(&mut self) -> Vec<String> {
        let reply = self.request("tools/list", json!({})).await;
        reply
            .msg
            .pointer("/result/tools")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("tools/list: {}", reply.msg))
            .iter()
            .map(|t| t["name"].as_str().expect("a tool has a name").to_string())
            .collect()
    }
}

/// The `_meta` of a 2026-07-28 request.
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "guard-matrix", "version": "0" },
    })
}

/// A conforming stateless request (headers mirror the method and name): the last message of
/// the reply, the HTTP status and `Retry-After`.
async fn stateless_post(
    url: &str,
    key: &str,
    id: i64,
    method: &str,
    mut params: Value,
) -> (Value, u16, Option<String>) {
    params["_meta"] = meta();
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut headers = vec![
        ("x-api-key", key),
        ("mcp-protocol-version", V2026),
        ("mcp-method", method),
    ];
    if let Some(n) = name.as_deref() {
        headers.push(("mcp-name", n));
    }
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let reply = post_json(url, &headers, &body.to_string()).await;
    assert!(
        reply.header("mcp-session-id").is_none(),
        "a stateless request got a session"
    );
    let msg = reply
        .messages()
        .pop()
        .unwrap_or_else(|| panic!("{method} on {url}: no message in {}", reply.text()));
    let retry = reply.header("retry-after").map(str::to_string);
    (msg, reply.status.as_u16(), retry)
}

// ---------------------------------------------------------------------------------------------
// The old HTTP+SSE transport, with credentials on the stream and on every POST
// ---------------------------------------------------------------------------------------------

struct Legacy {
    events: mpsc::UnboundedReceiver<String>,
    messages_url: String,
    key: String,
    next: i64,
    what: String,
}

impl Legacy {
    async fn open(gw: &GatewayProcess, ep: Endpoint, key: &str) -> Self {
        let url = gw.url(ep.sse_path());
        let (status, mut events) = open_events_as(&url, key).await;
        assert_eq!(status, 200, "GET {url}");
        let endpoint = next_data(&mut events, &url).await;
        assert!(
            endpoint.contains("messages?sessionId="),
            "the first event of {url} names the message URL: {endpoint}"
        );
        let mut l = Legacy {
            events,
            messages_url: gw.url(&endpoint),
            key: key.to_string(),
            next: 0,
            what: url,
        };
        let init = l
            .request(
                "initialize",
                json!({"protocolVersion": "2024-11-05", "capabilities": {},
                       "clientInfo": {"name": "old", "version": "0"}}),
            )
            .await;
        assert_eq!(
            init["result"]["protocolVersion"], "2024-11-05",
            "{}: {init}",
            l.what
        );
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = post_json(&l.messages_url, &[("x-api-key", &l.key)], &note.to_string()).await;
        assert_eq!(ack.status, 202, "{}: {}", l.what, ack.text());
        l
    }

    /// POSTs a request (202) and waits on the stream for the response with its id.
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = json!(format!("legacy-{}", self.next));
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let post = post_json(
            &self.messages_url,
            &[("x-api-key", &self.key)],
            &body.to_string(),
        )
        .await;
        assert_eq!(
            post.status,
            202,
            "{}: POST {method}: {}",
            self.what,
            post.text()
        );
        loop {
            let data = next_data(&mut self.events, &self.what).await;
            let msg: Value = serde_json::from_str(&data)
                .unwrap_or_else(|e| panic!("{}: an event is not JSON ({e}): {data}", self.what));
            if msg["id"] == id && msg.get("method").is_none() {
                return msg;
            }
        }
    }
}

/// `GET url` as an event stream with `X-API-Key` (the testkit's `open_events` sends no
/// credentials): the status, and the data of each event as it arrives. The first event of the
/// old transport is a URL, not JSON, so the testkit's `SseStream` cannot read it.
async fn open_events_as(url: &str, key: &str) -> (u16, mpsc::UnboundedReceiver<String>) {
    let client = http::client();
    let req = http::build(
        "GET",
        url,
        &[("accept", "text/event-stream"), ("x-api-key", key)],
        Bytes::new(),
    );
    let resp = http::send(&client, req).await;
    let status = resp.status().as_u16();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut body = resp.into_body();
    tokio::spawn(async move {
        let _client = client;
        let mut buf: Vec<u8> = Vec::new();
        let mut data: Vec<String> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = buf.drain(..=end).collect();
                let line = String::from_utf8_lossy(&raw);
                let line = line.trim_end_matches(['\n', '\r']);
                if line.is_empty() {
                    if !data.is_empty() && tx.send(std::mem::take(&mut data).join("\n")).is_err() {
                        return;
                    }
                } else if let Some(rest) = line.strip_prefix("data:") {
                    data.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
                }
            }
        }
    });
    (status, rx)
}

async fn next_data(rx: &mut mpsc::UnboundedReceiver<String>, what: &str) -> String {
    match tokio::time::timeout(REPLY_TIMEOUT, rx.recv()).await {
        Ok(Some(data)) => data,
        Ok(None) => panic!("{what}: the event stream ended"),
        Err(_) => panic!("{what}: no event within {REPLY_TIMEOUT:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// stdio front ends
// ---------------------------------------------------------------------------------------------

/// How a stdio front end is started, and which endpoint kind it serves.
#[derive(Debug, Clone, Copy)]
enum Front {
    /// `flowguard stdio -c CONFIG` (unified), `--server fake` (routed), `--server picked`.
    Stdio(Endpoint),
    /// `flowguard wrap -c CONFIG -- fake`: one server, names unchanged.
    Wrap,
}

impl Front {
    const ALL: [Front; 4] = [
        Front::Stdio(Endpoint::Routed),
        Front::Stdio(Endpoint::Unified),
        Front::Stdio(Endpoint::Virtual),
        Front::Wrap,
    ];

    fn endpoint(self) -> Endpoint {
        match self {
            Front::Stdio(ep) => ep,
            Front::Wrap => Endpoint::Routed,
        }
    }

    fn args(self, config: &Path) -> Vec<String> {
        let config = config.display().to_string();
        match self {
            Front::Stdio(ep) => {
                let mut a = vec!["stdio".to_string(), "-c".into(), config];
                match ep {
                    Endpoint::Routed => a.extend(["--server".into(), "fake".into()]),
                    Endpoint::Virtual => a.extend(["--server".into(), "picked".into()]),
                    Endpoint::Unified => {}
                }
                a
            }
            Front::Wrap => vec![
                "wrap".into(),
                "-c".into(),
                config,
                "--".into(),
                fake_bin().display().to_string(),
            ],
        }
    }

    fn label(self) -> String {
        match self {
            Front::Stdio(ep) => format!("flowguard stdio ({})", ep.label()),
            Front::Wrap => "flowguard wrap".into(),
        }
    }
}

struct StdioClient {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    /// Each request carries the 2026-07-28 `_meta` and there is no `initialize`.
    stateless: bool,
    next: i64,
    stderr: PathBuf,
    what: String,
}

impl StdioClient {
    /// Starts the front end with the config in `dir`; a handshake client initializes first.
    async fn start(front: Front, stateless: bool, dir: &Path) -> Self {
        let config = dir.join("gateway.toml");
        let stderr = dir.join(format!("stderr-{}-{stateless}.log", front.label()));
        let err_file = std::fs::File::create(&stderr).expect("a stderr file");
        let mut child = tokio::process::Command::new(flowguard_bin())
            .args(front.args(&config))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file))
            .kill_on_drop(true)
            .spawn()
            .expect("flowguard starts");
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let era = if stateless { "2026-07-28" } else { "handshake" };
        let mut c = StdioClient {
            child,
            stdin,
            lines,
            stateless,
            next: 0,
            stderr,
            what: format!("{} {era}", front.label()),
        };
        if !stateless {
            let init = c
                .request(
                    "initialize",
                    json!({"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "0"}}),
                )
                .await;
            assert!(init.get("result").is_some(), "{}: {init}", c.what);
            c.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .await;
        }
        c
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    async fn send(&mut self, msg: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{msg}\n").as_bytes())
            .await
            .expect("the gateway reads stdin");
        stdin.flush().await.expect("stdin flushes");
    }

    async fn request(&mut self, method: &str, mut params: Value) -> Value {
        self.next += 1;
        let id = json!(self.next);
        if self.stateless {
            params["_meta"] = meta();
        }
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = match tokio::time::timeout(REPLY_TIMEOUT, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(other) => panic!(
                    "{}: stdout ended ({other:?}) waiting for {method}; stderr:\n{}",
                    self.what,
                    self.stderr_text()
                ),
                Err(_) => panic!(
                    "{}: no reply to {method} within {REPLY_TIMEOUT:?}; stderr:\n{}",
                    self.what,
                    self.stderr_text()
                ),
            };
            let msg: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: stdout line is not JSON ({e}): {line}", self.what));
            if msg["id"] == id && msg.get("method").is_none() {
                return msg;
            }
        }
    }

    /// Closes stdin; the gateway (and its servers) must exit by themselves.
    async fn finish(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        assert!(
            matches!(status, Ok(Ok(s)) if s.success()),
            "{}: the gateway did not exit cleanly after stdin closed: {status:?}; stderr:\n{}",
            self.what,
            self.stderr_text()
        );
    }
}

/// A temporary directory holding the config the stdio front ends read.
fn stdio_dir(limits: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("gateway.toml"), config(limits)).expect("the config is written");
    dir
}

// ---------------------------------------------------------------------------------------------
// The verdicts
// ---------------------------------------------------------------------------------------------

/// Verdicts (1) and (2): a tool denied outright is absent and unknown; an argument rule gives
/// -32040 naming the rule; a harmless call works.
async fn check_policy(c: &mut Client, ep: Endpoint, what: &str) {
    let echo = ep.tool("echo");
    let add = ep.tool("add");
    let missing = ep.tool("no_such_tool");

    let names = c.tool_names().await;
    assert!(names.contains(&echo), "{what}: {echo} is listed: {names:?}");
    assert!(
        !names.contains(&add),
        "{what}: {add} is denied by rule no-add but listed: {names:?}"
    );
    if ep == Endpoint::Virtual {
        assert_eq!(
            names,
            ["echo"],
            "{what}: the virtual server offers echo only"
        );
    }

    let hidden = c.call(&add, json!({"a": 1, "b": 2})).await;
    let unknown = c.call(&missing, json!({})).await;
    assert_eq!(
        hidden.msg["error"],
        json!({"code": -32602, "message": format!("Unknown tool: {add}")}),
        "{what}: a denied tool reads as unknown: {}",
        hidden.msg
    );
    assert_eq!(
        unknown.msg["error"],
        json!({"code": -32602, "message": format!("Unknown tool: {missing}")}),
        "{what}: a tool that does not exist: {}",
        unknown.msg
    );
    assert!(hidden.msg.get("result").is_none(), "{what}: {}", hidden.msg);
    assert_eq!(
        hidden.http.as_ref().map(|h| h.0),
        unknown.http.as_ref().map(|h| h.0),
        "{what}: the HTTP status tells a hidden tool from an unknown one"
    );

    let secret = c.call(&echo, json!({"message": "my secret plan"})).await;
    assert_eq!(
        error_code(&secret.msg),
        Some(-32040),
        "{what}: {}",
        secret.msg
    );
    assert_eq!(
        error_message(&secret.msg),
        "denied by policy rule \"no-secrets\"",
        "{what}: {}",
        secret.msg
    );

    let fine = c.call(&echo, json!({"message": "harmless"})).await;
    assert_eq!(tool_text(&fine.msg), "harmless", "{what}: {}", fine.msg);
}

/// Verdict (3): `BURST` calls pass, the next is refused with -32029 naming the rate. Returns
/// the refusal, for the transport's own checks.
async fn exhaust_rate_limit(c: &mut Client, ep: Endpoint, what: &str) -> Reply {
    let echo = ep.tool("echo");
    for i in 0..BURST {
        let text = format!("call {i}");
        let r = c.call(&echo, json!({"message": text})).await;
        assert_eq!(
            r.msg
                .pointer("/result/content/0/text")
                .and_then(Value::as_str),
            Some(text.as_str()),
            "{what}: call {} of a burst of {BURST}: {}",
            i + 1,
            r.msg
        );
    }
    let refused = c.call(&echo, json!({"message": "one too many"})).await;
    let msg = &refused.msg;
    assert_eq!(error_code(msg), Some(-32029), "{what}: {msg}");
    assert_eq!(
        msg["error"]["data"]["rule"], "limits.rate[0] (client)",
        "{what}: {msg}"
    );
    let secs = msg["error"]["data"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: data.retryAfter: {msg}"));
    assert!(
        (1..=100).contains(&secs),
        "{what}: rps 0.01 refills in at most 100 s: {msg}"
    );
    assert_eq!(
        error_message(msg),
        format!("Too many requests: limits.rate[0] (client) is exhausted; retry after {secs}s"),
        "{what}"
    );
    refused
}

/// On a plain HTTP reply the refusal is also HTTP 429 with `Retry-After` (= `data.retryAfter`).
fn assert_http_429(refused: &Reply, what: &str) {
    let secs = refused.msg["error"]["data"]["retryAfter"].as_u64().unwrap();
    let (status, retry) = refused
        .http
        .clone()
        .unwrap_or_else(|| panic!("{what}: not a plain HTTP reply"));
    assert_eq!(status, 429, "{what}: {}", refused.msg);
    assert_eq!(
        retry.as_deref(),
        Some(secs.to_string().as_str()),
        "{what}: Retry-After"
    );
}

// ---------------------------------------------------------------------------------------------
// Policy verdicts on each transport
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn policy_verdicts_on_streamable_http_sessions() {
    let gw = start(false);
    for ep in Endpoint::ALL {
        let what = format!("session {}", ep.path());
        let mut c = Client::session(&gw, ep, &key_of(&client_name("session", ep, 'a'))).await;
        check_policy(&mut c, ep, &what).await;
    }
}

#[tokio::test]
async fn policy_verdicts_on_stateless_2026_requests() {
    let gw = start(false);
    for ep in Endpoint::ALL {
        let what = format!("2026-07-28 {}", ep.path());
        let key = key_of(&client_name("stateless", ep, 'a'));
        // The revision's probe is allowed (rule `session`) and answered without a session.
        let (discover, status, _) =
            stateless_post(&gw.url(ep.path()), &key, 0, "server/discover", json!({})).await;
        assert_eq!(status, 200, "{what}: {discover}");
        assert!(
            discover["result"]["supportedVersions"]
                .as_array()
                .is_some_and(|v| v.contains(&json!(V2026))),
            "{what}: {discover}"
        );
        let mut c = Client::stateless(&gw, ep, &key);
        check_policy(&mut c, ep, &what).await;
    }
    assert_eq!(gw.health().await["sessions"], 0, "no session was created");
}

#[tokio::test]
async fn policy_verdicts_on_the_old_http_sse_transport() {
    let gw = start(false);
    for ep in Endpoint::ALL {
        let what = format!("HTTP+SSE {}", ep.sse_path());
        let mut c = Client::legacy(&gw, ep, &key_of(&client_name("legacy", ep, 'a'))).await;
        check_policy(&mut c, ep, &what).await;
    }
}

#[tokio::test]
async fn policy_verdicts_on_stdio_front_ends() {
    let dir = stdio_dir(false);
    for stateless in [false, true] {
        for front in Front::ALL {
            let s = StdioClient::start(front, stateless, dir.path()).await;
            let what = s.what.clone();
            let mut c = Client::Stdio(s);
            check_policy(&mut c, front.endpoint(), &what).await;
            let Client::Stdio(s) = c else { unreachable!() };
            s.finish().await;
        }
    }
}

#[tokio::test]
async fn credentials_are_required_on_every_http_transport() {
    let gw = start(false);
    for ep in Endpoint::ALL {
        let init = flowguard_testkit::client::initialize_body(&json!({}));
        let r = post_json(&gw.url(ep.path()), &[], &init).await;
        assert_eq!(r.status, 401, "session {}: {}", ep.path(), r.text());
        let params = json!({"_meta": meta()});
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params});
        let h = [
            ("mcp-protocol-version", V2026),
            ("mcp-method", "tools/list"),
        ];
        let r = post_json(&gw.url(ep.path()), &h, &body.to_string()).await;
        assert_eq!(r.status, 401, "2026-07-28 {}: {}", ep.path(), r.text());
        let (status, _) = open_events_as(&gw.url(ep.sse_path()), "not-a-key").await;
        assert_eq!(status, 401, "HTTP+SSE {}", ep.sse_path());
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limits on each transport
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_on_streamable_http_sessions_is_429_with_retry_after() {
    let gw = start(true);
    for ep in Endpoint::ALL {
        let what = format!("session {}", ep.path());
        let mut a = Client::session(&gw, ep, &key_of(&client_name("session", ep, 'a'))).await;
        let refused = exhaust_rate_limit(&mut a, ep, &what).await;
        assert_http_429(&refused, &what);
        // Another client has its own bucket.
        let mut b = Client::session(&gw, ep, &key_of(&client_name("session", ep, 'b'))).await;
        let r = b.call(&ep.tool("echo"), json!({"message": "b"})).await;
        assert_eq!(tool_text(&r.msg), "b", "{what}: client b: {}", r.msg);
    }
}

/// The stateless reply is a plain HTTP response (JSON, no stream), as in a session: the
/// refusal is HTTP 429 with `Retry-After` there too (docs/errors.md: "On stdio and inside an
/// SSE stream: the JSON-RPC error alone").
#[tokio::test]
async fn rate_limit_on_stateless_2026_requests_is_429_with_retry_after() {
    let gw = start(true);
    for ep in Endpoint::ALL {
        let what = format!("2026-07-28 {}", ep.path());
        let mut a = Client::stateless(&gw, ep, &key_of(&client_name("stateless", ep, 'a')));
        let refused = exhaust_rate_limit(&mut a, ep, &what).await;
        assert_http_429(&refused, &what);
        let mut b = Client::stateless(&gw, ep, &key_of(&client_name("stateless", ep, 'b')));
        let r = b.call(&ep.tool("echo"), json!({"message": "b"})).await;
        assert_eq!(tool_text(&r.msg), "b", "{what}: client b: {}", r.msg);
    }
}

#[tokio::test]
async fn rate_limit_on_the_old_http_sse_transport_is_32029_on_the_stream() {
    let gw = start(true);
    for ep in Endpoint::ALL {
        let what = format!("HTTP+SSE {}", ep.sse_path());
        let mut a = Client::legacy(&gw, ep, &key_of(&client_name("legacy", ep, 'a'))).await;
        // The POST of the refused call was accepted with 202 (checked in `request`); the
        // refusal is the JSON-RPC error on the stream.
        exhaust_rate_limit(&mut a, ep, &what).await;
        let mut b = Client::legacy(&gw, ep, &key_of(&client_name("legacy", ep, 'b'))).await;
        let r = b.call(&ep.tool("echo"), json!({"message": "b"})).await;
        assert_eq!(tool_text(&r.msg), "b", "{what}: client b: {}", r.msg);
    }
}

#[tokio::test]
async fn rate_limit_on_stdio_front_ends_is_32029() {
    let dir = stdio_dir(true);
    for stateless in [false, true] {
        for front in Front::ALL {
            let s = StdioClient::start(front, stateless, dir.path()).await;
            let what = s.what.clone();
            let mut c = Client::Stdio(s);
            exhaust_rate_limit(&mut c, front.endpoint(), &what).await;
            let Client::Stdio(s) = c else { unreachable!() };
            s.finish().await;
        }
    }
}
