//! Named virtual servers (`[virtual_servers.<name>]`): an endpoint at `/mcp/<name>` offering
//! chosen tools of several servers. Two `fake` servers, `a` and `b`, tell themselves apart by
//! `FG_NAME` (the `env` tool); the virtual server is checked on every downstream transport.

use flowguard_testkit::bins::flowguard_bin;
use flowguard_testkit::client::initialize_body;
use flowguard_testkit::client::{error_code, error_message, tool_text};
use flowguard_testkit::config::fake_server;
use flowguard_testkit::http::{next_event, open_events, post_json};
use flowguard_testkit::{GatewayOptions, GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Servers `a` and `b` (each knowing its name as `FG_NAME`), `gateway` settings, and `virtuals`.
fn config(gateway: &str, virtuals: &str) -> String {
    format!(
        "[gateway]\n{gateway}\n\n{}\n{}\n{virtuals}\n",
        fake_server("a", &[], "env = { FG_NAME = \"a\" }"),
        fake_server("b", &[], "env = { FG_NAME = \"b\" }"),
    )
}

/// `work`: `env` of both servers (b's renamed), b's `echo`, a tool `a` does not offer, and what
/// progress, sampling and list changes need.
const WORK: &str = r#"[virtual_servers.work]
tools = [
  "a/env",
  { server = "b", tool = "env", name = "b_env" },
  "b/echo",
  "a/no_such_tool",
  "a/progress",
  "b/sample",
  "a/mutate",
  "a/mutated_tool",
]
"#;

fn start(gateway: &str) -> GatewayProcess {
    GatewayProcess::start(&config(gateway, WORK), "toml", &[])
}

fn names(tools: &[Value]) -> Vec<&str> {
    tools.iter().filter_map(|t| t["name"].as_str()).collect()
}

#[tokio::test]
async fn lists_exactly_the_chosen_tools_with_their_servers_descriptions_and_schemas() {
    let gw = start("");
    let client = McpClient::connect(&gw.url("/mcp/work"), json!({})).await;
    let tools = client.tools().await;
    // Configuration order; `no_such_tool` is absent, and `mutated_tool` until `a` offers it.
    assert_eq!(
        names(&tools),
        ["env", "b_env", "echo", "progress", "sample", "mutate"]
    );
    let own = McpClient::connect(&gw.url("/mcp/b"), json!({}))
        .await
        .tools()
        .await;
    let own_env = own.iter().find(|t| t["name"] == "env").unwrap();
    let b_env = tools.iter().find(|t| t["name"] == "b_env").unwrap();
    assert_eq!(b_env["description"], own_env["description"]);
    assert_eq!(b_env["inputSchema"], own_env["inputSchema"]);
    assert!(
        gw.stderr_text().contains("offers no tool `no_such_tool`"),
        "no warning about the missing tool:\n{}",
        gw.stderr_text()
    );
}

#[tokio::test]
async fn calls_reach_the_owning_server_under_its_own_name() {
    let gw = start("");
    let client = McpClient::connect(&gw.url("/mcp/work"), json!({})).await;
    let from_a = client.call_tool("env", json!({"name": "FG_NAME"})).await;
    assert_eq!(tool_text(&from_a), "a", "{from_a}");
    let from_b = client.call_tool("b_env", json!({"name": "FG_NAME"})).await;
    assert_eq!(tool_text(&from_b), "b", "{from_b}");
    let echo = client
        .call_tool("echo", json!({"message": "via work"}))
        .await;
    assert_eq!(tool_text(&echo), "via work");
}

#[tokio::test]
async fn other_tools_are_refused_like_hidden_ones_and_other_lists_are_empty() {
    let gw = start("");
    let client = McpClient::connect(&gw.url("/mcp/work"), json!({})).await;
    // `add` exists on both servers, but is not chosen: the answer of a tool that does not exist.
    for name in ["add", "pid", "no_such_tool", "a___env"] {
        let refused = client.call_tool(name, json!({"a": 1, "b": 2})).await;
        assert_eq!(error_code(&refused), Some(-32602), "{refused}");
        assert_eq!(error_message(&refused), format!("Unknown tool: {name}"));
    }
    for (method, field) in [
        ("prompts/list", "prompts"),
        ("resources/list", "resources"),
        ("resources/templates/list", "resourceTemplates"),
    ] {
        let resp = client.response(method, json!({})).await;
        assert_eq!(resp["result"][field], json!([]), "{method}: {resp}");
    }
    let read = client
        .response("resources/read", json!({"uri": "fake://anything"}))
        .await;
    assert_eq!(error_code(&read), Some(-32602), "{read}");
}

#[tokio::test]
async fn initialize_offers_tools_only_under_the_virtual_servers_name() {
    let gw = start("");
    let reply = post_json(&gw.url("/mcp/work"), &[], &initialize_body(&json!({}))).await;
    let result = &reply.messages()[0]["result"];
    assert_eq!(
        result["capabilities"],
        json!({"tools": {"listChanged": true}}),
        "{result}"
    );
    assert_eq!(result["serverInfo"]["name"], "work");
}

#[tokio::test]
async fn virtual_servers_are_served_in_unified_and_routed_modes_and_listed() {
    for mode in ["unified", "routed"] {
        let gw = start(&format!("mode = \"{mode}\""));
        let client = McpClient::connect(&gw.url("/mcp/work"), json!({})).await;
        let resp = client.call_tool("b_env", json!({"name": "FG_NAME"})).await;
        assert_eq!(tool_text(&resp), "b", "{mode}: {resp}");
        let health = gw.health().await;
        assert_eq!(
            health["virtualServers"]["work"]["servers"],
            json!(["a", "b"]),
            "{health}"
        );
        let stderr = gw.stderr_text();
        assert!(stderr.contains("virtual  http://"), "{stderr}");
        assert!(stderr.contains("/mcp/work"), "{stderr}");
    }
    // Unknown names list the virtual servers beside the servers.
    let gw = start("");
    let reply = post_json(&gw.url("/mcp/wrok"), &[], &initialize_body(&json!({}))).await;
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("a, b, work"), "{}", reply.text());
}

