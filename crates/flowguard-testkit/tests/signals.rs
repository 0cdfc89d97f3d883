//! What the gateway tells operators, through the real binary: `/metrics` counts verdicts,
//! limits and refused credentials; a webhook gets one alert per de-duplication window; the
//! trace context reaches a stdio server and spans reach an OTLP endpoint. (The interop suite
//! checks the same with a real Prometheus, promtool and an opentelemetry-proto receiver.)

use flowguard_testkit::config::fake_server;
use flowguard_testkit::http::{post_json, request};
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a receiver got: each request's first line and body.
type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A loopback HTTP receiver that records each POST body and answers 200.
struct Receiver {
    port: u16,
    bodies: Got,
}

fn receiver() -> Receiver {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let bodies: Got = Arc::new(Mutex::new(Vec::new()));
    let b = bodies.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            c.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head_end, len) = loop {
                let Ok(n) = c.read(&mut chunk) else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            if head_end == 0 {
                continue;
            }
            while buf.len() < head_end + len {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let line =
                String::from_utf8_lossy(&buf[..buf.iter().position(|&x| x == b'\r').unwrap_or(0)])
                    .to_string();
            b.lock().unwrap().push((line, buf[head_end..].to_vec()));
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    Receiver { port, bodies }
}

impl Receiver {
    fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    fn wait(&self, n: usize, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.count() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

const DENY_SECRETS: &str = "[policy]\nrules = [\n  { name = \"no-secrets\", action = \"deny\", match = { tools = [\"echo\"], arguments = { message = [\"*secret*\"] } } },\n  { name = \"rest\", action = \"allow\", match = {} },\n]\n";

async fn metrics(gw: &GatewayProcess) -> String {
    request("GET", &gw.url("/metrics"), &[], "").await.text()
}

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_verdicts_limits_and_refused_credentials() {
    let text = format!(
        "{DENY_SECRETS}\n[auth]\napi_keys = [ {{ name = \"ci\", digest = \"sha256:{}\" }} ]\n\n[[limits.rate]]\nper = \"client\"\nrps = 0.01\nburst = 3\ntools = [\"echo\"]\n\n{}",
        sha256_hex("k-123"),
        fake_server("fake", &[], "")
    );
    let gw = GatewayProcess::start(&text, "toml", &[]);
    let c = McpClient::connect_as(&gw.url("/mcp/fake"), &[("X-API-Key", "k-123")]).await;
    c.call_tool("echo", json!({ "message": "hello" })).await;
    c.call_tool("echo", json!({ "message": "a secret" })).await;
    for i in 0..4 {
        let body = json!({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "more"}}});
        let r = c.raw_post(&[], body.to_string()).await;
        assert_eq!(r.status, if i < 2 { 200 } else { 429 }, "{}", r.text());
    }
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let bad = post_json(
        &gw.url("/mcp/fake"),
        &[("X-API-Key", "wrong")],
        &init.to_string(),
    )
    .await;
    assert_eq!(bad.status, 401);
    let m = metrics(&gw).await;
    assert_eq!(
        value(&m, "flowguard_tool_calls_total{server=\"fake\",tool=\"echo\",decision=\"deny\",client=\"ci\"}"),
        Some(3.0),
        "one policy denial and two limited calls\n{m}"
    );
    assert!(value(&m, "flowguard_tool_calls_total{server=\"fake\",tool=\"echo\",decision=\"allow\",client=\"ci\"}").is_some(), "{m}");
    assert!(
        m.contains("flowguard_rate_limited_total{server=\"fake\",rule="),
        "{m}"
    );
    assert_eq!(
        value(&m, "flowguard_auth_failures_total{reason=\"invalid\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(m.contains("flowguard_request_duration_seconds_bucket{server=\"fake\",method=\"tools/call\",le=\"+Inf\"}"), "{m}");
    assert_eq!(
        value(&m, "flowguard_server_up{server=\"fake\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(
        !m.contains("k-123") && !m.contains("wrong"),
        "no credential in metrics"
    );
}

fn sha256_hex(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_alert_per_window_then_the_next_says_how_many_were_folded() {
    let hook = receiver();
    let text = format!(
        "{DENY_SECRETS}\n[alerts]\nwebhook = \"http://127.0.0.1:{}/services/T0/B0/not-in-logs\"\nwindow = \"2s\"\n\n{}",
        hook.port,
        fake_server("fake", &[], "")
    );
    let gw = GatewayProcess::start(&text, "toml", &[]);
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let t = Instant::now();
    for i in 0..5 {
        c.call_tool("echo", json!({ "message": format!("secret {i}") }))
            .await;
    }
    c.call_tool("echo", json!({ "message": "fine" })).await;
    assert!(hook.wait(1, Duration::from_secs(5)), "an alert arrives");
    std::thread::sleep(Duration::from_millis(300));
    if t.elapsed() < Duration::from_millis(1900) {
        assert_eq!(hook.count(), 1, "exactly one alert within the window");
    }
    let first: serde_json::Value =
        serde_json::from_slice(&hook.bodies.lock().unwrap()[0].1).unwrap();
    assert!(
        first["text"].as_str().unwrap().contains("no-secrets")
            || first["flowguard"]["rule"] == "no-secrets",
        "{first}"
    );
    // After the window, the next one is sent and counts those folded into the first.
    while t.elapsed() < Duration::from_millis(2200) {
        std::thread::sleep(Duration::from_millis(50));
    }
    c.call_tool("echo", json!({ "message": "secret again" }))
        .await;
    assert!(
        hook.wait(2, Duration::from_secs(5)),
        "the next window's alert arrives"
    );
    let second: serde_json::Value =
        serde_json::from_slice(&hook.bodies.lock().unwrap()[1].1).unwrap();
    assert_eq!(second["flowguard"]["suppressed"], 4, "{second}");
    let m = metrics(&gw).await;
    assert_eq!(
        value(&m, "flowguard_alerts_total{outcome=\"suppressed\"}"),
        Some(4.0),
        "{m}"
    );
    assert!(!gw.stderr_text().contains("not-in-logs"));
}

#[tokio::test]
async fn the_trace_context_reaches_a_stdio_server_and_spans_are_exported() {
    let otlp = receiver();
    let text = format!(
        "[tracing]\notlp_endpoint = \"http://127.0.0.1:{}/v1/traces\"\n\n{}",
        otlp.port,
        fake_server("fake", &[], "")
    );
    let mut gw = GatewayProcess::start(&text, "toml", &[]);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let tp = format!("00-{trace}-00f067aa0ba902b7-01");
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "meta", "arguments": {}}});
    let r = c
        .raw_post(&[("traceparent", tp.as_str())], body.to_string())
        .await;
    let seen = r
        .messages()
        .last()
        .map(|m| m["result"]["content"][0]["text"].to_string())
        .unwrap_or_default();
    assert!(
        seen.contains(&format!("00-{trace}-")),
        "the server got {seen}"
    );
    gw.signal(libc::SIGTERM);
    assert!(gw.wait_exit_async(Duration::from_secs(15)).await.is_some());
    assert!(otlp.wait(1, Duration::from_secs(5)), "spans were exported");
    let bodies = otlp.bodies.lock().unwrap();
    assert!(bodies
        .iter()
        .all(|(line, _)| line.starts_with("POST /v1/traces")));
    // The trace id travels as raw bytes inside the protobuf.
    let id: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|(_, b)| b.windows(16).any(|w| w == id.as_slice())),
        "the client's trace id is in the export"
    );
}

