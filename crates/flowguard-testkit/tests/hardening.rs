//! Findings of probing the gateway with hostile and sloppy clients, each fixed: a media type
//! that only starts like JSON, a session id that is not text, an unknown protocol version on a
//! call without a session, and `.env` values that must not override the shell.

use flowguard_testkit::client::initialize_body;
use flowguard_testkit::config::{fake_server, one_fake};
use flowguard_testkit::http::post_json;
use flowguard_testkit::{GatewayOptions, GatewayProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` (raw HTTP/1.1, `Connection: close`) and returns the whole answer.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    s.write_all(request).await.expect("sent");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_content_type_that_only_starts_like_json_is_refused() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let body = initialize_body(&serde_json::json!({}));
    for (ct, status) in [
        ("application/jsonx", 415),
        ("application/json-seq", 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
    ] {
        let headers = [("content-type", ct), ("accept", "application/json")];
        let reply =
            flowguard_testkit::http::request("POST", &gw.url("/mcp/fake"), &headers, body.clone())
                .await;
        assert_eq!(reply.status, status, "Content-Type {ct}: {}", reply.text());
    }
}

#[tokio::test]
async fn a_session_id_that_is_not_text_is_unknown_not_missing() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let mut req = format!(
        "POST /mcp/fake HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json\r\nConnection: close\r\nContent-Length: {}\r\nMcp-Session-Id: ",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(b"\xff\xfe\r\n\r\n");
    req.extend_from_slice(body);
    let answer = raw(gw.port(), &req).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.contains("Session not found"), "{answer}");
}

#[tokio::test]
async fn an_unknown_protocol_version_on_a_call_without_a_session_gets_32022() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}"#;
    let reply = post_json(
        &gw.url("/mcp/fake"),
        &[("mcp-protocol-version", "2099-01-01")],
        body,
    )
    .await;
    let msg = reply.messages().pop().expect("an error reply");
    assert_eq!(msg["error"]["code"], -32022, "{msg}");
    assert_eq!(msg["error"]["data"]["requested"], "2099-01-01", "{msg}");
}

#[test]
fn the_shell_environment_wins_over_an_env_file() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env_file = dir.path().join(".env");
    std::fs::write(&env_file, "FG_LISTEN=127.0.0.1:1\n").expect("written");
    let config = dir.path().join("gw.toml");
    let text = format!(
        "[gateway]\nlisten = \"${{FG_LISTEN}}\"\n\n{}",
        fake_server("f", &[], "")
    );
    std::fs::write(&config, text).expect("written");
    // The shell's value (an unusable address) is the one used, and the note says so.
    let out = GatewayOptions::new()
        .env("FG_LISTEN", "not-an-address")
        .run(
            &[
                "config",
                "check",
                config.to_str().unwrap(),
                "--env",
                env_file.to_str().unwrap(),
            ],
            None,
        );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("not-an-address"), "{}", out.stderr);
    assert!(
        out.stderr.contains("FG_LISTEN is set in the environment"),
        "{}",
        out.stderr
    );
}

/// What no server could parse is refused at the door with a reply the client can act on,
/// instead of reaching the server, whose `"id": null` error left the client waiting 60 s.
#[tokio::test]
async fn unreadable_params_and_null_ids_are_refused_at_the_door() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client =
        flowguard_testkit::McpClient::connect(&gw.url("/mcp/fake"), serde_json::json!({})).await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let cases = [
        (
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":{deep}}}}}}}"#),
            400,
            -32700,
            "nested deeper",
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"\ud800"}}}"#.to_string(),
            400,
            -32700,
            "lone UTF-16 surrogate",
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}"#.to_string(),
            400,
            -32600,
            "not null",
        ),
    ];
    for (body, status, code, needle) in cases {
        let t = std::time::Instant::now();
        let reply = client.raw_post(&[], body).await;
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{needle}: {:?}",
            t.elapsed()
        );
        assert_eq!(reply.status, status, "{needle}: {}", reply.text());
        assert_eq!(reply.error_code(), Some(code), "{needle}: {}", reply.text());
        assert!(reply.text().contains(needle), "{}", reply.text());
    }
    // The session goes on.
    let ok = client
        .call_tool("echo", serde_json::json!({"message": "fine"}))
        .await;
    assert_eq!(flowguard_testkit::client::tool_text(&ok), "fine", "{ok}");
}
