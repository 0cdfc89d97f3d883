//! The gateway's life: `/health`, shutdown by `POST /close` (200 once, then 410) and by SIGTERM,
//! draining calls in flight while refusing new ones, and no process left behind, even after the
//! gateway itself is killed with SIGKILL.

use flowguard_testkit::client::tool_text;
use flowguard_testkit::config::{fake_path, one_fake};
use flowguard_testkit::http::{self, post_json};
use flowguard_testkit::{procs, GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;
use std::time::Duration;

/// A gateway start kills the orphans of gateways that are gone. The SIGKILL test needs its
/// orphan to survive until it has checked that it is there, so it holds this for writing
/// while the other tests of this file hold it for reading when they start a gateway.
static ORPHAN_WINDOW: RwLock<()> = RwLock::new(());

fn start(config: &str) -> GatewayProcess {
    let _guard = ORPHAN_WINDOW.read().unwrap_or_else(|e| e.into_inner());
    GatewayProcess::start(config, "toml", &[])
}

fn short_grace() -> String {
    one_fake("shutdown_grace = \"3s\"")
}

#[tokio::test]
async fn health_reports_status_version_and_each_running_server() {
    let gw = start(&short_grace());
    let health = gw.health().await;
    assert_eq!(health["status"], "healthy", "{health:#}");
    assert!(health["gatewayVersion"].is_string(), "{health:#}");
    assert_eq!(health["servers"]["fake"]["status"], "running", "{health:#}");
    assert!(health["servers"]["fake"]["uptime"].is_u64(), "{health:#}");
}

/// Starts a `slow` call of `ms` and waits until the gateway has it in flight.
async fn slow_call_in_flight<'a>(
    gw: &GatewayProcess,
    client: &'a McpClient,
    ms: u64,
) -> Pin<Box<dyn Future<Output = Value> + 'a>> {
    let mut call = Box::pin(client.call_tool("slow", json!({"ms": ms})));
    let pending = async {
        gw.wait_health(Duration::from_secs(5), |h| {
            h["servers"]["fake"]["pending"].as_u64() == Some(1)
        })
        .await
    };
    tokio::select! {
        _ = &mut call => panic!("the slow call ended before it was seen in flight"),
        _ = pending => {}
    }
    call
}

/// The gateway exits with status 0 within 10 s and its server (`fake_pid`) is gone with it.
async fn exits_cleanly_leaving_no_server(gw: &mut GatewayProcess, fake_pid: u32) {
    let status = gw
        .wait_exit_async(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("still running; stderr:\n{}", gw.stderr_text()));
    assert!(status.success(), "{status}; stderr:\n{}", gw.stderr_text());
    let gone = procs::wait_until_async(Duration::from_secs(2), || !procs::is_alive(fake_pid)).await;
    assert!(gone, "the fake server {fake_pid} outlived the gateway");
}

#[tokio::test]
async fn close_answers_200_once_then_410() {
    let gw = start(&short_grace());
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    // A call in flight keeps the gateway serving while it drains, so the second close is
    // answered instead of finding the port closed.
    let call = slow_call_in_flight(&gw, &client, 1500).await;
    let first = http::request("POST", &gw.url("/close"), &[], "").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["status"], "closed", "{}", first.text());
    let second = http::request("POST", &gw.url("/close"), &[], "").await;
    assert_eq!(second.status, 410, "{}", second.text());
    assert_eq!(tool_text(&call.await), "slow done");
}

