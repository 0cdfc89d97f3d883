//! Start-up on a bad day: the gateway listens at once, a server that never answers
//! `initialize` holds nobody up (it shows `starting`, then an error), a server that fails at
//! every start is a crash loop that calls fail fast on, and SIGHUP is ignored.

use flowguard_testkit::client::{error_message, tool_text};
use flowguard_testkit::config::{fake_server, quote};
use flowguard_testkit::{GatewayOptions, McpClient};
use serde_json::json;
use std::time::{Duration, Instant};

/// A fake server, and `hung`: a program that never says a word (it never answers `initialize`).
fn with_hung_server(gateway: &str) -> String {
    format!(
        "[gateway]\n{gateway}\n\n{}\n[servers.hung]\ncommand = \"sleep\"\nargs = [\"600\"]\n",
        fake_server("fake", &[], "")
    )
}

#[tokio::test]
async fn a_server_that_never_initializes_holds_up_neither_health_nor_the_other_servers() {
    let started = Instant::now();
    let gw = GatewayOptions::new()
        .no_wait_servers()
        .start(&with_hung_server("startup_timeout = \"3s\""), "toml");
    let health = gw.health().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "/health answered {:?} after the start",
        started.elapsed()
    );
    assert_eq!(
        health["servers"]["hung"]["status"], "starting",
        "{health:#}"
    );

    // Routed: the ready server serves calls while the other one is still starting.
    let fake = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let reply = fake.call_tool("echo", json!({"message": "hi"})).await;
    assert_eq!(tool_text(&reply), "hi", "{reply}");

    // Unified: the list has the ready server's tools, without waiting for the hung one
    // longer than the bounded first-start wait (startup_timeout here, 3 s).
    let unified = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let t = Instant::now();
    let names = unified.tool_names().await;
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "tools/list took {:?}",
        t.elapsed()
    );
    assert!(names.iter().any(|n| n == "fake___echo"), "{names:?}");

    // The hung one ends as an error that says why, and its tools fail with a clear message.
    let health = gw
        .wait_health(Duration::from_secs(15), |h| {
            h["servers"]["hung"]["status"] == "error"
        })
        .await;
    let why = health["servers"]["hung"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("initialize"), "{health:#}");
    let reply = fake
        .call_tool("echo", json!({"message": "still here"}))
        .await;
    assert_eq!(tool_text(&reply), "still here", "{reply}");
}

#[tokio::test]
async fn a_busy_port_is_reported_before_any_server_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("bound").port();
    let dir = tempfile::tempdir().expect("a temp dir");
    let marker = dir.path().join("started");
    let config = format!(
        "[servers.marker]\ncommand = \"sh\"\nargs = [\"-c\", {}]\n",
        quote(&format!("touch {}; sleep 600", marker.display()))
    );
    let path = dir.path().join("busy.toml");
    std::fs::write(&path, config).expect("config written");
    let out = GatewayOptions::new().run(
        &[
            "-c",
            &path.display().to_string(),
            "-l",
            &format!("127.0.0.1:{port}"),
        ],
        None,
    );
    assert_ne!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("cannot listen on"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("starting"),
        "servers were started: {}",
        out.stderr
    );
    assert!(
        !marker.exists(),
        "the server was started before the port was checked"
    );
}

#[tokio::test]
async fn a_crash_loop_is_reported_once_and_fails_calls_fast() {
    let config = format!(
        "[gateway]\nstartup_timeout = \"5s\"\n\n{}\n{}",
        fake_server("fake", &[], ""),
        fake_server("broken", &["--fail-start"], "")
    );
    let gw = GatewayOptions::new().start(&config, "toml");
    let health = gw
        .wait_health(Duration::from_secs(20), |h| {
            h["servers"]["broken"]["failures"].as_u64() >= Some(3)
        })
        .await;
    assert_eq!(health["servers"]["broken"]["crashLoop"], true, "{health:#}");
    let why = health["servers"]["broken"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("fatal: configured to fail"), "{health:#}");
    // The last stderr lines are those of one run, not of every attempt.
    assert_eq!(why.matches("fatal: configured to fail").count(), 1, "{why}");

    // Unified: its tool is not "unknown", its server is unavailable, and nobody waits.
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let t = Instant::now();
    let reply = client
        .response(
            "tools/call",
            json!({"name": "broken___echo", "arguments": {"message": "x"}}),
        )
        .await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "the call waited {:?}",
        t.elapsed()
    );
    let msg = error_message(&reply);
    assert!(
        msg.contains("server broken is unavailable") && msg.contains("fatal: configured to fail"),
        "{reply}"
    );
    // Routed: initialize fails at once with the reason, instead of waiting for a restart.
    let t = Instant::now();
    let reply =
        flowguard_testkit::client::initialize_reply(&gw.url("/mcp/broken"), &json!({})).await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "initialize waited {:?}",
        t.elapsed()
    );
    assert!(reply.text().contains("broken"), "{}", reply.text());

    // Its first failure is told (its stderr line, the error, the start-up report); then one
    // crash-loop warning, and nothing per attempt.
    let log = gw.stderr_text();
    assert_eq!(log.matches("fatal: configured to fail").count(), 3, "{log}");
    assert_eq!(
        log.matches("failed to start twice in a row").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("server=broken pid=").count(), 1, "{log}");
}

