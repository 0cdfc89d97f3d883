//! Which server a message reaches and under which name: routed endpoints (`/mcp/<id>`, names
//! unchanged), the unified endpoint (`/mcp`, names prefixed by the `tool_prefix` rule), tool
//! allow-lists, pagination of aggregated lists, endpoint modes, and list-change notifications.

use flowguard_testkit::client::{error_code, error_message, initialize_body, tool_text};
use flowguard_testkit::config::{fake_server, fixture_server, one_fake};
use flowguard_testkit::http::post_json;
use flowguard_testkit::{GatewayOptions, GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The fake server's tools, as it lists them.
const FAKE_TOOLS: &[&str] = &[
    "echo",
    "add",
    "crash",
    "hang",
    "unreadable",
    "garbage",
    "flood_stderr",
    "slow",
    "progress",
    "sample",
    "roots",
    "mutate",
    "pid",
    "env",
    "cwd",
    "big",
];

fn set(names: impl IntoIterator<Item = impl Into<String>>) -> BTreeSet<String> {
    names.into_iter().map(Into::into).collect()
}

/// Two fake servers, `a` and `b`, that tell themselves apart through `FG_NAME`.
fn two_fakes(gateway: &str, a_extra: &str) -> String {
    format!(
        "[gateway]\n{gateway}\n\n{}\n{}",
        fake_server("a", &[], &format!("env = {{ FG_NAME = \"a\" }}\n{a_extra}")),
        fake_server("b", &[], "env = { FG_NAME = \"b\" }"),
    )
}

#[tokio::test]
async fn routed_endpoint_lists_tool_names_unchanged() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    assert_eq!(client.tool_names().await, FAKE_TOOLS);
}

#[tokio::test]
async fn unified_endpoint_prefixes_names_and_descriptions_and_calls_through() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let tools = client.tools().await;
    let echo = tools
        .iter()
        .find(|t| t["name"] == "fake___echo")
        .unwrap_or_else(|| panic!("no fake___echo in {tools:?}"));
    let description = echo["description"].as_str().unwrap();
    assert!(description.starts_with("[fake] "), "{description}");
    let resp = client
        .call_tool("fake___echo", json!({"message": "through /mcp"}))
        .await;
    assert_eq!(tool_text(&resp), "through /mcp");
}

#[tokio::test]
async fn unified_endpoint_aggregates_different_servers_and_routes_each_call_to_its_owner() {
    let config = format!(
        "{}\n{}",
        fake_server("fake", &[], ""),
        fixture_server("conf")
    );
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let names = client.tool_names().await;
    for name in ["fake___echo", "conf___test_simple_text"] {
        assert!(names.iter().any(|n| n == name), "no {name} in {names:?}");
    }
    let fixture = client.call_tool("conf___test_simple_text", json!({})).await;
    assert_eq!(
        tool_text(&fixture),
        "This is a simple text response for testing."
    );
    let fake = client
        .call_tool("fake___echo", json!({"message": "to fake"}))
        .await;
    assert_eq!(tool_text(&fake), "to fake");
}

#[tokio::test]
async fn conditional_prefix_renames_only_colliding_tools() {
    let config = two_fakes(
        "tool_prefix = \"conditional\"",
        "tools = [\"echo\", \"add\"]",
    );
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let names = set(client.tool_names().await);
    // echo and add exist on both servers; everything else only on b.
    let mut expected = set(["a___echo", "b___echo", "a___add", "b___add"]);
    expected.extend(
        FAKE_TOOLS
            .iter()
            .filter(|t| !["echo", "add"].contains(t))
            .map(|t| t.to_string()),
    );
    assert_eq!(names, expected);
    for server in ["a", "b"] {
        let resp = client
            .call_tool(&format!("{server}___echo"), json!({"message": server}))
            .await;
        assert_eq!(tool_text(&resp), server);
    }
    let b = client.call_tool("env", json!({"name": "FG_NAME"})).await;
    assert_eq!(tool_text(&b), "b");
}

#[tokio::test]
async fn never_prefix_keeps_the_first_server_by_id_and_hides_the_other() {
    let gw = GatewayProcess::start(&two_fakes("tool_prefix = \"never\"", ""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    assert_eq!(client.tool_names().await, FAKE_TOOLS, "each name once");
    let resp = client.call_tool("env", json!({"name": "FG_NAME"})).await;
    assert_eq!(tool_text(&resp), "a", "the first server by id answers");
}

/// Every page of `tools/list`, following `nextCursor` (at most 50 pages).
async fn all_pages(client: &McpClient) -> (Vec<Value>, usize) {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=50 {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let resp = client.response("tools/list", params).await;
        let page = resp["result"]["tools"].as_array().expect("a page").clone();
        assert!(page.len() <= 3, "a page of {} items", page.len());
        tools.extend(page);
        match resp["result"].get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_string()),
            None => return (tools, pages),
        }
    }
    panic!("more than 50 pages")
}

