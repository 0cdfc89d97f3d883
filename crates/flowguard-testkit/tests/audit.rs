//! The audit end to end through the real binary: one record per verdict over two runs of the
//! gateway with rotations between, `flowguard audit verify` passing on it, and naming a change.

use flowguard_testkit::client::error_code;
use flowguard_testkit::config::fake_server;
use flowguard_testkit::{GatewayOptions, GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn config(log: &Path) -> String {
    format!(
        "[storage]\nurl = {:?}\n\n[audit]\nlog = {:?}\nrotate_bytes = 1048576\ncheckpoint_records = 1000\n\n\
         [policy]\nrules = [\n  {{ name = \"no-secrets\", action = \"deny\", match = {{ tools = [\"echo\"], arguments = {{ message = [\"*secret*\"] }} }} }},\n  {{ name = \"rest\", action = \"allow\", match = {{}} }},\n]\n\n{}",
        log.with_file_name("state.db").display().to_string(),
        log.display().to_string(),
        fake_server("fake", &[], "")
    )
}

/// `calls` calls, every tenth denied; returns (allowed, denied).
async fn run_calls(log: &Path, calls: usize) -> (usize, usize) {
    let mut gw = GatewayProcess::start(&config(log), "toml", &[]);
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let (mut allowed, mut denied) = (0, 0);
    // Eight calls at a time, as a busy client would send them.
    for chunk in (0..calls).collect::<Vec<_>>().chunks(8) {
        let answers = futures_util::future::join_all(chunk.iter().map(|&i| {
            let message = if i % 10 == 9 {
                format!("a secret {i}")
            } else {
                format!("hello {i}")
            };
            c.call_tool(
                "echo",
                json!({ "message": message, "api_key": "sk-not-in-the-log" }),
            )
        }))
        .await;
        for r in answers {
            match error_code(&r) {
                Some(-32040) => denied += 1,
                None => allowed += 1,
                other => panic!("unexpected answer {other:?}: {r}"),
            }
        }
    }
    gw.signal(libc::SIGTERM);
    assert!(
        gw.wait_exit_async(Duration::from_secs(15)).await.is_some(),
        "the gateway stops"
    );
    (allowed, denied)
}

fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let is_log = name == "audit.jsonl"
            || name
                .strip_prefix("audit.jsonl.")
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if is_log {
            for l in std::fs::read_to_string(e.path()).unwrap().lines() {
                let v: Value = serde_json::from_str(l).unwrap();
                if v["type"] == "record" {
                    out.push(v);
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn every_verdict_is_recorded_and_verifies_across_rotation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let (a1, d1) = run_calls(&log, 6000).await;
    let (a2, d2) = run_calls(&log, 4000).await;
    assert_eq!((a1 + a2, d1 + d2), (9000, 1000));
    let recs = records(dir.path());
    assert_eq!(recs.len(), 10_000, "one record per verdict");
    assert_eq!(recs.iter().filter(|r| r["action"] == "block").count(), 1000);
    let mut seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        10_000,
        "each record has its own sequence number"
    );

    // The same records are in storage for queries, across the restart.
    let cfg = dir.path().join("query.toml");
    std::fs::write(&cfg, config(&log)).unwrap();
    let cfg = cfg.display().to_string();
    let q = GatewayOptions::new().run(
        &[
            "audit",
            "query",
            "--config",
            &cfg,
            "--decision",
            "deny",
            "--limit",
            "1000",
        ],
        None,
    );
    assert_eq!(q.code(), Some(0), "{}{}", q.stdout, q.stderr);
    assert_eq!(q.stdout.lines().count(), 1000, "{}", q.stderr);
    assert!(q
        .stdout
        .lines()
        .all(|l| l.contains("\"rule\":\"no-secrets\"")));
    let q = GatewayOptions::new().run(
        &["audit", "query", "--config", &cfg, "--text", "HELLO 5998\""],
        None,
    );
    assert_eq!(q.stdout.lines().count(), 1, "{}{}", q.stdout, q.stderr);
    let page = GatewayOptions::new().run(
        &[
            "audit", "query", "--config", &cfg, "--server", "fake", "--limit", "10",
        ],
        None,
    );
    assert_eq!(page.stdout.lines().count(), 10);
    assert!(page.stderr.contains("--after"), "{}", page.stderr);
    assert!(recs
        .iter()
        .all(|r| r["tool_args"]["api_key"] == "[REDACTED]"));
    let denied = recs.iter().find(|r| r["action"] == "block").unwrap();
    assert_eq!(denied["rule"], "no-secrets");
    assert_eq!(denied["stage"], "policy");
    assert_eq!(denied["upstream"], "fake");
    let text: String = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        !text.contains("sk-not-in-the-log"),
        "a secret argument reached the audit"
    );
    let rotated = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("audit.jsonl.0"))
        .count();
    assert!(rotated >= 2, "the log rotated ({rotated} rotated files)");

    let log_arg = log.display().to_string();
    let ok = GatewayOptions::new().run(&["audit", "verify", &log_arg], None);
    assert_eq!(ok.code(), Some(0), "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("ok:"), "{}", ok.stdout);

    // One changed decision in a rotated file is named, with its place.
    let first = dir.path().join(
        std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("audit.jsonl.0"))
            .min()
            .unwrap(),
    );
    let text = std::fs::read_to_string(&first).unwrap();
    let changed = text.replacen("\"action\":\"block\"", "\"action\":\"pass\"", 1);
    assert_ne!(text, changed);
    std::fs::write(&first, changed).unwrap();
    let bad = GatewayOptions::new().run(&["audit", "verify", &log_arg], None);
    assert_eq!(bad.code(), Some(1), "{}{}", bad.stdout, bad.stderr);
    assert!(
        bad.stdout.contains("FAILED: first bad record: edited"),
        "{}",
        bad.stdout
    );
}

