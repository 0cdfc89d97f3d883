//! Streamable HTTP as the MCP transports spec (2025-03-26 .. 2025-11-25) defines it, through the
//! real binary: the session handshake, status codes, headers, the DNS-rebinding guard, and ids
//! that come back exactly as the client sent them.

use flowguard_testkit::client::{error_code, initialize_body, initialize_reply, tool_text};
use flowguard_testkit::config::one_fake;
use flowguard_testkit::http::{self, post_json};
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::json;

fn gateway() -> GatewayProcess {
    GatewayProcess::start(&one_fake(""), "toml", &[])
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

#[tokio::test]
async fn initialize_returns_a_32_hex_digit_session_id() {
    let gw = gateway();
    let reply = initialize_reply(&gw.url("/mcp"), &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let sid = reply.header("mcp-session-id").expect("a session id header");
    assert_eq!(sid.len(), 32, "{sid}");
    assert!(sid.bytes().all(|b| b.is_ascii_hexdigit()), "{sid}");
    let result = &reply.messages()[0]["result"];
    assert_eq!(result["protocolVersion"], "2025-11-25");
}

#[tokio::test]
async fn initialized_notification_is_exactly_202_without_body_or_content_type() {
    let gw = gateway();
    let reply = initialize_reply(&gw.url("/mcp"), &json!({})).await;
    let sid = reply.header("mcp-session-id").unwrap().to_string();
    let ack = post_json(
        &gw.url("/mcp"),
        &[("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(ack.status, 202);
    assert!(ack.body.is_empty(), "body: {:?}", ack.text());
    assert_eq!(ack.content_type(), None);
}

#[tokio::test]
async fn request_without_session_is_400() {
    let gw = gateway();
    let reply = post_json(&gw.url("/mcp"), &[], TOOLS_LIST).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}

#[tokio::test]
async fn request_with_unknown_session_is_404() {
    let gw = gateway();
    let reply = post_json(
        &gw.url("/mcp"),
        &[("mcp-session-id", "0123456789abcdef0123456789abcdef")],
        TOOLS_LIST,
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.text());
}

#[tokio::test]
async fn delete_ends_the_session_and_its_id_then_gets_404() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let reply = client.delete().await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let after = client.raw_post(&[], TOOLS_LIST).await;
    assert_eq!(after.status, 404, "{}", after.text());
}

#[tokio::test]
async fn unsupported_protocol_version_header_is_400() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let reply = client
        .raw_post(&[("mcp-protocol-version", "1999-01-01")], TOOLS_LIST)
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}

#[tokio::test]
async fn any_supported_protocol_version_header_is_accepted_not_only_the_negotiated_one() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    assert_eq!(client.protocol_version(), "2025-11-25");
    let reply = client
        .raw_post(&[("mcp-protocol-version", "2025-03-26")], TOOLS_LIST)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.messages()[0]["result"]["tools"].is_array());
}

#[tokio::test]
async fn foreign_origin_is_403() {
    let gw = gateway();
    let reply = post_json(
        &gw.url("/mcp"),
        &[("origin", "http://evil.example.com")],
        &initialize_body(&json!({})),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
}

#[tokio::test]
async fn foreign_host_header_is_403() {
    let gw = gateway();
    let reply = post_json(
        &gw.url("/mcp"),
        &[("host", "evil.example.com")],
        &initialize_body(&json!({})),
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
}

#[tokio::test]
async fn text_plain_content_type_is_415() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let reply = client
        .raw_post(&[("content-type", "text/plain")], TOOLS_LIST)
        .await;
    assert_eq!(reply.status, 415, "{}", reply.text());
}

#[tokio::test]
async fn invalid_json_is_400_with_parse_error() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let reply = client.raw_post(&[], r#"{"jsonrpc":"2.0","id":1,"#).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"]["code"], -32700, "{}", reply.text());
}

#[tokio::test]
async fn json_array_batch_is_400() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let reply = client.raw_post(&[], format!("[{TOOLS_LIST}]")).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}

#[tokio::test]
async fn request_ids_come_back_exactly_through_a_routed_call() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    for id in [json!("abc"), json!(42), json!(0), json!(-1)] {
        let msgs = client
            .request_with_id(
                id.clone(),
                "tools/call",
                json!({"name": "echo", "arguments": {"message": format!("id {id}")}}),
            )
            .await;
        let response = msgs.last().expect("a response");
        // Compare the JSON values: 0 and "0", or -1 and -1.0, are different ids.
        assert_eq!(response["id"], id, "{response}");
        assert_eq!(
            response["id"].to_string(),
            id.to_string(),
            "id text changed"
        );
        assert_eq!(tool_text(response), format!("id {id}"));
    }
}

#[tokio::test]
async fn server_discover_naming_no_revision_is_a_handshake_error_not_a_2026_one() {
    let gw = gateway();
    let reply = post_json(
        &gw.url("/mcp"),
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}"#,
    )
    .await;
    assert!(
        reply.status.is_client_error(),
        "{} {}",
        reply.status,
        reply.text()
    );
    let code = error_code(&reply.json()).expect("a JSON-RPC error");
    assert!(
        !(-32022..=-32020).contains(&code),
        "code {code} is a 2026-07-28 code; a dual-era client would not fall back"
    );
}

#[tokio::test]
async fn get_with_session_opens_an_event_stream() {
    let gw = gateway();
    let client = McpClient::connect(&gw.url("/mcp"), json!({})).await;
    let stream = client.open_stream().await;
    assert_eq!(stream.status, 200);
    let content_type = http::content_type(&stream.headers).unwrap_or("");
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
}

#[tokio::test]
async fn tools_call_before_initialize_gets_a_session_transparently() {
    let gw = gateway();
    let call = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"message":"no handshake"}}}"#;
    let reply = post_json(&gw.url("/mcp/fake"), &[], call).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let msgs = reply.messages();
    assert_eq!(tool_text(msgs.last().unwrap()), "no handshake", "{msgs:?}");
    let sid = reply
        .header("mcp-session-id")
        .expect("a session id for the new session")
        .to_string();
    let again = post_json(
        &gw.url("/mcp/fake"),
        &[("mcp-session-id", &sid)],
        TOOLS_LIST,
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text());
}
