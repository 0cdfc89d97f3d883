//! Remote Streamable HTTP servers behind the gateway: calls reach them through the gateway's own
//! HTTP client, and a remote server that forgets the gateway's session (here: restarted on the
//! same port) keeps working without the client noticing.

use flowguard_testkit::bins::fixture_bin;
use flowguard_testkit::client::tool_text;
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `fixture http PORT`, waiting until it says where it listens.
fn start_fixture(port: u16) -> (Child, u16) {
    let mut child = Command::new(fixture_bin())
        .args(["http", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fixture starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
            // Keep draining stderr so the fixture never blocks on it.
            std::thread::spawn(move || for _ in lines.by_ref() {});
            return (child, port);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("fixture http did not report its port");
}

#[tokio::test]
async fn remote_server_that_forgets_the_session_keeps_working_for_the_client() {
    let (mut fixture, port) = start_fixture(0);
    let config = format!("[servers.remote]\nurl = \"http://127.0.0.1:{port}/mcp\"\n");
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    let first = client.call_tool("test_simple_text", json!({})).await;
    assert!(tool_text(&first).contains("simple text"), "{first}");

    // The remote server restarts: the gateway's upstream session id is now unknown there (404).
    let _ = fixture.kill();
    let _ = fixture.wait();
    let (mut fixture, _) = start_fixture(port);
    let again = client.call_tool("test_simple_text", json!({})).await;
    assert!(tool_text(&again).contains("simple text"), "{again}");
    assert!(
        gw.stderr_text().contains("remote session expired"),
        "{}",
        gw.stderr_text()
    );
    let _ = fixture.kill();
    let _ = fixture.wait();
}

#[tokio::test]
async fn remote_progress_and_sampling_pass_through() {
    let (mut fixture, port) = start_fixture(0);
    let config = format!("[servers.remote]\nurl = \"http://127.0.0.1:{port}/mcp\"\n");
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({"sampling": {}})).await;
    let msgs = client
        .request(
            "tools/call",
            json!({"name": "test_tool_with_progress", "_meta": {"progressToken": "p1"}}),
        )
        .await;
    let progress: Vec<_> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{msgs:?}");
    assert!(progress
        .iter()
        .all(|m| m["params"]["progressToken"] == "p1"));
    let sampled = client
        .request_answering(
            "tools/call",
            json!({"name": "test_sampling", "arguments": {"prompt": "hi"}}),
            |_| Ok(json!({"role": "assistant", "content": {"type": "text", "text": "from the client"}, "model": "m"})),
        )
        .await;
    let last = sampled.last().unwrap();
    assert!(last.to_string().contains("from the client"), "{sampled:?}");
    let _ = fixture.kill();
    let _ = fixture.wait();
}

#[tokio::test]
async fn server_initiated_messages_arrive_through_the_remote_get_stream() {
    let (mut fixture, port) = start_fixture(0);
    let config = format!("[servers.remote]\nurl = \"http://127.0.0.1:{port}/mcp\"\n");
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    let mut stream = client.open_stream().await;
    let uri = "test://static-text";
    let reply = client
        .response("resources/subscribe", json!({ "uri": uri }))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    // The fixture sends `resources/updated` only on its session's GET stream, every 3 s.
    let update = stream
        .wait_for(Duration::from_secs(10), |m| {
            m["method"] == "notifications/resources/updated"
        })
        .await;
    let update = update.unwrap_or_else(|| panic!("no update; {}", gw.stderr_text()));
    assert_eq!(update["params"]["uri"], uri);
    let _ = fixture.kill();
    let _ = fixture.wait();
}
