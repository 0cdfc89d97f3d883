//! The transport matrix: every downstream transport a client can use against every upstream
//! transport a server can use, each pair through the real binary, each carrying the three things
//! a gateway most often drops: a tool call with progress notifications, a server-to-client
//! request (sampling) answered by the client, and a `tools/list_changed` notification.
//!
//! Downstream: Streamable HTTP (handshake era, 2025-11-25), Streamable HTTP stateless
//! (2026-07-28: the server request becomes an input-required result, list changes come on a
//! `subscriptions/listen` stream), the 2024-11-05 HTTP+SSE transport, and stdio (`flowguard
//! stdio`). Upstream: a stdio child, a podman container, a remote Streamable HTTP server, a
//! remote HTTP+SSE server. Every upstream runs the `fake` server; the remote ones are a second
//! FlowGuard serving the fake over Streamable HTTP and over HTTP+SSE (conformance-tested
//! servers whose stream behaviour we control).
//!
//! The container column needs podman and the test image that `scripts/setup-interop.sh`
//! builds; it reads `.interop/env.sh`. Set `FLOWGUARD_TEST_NO_CONTAINERS=1` to leave it out
//! on a machine without podman (the README's test command never does).

use flowguard_testkit::bins::flowguard_bin;
use flowguard_testkit::config::{fake_server, quote};
use flowguard_testkit::http::{self, HttpClient, SseStream};
use flowguard_testkit::{GatewayOptions, GatewayProcess};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(20);
const SAMPLED: &str = "the matrix client sampled this";

#[derive(Clone, Copy, Debug)]
enum Down {
    Streamable,
    Modern,
    LegacySse,
    Stdio,
}

#[derive(Clone, Copy, Debug)]
enum Up {
    Stdio,
    Container,
    StreamableHttp,
    HttpSse,
}

// ------------------------------------------------------------------------------- upstreams

/// The servers behind the gateway under test, kept alive for the test's length.
struct Upstream {
    /// The `[servers.up]` entry (plus any `[gateway]` lines it needs).
    config: String,
    env: Vec<(String, String)>,
    _inner: Option<GatewayProcess>,
}

fn interop_env(name: &str) -> Option<String> {
    if let Ok(v) = std::env::var(name) {
        return Some(v);
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join(".interop/env.sh")).ok()?;
    let prefix = format!("export {name}=");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim_matches('"').to_string())
}

fn containers_wanted() -> bool {
    std::env::var_os("FLOWGUARD_TEST_NO_CONTAINERS").is_none()
}

fn upstream(kind: Up) -> Upstream {
    match kind {
        Up::Stdio => Upstream {
            config: fake_server("up", &[], ""),
            env: vec![],
            _inner: None,
        },
        Up::Container => {
            let missing = "the container column needs podman and the test image: run \
                           scripts/setup-interop.sh target/debug/fake (or set \
                           FLOWGUARD_TEST_NO_CONTAINERS=1)";
            let image = interop_env("FAKE_IMAGE").expect(missing);
            let conf = interop_env("CONTAINERS_CONF").expect(missing);
            Upstream {
                config: format!(
                    "[gateway]\ncontainer_runtime = \"podman\"\n\n[servers.up]\ncontainer = {}\n\
                     entrypoint = \"/bin/fake\"\nnetwork = \"none\"\n",
                    quote(&image)
                ),
                env: vec![("CONTAINERS_CONF".into(), conf)],
                _inner: None,
            }
        }
        Up::StreamableHttp => {
            let inner = GatewayProcess::start(&fake_server("fake", &[], ""), "toml", &[]);
            Upstream {
                config: format!("[servers.up]\nurl = {}\n", quote(&inner.url("/mcp/fake"))),
                env: vec![],
                _inner: Some(inner),
            }
        }
        Up::HttpSse => {
            let inner = GatewayProcess::start(&fake_server("fake", &[], ""), "toml", &[]);
            Upstream {
                config: format!(
                    "[servers.up]\ntype = \"sse\"\nurl = {}\n",
                    quote(&inner.url("/mcp/fake/sse"))
                ),
                env: vec![],
                _inner: Some(inner),
            }
        }
    }
}

// ------------------------------------------------------------------------------ downstreams

/// One client connection: messages go out by `send`, and every message the gateway sends this
/// client (replies, notifications, server requests, whatever stream they travel on) arrives on
/// one channel.
struct Wire {
    out: Out,
    incoming: mpsc::UnboundedReceiver<Value>,
    tx: mpsc::UnboundedSender<Value>,
    /// Notifications received while waiting for something else.
    seen: Vec<Value>,
    next_id: i64,
}

