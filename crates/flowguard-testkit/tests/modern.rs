//! The stateless 2026-07-28 revision served beside the handshake era on the same endpoints,
//! through the real binary and bridged to handshake-era servers (`fake`, `fixture`):
//! `server/discover`, the header rules and their error codes, forwarded calls with progress,
//! input-required results in place of server-to-client requests (MRTR), and
//! `subscriptions/listen`.

use flowguard_testkit::client::tool_text;
use flowguard_testkit::config::{fake_server, fixture_server, one_fake};
use flowguard_testkit::http::{self, post_json, HttpReply, SseStream};
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::time::Duration;

const V: &str = "2026-07-28";

fn gateway() -> GatewayProcess {
    GatewayProcess::start(&one_fake(""), "toml", &[])
}

/// The `_meta` every stateless request carries, with these client capabilities.
fn meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": { "name": "modern-test", "version": "0" },
    })
}

fn body(id: Value, method: &str, params: &Value) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
}

/// The headers a conforming client sends for `method` (and `name`, when it has one).
fn headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("mcp-protocol-version", V), ("mcp-method", method)];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    h
}

/// A conforming stateless request: `params` gets the `_meta` (merged with what it has).
async fn call(url: &str, method: &str, mut params: Value, caps: Value) -> HttpReply {
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut m = meta(caps);
    if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
        for (k, v) in extra {
            m[k] = v.clone();
        }
    }
    params["_meta"] = m;
    let h = headers(method, name.as_deref());
    post_json(url, &h, &body(json!(7), method, &params)).await
}

fn last(reply: &HttpReply) -> Value {
    reply
        .messages()
        .pop()
        .unwrap_or_else(|| panic!("no message in {}", reply.text()))
}

#[tokio::test]
async fn discover_names_versions_capabilities_and_server_without_a_session() {
    let gw = gateway();
    let reply = call(&gw.url("/mcp"), "server/discover", json!({}), json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("mcp-session-id"),
        None,
        "stateless: no session id"
    );
    let r = &last(&reply)["result"];
    let versions = r["supportedVersions"].as_array().unwrap();
    assert!(
        versions.contains(&json!(V)) && versions.contains(&json!("2025-11-25")),
        "{r}"
    );
    assert!(r["capabilities"]["tools"].is_object(), "{r}");
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["ttlMs"], 0);
    assert_eq!(r["cacheScope"], "private");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "flowguard"
    );
    assert_eq!(gw.health().await["sessions"], 0, "no session was created");
}

#[tokio::test]
async fn header_rules_give_the_revisions_error_codes() {
    let gw = gateway();
    let url = gw.url("/mcp/fake");
    let params = json!({ "name": "echo", "arguments": {"message": "x"}, "_meta": meta(json!({})) });
    let b = body(json!("h1"), "tools/call", &params);
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, i64);
    let cases: Vec<Case> = vec![
        (
            "version header differs from _meta",
            vec![
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "echo"),
            ],
            400,
            -32020,
        ),
        (
            "no Mcp-Method",
            vec![("mcp-protocol-version", V), ("mcp-name", "echo")],
            400,
            -32020,
        ),
        (
            "Mcp-Method differs",
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
            400,
            -32020,
        ),
        ("no Mcp-Name", headers("tools/call", None), 400, -32020),
        (
            "Mcp-Name differs",
            headers("tools/call", Some("other")),
            400,
            -32020,
        ),
    ];
    for (what, h, status, code) in cases {
        let reply = post_json(&url, &h, &b).await;
        assert_eq!(reply.status, status, "{what}: {}", reply.text());
        let msg = last(&reply);
        assert_eq!(msg["error"]["code"], code, "{what}: {msg}");
        assert_eq!(msg["id"], "h1", "{what}: errors carry the request id");
    }
    // The base64 sentinel form of Mcp-Name ("echo") is decoded and accepted.
    let reply = post_json(
        &url,
        &headers("tools/call", Some("=?base64?ZWNobw==?=")),
        &b,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(tool_text(&last(&reply)), "x");

    // An unknown version: -32022 naming what is supported and what was asked for.
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/protocolVersion"] = json!("v999");
    let h = [
        ("mcp-protocol-version", "v999"),
        ("mcp-method", "server/discover"),
    ];
    let reply = post_json(
        &url,
        &h,
        &body(json!(2), "server/discover", &json!({"_meta": m})),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let err = &last(&reply)["error"];
    assert_eq!(err["code"], -32022, "{err}");
    assert!(
        err["data"]["supported"]
            .as_array()
            .unwrap()
            .contains(&json!(V)),
        "{err}"
    );
    assert_eq!(err["data"]["requested"], "v999");

    // Methods the revision removed (or never had) are 404 + -32601.
    for method in ["ping", "logging/setLevel", "resources/subscribe", "no/such"] {
        let reply = call(&url, method, json!({}), json!({})).await;
        assert_eq!(reply.status, 404, "{method}: {}", reply.text());
        assert_eq!(last(&reply)["error"]["code"], -32601, "{method}");
    }
    // Without _meta: -32602.
    let reply = post_json(
        &url,
        &headers("tools/list", None),
        &body(json!(3), "tools/list", &json!({})),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(last(&reply)["error"]["code"], -32602);
}

#[tokio::test]
async fn tools_call_streams_progress_then_a_complete_result() {
    let gw = gateway();
    let params =
        json!({ "name": "progress", "arguments": {"steps": 3}, "_meta": {"progressToken": "p-1"} });
    let reply = call(&gw.url("/mcp/fake"), "tools/call", params, json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("mcp-session-id"), None);
    let msgs = reply.messages();
    let progress: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{msgs:?}");
    assert_eq!(
        progress[0]["params"]["progressToken"], "p-1",
        "the client's own token"
    );
    let result = &msgs.last().unwrap()["result"];
    assert_eq!(result["resultType"], "complete", "{result}");
    assert_eq!(result["content"][0]["text"], "progress done (3 steps)");
    assert!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].is_string());
}

