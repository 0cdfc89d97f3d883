//! Limits a hostile or careless client meets: a cap on sessions (sessions made for a
//! `tools/call` without `initialize` live briefly and go first), and a deadline for a request
//! body that stalls after its headers.

use flowguard_testkit::client::{initialize_body, tool_text};
use flowguard_testkit::config::one_fake;
use flowguard_testkit::http::post_json;
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn call_body(n: u64) -> String {
    json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
           "params": {"name": "echo", "arguments": {"message": format!("m{n}")}}})
    .to_string()
}

#[tokio::test]
async fn sessions_are_capped_and_transparent_ones_make_room_first() {
    let gw = GatewayProcess::start(
        &one_fake("max_sessions = 4\nauto_session_idle_timeout = \"1s\""),
        "toml",
        &[],
    );
    let url = gw.url("/mcp/fake");
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(McpClient::connect(&url, json!({})).await);
    }
    // Session-less calls: each gets a transparent session, and at the cap the oldest of those
    // makes room, so they all succeed.
    for n in 0..20 {
        let reply = post_json(&url, &[], &call_body(n)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let msg = reply.messages().pop().expect("a reply");
        assert_eq!(tool_text(&msg), format!("m{n}"), "{msg}");
    }
    let health = gw.health().await;
    assert!(health["sessions"].as_u64() <= Some(4), "{health:#}");

    // Four initialized sessions fill the gateway: the next initialize is refused, clearly.
    kept.push(McpClient::connect(&url, json!({})).await);
    let refused = post_json(&url, &[], &initialize_body(&json!({}))).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.text().contains("max_sessions"),
        "{}",
        refused.text()
    );
    // The sessions there are still served.
    let reply = kept[0].call_tool("echo", json!({"message": "kept"})).await;
    assert_eq!(tool_text(&reply), "kept", "{reply}");
}

#[tokio::test]
async fn transparent_sessions_expire_after_their_short_idle_timeout() {
    let gw = GatewayProcess::start(&one_fake("auto_session_idle_timeout = \"1s\""), "toml", &[]);
    let url = gw.url("/mcp/fake");
    let _kept = McpClient::connect(&url, json!({})).await;
    for n in 0..5 {
        assert_eq!(post_json(&url, &[], &call_body(n)).await.status, 200);
    }
    assert_eq!(gw.health().await["sessions"], 6);
    let health = gw
        .wait_health(Duration::from_secs(10), |h| h["sessions"] == 1)
        .await;
    assert_eq!(health["sessions"], 1, "{health:#}");
}

#[tokio::test]
async fn a_body_that_stalls_after_its_headers_gets_408_and_the_connection_closes() {
    let gw = GatewayProcess::start(&one_fake("body_timeout = \"1s\""), "toml", &[]);
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", gw.port()))
        .await
        .expect("connects");
    let head = "POST /mcp/fake HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Accept: application/json\r\nContent-Length: 100000\r\n\r\n{\"jsonrpc\":";
    stalled.write_all(head.as_bytes()).await.expect("sent");
    let t = Instant::now();
    let mut answer = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the stalled connection was still open after 10 s"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        t.elapsed()
    );
    // Other clients are served all along.
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let reply = client.call_tool("echo", json!({"message": "fine"})).await;
    assert_eq!(tool_text(&reply), "fine", "{reply}");
}

/// Sends a `slow` call of 30 s raw, waits until the gateway has it in flight, closes the
/// connection, and returns how long until the call was no longer pending upstream.
async fn vanish_mid_call(
    gw: &GatewayProcess,
    headers: &str,
    params_meta: serde_json::Value,
) -> Duration {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "slow", "arguments": {"ms": 30000}, "_meta": params_meta}})
    .to_string();
    let req = format!(
        "POST /mcp/fake HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         {headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", gw.port()))
        .await
        .expect("connects");
    conn.write_all(req.as_bytes()).await.expect("sent");
    gw.wait_health(Duration::from_secs(10), |h| {
        h["servers"]["fake"]["pending"] == 1
    })
    .await;
    drop(conn);
    let t = Instant::now();
    let health = gw
        .wait_health(Duration::from_secs(10), |h| {
            h["servers"]["fake"]["pending"] == 0
        })
        .await;
    assert_eq!(health["servers"]["fake"]["pending"], 0, "{health:#}");
    t.elapsed()
}

/// A client that disconnects while its reply is pending has its call cancelled upstream at
/// once (hyper watches the connection while the handler runs and drops the handler, which
/// cancels the call), not left running until its reply or the request timeout.
#[tokio::test]
async fn a_client_that_vanishes_mid_call_has_its_call_cancelled() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let json_only = vanish_mid_call(&gw, "Accept: application/json\r\n", json!({})).await;
    assert!(
        json_only < Duration::from_secs(3),
        "JSON client: noticed after {json_only:?}"
    );
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let modern = vanish_mid_call(
        &gw,
        "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: slow\r\n",
        meta,
    )
    .await;
    assert!(
        modern < Duration::from_secs(3),
        "2026 client: noticed after {modern:?}"
    );
}

/// Large bodies arriving slowly share one budget: once it is held, more are refused (503) and
/// their connections closed, while ordinary messages are served.
#[tokio::test]
async fn large_bodies_share_a_budget_and_ordinary_messages_pass() {
    let gw = GatewayProcess::start(&one_fake("body_timeout = \"20s\""), "toml", &[]);
    let head = "POST /mcp/fake HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Accept: application/json\r\nContent-Length: 2000000\r\n\r\n";
    let part = vec![b' '; 1_900_000];
    let mut conns = Vec::new();
    for _ in 0..45 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", gw.port()))
            .await
            .expect("connects");
        c.write_all(head.as_bytes()).await.expect("head sent");
        let _ = c.write_all(&part).await;
        conns.push(c);
    }
    // 45 × 1.9 MB is more than the 64 MiB budget: some were refused and closed at once.
    let answers = futures_util::future::join_all(conns.iter_mut().map(|c| async move {
        let mut answer = vec![0u8; 12];
        let read = tokio::time::timeout(Duration::from_millis(500), c.read_exact(&mut answer));
        matches!(read.await, Ok(Ok(_))).then(|| String::from_utf8_lossy(&answer).into_owned())
    }))
    .await;
    let refused = answers.iter().flatten().count();
    for status in answers.iter().flatten() {
        assert_eq!(status, "HTTP/1.1 503", "{answers:?}");
    }
    assert!(refused >= 5, "only {refused} of 45 large bodies refused");
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let reply = client.call_tool("echo", json!({"message": "small"})).await;
    assert_eq!(tool_text(&reply), "small", "{reply}");
}
