//! [`FlakyServer`]: a minimal remote Streamable HTTP MCP server, run inside the test, that
//! misbehaves on command: it fails the next N requests of a method with 503, can insist on a
//! session id even on `initialize` (400 without one), can stop answering `ping`, answers GET
//! with 405, another status of the test's choosing, or (on command) a short event stream whose
//! events carry ids, and records every request it saw (method, session id, `Authorization`,
//! `Last-Event-ID`), so tests can check what the gateway sent. Only for faults; real behaviour
//! is tested against real servers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub session: Option<String>,
    pub authorization: Option<String>,
    pub last_event_id: Option<String>,
    /// The `X-FlowGuard-Subject` header, when the gateway passed a subject.
    pub subject: Option<String>,
}

#[derive(Default)]
struct Flaky {
    fail_next: Mutex<HashMap<String, usize>>,
    seen: Mutex<Vec<Seen>>,
    session_required: AtomicBool,
    ignore_pings: AtomicBool,
    get_stream: AtomicBool,
    /// What GET gets when there is no stream; 0 means 405.
    get_status: AtomicU16,
    events: AtomicUsize,
    sessions: AtomicUsize,
}

pub struct FlakyServer {
    state: Arc<Flaky>,
    port: u16,
    /// Dropping it stops the server's thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FlakyServer {
    /// Listens on 127.0.0.1 on a free port, on a thread and runtime of its own, so that it
    /// keeps answering while a test blocks (starting the gateway waits synchronously).
    pub async fn start() -> Self {
        let state = Arc::new(Flaky::default());
        let app = Router::new()
            .route("/mcp", post(handle).get(get_stream))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("bound").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let serve = axum::serve(listener, app);
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        FlakyServer {
            state,
            port,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The next `n` requests of `method` get 503.
    pub fn fail_next(&self, method: &str, n: usize) {
        lock(&self.state.fail_next).insert(method.to_string(), n);
    }

    /// `initialize` without an `Mcp-Session-Id` gets 400 "missing session".
    pub fn require_session(&self, on: bool) {
        self.state.session_required.store(on, Ordering::SeqCst);
    }

    /// `ping` gets 202 and no answer, as if lost.
    pub fn ignore_pings(&self, on: bool) {
        self.state.ignore_pings.store(on, Ordering::SeqCst);
    }

    /// GET gets a stream of one `tools/list_changed` event with an id, which then ends (instead
    /// of 405).
    pub fn serve_get_stream(&self, on: bool) {
        self.state.get_stream.store(on, Ordering::SeqCst);
    }

    /// GET without a stream gets this status and an empty body instead of 405 (some servers
    /// answer 202).
    pub fn answer_get_with(&self, status: u16) {
        self.state.get_status.store(status, Ordering::SeqCst);
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// How many requests of `method` arrived (failed ones included).
    pub fn count(&self, method: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method).count()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn handle(State(state): State<Arc<Flaky>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let method = msg["method"].as_str().unwrap_or("").to_string();
    let session = header(&headers, "mcp-session-id");
    lock(&state.seen).push(Seen {
        method: method.clone(),
        session: session.clone(),
        authorization: header(&headers, "authorization"),
        subject: header(&headers, "x-flowguard-subject"),
        last_event_id: None,
    });
    if let Some(left) = lock(&state.fail_next).get_mut(&method).filter(|n| **n > 0) {
        *left -= 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    let Some(id) = msg.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response(); // a notification or a response
    };
    let result = match method.as_str() {
        "initialize" => {
            if session.is_none() && state.session_required.load(Ordering::SeqCst) {
                return (StatusCode::BAD_REQUEST, "missing session").into_response();
            }
            let n = state.sessions.fetch_add(1, Ordering::SeqCst) + 1;
            let version = msg["params"]["protocolVersion"].clone();
            let result = json!({
                "protocolVersion": version,
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "flaky", "version": "0" }
            });
            let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
            return (
                [
                    ("content-type", "application/json"),
                    ("mcp-session-id", &format!("srv-{n}")),
                ],
                reply.to_string(),
            )
                .into_response();
        }
        "ping" if state.ignore_pings.load(Ordering::SeqCst) => {
            return StatusCode::ACCEPTED.into_response();
        }
        "ping" => json!({}),
        "tools/list" => json!({ "tools": [{
            "name": "echo", "description": "Echoes `message`",
            "inputSchema": { "type": "object", "properties": { "message": { "type": "string" } } }
        }]}),
        "tools/call" => {
            let text = msg["params"]["arguments"]["message"].clone();
            json!({ "content": [{ "type": "text", "text": text }] })
        }
        _ => {
            let err = json!({"code": -32601, "message": "Method not found"});
            return json_reply(json!({"jsonrpc": "2.0", "id": id, "error": err}));
        }
    };
    json_reply(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

async fn get_stream(State(state): State<Arc<Flaky>>, headers: HeaderMap) -> Response {
    lock(&state.seen).push(Seen {
        method: "GET".into(),
        session: header(&headers, "mcp-session-id"),
        authorization: header(&headers, "authorization"),
        subject: header(&headers, "x-flowguard-subject"),
        last_event_id: header(&headers, "last-event-id"),
    });
    if !state.get_stream.load(Ordering::SeqCst) {
        let status = match state.get_status.load(Ordering::SeqCst) {
            0 => StatusCode::METHOD_NOT_ALLOWED,
            s => StatusCode::from_u16(s).unwrap_or(StatusCode::METHOD_NOT_ALLOWED),
        };
        return status.into_response();
    }
    let n = state.events.fetch_add(1, Ordering::SeqCst) + 1;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    let body = format!("id: ev-{n}\nevent: message\ndata: {note}\n\n");
    ([(CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn json_reply(v: Value) -> Response {
    ([("content-type", "application/json")], v.to_string()).into_response()
}