/// The printed client config gives one endpoint kind, never tools twice: the unified entry
/// (or, routed, one per server); a virtual server is offered apart, as a line of its own.
#[tokio::test]
async fn print_client_config_gives_one_endpoint_kind_and_virtual_servers_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config("", WORK)).unwrap();
    let run = |extra: &[&str]| {
        let mut child = Command::new(flowguard_bin())
            .args([
                "-c",
                path.to_str().unwrap(),
                "-l",
                "127.0.0.1:0",
                "--print-client-config",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let _ = child.kill();
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
        let _ = child.wait();
        let cfg: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        (cfg, err)
    };
    let (cfg, stderr) = run(&[]);
    let servers = cfg["mcpServers"].as_object().unwrap();
    let keys: Vec<&String> = servers.keys().collect();
    assert_eq!(keys, ["flowguard"], "{cfg}");
    assert!(servers["flowguard"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/mcp"));
    assert!(
        stderr.contains("claude mcp add --transport http flowguard http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("claude mcp add --transport http work http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--transport http --method tools/list"),
        "{stderr}"
    );

    let (cfg, _) = run(&["--routed"]);
    let keys: Vec<&String> = cfg["mcpServers"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b"], "{cfg}");
}

#[tokio::test]
async fn progress_and_sampling_pass_through_a_virtual_endpoint() {
    let gw = start("");
    let client = McpClient::connect(&gw.url("/mcp/work"), json!({"sampling": {}})).await;
    let msgs = client
        .request(
            "tools/call",
            json!({"name": "progress", "arguments": {"steps": 3},
                   "_meta": {"progressToken": "p-1"}}),
        )
        .await;
    let progress: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{msgs:?}");
    assert!(progress
        .iter()
        .all(|m| m["params"]["progressToken"] == "p-1"));
    assert_eq!(tool_text(msgs.last().unwrap()), "progress done (3 steps)");

    let msgs = client
        .request_answering(
            "tools/call",
            json!({"name": "sample", "arguments": {"prompt": "hi"}}),
            |req| {
                assert_eq!(req["method"], "sampling/createMessage");
                Ok(json!({"role": "assistant", "model": "m",
                          "content": {"type": "text", "text": "answered through work"}}))
            },
        )
        .await;
    let last = msgs.last().unwrap();
    assert!(tool_text(last).contains("answered through work"), "{last}");
}

#[tokio::test]
async fn a_members_list_changed_reaches_the_virtual_sessions_stream() {
    let gw = start("");
    let client = McpClient::connect(&gw.url("/mcp/work"), json!({})).await;
    assert!(!names(&client.tools().await).contains(&"mutated_tool"));
    let mut stream = client.open_stream().await;
    assert_eq!(stream.status, 200);
    // `a` changes its list (through a's own endpoint: any client may cause it).
    let other = McpClient::connect(&gw.url("/mcp/a"), json!({})).await;
    assert_eq!(
        tool_text(&other.call_tool("mutate", json!({})).await),
        "mutated"
    );
    let note = stream
        .wait_for(Duration::from_secs(5), |m| {
            m["method"] == "notifications/tools/list_changed"
        })
        .await;
    assert!(
        note.is_some(),
        "no tools/list_changed on the virtual GET stream"
    );
    assert!(names(&client.tools().await).contains(&"mutated_tool"));
    let called = client.call_tool("mutated_tool", json!({})).await;
    assert_eq!(tool_text(&called), "mutated_tool called");
}

#[tokio::test]
async fn the_old_http_sse_transport_serves_a_virtual_server() {
    let gw = start("");
    let mut events = open_events(gw.port(), "/mcp/work/sse").await;
    let endpoint = next_event(&mut events).await;
    assert!(
        endpoint.starts_with("/mcp/work/messages?sessionId="),
        "{endpoint}"
    );
    let url = gw.url(&endpoint);
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"old","version":"0"}}});
    assert_eq!(post_json(&url, &[], &init.to_string()).await.status, 202);
    let reply: Value = serde_json::from_str(&next_event(&mut events).await).unwrap();
    assert_eq!(reply["result"]["serverInfo"]["name"], "work", "{reply}");
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b_env","arguments":{"name":"FG_NAME"}}});
    assert_eq!(post_json(&url, &[], &call.to_string()).await.status, 202);
    let reply: Value = serde_json::from_str(&next_event(&mut events).await).unwrap();
    assert_eq!(tool_text(&reply), "b", "{reply}");
}

#[tokio::test]
async fn a_stateless_2026_request_reaches_a_virtual_server() {
    let gw = start("");
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "modern", "version": "0" },
    });
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "b_env"),
    ];
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "b_env", "arguments": {"name": "FG_NAME"}, "_meta": meta}});
    let reply = post_json(&gw.url("/mcp/work"), &headers, &body.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.header("mcp-session-id").is_none());
    let last = reply.messages().pop().unwrap();
    assert_eq!(tool_text(&last), "b", "{last}");
    let info = &last["result"]["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(info["name"], "work", "{last}");
}

