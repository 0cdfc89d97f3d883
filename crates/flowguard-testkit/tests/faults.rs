//! Servers that misbehave, and many clients at once: crashes and respawns, hangs, garbage on
//! stdout, stderr floods, oversized replies, missing programs, colliding ids and progress
//! tokens across sessions, and server-to-client requests (sampling) routed to the right client.

use flowguard_testkit::client::{error_code, error_message, initialize_reply, tool_text};
use flowguard_testkit::config::{fake_server, one_fake, quote};
use flowguard_testkit::{GatewayProcess, McpClient};
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Runs `fut`, failing the test if it takes longer than `limit`.
async fn within<T>(limit: Duration, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

fn is_running_after_restart(h: &Value) -> bool {
    let s = &h["servers"]["fake"];
    s["status"] == "running" && s["restarts"].as_u64().unwrap_or(0) >= 1
}

#[tokio::test]
async fn crash_mid_call_fails_the_call_and_the_server_comes_back_as_a_new_process() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let first_pid = tool_text(&client.call_tool("pid", json!({})).await).to_string();
    let resp = within(
        Duration::from_secs(5),
        "the crashed call",
        client.call_tool("crash", json!({})),
    )
    .await;
    assert_eq!(error_code(&resp), Some(-32000), "{resp}");
    gw.wait_health(Duration::from_secs(10), is_running_after_restart)
        .await;
    let second_pid = tool_text(&client.call_tool("pid", json!({})).await).to_string();
    assert_ne!(first_pid, second_pid, "the same process answered");
}

#[tokio::test]
async fn initialize_is_sent_again_after_a_respawn() {
    let counts = tempfile::tempdir().unwrap();
    let file = counts.path().join("inits");
    let config = format!(
        "[gateway]\n\n{}",
        fake_server("fake", &["--init-count-file", file.to_str().unwrap()], "")
    );
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let lines = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(lines(), 1, "one initialize at start");
    client.call_tool("crash", json!({})).await;
    gw.wait_health(Duration::from_secs(10), is_running_after_restart)
        .await;
    assert_eq!(
        tool_text(&client.call_tool("echo", json!({"message": "back"})).await),
        "back"
    );
    assert_eq!(lines(), 2, "initialize replayed once after the respawn");
}

#[tokio::test]
async fn hung_call_times_out_with_32001_while_other_calls_still_work() {
    let gw = GatewayProcess::start(&one_fake("request_timeout = \"1s\""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let started = Instant::now();
    let hang = async {
        let resp = client.call_tool("hang", json!({})).await;
        (resp, started.elapsed())
    };
    let echo = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.call_tool("echo", json!({"message": "alive"})).await
    };
    let ((hung, took), echoed) = within(Duration::from_secs(5), "hang + echo", async {
        tokio::join!(hang, echo)
    })
    .await;
    assert_eq!(tool_text(&echoed), "alive");
    assert_eq!(error_code(&hung), Some(-32001), "{hung}");
    assert!(took < Duration::from_secs(3), "the timeout took {took:?}");
}

#[tokio::test]
async fn garbage_line_on_stdout_does_not_break_the_call() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let resp = client.call_tool("garbage", json!({})).await;
    assert_eq!(tool_text(&resp), "after garbage");
}

#[tokio::test]
async fn stderr_flood_neither_blocks_the_server_nor_other_calls() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let flood = client.call_tool("flood_stderr", json!({"lines": 100_000}));
    let echo = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.call_tool("echo", json!({"message": "during"})).await
    };
    let (flooded, echoed) = within(Duration::from_secs(15), "flood + echo", async {
        tokio::join!(flood, echo)
    })
    .await;
    assert_eq!(tool_text(&echoed), "during");
    assert_eq!(tool_text(&flooded), "flooded");
}

#[tokio::test]
async fn two_sessions_using_the_same_ids_concurrently_each_get_their_own_replies() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let mut sessions = Vec::new();
    for _ in 0..2 {
        sessions.push(McpClient::connect(&gw.url("/mcp/fake"), json!({})).await);
    }
    let calls = sessions.iter().enumerate().flat_map(|(s, client)| {
        (1..=30).map(move |i| async move {
            let message = format!("session {s} call {i}");
            let msgs = client
                .request_with_id(
                    json!(i),
                    "tools/call",
                    json!({"name": "echo", "arguments": {"message": message}}),
                )
                .await;
            (i, message, msgs.last().cloned().expect("a response"))
        })
    });
    let results = within(
        Duration::from_secs(15),
        "60 concurrent calls",
        join_all(calls),
    )
    .await;
    assert_eq!(results.len(), 60);
    for (i, message, resp) in results {
        assert_eq!(resp["id"], json!(i), "{resp}");
        assert_eq!(tool_text(&resp), message);
    }
}