#[tokio::test]
async fn lists_are_served_from_the_catalog_with_cache_hints() {
    let gw = gateway();
    let reply = call(&gw.url("/mcp"), "tools/list", json!({}), json!({})).await;
    let r = &last(&reply)["result"];
    assert!(
        r["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "fake___echo"),
        "{r}"
    );
    assert_eq!(r["resultType"], "complete");
    assert_eq!(r["cacheScope"], "private");
}

/// Starts `tools/call sample` and returns the input-required result.
async fn sample_until_input_required(url: &str) -> Value {
    let params = json!({ "name": "sample", "arguments": {"prompt": "hi"} });
    let reply = call(url, "tools/call", params, json!({"sampling": {}})).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    last(&reply)["result"].clone()
}

#[tokio::test]
async fn sampling_becomes_an_input_required_result_and_the_retry_completes_the_call() {
    let gw = gateway();
    let url = gw.url("/mcp/fake");
    let r = sample_until_input_required(&url).await;
    assert_eq!(r["resultType"], "input_required", "{r}");
    let (key, request) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(request["method"], "sampling/createMessage", "{r}");
    assert_eq!(request["params"]["messages"][0]["content"]["text"], "hi");
    let state = r["requestState"].as_str().unwrap();
    assert!(state.len() >= 32, "an unguessable state: {state}");

    let answer = json!({ "role": "assistant", "model": "m", "content": {"type": "text", "text": "sampled-by-modern"} });
    let retry = json!({
        "name": "sample", "arguments": {"prompt": "hi"},
        "inputResponses": { key.clone(): answer }, "requestState": state,
    });
    let reply = call(&url, "tools/call", retry.clone(), json!({"sampling": {}})).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let done = last(&reply);
    assert_eq!(done["id"], 7);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(tool_text(&done).contains("sampled-by-modern"), "{done}");

    // The state was used up: a second retry with it is refused clearly.
    let again = call(&url, "tools/call", retry, json!({"sampling": {}})).await;
    assert_eq!(again.status, 400, "{}", again.text());
    let err = &last(&again)["error"];
    assert_eq!(err["code"], -32602);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("requestState is unknown or expired"),
        "{err}"
    );
}

#[tokio::test]
async fn a_server_request_the_client_cannot_answer_is_32021() {
    let gw = gateway();
    let params = json!({ "name": "sample", "arguments": {"prompt": "hi"} });
    let reply = call(&gw.url("/mcp/fake"), "tools/call", params, json!({})).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let err = &last(&reply)["error"];
    assert_eq!(err["code"], -32021, "{err}");
    assert!(
        err["data"]["requiredCapabilities"]["sampling"].is_object(),
        "{err}"
    );
}

#[tokio::test]
async fn elicitation_of_the_fixture_round_trips_through_input_required() {
    let config = format!("[gateway]\n\n{}", fixture_server("everything"));
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let url = gw.url("/mcp/everything");
    let caps = json!({"elicitation": {}});
    let params = json!({ "name": "test_elicitation", "arguments": {"message": "who?"} });
    let r = last(&call(&url, "tools/call", params, caps.clone()).await)["result"].clone();
    assert_eq!(r["resultType"], "input_required", "{r}");
    let (key, request) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(request["method"], "elicitation/create");
    let answer =
        json!({ "action": "accept", "content": {"username": "ada", "email": "ada@example.com"} });
    let retry = json!({
        "name": "test_elicitation", "arguments": {"message": "who?"},
        "inputResponses": { key.clone(): answer }, "requestState": r["requestState"],
    });
    let done = last(&call(&url, "tools/call", retry, caps).await);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(tool_text(&done).contains("ada"), "{done}");
}