#[tokio::test]
async fn close_drains_calls_in_flight_refuses_new_ones_and_exits_without_leftovers() {
    let mut gw = start(&short_grace());
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let fake_pid: u32 = tool_text(&client.call_tool("pid", json!({})).await)
        .parse()
        .expect("a pid");
    assert!(procs::is_alive(fake_pid));
    let call = slow_call_in_flight(&gw, &client, 1500).await;
    let close = http::request("POST", &gw.url("/close"), &[], "").await;
    assert_eq!(close.status, 200, "{}", close.text());
    let refused = client
        .raw_post(
            &[],
            r#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"message":"late"}}}"#,
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    let fresh = post_json(
        &gw.url("/mcp"),
        &[],
        &flowguard_testkit::client::initialize_body(&json!({})),
    )
    .await;
    assert_eq!(fresh.status, 503, "a new session during the drain");
    let resp = call.await;
    assert_eq!(tool_text(&resp), "slow done", "the call in flight finished");
    exits_cleanly_leaving_no_server(&mut gw, fake_pid).await;
}

#[tokio::test]
async fn sigterm_exits_0_within_the_grace_period() {
    let mut gw = start(&short_grace());
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    // An open GET stream must not hold the exit.
    let _stream = client.open_stream().await;
    gw.signal(libc::SIGTERM);
    let status = gw
        .wait_exit_async(Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("still running 3 s after SIGTERM:\n{}", gw.stderr_text()));
    assert!(status.success(), "{status}; stderr:\n{}", gw.stderr_text());
}

/// A call that outlasts the grace period does not stretch the exit: `shutdown_grace = 2s`
/// once took 9 s (2 s of drain, 5 s of connection linger, 2 s of server stop).
#[tokio::test]
async fn a_call_past_the_grace_period_does_not_stretch_the_exit() {
    let mut gw = start(&one_fake("shutdown_grace = \"2s\""));
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let call = slow_call_in_flight(&gw, &client, 30_000).await;
    let t = std::time::Instant::now();
    gw.signal(libc::SIGTERM);
    let status = gw.wait_exit_async(Duration::from_secs(10)).await;
    let took = t.elapsed();
    drop(call);
    assert!(
        status.is_some(),
        "still running 10 s after SIGTERM:\n{}",
        gw.stderr_text()
    );
    // The documented bound: shutdown_grace + about 3 s (docs/config.md).
    assert!(
        took < Duration::from_secs(6),
        "exit took {took:?}:\n{}",
        gw.stderr_text()
    );
}

#[tokio::test]
async fn grandchild_left_by_a_sigkilled_gateway_is_killed_by_the_next_start() {
    let script = format!("sleep 300 & exec {}", fake_path().trim_matches('"'));
    let config = format!(
        "[gateway]\nshutdown_grace = \"3s\"\n\n[servers.fake]\ncommand = \"sh\"\nargs = [\"-c\", {}]\n",
        flowguard_testkit::config::quote(&script)
    );
    let mut gw = start(&config);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let fake_pid: u32 = tool_text(&client.call_tool("pid", json!({})).await)
        .parse()
        .expect("a pid");
    let sleep_pid = procs::children_of(fake_pid)
        .into_iter()
        .find(|p| p.comm == "sleep")
        .unwrap_or_else(|| panic!("no sleep under the fake server {fake_pid}"))
        .pid;
    let window = ORPHAN_WINDOW.write().unwrap_or_else(|e| e.into_inner());
    gw.signal(libc::SIGKILL);
    assert!(
        gw.wait_exit(Duration::from_secs(5)).is_some(),
        "SIGKILL did not end it"
    );
    let fake_gone = procs::wait_until(Duration::from_secs(3), || !procs::is_alive(fake_pid));
    assert!(
        fake_gone,
        "the direct child {fake_pid} outlived a SIGKILLed gateway"
    );
    assert!(
        procs::is_alive(sleep_pid),
        "the sleep grandchild should still be there after SIGKILL (test premise)"
    );
    drop(window);
    let _next = start(&short_grace());
    let reaped =
        procs::wait_until_async(Duration::from_secs(5), || !procs::is_alive(sleep_pid)).await;
    assert!(
        reaped,
        "the orphan {sleep_pid} survived the next gateway's start"
    );
}

/// Regression: the supervisor kept a clone of the server's stdin sender alive, so stopping a
/// server never closed its stdin; every stop sat out the 2 s wait and ended in SIGTERM. An idle
/// server exits on stdin EOF at once, so the gateway must be gone well before that fallback.
#[tokio::test]
async fn stopping_closes_server_stdin_first_instead_of_waiting_for_the_signal_fallback() {
    let mut gw = start(&short_grace());
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    assert_eq!(
        tool_text(&client.call_tool("echo", json!({"message": "up"})).await),
        "up"
    );
    gw.signal(libc::SIGTERM);
    let status = gw.wait_exit_async(Duration::from_millis(1500)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "not stopped 1.5 s after SIGTERM: the server's stdin was not closed; stderr:\n{}",
        gw.stderr_text()
    );
}

/// Threads named like the gateway's HTTP worker threads, from /proc.
fn worker_threads_of(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("flowguard-worke"))
        .count()
}

/// With three worker threads (the connections dealt among them, each thread a runtime of its
/// own), concurrent calls on many connections all get their own answers and progress, and
/// `/close` drains a call in flight on any of them and leaves no server behind.
#[tokio::test]
async fn worker_threads_serve_many_connections_and_stop_cleanly() {
    let mut gw = {
        let _guard = ORPHAN_WINDOW.read().unwrap_or_else(|e| e.into_inner());
        flowguard_testkit::GatewayOptions::new()
            .env("FLOWGUARD_WORKER_THREADS", "3")
            .start(&short_grace(), "toml")
    };
    // The workers start with the server loop, just after the gateway says it is listening.
    let pid = gw.pid();
    let started =
        procs::wait_until_async(Duration::from_secs(5), || worker_threads_of(pid) == 2).await;
    assert!(
        started,
        "main thread + 2 workers, found {}",
        worker_threads_of(pid)
    );
    let url = gw.url("/mcp/fake");
    let clients =
        futures_util::future::join_all((0..8).map(|_| McpClient::connect(&url, json!({})))).await;
    let fake_pid: u32 = tool_text(&clients[0].call_tool("pid", json!({})).await)
        .parse()
        .expect("a pid");
    let rounds = clients.iter().enumerate().map(|(i, c)| async move {
        for n in 0..10 {
            let message = format!("client {i} call {n}");
            let reply = c.call_tool("echo", json!({ "message": message })).await;
            assert_eq!(tool_text(&reply), message);
        }
        let token = format!("p{i}");
        let msgs = c
            .request(
                "tools/call",
                json!({"name": "progress", "arguments": {"steps": 3},
                       "_meta": {"progressToken": token}}),
            )
            .await;
        let progress: Vec<&Value> = msgs
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), 3, "{msgs:#?}");
        assert!(progress
            .iter()
            .all(|m| m["params"]["progressToken"] == token.as_str()));
        assert_eq!(
            tool_text(msgs.last().expect("a reply")),
            "progress done (3 steps)"
        );
    });
    futures_util::future::join_all(rounds).await;
    let call = slow_call_in_flight(&gw, &clients[5], 1000).await;
    let close = http::request("POST", &gw.url("/close"), &[], "").await;
    assert_eq!(close.status, 200, "{}", close.text());
    assert_eq!(tool_text(&call.await), "slow done");
    exits_cleanly_leaving_no_server(&mut gw, fake_pid).await;
}