enum Out {
    Streamable {
        http: HttpClient,
        url: String,
        session: Option<String>,
    },
    /// 2026-07-28: every request stands alone, with `_meta` and the revision's headers.
    Modern {
        http: HttpClient,
        url: String,
    },
    Sse {
        url: String,
    },
    Stdio {
        stdin: ChildStdin,
        _child: Child,
    },
}

impl Wire {
    async fn connect(
        down: Down,
        gw: &GatewayProcess,
        config: &std::path::Path,
        env: &[(String, String)],
    ) -> Wire {
        let (tx, incoming) = mpsc::unbounded_channel();
        let out = match down {
            Down::Streamable => Out::Streamable {
                http: http::client(),
                url: gw.url("/mcp/up"),
                session: None,
            },
            Down::Modern => Out::Modern {
                http: http::client(),
                url: gw.url("/mcp/up"),
            },
            Down::LegacySse => {
                let url = legacy_stream(gw.port(), "/mcp/up/sse", tx.clone()).await;
                Out::Sse { url: gw.url(&url) }
            }
            Down::Stdio => {
                let mut child = Command::new(flowguard_bin())
                    .arg("stdio")
                    .arg("-c")
                    .arg(config)
                    .args(["--server", "up"])
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("flowguard stdio starts");
                let stdout = child.stdout.take().unwrap();
                let lines_tx = tx.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(stdout).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let msg = serde_json::from_str(&line)
                            .unwrap_or_else(|e| json!({"unparsable": line, "why": e.to_string()}));
                        if lines_tx.send(msg).is_err() {
                            break;
                        }
                    }
                });
                Out::Stdio {
                    stdin: child.stdin.take().unwrap(),
                    _child: child,
                }
            }
        };
        let mut wire = Wire {
            out,
            incoming,
            tx,
            seen: vec![],
            next_id: 1,
        };
        wire.initialize().await;
        wire
    }

    async fn initialize(&mut self) {
        if let Out::Modern { http, url } = &self.out {
            // No handshake: list changes come on a listen stream the client opts into.
            let params =
                json!({"notifications": {"toolsListChanged": true}, "_meta": modern_meta()});
            let body = json!({"jsonrpc": "2.0", "id": "listen", "method": "subscriptions/listen",
                              "params": params});
            let headers = modern_headers("subscriptions/listen", None);
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let resp = http::send(http, http::build("POST", url, &headers, body.to_string())).await;
            assert_eq!(resp.status(), 200, "subscriptions/listen opens");
            pump(SseStream::new(resp), self.tx.clone());
            self.notification("notifications/subscriptions/acknowledged")
                .await;
            return;
        }
        let caps = json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}});
        let reply = self
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": caps,
                       "clientInfo": {"name": "matrix", "version": "0"}}),
            )
            .await;
        assert!(reply["result"]["protocolVersion"].is_string(), "{reply}");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        if let Out::Streamable { http, url, session } = &self.out {
            // The server-to-client stream, for messages outside any request (list changes).
            let session = session.clone().expect("the gateway gave a session id");
            let req = http::build(
                "GET",
                url,
                &[
                    ("accept", "text/event-stream"),
                    ("mcp-session-id", &session),
                    ("mcp-protocol-version", "2025-11-25"),
                ],
                "",
            );
            let resp = http::send(http, req).await;
            assert_eq!(resp.status(), 200, "the GET stream opens");
            pump(SseStream::new(resp), self.tx.clone());
        }
    }

    /// Sends one message. On Streamable HTTP a request's reply (JSON or SSE) is read in the
    /// background onto the incoming channel, like every other transport's replies.
    async fn send(&mut self, msg: Value) {
        match &mut self.out {
            Out::Streamable { http, url, session } => {
                let body = msg.to_string();
                let mut headers = vec![
                    ("content-type", "application/json"),
                    ("accept", "application/json, text/event-stream"),
                ];
                if let Some(s) = session.as_deref() {
                    headers.push(("mcp-session-id", s));
                    headers.push(("mcp-protocol-version", "2025-11-25"));
                }
                let resp = http::send(http, http::build("POST", url, &headers, body)).await;
                if let Some(id) = resp.headers().get("mcp-session-id") {
                    *session = Some(id.to_str().unwrap().to_string());
                }
                let is_request = msg.get("method").is_some() && msg.get("id").is_some();
                if !is_request {
                    assert_eq!(resp.status(), 202, "{msg} is acknowledged with 202");
                    return;
                }
                assert_eq!(resp.status(), 200, "{msg}");
                deliver(resp, &self.tx).await;
            }
            Out::Modern { http, url } => {
                let method = msg["method"]
                    .as_str()
                    .expect("2026 clients send only requests");
                let mut msg = msg.clone();
                let name = msg["params"]
                    .get("name")
                    .or_else(|| msg["params"].get("uri"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let meta = msg["params"]["_meta"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let mut all = modern_meta();
                for (k, v) in meta {
                    all[k] = v;
                }
                msg["params"]["_meta"] = all;
                let headers = modern_headers(method, name.as_deref());
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let resp =
                    http::send(http, http::build("POST", url, &headers, msg.to_string())).await;
                assert_eq!(resp.status(), 200, "{msg}");
                deliver(resp, &self.tx).await;
            }
            Out::Sse { url } => {
                let reply = http::post_json(url, &[], &msg.to_string()).await;
                assert_eq!(reply.status, 202, "{msg}: {}", reply.text());
            }
            Out::Stdio { stdin, .. } => {
                let line = format!("{msg}\n");
                stdin.write_all(line.as_bytes()).await.unwrap();
                stdin.flush().await.unwrap();
            }
        }
    }

    async fn next(&mut self, what: &str) -> Value {
        match tokio::time::timeout(WAIT, self.incoming.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("{what}: the connection closed"),
            Err(_) => panic!("{what}: nothing for {WAIT:?}; seen before: {:?}", self.seen),
        }
    }

    /// Sends a request and returns its response, answering server requests (sampling) and
    /// keeping notifications in `seen`.
    async fn request(&mut self, method: &str, mut params: Value) -> Value {
        let mut id = self.send_request(method, &params).await;
        loop {
            let msg = self.next(method).await;
            match (msg.get("method"), msg.get("id")) {
                (None, Some(got)) if *got == id => {
                    if msg["result"]["resultType"] != "input_required" {
                        return msg;
                    }
                    // 2026-07-28: the server's requests come as input requests; the client
                    // answers them by sending the request again with the responses.
                    let result = &msg["result"];
                    let mut responses = serde_json::Map::new();
                    for (key, req) in result["inputRequests"].as_object().expect("inputRequests") {
                        let m = req["method"].as_str().unwrap_or("");
                        responses.insert(key.clone(), answer(m, req));
                        self.seen.push(req.clone());
                    }
                    params["inputResponses"] = Value::Object(responses);
                    params["requestState"] = result["requestState"].clone();
                    id = self.send_request(method, &params).await;
                }
                (Some(m), Some(req_id)) => {
                    let answer = answer(m.as_str().unwrap_or(""), &msg);
                    let reply = json!({"jsonrpc": "2.0", "id": req_id, "result": answer});
                    self.seen.push(msg.clone());
                    self.send(reply).await;
                }
                _ => self.seen.push(msg),
            }
        }
    }

    async fn send_request(&mut self, method: &str, params: &Value) -> Value {
        let id = json!(format!("m{}", self.next_id));
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// Waits for a notification `method` (already seen, or arriving within [`WAIT`]).
    async fn notification(&mut self, method: &str) -> Value {
        if let Some(pos) = self.seen.iter().position(|m| m["method"] == method) {
            return self.seen.remove(pos);
        }
        loop {
            let msg = self.next(method).await;
            if msg["method"] == method {
                return msg;
            }
            self.seen.push(msg);
        }
    }
}

const MODERN: &str = "2026-07-28";

fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "elicitation": {}},
        "io.modelcontextprotocol/clientInfo": {"name": "matrix", "version": "0"},
    })
}

