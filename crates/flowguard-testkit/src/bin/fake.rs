//! `fake`: a fault-injecting MCP stdio server for gateway tests.
//!
//! Speaks newline-delimited JSON-RPC on stdin/stdout. Besides ordinary tools
//! (`echo`, `add`) it offers tools that misbehave on purpose (`crash`, `hang`,
//! `garbage`, `flood_stderr`, `slow`, `big`) and tools that exercise what a
//! gateway must forward (`progress`, `sample`, `mutate`) or let tests observe
//! the process (`pid`, `env`, `cwd`). Requests are served concurrently.
//!
//! Usage: `fake [--init-count-file PATH] [--fail-start] [--tools-file PATH]`
//! - `--init-count-file PATH`: append a line (the pid) to PATH on every `initialize`.
//! - `--tools-file PATH`: `tools/list` answers the JSON array in PATH (read again each time, so
//!   a test can change a tool under a running server: a rug pull, announced with
//!   `notifications/tools/list_changed` within 100 ms), and a call to one of those tools
//!   answers `<name>: <arguments as JSON>`.
//! - `--fail-start`: print "fatal: configured to fail" to stderr and exit 1.
//!
//! Like a dual-era server initialized in the handshake era, it refuses (-32600) any request
//! whose `params._meta` carries `io.modelcontextprotocol/protocolVersion`.
//!
//! Exits 0 on stdin EOF (after letting in-flight replies out, at most 2 s).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// Shared server state.
struct Server {
    out: tokio::sync::Mutex<tokio::io::Stdout>,
    init_count_file: Option<String>,
    tools_file: Option<String>,
    mutated: AtomicBool,
    next_sample_id: AtomicU64,
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    in_flight: AtomicUsize,
    stdin_closed: AtomicBool,
}

impl Server {
    /// Write one line to stdout (whole line under a lock, then flush).
    async fn write_line(&self, line: &str) {
        let mut out = self.out.lock().await;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        // A closed stdout means the client is gone; exit quietly.
        if out.write_all(&buf).await.is_err() || out.flush().await.is_err() {
            std::process::exit(0);
        }
    }

    async fn send(&self, msg: &Value) {
        self.write_line(&msg.to_string()).await;
    }

    async fn reply(&self, id: &Value, result: Value) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
            .await;
    }

    async fn reply_err(&self, id: &Value, code: i64, message: &str) {
        self.send(
            &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        )
        .await;
    }

    async fn notify(&self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }
}

fn text_result(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": false})
}

fn error_result(text: impl Into<String>) -> Value {
    json!({"content": [{"type": "text", "text": text.into()}], "isError": true})
}

fn tool(name: &str, description: &str, props: Value, required: &[&str]) -> Value {
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": props, "required": required},
    })
}

fn tool_list(mutated: bool) -> Value {
    let s = json!({"type": "string"});
    let n = json!({"type": "number"});
    let i = json!({"type": "integer"});
    let mut tools = vec![
        tool(
            "echo",
            "Echo the message back",
            json!({"message": s}),
            &["message"],
        ),
        tool(
            "add",
            "Add two numbers",
            json!({"a": n, "b": n}),
            &["a", "b"],
        ),
        tool("crash", "Exit with code 3 without replying", json!({}), &[]),
        tool("hang", "Never reply", json!({}), &[]),
        tool(
            "unreadable",
            "Answer as if the request could not be parsed (id null), and never reply",
            json!({}),
            &[],
        ),
        tool(
            "garbage",
            "Write a non-JSON line, then reply",
            json!({}),
            &[],
        ),
        tool(
            "flood_stderr",
            "Write many 200-char lines to stderr",
            json!({"lines": i}),
            &[],
        ),
        tool(
            "slow",
            "Reply after ms milliseconds",
            json!({"ms": i}),
            &["ms"],
        ),
        tool(
            "progress",
            "Send progress notifications (`ms` apart)",
            json!({"steps": i, "ms": i}),
            &[],
        ),
        tool(
            "sample",
            "Ask the client to sample",
            json!({"prompt": s}),
            &["prompt"],
        ),
        tool(
            "roots",
            "Ask the client for its roots, carry on without them",
            json!({}),
            &[],
        ),
        tool("mutate", "Add a tool and send list_changed", json!({}), &[]),
        tool("pid", "Reply with the process id", json!({}), &[]),
        tool(
            "env",
            "Reply with an environment variable",
            json!({"name": s}),
            &["name"],
        ),
        tool("cwd", "Reply with the current directory", json!({}), &[]),
        tool(
            "big",
            "Reply with that many 'x'",
            json!({"bytes": i}),
            &["bytes"],
        ),
    ];
    if mutated {
        tools.push(tool("mutated_tool", "Appears after mutate", json!({}), &[]));
    }
    json!({ "tools": tools })
}

fn arg_u64(args: &Value, key: &str, default: u64) -> u64 {
    args.get(key)
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
        .unwrap_or(default)
}

fn arg_str<'a>(args: &'a Value, key: &str) -> &'a str {
    args.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The tools of `--tools-file`, read now (none when it is unset or unreadable).