/// Opens `subscriptions/listen` with `filter` on `url`.
async fn listen(url: &str, filter: Value) -> SseStream {
    let params = json!({ "_meta": meta(json!({})), "notifications": filter });
    let mut h = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    h.extend(headers("subscriptions/listen", None));
    let req = http::build(
        "POST",
        url,
        &h,
        body(json!("listen-1"), "subscriptions/listen", &params),
    );
    let stream = SseStream::new(http::send(&http::client(), req).await);
    assert_eq!(stream.status, 200);
    stream
}

#[tokio::test]
async fn listen_acknowledges_then_carries_tagged_list_changes() {
    let gw = gateway();
    let url = gw.url("/mcp/fake");
    let mut tools = listen(
        &url,
        json!({"toolsListChanged": true, "promptsListChanged": true}),
    )
    .await;
    let mut prompts_only = listen(&url, json!({"promptsListChanged": true})).await;
    let ack = tools
        .next_within(Duration::from_secs(10))
        .await
        .expect("an acknowledgement");
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    assert_eq!(
        ack["params"]["notifications"]["toolsListChanged"], true,
        "{ack}"
    );
    prompts_only
        .next_within(Duration::from_secs(10))
        .await
        .expect("an acknowledgement");

    let mutate = call(
        &url,
        "tools/call",
        json!({"name": "mutate", "arguments": {}}),
        json!({}),
    )
    .await;
    assert_eq!(tool_text(&last(&mutate)), "mutated");
    let change = tools
        .wait_for(Duration::from_secs(10), |m| {
            m["method"] == "notifications/tools/list_changed"
        })
        .await
        .expect("tools/list_changed on the listen stream");
    assert_eq!(
        change["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    // The stream filtered to prompts gets no tool changes.
    assert_eq!(
        prompts_only.next_within(Duration::from_millis(500)).await,
        None
    );
    // And the catalog was refreshed: the new tool is listed.
    let list = call(&gw.url("/mcp/fake"), "tools/list", json!({}), json!({})).await;
    assert!(list.text().contains("mutated_tool"), "{}", list.text());
}

#[tokio::test]
async fn a_handshake_session_works_beside_stateless_requests_on_the_same_endpoint() {
    let config = format!("[gateway]\n\n{}", fake_server("fake", &[], ""));
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let url = gw.url("/mcp/fake");
    let legacy = McpClient::connect(&url, json!({"sampling": {}})).await;
    let (a, b) = tokio::join!(
        legacy.request(
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "legacy"}})
        ),
        call(
            &url,
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "modern"}}),
            json!({})
        ),
    );
    let legacy_reply = a.last().unwrap();
    assert_eq!(tool_text(legacy_reply), "legacy");
    assert!(
        legacy_reply["result"].get("resultType").is_none(),
        "handshake replies unchanged"
    );
    assert_eq!(tool_text(&last(&b)), "modern");
    // The handshake client still negotiates a handshake revision.
    assert_eq!(legacy.protocol_version(), "2025-11-25");
    assert_eq!(gw.health().await["sessions"], 1);
    // GET and DELETE without a session, from a stateless client: 405.
    for method in ["GET", "DELETE"] {
        let h = [("mcp-protocol-version", V), ("accept", "text/event-stream")];
        let reply = http::request(method, &url, &h, "").await;
        assert_eq!(reply.status, 405, "{method}: {}", reply.text());
    }
}

/// A remote handshake-era server that answers `tools/call` with the `Mcp-Param-Region` header
/// it received (none of the test servers looks at request headers).
async fn header_echo_server() -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    async fn handle(headers: HeaderMap, body: String) -> axum::response::Response {
        let msg: Value = serde_json::from_str(&body).unwrap_or_default();
        let Some(id) = msg.get("id").cloned() else {
            return StatusCode::ACCEPTED.into_response();
        };
        let result = match msg["method"].as_str().unwrap_or("") {
            "initialize" => json!({
                "protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "header-echo", "version": "0"},
            }),
            "tools/list" => {
                json!({"tools": [{"name": "region", "inputSchema": {"type": "object"}}]})
            }
            "tools/call" => {
                let region = headers
                    .get("mcp-param-region")
                    .and_then(|v| v.to_str().ok());
                json!({"content": [{"type": "text", "text": region.unwrap_or("<no header>")}]})
            }
            _ => json!({}),
        };
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
        ([("content-type", "application/json")], reply).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/mcp", axum::routing::post(handle));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}/mcp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_param_headers_reach_a_remote_server_unchanged() {
    let url = header_echo_server().await;
    let config = format!("[gateway]\n\n[servers.remote]\nurl = \"{url}\"\n");
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let params = json!({ "name": "region", "arguments": {"region": "eu-west"},
                         "_meta": meta(json!({})) });
    let mut h = headers("tools/call", Some("region"));
    h.push(("mcp-param-region", "eu-west"));
    let reply = post_json(
        &gw.url("/mcp/remote"),
        &h,
        &body(json!(1), "tools/call", &params),
    )
    .await;
    assert_eq!(tool_text(&last(&reply)), "eu-west", "{}", reply.text());
}

