//! `isolation = "session"`: each client session gets its own child, with its own `ENV_*`
//! variables and lists, and the child is gone when the session ends — by DELETE, by the HTTP+SSE
//! stream closing, by a stdio client's exit, by the session's or the child's idle timeout —
//! and no more than `max_sessions_per_server` run at once. Checked on real processes.

use flowguard_testkit::bins::flowguard_bin;
use flowguard_testkit::client::{error_message, tool_text};
use flowguard_testkit::config::{fake_path, fake_server};
use flowguard_testkit::http::post_json;
use flowguard_testkit::procs::{is_alive, wait_until};
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const GONE_WITHIN: Duration = Duration::from_secs(15);

/// A gateway with one isolated fake server `iso`, plus `gateway` and `server` TOML lines.
fn isolated(gateway: &str, server: &str) -> GatewayProcess {
    let config = format!(
        "[gateway]\n{gateway}\n\n{}",
        fake_server(
            "iso",
            &[],
            &format!("isolation = \"session\"\nenv_from_headers = [\"FG_TOKEN\"]\n{server}")
        )
    );
    GatewayProcess::start(&config, "toml", &[])
}

async fn pid_of(client: &McpClient) -> u32 {
    let reply = client.call_tool("pid", json!({})).await;
    tool_text(&reply)
        .parse()
        .unwrap_or_else(|_| panic!("pid: {reply}"))
}

async fn env_of(client: &McpClient, name: &str) -> String {
    let reply = client.call_tool("env", json!({ "name": name })).await;
    tool_text(&reply).to_string()
}

fn gone(pid: u32) -> bool {
    wait_until(GONE_WITHIN, || !is_alive(pid))
}

