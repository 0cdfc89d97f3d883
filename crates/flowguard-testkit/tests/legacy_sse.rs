//! The 2024-11-05 HTTP+SSE transport: `GET .../sse` opens a session whose first event names the
//! message URL; POSTs there get 202 and their replies arrive on the stream; closing the stream
//! ends the session.

use flowguard_testkit::config::one_fake;
use flowguard_testkit::http::{next_event, open_events, post_json};
use flowguard_testkit::GatewayProcess;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

async fn next_json(rx: &mut mpsc::UnboundedReceiver<String>) -> Value {
    serde_json::from_str(&next_event(rx).await).unwrap()
}

#[tokio::test]
async fn old_clients_get_the_endpoint_event_and_replies_on_the_stream() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let mut events = open_events(gw.port(), "/mcp/fake/sse").await;
    let endpoint = next_event(&mut events).await;
    assert!(
        endpoint.starts_with("/mcp/fake/messages?sessionId="),
        "{endpoint}"
    );
    let url = gw.url(&endpoint);
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"old","version":"0"}}});
    assert_eq!(post_json(&url, &[], &init.to_string()).await.status, 202);
    let reply = next_json(&mut events).await;
    assert_eq!(reply["result"]["protocolVersion"], "2024-11-05", "{reply}");
    let call = json!({"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"echo","arguments":{"message":"by the old transport"}}});
    assert_eq!(post_json(&url, &[], &call.to_string()).await.status, 202);
    let reply = next_json(&mut events).await;
    assert_eq!(reply["id"], "c");
    assert_eq!(
        reply["result"]["content"][0]["text"], "by the old transport",
        "{reply}"
    );

    // The unified endpoint has the same transport at /sse.
    let mut unified = open_events(gw.port(), "/sse").await;
    assert!(next_event(&mut unified)
        .await
        .starts_with("/messages?sessionId="));
}

#[tokio::test]
async fn unknown_session_is_404_and_a_closed_stream_ends_the_session() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let reply = post_json(&gw.url("/mcp/fake/messages?sessionId=nope"), &[], ping).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    let mut events = open_events(gw.port(), "/mcp/fake/sse").await;
    let endpoint = next_event(&mut events).await;
    assert_eq!(post_json(&gw.url(&endpoint), &[], ping).await.status, 202);
    assert_eq!(next_json(&mut events).await["result"], json!({}));
    drop(events); // the reader task ends and closes the connection on its next event
    let mut ended = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Each POST produces an event, which makes the reader notice its receiver is gone.
        if post_json(&gw.url(&endpoint), &[], ping).await.status == 404 {
            ended = true;
            break;
        }
    }
    assert!(ended, "the session outlived its stream");
}