#[tokio::test]
async fn sighup_is_logged_and_ignored() {
    let gw = GatewayOptions::new().start(&fake_server("fake", &[], ""), "toml");
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let slow = client.call_tool("slow", json!({"ms": 800}));
    let hup = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        gw.signal(libc::SIGHUP);
    };
    let (reply, ()) = tokio::join!(slow, hup);
    assert!(!reply.to_string().contains("error"), "{reply}");
    let again = client.call_tool("echo", json!({"message": "after"})).await;
    assert_eq!(tool_text(&again), "after", "{again}");
    assert!(
        gw.stderr_text().contains("SIGHUP ignored"),
        "{}",
        gw.stderr_text()
    );
}

/// A client that initializes on the unified endpoint before a server has started is offered
/// the lists all the same, so that the later `list_changed` is not ignored.
#[tokio::test]
async fn a_unified_session_opened_before_a_server_started_is_offered_its_lists() {
    let gw = GatewayOptions::new().no_wait_servers().start(
        "[gateway]\nstartup_timeout = \"2s\"\n\n[servers.hung]\ncommand = \"sleep\"\nargs = [\"600\"]\n",
        "toml",
    );
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let caps = &client.init_result["capabilities"];
    for kind in ["tools", "prompts", "resources"] {
        assert_eq!(caps[kind]["listChanged"], true, "{caps}");
    }
}

#[tokio::test]
async fn liveness_readiness_and_a_degraded_gateway() {
    use flowguard_testkit::http::request;
    let config = format!(
        "[gateway]\nstartup_timeout = \"5s\"\n\n{}\n{}",
        fake_server("fake", &[], ""),
        fake_server("broken", &["--fail-start"], "")
    );
    let gw = GatewayOptions::new().start(&config, "toml");
    let alive = request("GET", &gw.url("/healthz"), &[], "").await;
    assert_eq!(alive.status, 200);
    assert_eq!(alive.json()["status"], "alive");
    let ready = request("GET", &gw.url("/readyz"), &[], "").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    let body = ready.json();
    assert_eq!(body["waiting"][0]["server"], "broken", "{body:#}");
    let health = gw.health().await;
    assert_eq!(health["status"], "degraded", "{health:#}");
    // The deep check: the running server answered a ping, and how fast.
    assert!(
        health["servers"]["fake"]["ping"]["ms"].is_f64(),
        "{health:#}"
    );
    assert!(health["servers"]["broken"]["ping"].is_null(), "{health:#}");

    // Nothing works: /health is 503; everything works: /readyz is 200.
    let only_broken = format!(
        "[gateway]\nstartup_timeout = \"5s\"\n\n{}",
        fake_server("broken", &["--fail-start"], "")
    );
    let gw = GatewayOptions::new().start(&only_broken, "toml");
    let h = request("GET", &gw.url("/health"), &[], "").await;
    assert_eq!(h.status, 503, "{}", h.text());
    assert_eq!(h.json()["status"], "unhealthy");
    let gw = GatewayOptions::new().start(&fake_server("fake", &[], ""), "toml");
    let r = request("GET", &gw.url("/readyz"), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let gw = GatewayOptions::new()
        .env("FLOWGUARD_LOG_FORMAT", "json")
        .start(&fake_server("fake", &[], ""), "toml");
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    client.call_tool("echo", json!({"message": "hi"})).await;
    let log = gw.stderr_text();
    let objects: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with("{\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        objects
            .iter()
            .any(|o| o["level"] == "INFO" && o["message"].is_string()),
        "{log}"
    );
}
