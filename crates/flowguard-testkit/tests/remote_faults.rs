//! Remote Streamable HTTP servers that misbehave (the in-test [`FlakyServer`]): idempotent
//! requests are retried and `tools/call` never is, a server that wants a session id on
//! `initialize` gets a temporary one, unanswered pings make the gateway reconnect, and only the
//! configured credentials reach the server, never the client's.

use flowguard_testkit::client::{error_message, tool_text};
use flowguard_testkit::flaky::FlakyServer;
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::json;
use std::time::Duration;

fn remote(url: &str, extra: &str) -> String {
    format!("[servers.remote]\nurl = \"{url}\"\n{extra}\n")
}

#[tokio::test]
async fn idempotent_requests_are_retried_and_tool_calls_are_not() {
    let flaky = FlakyServer::start().await;
    flaky.fail_next("initialize", 2);
    flaky.fail_next("tools/list", 2);
    let gw = GatewayProcess::start(&remote(&flaky.url(), ""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    assert_eq!(client.tool_names().await, ["echo"]);
    assert_eq!(flaky.count("initialize"), 3, "{:?}", flaky.seen());
    assert_eq!(flaky.count("tools/list"), 3, "{:?}", flaky.seen());

    flaky.fail_next("tools/call", 1);
    let failed = client.call_tool("echo", json!({"message": "once"})).await;
    assert!(error_message(&failed).contains("HTTP 503"), "{failed}");
    assert_eq!(flaky.count("tools/call"), 1, "a tool call was sent twice");
    let ok = client.call_tool("echo", json!({"message": "again"})).await;
    assert_eq!(tool_text(&ok), "again", "{ok}");
}

#[tokio::test]
async fn retries_are_bounded_by_the_config() {
    let flaky = FlakyServer::start().await;
    flaky.fail_next("initialize", 1);
    let gw = GatewayProcess::start(&remote(&flaky.url(), "retries = 0"), "toml", &[]);
    // No retry: the first initialize fails, and the supervisor's next attempt succeeds.
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    assert_eq!(client.tool_names().await, ["echo"]);
    let log = gw.stderr_text();
    assert!(!log.contains("retrying after"), "{log}");
    assert!(log.contains("HTTP 503"), "{log}");
}

#[tokio::test]
async fn a_server_that_insists_on_a_session_id_gets_a_temporary_one() {
    let flaky = FlakyServer::start().await;
    flaky.require_session(true);
    let gw = GatewayProcess::start(&remote(&flaky.url(), ""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    let reply = client.call_tool("echo", json!({"message": "hi"})).await;
    assert_eq!(tool_text(&reply), "hi", "{reply}");
    let seen = flaky.seen();
    let inits: Vec<_> = seen.iter().filter(|s| s.method == "initialize").collect();
    assert_eq!(inits.len(), 2, "{seen:?}");
    assert_eq!(inits[0].session, None);
    let temporary = inits[1].session.as_deref().expect("a temporary id");
    assert_eq!(temporary.len(), 32, "{temporary}");
    // Afterwards the id the server handed out is used.
    let call = seen.iter().find(|s| s.method == "tools/call").unwrap();
    assert_eq!(call.session.as_deref(), Some("srv-1"), "{seen:?}");
}

#[tokio::test]
async fn unanswered_pings_count_as_a_lost_connection() {
    let flaky = FlakyServer::start().await;
    let gw = GatewayProcess::start(
        &remote(&flaky.url(), "ping_interval = \"200ms\""),
        "toml",
        &[],
    );
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    assert_eq!(client.tool_names().await, ["echo"]);
    flaky.ignore_pings(true);
    let mut reinitialized = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if flaky.count("initialize") >= 2 {
            reinitialized = true;
            break;
        }
    }
    assert!(reinitialized, "{}", gw.stderr_text());
    assert!(gw.stderr_text().contains("3 pings in a row failed"));
    flaky.ignore_pings(false);
    let mut answered = false;
    for _ in 0..50 {
        let reply = client.call_tool("echo", json!({"message": "back"})).await;
        if reply["result"]["content"][0]["text"] == "back" {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered, "{}", gw.stderr_text());
}

#[tokio::test]
async fn remote_servers_are_pinged_by_default_and_zero_turns_it_off() {
    // The gateway's default applies to remote servers; a short one shows it quickly.
    let flaky = FlakyServer::start().await;
    let config = format!(
        "[gateway]\nping_interval = \"100ms\"\n\n{}",
        remote(&flaky.url(), "")
    );
    let _gw = GatewayProcess::start(&config, "toml", &[]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(flaky.count("ping") >= 2, "{:?}", flaky.seen());
    let off = FlakyServer::start().await;
    let _gw2 = GatewayProcess::start(&remote(&off.url(), "ping_interval = 0"), "toml", &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(off.count("ping"), 0);
}

#[tokio::test]
async fn the_client_authorization_never_reaches_the_remote_server() {
    let flaky = FlakyServer::start().await;
    let extra = "headers = { Authorization = \"Bearer from-config\" }";
    let gw = GatewayProcess::start(&remote(&flaky.url(), extra), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "x"}}});
    let reply = client
        .raw_post(
            &[("authorization", "Bearer client-secret")],
            call.to_string(),
        )
        .await;
    assert!(reply.text().contains("\"x\""), "{}", reply.text());
    let seen = flaky.seen();
    assert!(seen.iter().any(|s| s.method == "tools/call"), "{seen:?}");
    for s in &seen {
        assert_eq!(
            s.authorization.as_deref(),
            Some("Bearer from-config"),
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn the_get_stream_stops_on_405_or_a_plain_2xx_and_resumes_with_last_event_id() {
    let without = FlakyServer::start().await;
    let _gw = GatewayProcess::start(&remote(&without.url(), "ping_interval = 0"), "toml", &[]);
    // A 2xx that is not an event stream (mcp-echo and others answer 202) means the same.
    let accepts = FlakyServer::start().await;
    accepts.answer_get_with(202);
    let _gw2 = GatewayProcess::start(&remote(&accepts.url(), "ping_interval = 0"), "toml", &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(without.count("GET"), 1, "{:?}", without.seen());
    assert_eq!(accepts.count("GET"), 1, "{:?}", accepts.seen());

    let flaky = FlakyServer::start().await;
    flaky.serve_get_stream(true);
    let gw = GatewayProcess::start(&remote(&flaky.url(), "ping_interval = 0"), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/remote"), json!({})).await;
    let mut stream = client.open_stream().await;
    let changed = stream
        .wait_for(Duration::from_secs(10), |m| {
            m["method"] == "notifications/tools/list_changed"
        })
        .await;
    assert!(changed.is_some(), "{}", gw.stderr_text());
    // The stream is reopened after the event that ended it: wait for that (a loaded machine
    // may take a moment), rather than expect it already done.
    let gets = || -> Vec<_> {
        flaky
            .seen()
            .into_iter()
            .filter(|s| s.method == "GET")
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gets().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gets = gets();
    assert!(gets.len() >= 2, "{gets:?}");
    assert_eq!(gets[0].last_event_id, None);
    assert_eq!(gets[0].session.as_deref(), Some("srv-1"));
    assert_eq!(gets[1].last_event_id.as_deref(), Some("ev-1"), "{gets:?}");
}