fn modern_headers(method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_string()),
        ("accept", "application/json, text/event-stream".to_string()),
        ("mcp-protocol-version", MODERN.to_string()),
        ("mcp-method", method.to_string()),
    ];
    if let Some(n) = name {
        h.push(("mcp-name", n.to_string()));
    }
    h
}

/// The client's answer to a server request.
fn answer(method: &str, request: &Value) -> Value {
    match method {
        "sampling/createMessage" => json!({"role": "assistant", "model": "matrix",
            "content": {"type": "text", "text": SAMPLED}}),
        "roots/list" => json!({"roots": []}),
        "ping" => json!({}),
        other => panic!("unexpected server request {other}: {request}"),
    }
}

/// Puts a reply's messages on `tx`: a JSON body at once, an SSE stream as it comes.
async fn deliver(resp: hyper::Response<hyper::body::Incoming>, tx: &mpsc::UnboundedSender<Value>) {
    let is_sse =
        http::content_type(resp.headers()).is_some_and(|c| c.starts_with("text/event-stream"));
    if is_sse {
        pump(SseStream::new(resp), tx.clone());
    } else {
        for m in http::read(resp).await.messages() {
            let _ = tx.send(m);
        }
    }
}

/// Reads an SSE stream onto `tx` until it ends.
fn pump(mut stream: SseStream, tx: mpsc::UnboundedSender<Value>) {
    tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
}