#[tokio::test]
async fn log_messages_reach_only_requests_that_ask_for_their_level() {
    let config = format!("[gateway]\n\n{}", fixture_server("everything"));
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let url = gw.url("/mcp/everything");
    for (level, want) in [(None, 0), (Some("info"), 3), (Some("error"), 0)] {
        let mut params = json!({ "name": "test_tool_with_logging", "arguments": {} });
        if let Some(l) = level {
            params["_meta"] = json!({ "io.modelcontextprotocol/logLevel": l });
        }
        let reply = call(&url, "tools/call", params, json!({})).await;
        let msgs = reply.messages();
        let logs = msgs
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count();
        assert_eq!(logs, want, "logLevel {level:?}: {msgs:?}");
        assert_eq!(msgs.last().unwrap()["result"]["resultType"], "complete");
    }
}

#[tokio::test]
async fn closing_the_response_cancels_the_call_upstream() {
    let gw = gateway();
    let params = json!({ "name": "hang", "arguments": {}, "_meta": meta(json!({})) });
    let b = body(json!(9), "tools/call", &params);
    let url = gw.url("/mcp/fake");
    let h = headers("tools/call", Some("hang"));
    let mut all = vec![
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    all.extend(h);
    let req = http::build("POST", &url, &all, b);
    let client = http::client();
    let call = tokio::spawn(async move { http::send(&client, req).await });
    let pending = |h: &Value| h["servers"]["fake"]["pending"].as_u64() == Some(1);
    gw.wait_health(Duration::from_secs(10), pending).await;
    call.abort();
    let _ = call.await;
    let idle = |h: &Value| h["servers"]["fake"]["pending"].as_u64() == Some(0);
    gw.wait_health(Duration::from_secs(10), idle).await;
}

#[tokio::test]
async fn shutdown_ends_a_listen_stream_with_its_result() {
    let gw = gateway();
    let mut stream = listen(&gw.url("/mcp"), json!({"toolsListChanged": true})).await;
    stream
        .next_within(Duration::from_secs(10))
        .await
        .expect("an acknowledgement");
    let close = http::request("POST", &gw.url("/close"), &[], "").await;
    assert_eq!(close.status, 200, "{}", close.text());
    let end = stream
        .wait_for(Duration::from_secs(15), |m| m["id"] == "listen-1")
        .await
        .expect("the listen result at shutdown");
    assert_eq!(
        end["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    assert_eq!(
        stream.next_within(Duration::from_secs(5)).await,
        None,
        "then the stream ends"
    );
}

/// Resource subscriptions end with what made them: a listen stream that closes, and a
/// handshake session that ends, unsubscribe upstream (the server stops its updates).
#[tokio::test]
async fn subscriptions_end_with_the_listen_stream_or_the_session() {
    let config = format!("[gateway]\n\n{}", fixture_server("everything"));
    let gw = GatewayProcess::start(&config, "toml", &[]);
    let url = gw.url("/mcp/everything");
    let wait_log = |needle: &'static str| {
        let gw = &gw;
        async move {
            for _ in 0..100 {
                if gw.stderr_text().contains(needle) {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            false
        }
    };
    let stream = listen(
        &url,
        json!({"resourceSubscriptions": ["test://watched-resource"]}),
    )
    .await;
    assert!(
        wait_log("fixture: subscribed test://watched-resource").await,
        "{}",
        gw.stderr_text()
    );
    drop(stream);
    assert!(
        wait_log("fixture: unsubscribed test://watched-resource").await,
        "the listen stream closed, the subscription stayed: {}",
        gw.stderr_text()
    );

    let client = McpClient::connect(&url, json!({})).await;
    client
        .response("resources/subscribe", json!({"uri": "test://static-text"}))
        .await;
    assert!(
        wait_log("fixture: subscribed test://static-text").await,
        "{}",
        gw.stderr_text()
    );
    client.delete().await;
    assert!(
        wait_log("fixture: unsubscribed test://static-text").await,
        "the session ended, the subscription stayed: {}",
        gw.stderr_text()
    );
}