#[tokio::test]
async fn each_session_gets_its_own_child_environment_and_lists() {
    let gw = isolated("", "");
    let url = gw.url("/mcp/iso");
    let a = McpClient::connect_with_headers(&url, json!({}), &[("env_fg_token", "a-secret")]).await;
    let b = McpClient::connect(&url, json!({})).await;
    let (pa, pb) = (pid_of(&a).await, pid_of(&b).await);
    assert_ne!(pa, pb, "two sessions share one child");
    assert!(is_alive(pa) && is_alive(pb));
    assert_eq!(env_of(&a, "FG_TOKEN").await, "a-secret");
    assert_eq!(env_of(&b, "FG_TOKEN").await, "<unset>");

    // A's child changes its tools and says so: only A's list changes.
    let _ = a.call_tool("mutate", json!({})).await;
    assert!(a.tool_names().await.contains(&"mutated_tool".to_string()));
    assert!(!b.tool_names().await.contains(&"mutated_tool".to_string()));

    // The value is a secret: not in the log, not in any process's argv.
    assert!(
        !gw.stderr_text().contains("a-secret"),
        "the value was logged"
    );
    let argv = std::fs::read(format!("/proc/{pa}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&argv).contains("a-secret"));

    let health = gw.health().await;
    assert_eq!(
        health["servers"]["iso"]["status"], "per-session",
        "{health}"
    );
    assert_eq!(health["servers"]["iso"]["instances"], 2, "{health}");
}

#[tokio::test]
async fn the_unified_endpoint_reaches_the_session_own_child() {
    let gw = isolated("mode = \"both\"", "");
    let a =
        McpClient::connect_with_headers(&gw.url("/mcp"), json!({}), &[("ENV_FG_TOKEN", "u")]).await;
    let reply = a
        .call_tool("iso___env", json!({ "name": "FG_TOKEN" }))
        .await;
    assert_eq!(tool_text(&reply), "u", "{reply}");
}

#[tokio::test]
async fn an_env_header_outside_the_allow_list_is_refused_without_echoing_its_value() {
    let gw = isolated("", "");
    let body = flowguard_testkit::client::initialize_body(&json!({}));
    let reply = post_json(&gw.url("/mcp/iso"), &[("ENV_PATH", "/evil-value")], &body).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let text = reply.text();
    assert!(
        text.contains("ENV_PATH") && text.contains("allowed: FG_TOKEN"),
        "{text}"
    );
    assert!(!text.contains("/evil-value"), "{text}");
}

#[tokio::test]
async fn delete_stops_the_session_child() {
    let gw = isolated("", "");
    let a = McpClient::connect(&gw.url("/mcp/iso"), json!({})).await;
    let pid = pid_of(&a).await;
    assert_eq!(a.delete().await.status, 200);
    assert!(gone(pid), "child {pid} outlived its session");
}

#[tokio::test]
async fn a_session_idle_past_session_idle_timeout_ends_and_its_child_stops() {
    let gw = isolated("session_idle_timeout = \"1s\"", "");
    let a = McpClient::connect(&gw.url("/mcp/iso"), json!({})).await;
    let pid = pid_of(&a).await;
    assert!(gone(pid), "child {pid} outlived its idle session");
    let reply = a
        .raw_post(&[], r#"{"jsonrpc":"2.0","id":9,"method":"ping"}"#)
        .await;
    assert_eq!(reply.status, 404, "{}", reply.text());
}

#[tokio::test]
async fn an_idle_child_is_stopped_and_the_next_call_starts_a_fresh_one() {
    let gw = isolated("", "idle_timeout = \"1s\"");
    let a = McpClient::connect_with_headers(
        &gw.url("/mcp/iso"),
        json!({}),
        &[("env_fg_token", "kept")],
    )
    .await;
    let first = pid_of(&a).await;
    assert!(gone(first), "idle child {first} was not stopped");
    let second = pid_of(&a).await;
    assert_ne!(first, second);
    assert!(is_alive(second));
    assert_eq!(
        env_of(&a, "FG_TOKEN").await,
        "kept",
        "the fresh child lost the session's env"
    );
}

#[tokio::test]
async fn sessions_beyond_max_sessions_per_server_get_a_clear_error() {
    let gw = isolated("max_sessions_per_server = 1", "");
    let url = gw.url("/mcp/iso");
    let a = McpClient::connect(&url, json!({})).await;
    let reply = flowguard_testkit::client::initialize_reply(&url, &json!({})).await;
    let msg: Value = reply.messages().pop().expect("a reply");
    assert!(
        error_message(&msg).contains("max_sessions_per_server"),
        "{msg}"
    );
    assert!(
        reply.header("mcp-session-id").is_none(),
        "a refused session got an id"
    );
    let pid = pid_of(&a).await;
    a.delete().await;
    assert!(gone(pid));
    let b = McpClient::connect(&url, json!({})).await;
    assert!(pid_of(&b).await > 0);
}

/// Opens an HTTP+SSE session on a raw connection; returns the message URL, the events and the
/// connection's reader task (aborting it drops the connection, as a killed client would).
async fn open_sse(
    gw: &GatewayProcess,
    headers: &str,
) -> (
    String,
    mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<()>,
) {
    let port = gw.port();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let req = format!(
        "GET /mcp/iso/sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n{headers}\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut lines = AsyncBufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(data) = line.strip_prefix("data: ") {
                let _ = tx.send(data.to_string());
            }
        }
    });
    let endpoint = next_event(&mut rx).await;
    (gw.url(&endpoint), rx, task)
}

async fn next_event(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("an event in time")
        .expect("stream open")
}

#[tokio::test]
async fn a_dropped_http_sse_connection_stops_the_session_child_at_once() {
    let gw = isolated("", "");
    let (url, mut events, conn) = open_sse(&gw, "ENV_FG_TOKEN: sse\r\n").await;
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"old","version":"0"}}});
    assert_eq!(post_json(&url, &[], &init.to_string()).await.status, 202);
    next_event(&mut events).await;
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"env","arguments":{"name":"FG_TOKEN"}}});
    post_json(&url, &[], &call.to_string()).await;
    let reply: Value = serde_json::from_str(&next_event(&mut events).await).unwrap();
    assert_eq!(tool_text(&reply), "sse", "{reply}");
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pid","arguments":{}}});
    post_json(&url, &[], &call.to_string()).await;
    let reply: Value = serde_json::from_str(&next_event(&mut events).await).unwrap();
    let pid: u32 = tool_text(&reply).parse().unwrap();
    assert!(is_alive(pid));
    conn.abort();
    let _ = conn.await; // the connection is closed once the aborted task is dropped
    assert!(
        gone(pid),
        "child {pid} outlived the dropped SSE connection:\n{}",
        gw.stderr_text()
    );
}