#[test]
fn flowguard_stdio_serves_a_virtual_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config("", WORK)).unwrap();
    let mut child = Command::new(flowguard_bin())
        .args(["stdio", "-c", path.to_str().unwrap(), "--server", "work"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut exchange = |msg: Value| -> Value {
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let init = exchange(
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}),
    );
    assert_eq!(init["result"]["serverInfo"]["name"], "work", "{init}");
    let list = exchange(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
    assert_eq!(list["result"]["tools"][1]["name"], "b_env", "{list}");
    let call = exchange(
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b_env","arguments":{"name":"FG_NAME"}}}),
    );
    assert_eq!(tool_text(&call), "b", "{call}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn config_check_explains_bad_virtual_servers() {
    let check = |virtuals: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, config("", virtuals)).unwrap();
        GatewayOptions::new().run(&["config", "check", path.to_str().unwrap()], None)
    };
    let ok = check(WORK);
    assert_eq!(ok.code(), Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout
            .contains("work (virtual: a/env, b/env as b_env, b/echo"),
        "{}",
        ok.stdout
    );
    let cases: &[(&str, &[&str])] = &[
        (
            "[virtual_servers.v]\ntools = [\"c/env\"]\n",
            &[
                "virtual_servers.v.tools[0]: no server `c` is configured",
                "hint: configured servers: a, b",
            ],
        ),
        (
            "[virtual_servers.v]\ntools = [\"a/env\", \"b/env\"]\n",
            &[
                "virtual_servers.v.tools[1]: the name `env` is taken by virtual_servers.v.tools[0] (a/env)",
                "name = \"b_env\"",
            ],
        ),
        (
            "[virtual_servers.a]\ntools = [\"b/env\"]\n",
            &["virtual_servers.a: `a` is already a server id"],
        ),
        (
            "[virtual_servers.v]\ntools = []\n",
            &["virtual_servers.v.tools: a virtual server needs at least one tool"],
        ),
        (
            "[virtual_servers.\"my tools\"]\ntools = [\"a/env\"]\n",
            &["virtual server name `my tools` contains ` `"],
        ),
    ];
    for (virtuals, needles) in cases {
        let out = check(virtuals);
        assert_eq!(out.code(), Some(2), "{virtuals}: {}", out.stderr);
        for needle in *needles {
            assert!(
                out.stderr.contains(needle),
                "{needle:?} in:\n{}",
                out.stderr
            );
        }
    }
}

#[tokio::test]
async fn an_isolated_member_serves_each_virtual_session_from_its_own_instance() {
    let text = format!(
        "{}\n{}\n[virtual_servers.v]\ntools = [\"iso/pid\", \"a/env\"]\n",
        fake_server("a", &[], "env = { FG_NAME = \"a\" }"),
        fake_server("iso", &[], "isolation = \"session\""),
    );
    let gw = GatewayProcess::start(&text, "toml", &[]);
    let one = McpClient::connect(&gw.url("/mcp/v"), json!({})).await;
    let two = McpClient::connect(&gw.url("/mcp/v"), json!({})).await;
    let pid_one = tool_text(&one.call_tool("pid", json!({})).await).to_string();
    let pid_two = tool_text(&two.call_tool("pid", json!({})).await).to_string();
    assert_ne!(pid_one, pid_two, "two sessions share one instance");
    assert_eq!(tool_text(&one.call_tool("pid", json!({})).await), pid_one);
    assert_eq!(names(&two.tools().await), ["pid", "env"]);
    let health = gw.health().await;
    assert_eq!(health["servers"]["iso"]["instances"], 2, "{health}");
}