fn file_tools(srv: &Server) -> Vec<Value> {
    srv.tools_file
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Handle `tools/call`; returns `None` when no reply must be sent.
async fn call_tool(srv: &Arc<Server>, params: &Value) -> Result<Option<Value>, (i64, String)> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let empty = json!({});
    let args = params.get("arguments").unwrap_or(&empty);
    let result = match name {
        "echo" => text_result(arg_str(args, "message")),
        // Not listed (tests count the listed tools): the `_meta` the call arrived with, as JSON,
        // so a test can see what the gateway passed on (a traceparent, say).
        "meta" => text_result(params.get("_meta").unwrap_or(&empty).to_string()),
        "add" => {
            let a = args.get("a").and_then(Value::as_f64);
            let b = args.get("b").and_then(Value::as_f64);
            match (a, b) {
                (Some(a), Some(b)) => {
                    let sum = a + b;
                    if sum.fract() == 0.0 && sum.abs() < 9.0e15 {
                        text_result(format!("{}", sum as i64))
                    } else {
                        text_result(format!("{sum}"))
                    }
                }
                _ => error_result("add needs numbers a and b"),
            }
        }
        "crash" => std::process::exit(3),
        "hang" => return Ok(None),
        "unreadable" => {
            // As a server that could not parse the request: an error with a null id, no reply.
            let err = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: unreadable request"}}"#;
            srv.write_line(err).await;
            return Ok(None);
        }
        "garbage" => {
            srv.write_line("this is not json").await;
            text_result("after garbage")
        }
        "flood_stderr" => {
            let lines = arg_u64(args, "lines", 100_000);
            let _ = tokio::task::spawn_blocking(move || {
                let line = format!("{}\n", "e".repeat(199));
                let stderr = std::io::stderr();
                let mut err = std::io::BufWriter::with_capacity(64 * 1024, stderr.lock());
                for _ in 0..lines {
                    if err.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                }
                let _ = err.flush();
            })
            .await;
            text_result("flooded")
        }
        "slow" => {
            tokio::time::sleep(Duration::from_millis(arg_u64(args, "ms", 1000))).await;
            text_result("slow done")
        }
        "progress" => {
            let steps = arg_u64(args, "steps", 3);
            let token = params
                .get("_meta")
                .and_then(|m| m.get("progressToken"))
                .cloned();
            let pause = Duration::from_millis(arg_u64(args, "ms", 0));
            if let Some(token) = token {
                for i in 1..=steps {
                    if i > 1 && !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    srv.notify(
                        "notifications/progress",
                        json!({"progressToken": token, "progress": i, "total": steps,
                               "message": format!("step {i} of {steps}")}),
                    )
                    .await;
                }
            }
            text_result(format!("progress done ({steps} steps)"))
        }
        "sample" => sample(srv, arg_str(args, "prompt")).await,
        "mutate" => {
            srv.mutated.store(true, Ordering::SeqCst);
            srv.notify("notifications/tools/list_changed", json!({}))
                .await;
            text_result("mutated")
        }
        "mutated_tool" if srv.mutated.load(Ordering::SeqCst) => text_result("mutated_tool called"),
        "pid" => text_result(std::process::id().to_string()),
        "env" => {
            text_result(std::env::var(arg_str(args, "name")).unwrap_or_else(|_| "<unset>".into()))
        }
        "cwd" => match std::env::current_dir() {
            Ok(d) => text_result(d.display().to_string()),
            Err(e) => error_result(format!("current_dir: {e}")),
        },
        "big" => text_result("x".repeat(arg_u64(args, "bytes", 0) as usize)),
        "roots" => roots(srv).await,
        other if file_tools(srv).iter().any(|t| t["name"] == other) => {
            text_result(format!("{other}: {args}"))
        }
        other => return Err((-32602, format!("Unknown tool: {other}"))),
    };
    Ok(Some(result))
}

/// Ask the client for `roots/list`, as servers do mid-call; a refusal is not a failure: the
/// result says `no roots (<error>)`, else the root URIs.
async fn roots(srv: &Arc<Server>) -> Value {
    let id = format!(
        "fake-r-{}",
        srv.next_sample_id.fetch_add(1, Ordering::SeqCst) + 1
    );
    let (tx, rx) = oneshot::channel();
    srv.pending.lock().unwrap().insert(id.clone(), tx);
    srv.send(&json!({"jsonrpc": "2.0", "id": id, "method": "roots/list"}))
        .await;
    let Ok(resp) = rx.await else {
        return error_result("roots: no response");
    };
    match (resp.get("result"), resp.get("error")) {
        (_, Some(err)) => text_result(format!("no roots ({})", err["message"])),
        (Some(r), _) => text_result(format!("roots: {}", r["roots"])),
        _ => error_result("roots: an empty response"),
    }
}