#[tokio::test]
async fn a_log_without_its_seal_state_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    run_calls(&log, 3).await;
    std::fs::remove_file(dir.path().join("audit.jsonl.seal")).unwrap();
    let out = GatewayOptions::new().run(
        &[
            "-c",
            &write_config(dir.path(), &config(&log)),
            "-l",
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("seal state"), "{}", out.stderr);
}

fn write_config(dir: &Path, text: &str) -> String {
    let p = dir.join("gateway.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test]
async fn refused_credentials_are_recorded_without_the_credential() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let text = format!(
        "[auth]\nrequired = true\n[[auth.api_keys]]\nname = \"alice\"\ndigest = \"{}\"\n\n{}",
        flowguard_guard::apikey::digest_of("the-right-key-0123456789"),
        config(&log)
    );
    let mut gw = GatewayProcess::start(&text, "toml", &[]);
    let url = gw.url("/mcp/fake");
    let init = flowguard_testkit::client::initialize_body(&json!({}));
    let none = flowguard_testkit::http::post_json(&url, &[("x-request-id", "req-42")], &init).await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("x-request-id"),
        Some("req-42"),
        "a sane id is echoed"
    );
    let wrong = flowguard_testkit::http::post_json(
        &url,
        &[
            ("x-api-key", "wrong-key-in-the-log?"),
            ("x-request-id", "not sane!"),
        ],
        &init,
    )
    .await;
    assert_eq!(wrong.status, 401);
    let generated = wrong.header("x-request-id").unwrap().to_string();
    assert!(generated.starts_with("fg-"), "{generated}");
    gw.signal(libc::SIGTERM);
    assert!(gw.wait_exit_async(Duration::from_secs(15)).await.is_some());
    let recs = records(dir.path());
    let rules: Vec<&str> = recs.iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        ["(no-credential)", "(invalid-credential)"],
        "{recs:?}"
    );
    assert!(recs
        .iter()
        .all(|r| r["stage"] == "authenticate" && r["action"] == "block"));
    assert_eq!(recs[0]["method"], "initialize");
    assert_eq!(recs[0]["request_id"], "req-42");
    assert_eq!(recs[1]["request_id"], generated.as_str());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("wrong-key-in-the-log"));
    let ok = GatewayOptions::new().run(&["audit", "verify", &log.display().to_string()], None);
    assert_eq!(ok.code(), Some(0), "{}", ok.stdout);
}