#[tokio::test]
async fn progress_tokens_of_two_sessions_do_not_cross() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let one = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let two = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let run = async |client: &'static str, c: &McpClient, steps: u64| {
        let params = json!({"name": "progress", "arguments": {"steps": steps},
                            "_meta": {"progressToken": 1}});
        (client, steps, c.request("tools/call", params).await)
    };
    let (a, b) = within(Duration::from_secs(10), "two progress calls", async {
        tokio::join!(run("one", &one, 3), run("two", &two, 5))
    })
    .await;
    for (client, steps, mut msgs) in [a, b] {
        let last = msgs.pop().expect("a final response");
        assert_eq!(
            tool_text(&last),
            format!("progress done ({steps} steps)"),
            "{client}"
        );
        assert_eq!(msgs.len() as u64, steps, "{client} got {msgs:?}");
        for m in &msgs {
            assert_eq!(m["method"], "notifications/progress", "{client}: {m}");
            assert_eq!(m["params"]["progressToken"], json!(1), "{client}: {m}");
            assert_eq!(
                m["params"]["total"],
                json!(steps),
                "{client} got another session's progress: {m}"
            );
        }
    }
}

#[tokio::test]
async fn sampling_request_round_trips_to_a_client_that_declared_sampling() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({"sampling": {}})).await;
    let mut seen = Vec::new();
    let msgs = within(
        Duration::from_secs(10),
        "sample",
        client.request_answering(
            "tools/call",
            json!({"name": "sample", "arguments": {"prompt": "hello"}}),
            |req| {
                seen.push(req.clone());
                let prompt = req["params"]["messages"][0]["content"]["text"]
                    .as_str()
                    .unwrap_or_default();
                Ok(json!({"role": "assistant", "model": "test",
                          "content": {"type": "text", "text": format!("sampled: {prompt}")}}))
            },
        ),
    )
    .await;
    assert_eq!(seen.len(), 1, "{msgs:?}");
    assert_eq!(seen[0]["method"], "sampling/createMessage");
    let last = msgs.last().unwrap();
    assert_eq!(tool_text(last), "sampled: hello", "{last}");
    assert_eq!(last["result"]["isError"], false);
}

#[tokio::test]
async fn sampling_without_the_client_capability_fails_the_tool_instead_of_hanging() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let msgs = within(
        Duration::from_secs(5),
        "sample without capability",
        client.request(
            "tools/call",
            json!({"name": "sample", "arguments": {"prompt": "hello"}}),
        ),
    )
    .await;
    assert!(
        msgs.iter().all(|m| m.get("method").is_none()),
        "the request reached a client that cannot answer it: {msgs:?}"
    );
    let last = msgs.last().unwrap();
    assert_eq!(last["result"]["isError"], true, "{last}");
    assert!(tool_text(last).contains("sampling error"), "{last}");
}

#[tokio::test]
async fn reply_over_max_line_bytes_fails_that_call_and_the_server_keeps_working() {
    let gw = GatewayProcess::start(&one_fake("max_line_bytes = 100000"), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let small = client.call_tool("big", json!({"bytes": 1000})).await;
    assert_eq!(tool_text(&small).len(), 1000);
    let big = within(
        Duration::from_secs(5),
        "the oversized reply",
        client.call_tool("big", json!({"bytes": 200_000})),
    )
    .await;
    assert!(error_code(&big).is_some(), "{big}");
    assert!(error_message(&big).contains("max_line_bytes"), "{big}");
    let echo = client
        .call_tool("echo", json!({"message": "still here"}))
        .await;
    assert_eq!(tool_text(&echo), "still here");
}

#[tokio::test]
async fn missing_program_still_listens_shows_error_in_health_and_names_the_server() {
    let config = format!(
        "[gateway]\n\n{}\n[servers.broken]\ncommand = {}\n",
        fake_server("fake", &[], ""),
        quote("/nonexistent/flowguard-test-no-such-program")
    );
    let gw = GatewayProcess::start(&config, "toml", &[]);
    gw.wait_health(Duration::from_secs(5), |h| {
        h["servers"]["broken"]["status"] == "error"
    })
    .await;
    let reply = within(
        Duration::from_secs(5),
        "initialize on the broken server",
        initialize_reply(&gw.url("/mcp/broken"), &json!({})),
    )
    .await;
    let resp = reply.messages().pop().expect("a response");
    assert_eq!(error_code(&resp), Some(-32000), "{resp}");
    assert!(error_message(&resp).contains("'broken'"), "{resp}");
    // The healthy server is not held back by the broken one.
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    assert_eq!(
        tool_text(&client.call_tool("echo", json!({"message": "ok"})).await),
        "ok"
    );
}

/// A server that cannot read a request answers with `"id": null`; the one request waiting
/// fails at once with the server's error, instead of after the 60 s request timeout.
#[tokio::test]
async fn an_error_without_an_id_fails_the_one_request_waiting_at_once() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let reply = within(
        Duration::from_secs(5),
        "the unreadable call",
        client.call_tool("unreadable", json!({})),
    )
    .await;
    assert_eq!(error_code(&reply), Some(-32700), "{reply}");
    assert!(
        error_message(&reply).contains("unreadable request"),
        "{reply}"
    );
    let after = client.call_tool("echo", json!({"message": "next"})).await;
    assert_eq!(tool_text(&after), "next", "{after}");
}