#[tokio::test]
async fn audit_checkpoints_are_pushed_off_the_machine_as_they_are_made() {
    let hook = receiver();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let text = format!(
        "[audit]\nlog = {:?}\ncheckpoint_records = 10\ncheckpoint_webhook = \"http://127.0.0.1:{}/checkpoints\"\nstore = false\n\n{}",
        log.display().to_string(),
        hook.port,
        fake_server("fake", &[], "")
    );
    let mut gw = GatewayProcess::start(&text, "toml", &[]);
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    for i in 0..25 {
        c.call_tool("echo", json!({ "message": format!("m{i}") }))
            .await;
    }
    gw.signal(libc::SIGTERM);
    assert!(gw.wait_exit_async(Duration::from_secs(15)).await.is_some());
    let file = std::fs::read_to_string(log.with_extension("jsonl.checkpoints")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    // At least one by count (records are written in batches: one checkpoint per batch that
    // passes the count) and the one at shutdown.
    assert!(
        lines.len() >= 2 && file.contains("\"reason\":\"count\""),
        "count checkpoints and the shutdown one: {file}"
    );
    assert!(
        hook.wait(lines.len(), Duration::from_secs(5)),
        "every checkpoint was pushed"
    );
    let got = hook.bodies.lock().unwrap();
    for (i, (first_line, body)) in got.iter().enumerate() {
        assert!(first_line.starts_with("POST /checkpoints"), "{first_line}");
        assert_eq!(
            String::from_utf8_lossy(body),
            lines[i],
            "checkpoint {i} as written"
        );
    }
}