/// Storage on a real PostgreSQL (the test command starts one): the records of a run are there
/// for queries. Without `FLOWGUARD_TEST_POSTGRES` this is skipped, unless
/// `FLOWGUARD_REQUIRE_POSTGRES=1` (as the test command sets), where it fails.
#[tokio::test]
async fn records_reach_postgres_for_queries() {
    let Ok(url) = std::env::var("FLOWGUARD_TEST_POSTGRES") else {
        assert_ne!(
            std::env::var("FLOWGUARD_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "FLOWGUARD_TEST_POSTGRES is not set"
        );
        eprintln!("note: FLOWGUARD_TEST_POSTGRES not set: skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let text = format!(
        "[storage]\nurl = {url:?}\nschema = \"gw_{}\"\n\n[audit]\nlog = {:?}\n\n{}",
        std::process::id(),
        log.display().to_string(),
        fake_server("fake", &[], "")
    );
    let mut gw = GatewayProcess::start(&text, "toml", &[]);
    assert!(
        gw.stderr_text().contains("storage: PostgreSQL"),
        "{}",
        gw.stderr_text()
    );
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    for i in 0..20 {
        c.call_tool("echo", json!({ "message": format!("pg {i}") }))
            .await;
    }
    gw.signal(libc::SIGTERM);
    assert!(gw.wait_exit_async(Duration::from_secs(15)).await.is_some());
    let cfg = write_config(dir.path(), &text);
    let q = GatewayOptions::new().run(
        &["audit", "query", "--config", &cfg, "--tool", "echo"],
        None,
    );
    assert_eq!(q.code(), Some(0), "{}{}", q.stdout, q.stderr);
    assert_eq!(q.stdout.lines().count(), 20, "{}", q.stderr);
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[storage]\nurl = \"postgres://fg:hunter2@127.0.0.1:{port}/x\"\n\n{}",
        fake_server("fake", &[], "")
    );
    let cfg = write_config(dir.path(), &text);
    let out = GatewayOptions::new().run(&["-c", &cfg, "-l", "127.0.0.1:0"], None);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot open PostgreSQL postgres://fg:***@127.0.0.1"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[tokio::test]
async fn label_headers_reach_the_record_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut gw = GatewayProcess::start(&config(&log), "toml", &[]);
    let c = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "labelled"}}});
    let too_long = format!("X-FlowGuard-Label-{}", "n".repeat(70));
    let r = c
        .raw_post(
            &[
                ("X-FlowGuard-Label-Ticket", "INC-42"),
                ("X-FlowGuard-Label-Api-Token", "s3cr3t-label"),
                (too_long.as_str(), "x"),
            ],
            body.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!c.tools().await.is_empty());
    gw.signal(libc::SIGTERM);
    assert!(gw.wait_exit_async(Duration::from_secs(15)).await.is_some());
    let recs = records(dir.path());
    let rec = recs
        .iter()
        .find(|r| r["tool_args"]["message"] == "labelled")
        .expect("the call's record");
    assert_eq!(
        rec["labels"],
        json!({"ticket": "INC-42", "api-token": "[REDACTED]"}),
        "{rec}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("s3cr3t-label"));
    // Requests that name no tool are verdicts too.
    let list = recs
        .iter()
        .find(|r| r["method"] == "tools/list")
        .expect("a record for tools/list");
    assert_eq!(list["decision"], "allow");
    assert_eq!(list["upstream"], "fake");
}