#[tokio::test]
async fn page_size_paginates_and_the_pages_add_up_to_the_whole_list() {
    let paged = GatewayProcess::start(&one_fake("page_size = 3"), "toml", &[]);
    let whole = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let paged_client = McpClient::connect(&paged.url("/mcp"), json!({})).await;
    let whole_client = McpClient::connect(&whole.url("/mcp"), json!({})).await;
    let (pages, count) = all_pages(&paged_client).await;
    assert_eq!(count, FAKE_TOOLS.len().div_ceil(3));
    assert_eq!(pages, whole_client.tools().await);
}

#[tokio::test]
async fn allow_list_hides_other_tools_and_calling_one_looks_like_an_unknown_tool() {
    let config = format!(
        "[gateway]\n\n{}",
        fake_server("fake", &[], "tools = [\"echo\"]")
    );
    let gw = GatewayProcess::start(&config, "toml", &[]);
    for (url, prefix) in [(gw.url("/mcp/fake"), ""), (gw.url("/mcp"), "fake___")] {
        let client = McpClient::connect(&url, json!({})).await;
        assert_eq!(
            client.tool_names().await,
            [format!("{prefix}echo")],
            "{url}"
        );
        let hidden = client
            .call_tool(&format!("{prefix}add"), json!({"a": 1, "b": 2}))
            .await;
        let unknown = client.call_tool(&format!("{prefix}nope"), json!({})).await;
        assert_eq!(error_code(&hidden), Some(-32602), "{url}: {hidden}");
        assert_eq!(error_code(&unknown), Some(-32602), "{url}: {unknown}");
        assert_eq!(
            error_message(&hidden).replace("add", "X"),
            error_message(&unknown).replace("nope", "X"),
            "{url}: a hidden tool must look exactly like a missing one"
        );
    }
}

#[tokio::test]
async fn unknown_server_endpoint_is_404_naming_the_configured_servers() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let reply = post_json(&gw.url("/mcp/nope"), &[], &initialize_body(&json!({}))).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    let text = reply.text();
    assert!(text.contains("nope") && text.contains("fake"), "{text}");
}

#[tokio::test]
async fn routed_flag_turns_the_unified_endpoint_off() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &["--routed"]);
    let reply = post_json(&gw.url("/mcp"), &[], &initialize_body(&json!({}))).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
}

#[tokio::test]
async fn unified_flag_turns_the_routed_endpoints_off() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &["--unified"]);
    let reply = post_json(&gw.url("/mcp/fake"), &[], &initialize_body(&json!({}))).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    McpClient::connect(&gw.url("/mcp"), json!({})).await;
}

#[test]
fn routed_and_unified_together_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, one_fake("")).unwrap();
    let out = GatewayOptions::new().run(
        &[
            "-c",
            path.to_str().unwrap(),
            "-l",
            "127.0.0.1:0",
            "--routed",
            "--unified",
        ],
        None,
    );
    assert!(!out.status.success(), "it started: {}", out.stderr);
    assert!(
        out.stderr.contains("--routed") && out.stderr.contains("--unified"),
        "the message should name both flags: {}",
        out.stderr
    );
}

#[tokio::test]
async fn list_changed_reaches_open_streams_and_the_next_list_shows_the_new_tool() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    assert!(!client
        .tool_names()
        .await
        .contains(&"fake___mutated_tool".to_string()));
    let mut stream = client.open_stream().await;
    assert_eq!(stream.status, 200);
    let resp = client.call_tool("fake___mutate", json!({})).await;
    assert_eq!(tool_text(&resp), "mutated");
    let note = stream
        .wait_for(Duration::from_secs(5), |m| {
            m["method"] == "notifications/tools/list_changed"
        })
        .await;
    assert!(
        note.is_some(),
        "no notifications/tools/list_changed on the GET stream"
    );
    let names = client.tool_names().await;
    assert!(
        names.contains(&"fake___mutated_tool".to_string()),
        "{names:?}"
    );
    let called = client.call_tool("fake___mutated_tool", json!({})).await;
    assert_eq!(tool_text(&called), "mutated_tool called");
}