/// Send `sampling/createMessage` to the client and turn its answer into a tool result.
async fn sample(srv: &Arc<Server>, prompt: &str) -> Value {
    let id = format!(
        "fake-s-{}",
        srv.next_sample_id.fetch_add(1, Ordering::SeqCst) + 1
    );
    let (tx, rx) = oneshot::channel();
    srv.pending.lock().unwrap().insert(id.clone(), tx);
    if srv.stdin_closed.load(Ordering::SeqCst) {
        srv.pending.lock().unwrap().remove(&id);
        return error_result("sampling: stdin closed");
    }
    srv.send(&json!({
        "jsonrpc": "2.0", "id": id, "method": "sampling/createMessage",
        "params": {
            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
            "maxTokens": 100,
        },
    }))
    .await;
    let Ok(resp) = rx.await else {
        return error_result("sampling: no response");
    };
    if let Some(err) = resp.get("error") {
        return error_result(format!("sampling error: {err}"));
    }
    let content = resp
        .get("result")
        .and_then(|r| r.get("content"))
        .cloned()
        .unwrap_or(Value::Null);
    let blocks = match content {
        Value::Array(v) => v,
        Value::Null => vec![],
        other => vec![other],
    };
    let text: Vec<&str> = blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    text_result(text.join(""))
}

/// Handle one request (a message with both `method` and `id`).
async fn handle_request(srv: Arc<Server>, id: Value, method: String, params: Value) {
    // As a dual-era server (the Python SDK 2.x) does on a connection it initialized in the
    // handshake era: a request carrying the 2026-07-28 envelope is refused.
    let enveloped = params
        .pointer("/_meta")
        .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
        .is_some();
    if enveloped && method != "initialize" {
        let msg = "enveloped (2026-07-28) request on a handshake-era connection";
        return srv.reply_err(&id, -32600, msg).await;
    }
    match method.as_str() {
        "initialize" => {
            if let Some(path) = &srv.init_count_file {
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                {
                    let _ = writeln!(f, "{}", std::process::id());
                }
            }
            let version = params
                .get("protocolVersion")
                .cloned()
                .unwrap_or(json!("2025-11-25"));
            srv.reply(
                &id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": true}, "logging": {}},
                    "serverInfo": {"name": "fake", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await;
        }
        "ping" | "logging/setLevel" => srv.reply(&id, json!({})).await,
        "tools/list" if srv.tools_file.is_some() => {
            srv.reply(&id, json!({ "tools": file_tools(&srv) })).await
        }
        "tools/list" => {
            srv.reply(&id, tool_list(srv.mutated.load(Ordering::SeqCst)))
                .await
        }
        "tools/call" => match call_tool(&srv, &params).await {
            Ok(Some(result)) => srv.reply(&id, result).await,
            Ok(None) => {}
            Err((code, msg)) => srv.reply_err(&id, code, &msg).await,
        },
        _ => {
            srv.reply_err(&id, -32601, &format!("Method not found: {method}"))
                .await
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut init_count_file = None;
    let mut tools_file = None;
    let mut argv = std::env::args().skip(1);
    while let Some(a) = argv.next() {
        match a.as_str() {
            "--fail-start" => {
                eprintln!("fatal: configured to fail");
                std::process::exit(1);
            }
            "--init-count-file" => init_count_file = argv.next(),
            "--tools-file" => tools_file = argv.next(),
            other => {
                eprintln!("fake: unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let srv = Arc::new(Server {
        out: tokio::sync::Mutex::new(tokio::io::stdout()),
        init_count_file,
        tools_file,
        mutated: AtomicBool::new(false),
        next_sample_id: AtomicU64::new(0),
        pending: Mutex::new(HashMap::new()),
        in_flight: AtomicUsize::new(0),
        stdin_closed: AtomicBool::new(false),
    });

    if let Some(path) = srv.tools_file.clone() {
        let srv = srv.clone();
        tokio::spawn(async move {
            let mut last = std::fs::read(&path).ok();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = std::fs::read(&path).ok();
                if now != last {
                    last = now;
                    srv.send(
                        &json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}),
                    )
                    .await;
                }
            }
        });
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                let err = json!({"jsonrpc": "2.0", "id": null,
                                 "error": {"code": -32700, "message": format!("Parse error: {e}")}});
                srv.send(&err).await;
                continue;
            }
        };
        let id = msg.get("id").cloned();
        match (msg.get("method").and_then(Value::as_str), id) {
            // Request: serve concurrently.
            (Some(method), Some(id)) => {
                let params = msg.get("params").cloned().unwrap_or(json!({}));
                let (srv2, method) = (srv.clone(), method.to_string());
                srv.in_flight.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    handle_request(srv2.clone(), id, method, params).await;
                    srv2.in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // Notification: ignored.
            (Some(_), None) => {}
            // Response to one of our requests (sampling).
            (None, Some(id)) => {
                let key = match &id {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if let Some(tx) = srv.pending.lock().unwrap().remove(&key) {
                    let _ = tx.send(msg);
                }
            }
            (None, None) => {
                let err = json!({"jsonrpc": "2.0", "id": null,
                                 "error": {"code": -32600, "message": "Invalid Request"}});
                srv.send(&err).await;
            }
        }
    }
    // stdin EOF: fail pending sampling calls, let in-flight replies out (at most 2 s), exit.
    srv.stdin_closed.store(true, Ordering::SeqCst);
    srv.pending.lock().unwrap().clear();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while srv.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::process::exit(0);
}
