//! Remote servers on the 2024-11-05 HTTP+SSE transport behind the gateway. The remote server
//! is a second FlowGuard's `/sse` endpoint (a real 2024-11-05 server) in front of the fixture:
//! tool calls, progress and sampling pass through, a lost stream is reconnected, and an
//! `endpoint` event naming another origin is refused.

use flowguard_testkit::client::tool_text;
use flowguard_testkit::config::fixture_server;
use flowguard_testkit::{GatewayOptions, GatewayProcess, McpClient};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn sse_remote(url: &str) -> String {
    format!("[servers.legacy]\ntype = \"sse\"\nurl = \"{url}\"\n")
}

#[tokio::test]
async fn tool_calls_progress_and_sampling_pass_through_an_sse_remote() {
    let backend = GatewayProcess::start(&fixture_server("everything"), "toml", &[]);
    let front = GatewayProcess::start(
        &sse_remote(&backend.url("/mcp/everything/sse")),
        "toml",
        &[],
    );
    let client = McpClient::connect(&front.url("/mcp/legacy"), json!({"sampling": {}})).await;
    let reply = client.call_tool("test_simple_text", json!({})).await;
    assert!(tool_text(&reply).contains("simple text"), "{reply}");
    let msgs = client
        .request(
            "tools/call",
            json!({"name": "test_tool_with_progress", "_meta": {"progressToken": "p1"}}),
        )
        .await;
    let progress = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .filter(|m| m["params"]["progressToken"] == "p1")
        .count();
    assert_eq!(progress, 3, "{msgs:?}");
    let sampled = client
        .request_answering(
            "tools/call",
            json!({"name": "test_sampling", "arguments": {"prompt": "hi"}}),
            |_| Ok(json!({"role": "assistant", "content": {"type": "text", "text": "from the client"}, "model": "m"})),
        )
        .await;
    let last = sampled.last().unwrap();
    assert!(last.to_string().contains("from the client"), "{sampled:?}");
}

#[tokio::test]
async fn a_lost_stream_is_reconnected_and_initialized_again() {
    let backend = GatewayProcess::start(&fixture_server("everything"), "toml", &[]);
    let port = backend.port();
    let front = GatewayProcess::start(
        &sse_remote(&backend.url("/mcp/everything/sse")),
        "toml",
        &[],
    );
    let client = McpClient::connect(&front.url("/mcp/legacy"), json!({})).await;
    let reply = client.call_tool("test_simple_text", json!({})).await;
    assert!(tool_text(&reply).contains("simple text"), "{reply}");

    drop(backend);
    let _backend = GatewayOptions::new()
        .port(port)
        .start(&fixture_server("everything"), "toml");
    let mut answered = false;
    for _ in 0..60 {
        let reply = client.call_tool("test_simple_text", json!({})).await;
        if reply["result"].to_string().contains("simple text") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = front.stderr_text();
    assert!(answered, "{log}");
    assert!(log.contains("event stream of"), "{log}");
}

#[tokio::test]
async fn an_endpoint_on_another_origin_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // A server whose endpoint event points elsewhere (here: another port of the same host).
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
                let event = "event: endpoint\ndata: http://127.0.0.1:1/messages?s=1\n\n";
                let _ = s.write_all(format!("{head}{event}").as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let front = std::thread::spawn(move || {
        GatewayProcess::start(
            &sse_remote(&format!("http://127.0.0.1:{port}/sse")),
            "toml",
            &[],
        )
    });
    let front = tokio::task::spawn_blocking(move || front.join().unwrap())
        .await
        .unwrap();
    let health = front
        .wait_health(Duration::from_secs(15), |h| {
            h.to_string().contains("not on the same origin")
        })
        .await;
    let text = health.to_string();
    assert!(text.contains("http://127.0.0.1:1/messages"), "{text}");
    assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
}