#[test]
fn a_stdio_client_that_goes_away_takes_the_session_child_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gw.toml");
    let text = format!(
        "[servers.iso]\ncommand = {}\nisolation = \"session\"\n",
        fake_path()
    );
    std::fs::write(&config, text).unwrap();
    let mut gw = Command::new(flowguard_bin())
        .args([
            "stdio",
            "--config",
            config.to_str().unwrap(),
            "--server",
            "iso",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = gw.stdin.take().unwrap();
    let mut stdout = BufReader::new(gw.stdout.take().unwrap());
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pid","arguments":{}}});
    writeln!(stdin, "{init}\n{call}").unwrap();
    let mut pid = None;
    for _ in 0..5 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let msg: Value = serde_json::from_str(&line).unwrap();
        if msg["id"] == 2 {
            pid = tool_text(&msg).parse::<u32>().ok();
            break;
        }
    }
    let pid = pid.expect("the pid tool answered");
    assert!(is_alive(pid));
    drop(stdin);
    assert!(gone(pid), "child {pid} outlived its stdio client");
    let _ = gw.wait();
}

/// `flowguard config check` on a TOML `text`: its exit code and stderr.
fn config_check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    let out = flowguard_testkit::GatewayOptions::new()
        .run(&["config", "check", path.to_str().unwrap()], None);
    (out.code(), out.stderr)
}

#[test]
fn the_config_refuses_unsafe_or_meaningless_isolation_settings() {
    let cases: [(String, &[&str]); 5] = [
        (
            fake_server(
                "a",
                &[],
                "isolation = \"session\"\nenv_from_headers = [\"LD_PRELOAD\"]",
            ),
            &[
                "servers.a.env_from_headers[0]",
                "`LD_PRELOAD` cannot be set by clients",
                "hint:",
            ],
        ),
        (
            fake_server(
                "a",
                &[],
                "isolation = \"session\"\nenv_from_headers = [\"path\"]",
            ),
            &["`path` cannot be set by clients"],
        ),
        (
            "[servers.r]\nurl = \"http://127.0.0.1:9/mcp\"\nisolation = \"session\"\n".into(),
            &[
                "servers.r.isolation",
                "applies only to command and container servers",
            ],
        ),
        (
            fake_server("a", &[], "env_from_headers = [\"GITHUB_TOKEN\"]"),
            &[
                "servers.a.env_from_headers",
                "needs `isolation` = \"session\"",
            ],
        ),
        (
            format!(
                "[gateway]\nmax_sessions_per_server = 0\n{}",
                fake_server("a", &[], "")
            ),
            &["gateway.max_sessions_per_server", "at least 1"],
        ),
    ];
    for (text, needles) in cases {
        let (code, stderr) = config_check(&text);
        assert_eq!(code, Some(2), "{text}\n{stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{n:?} missing for\n{text}\n{stderr}");
        }
    }
    let json = r#"{"mcpServers":{"a":{"command":"true","isolation":"session","idleTimeout":"5m","envFromHeaders":["GITHUB_TOKEN"]}}}"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(&path, json).unwrap();
    let out = flowguard_testkit::GatewayOptions::new()
        .run(&["config", "check", path.to_str().unwrap()], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

#[tokio::test]
async fn the_unified_endpoint_refuses_a_session_beyond_the_cap_too() {
    let gw = isolated("mode = \"unified\"\nmax_sessions_per_server = 1", "");
    let url = gw.url("/mcp");
    let a = McpClient::connect(&url, json!({})).await;
    let reply = flowguard_testkit::client::initialize_reply(&url, &json!({})).await;
    let msg: Value = reply.messages().pop().expect("a reply");
    assert!(
        error_message(&msg).contains("max_sessions_per_server"),
        "{msg}"
    );
    assert_eq!(gw.health().await["servers"]["iso"]["instances"], 1);
    drop(a);
}