/// Opens the old transport's stream over a raw connection, forwards its JSON messages to `tx`,
/// and returns the message URL of its `endpoint` event.
async fn legacy_stream(port: u16, path: &str, tx: mpsc::UnboundedSender<Value>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let endpoint = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(data) = line.strip_prefix("data: ") {
                return data.to_string();
            }
        }
        panic!("the SSE stream ended before its endpoint event");
    })
    .await
    .expect("the endpoint event in time");
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(data) = line.strip_prefix("data: ") {
                let msg =
                    serde_json::from_str(data).unwrap_or_else(|_| json!({"unparsable": data}));
                if tx.send(msg).is_err() {
                    break;
                }
            }
        }
    });
    endpoint
}

// --------------------------------------------------------------------------------- the cell

fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("not a text result: {reply}"))
        .to_string()
}

async fn cell(down: Down, up: Up) {
    let label = format!("{down:?} client → {up:?} server");
    let server = upstream(up);
    let config = format!("{}\n", server.config);
    let mut opts = GatewayOptions::new();
    for (k, v) in &server.env {
        opts = opts.env(k, v);
    }
    let gw = opts.start(&config, "toml");
    gw.wait_health(WAIT, |h| h["servers"]["up"]["status"] == "running")
        .await;
    let config_path = gw.path("gateway.toml");
    let mut wire = Wire::connect(down, &gw, &config_path, &server.env).await;

    // 1. A tool call with progress: every notification arrives, with the client's token.
    let reply = wire
        .request(
            "tools/call",
            json!({"name": "progress", "arguments": {"steps": 3},
                   "_meta": {"progressToken": "tok-matrix"}}),
        )
        .await;
    assert_eq!(text(&reply), "progress done (3 steps)", "{label}: {reply}");
    let progress: Vec<&Value> = wire
        .seen
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{label}: progress seen: {:?}", wire.seen);
    for p in &progress {
        assert_eq!(p["params"]["progressToken"], "tok-matrix", "{label}: {p}");
    }
    wire.seen.clear();

    // 2. A server-to-client request: the server's sampling request reaches this client, and
    //    the client's answer reaches the server.
    let reply = wire
        .request(
            "tools/call",
            json!({"name": "sample", "arguments": {"prompt": "matrix"}}),
        )
        .await;
    assert!(
        wire.seen
            .iter()
            .any(|m| m["method"] == "sampling/createMessage"),
        "{label}: no sampling request seen: {:?}",
        wire.seen
    );
    assert!(text(&reply).contains(SAMPLED), "{label}: {reply}");
    wire.seen.clear();

    // 3. list_changed: the server changes its tools, the client hears of it and sees the new
    //    list.
    let reply = wire
        .request("tools/call", json!({"name": "mutate", "arguments": {}}))
        .await;
    assert!(reply.get("result").is_some(), "{label}: {reply}");
    wire.notification("notifications/tools/list_changed").await;
    let list = wire.request("tools/list", json!({})).await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: {list}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"mutated_tool"),
        "{label}: the list after list_changed: {names:?}"
    );
}

macro_rules! matrix {
    ($($name:ident: $down:ident x $up:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if matches!(Up::$up, Up::Container) && !containers_wanted() {
                eprintln!("FLOWGUARD_TEST_NO_CONTAINERS is set: container column left out");
                return;
            }
            cell(Down::$down, Up::$up).await;
        }
    )*};
}

matrix! {
    streamable_http_to_stdio: Streamable x Stdio;
    streamable_http_to_container: Streamable x Container;
    streamable_http_to_streamable_http: Streamable x StreamableHttp;
    streamable_http_to_http_sse: Streamable x HttpSse;
    stateless_2026_to_stdio: Modern x Stdio;
    stateless_2026_to_container: Modern x Container;
    stateless_2026_to_streamable_http: Modern x StreamableHttp;
    stateless_2026_to_http_sse: Modern x HttpSse;
    legacy_sse_to_stdio: LegacySse x Stdio;
    legacy_sse_to_container: LegacySse x Container;
    legacy_sse_to_streamable_http: LegacySse x StreamableHttp;
    legacy_sse_to_http_sse: LegacySse x HttpSse;
    stdio_to_stdio: Stdio x Stdio;
    stdio_to_container: Stdio x Container;
    stdio_to_streamable_http: Stdio x StreamableHttp;
    stdio_to_http_sse: Stdio x HttpSse;
}
