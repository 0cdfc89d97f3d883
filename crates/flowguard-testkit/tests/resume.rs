//! Resumable streams: every SSE event has an id; a client whose connection breaks reconnects
//! with `GET` and `Last-Event-ID` and gets the rest of that one stream; a broken POST stream
//! does not cancel its request; 2025-11-25 clients get a priming event with `retry:`.
//! Raw TCP, so the test sees the event ids and can cut a connection mid-stream.

use flowguard_testkit::config::one_fake;
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One event as sent: its id, `retry:`, and data (`None` for a priming event).
#[derive(Debug, Default)]
struct Event {
    id: Option<String>,
    retry: Option<String>,
    data: Option<Value>,
}

/// A raw HTTP/1.1 exchange whose response is read event by event.
struct Raw {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
    status: u16,
}

impl Raw {
    async fn send(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Raw {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(stream).lines();
        let status_line = lines.next_line().await.unwrap().expect("a status line");
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        // Skip the head; the body is chunked SSE, whose chunk-size lines are not SSE fields.
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.is_empty() {
                break;
            }
        }
        Raw { lines, status }
    }

    /// The next event (skipping comments and chunk framing), within 10 s.
    async fn event(&mut self) -> Option<Event> {
        tokio::time::timeout(Duration::from_secs(10), async {
            let mut ev = Event::default();
            let mut any = false;
            while let Some(line) = self.lines.next_line().await.ok()? {
                if let Some(v) = line.strip_prefix("id: ") {
                    ev.id = Some(v.to_string());
                    any = true;
                } else if let Some(v) = line.strip_prefix("retry: ") {
                    ev.retry = Some(v.to_string());
                    any = true;
                } else if let Some(v) = line.strip_prefix("data:") {
                    let v = v.trim();
                    if !v.is_empty() {
                        ev.data = Some(serde_json::from_str(v).unwrap());
                    }
                    any = true;
                } else if line.is_empty() && any {
                    return Some(ev);
                }
            }
            None
        })
        .await
        .expect("an event within 10 s")
    }
}

fn headers<'a>(client: &'a McpClient, accept: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("Content-Type", "application/json"),
        ("Accept", accept),
        ("Mcp-Session-Id", client.session_id()),
        ("MCP-Protocol-Version", client.protocol_version()),
    ]
}

#[tokio::test]
async fn a_broken_reply_stream_resumes_with_last_event_id_and_the_call_was_not_cancelled() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    assert_eq!(client.protocol_version(), "2025-11-25");
    let call = json!({"jsonrpc":"2.0","id":"long","method":"tools/call","params":{
        "name":"progress","arguments":{"steps":4,"ms":300},"_meta":{"progressToken":"p"}}});
    let sse = "application/json, text/event-stream";
    let mut raw = Raw::send(
        gw.port(),
        "POST",
        "/mcp/fake",
        &headers(&client, sse),
        &call.to_string(),
    )
    .await;
    assert_eq!(raw.status, 200);

    // A 2025-11-25 client is primed: an id, empty data, and how long to wait before reconnecting.
    let priming = raw.event().await.expect("a priming event");
    assert!(
        priming.data.is_none() && priming.id.is_some(),
        "{priming:?}"
    );
    assert!(priming.retry.is_some(), "{priming:?}");
    let first = raw.event().await.expect("the first progress event");
    assert_eq!(
        first.data.as_ref().unwrap()["params"]["progress"],
        1,
        "{first:?}"
    );
    let last_id = first.id.clone().expect("events have ids");
    drop(raw); // the connection breaks mid-call

    // The call goes on (a broken stream is not a cancellation); its events are kept.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut get_headers = headers(&client, "text/event-stream");
    get_headers.push(("Last-Event-ID", &last_id));
    let mut resumed = Raw::send(gw.port(), "GET", "/mcp/fake", &get_headers, "").await;
    assert_eq!(resumed.status, 200);
    let mut progress = vec![];
    let mut ids = vec![last_id.clone()];
    let reply = loop {
        let ev = resumed
            .event()
            .await
            .expect("the stream goes on to the reply");
        ids.push(ev.id.clone().expect("resumed events have ids"));
        let msg = ev.data.expect("data");
        if msg.get("method").is_some() {
            progress.push(msg["params"]["progress"].clone());
        } else {
            break msg;
        }
    };
    assert_eq!(
        progress,
        vec![json!(2), json!(3), json!(4)],
        "only the events after {last_id}"
    );
    assert_eq!(reply["id"], "long");
    assert_eq!(
        reply["result"]["content"][0]["text"], "progress done (4 steps)",
        "{reply}"
    );
    let seqs: Vec<u64> = ids
        .iter()
        .map(|i| i.split('.').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "ids increase: {ids:?}"
    );
    assert!(
        resumed.event().await.is_none(),
        "the resumed stream ends after the reply"
    );

    // An id the session never issued is refused with a clear 404.
    let mut bad = headers(&client, "text/event-stream");
    bad.push(("Last-Event-ID", "77.1"));
    let reply = Raw::send(gw.port(), "GET", "/mcp/fake", &bad, "").await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn the_get_stream_resumes_with_what_was_sent_while_the_client_was_away() {
    let gw = GatewayProcess::start(&one_fake(""), "toml", &[]);
    let client = McpClient::connect(&gw.url("/mcp/fake"), json!({})).await;
    let mut get = Raw::send(
        gw.port(),
        "GET",
        "/mcp/fake",
        &headers(&client, "text/event-stream"),
        "",
    )
    .await;
    assert_eq!(get.status, 200);
    client.call_tool("mutate", json!({})).await;
    let seen = get.event().await.expect("list_changed on the GET stream");
    assert_eq!(
        seen.data.as_ref().unwrap()["method"],
        "notifications/tools/list_changed"
    );
    let last_id = seen.id.expect("GET events have ids");
    drop(get);

    // While the client is away the server changes again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.call_tool("mutate", json!({})).await;
    let mut again = headers(&client, "text/event-stream");
    again.push(("Last-Event-ID", &last_id));
    let mut get = Raw::send(gw.port(), "GET", "/mcp/fake", &again, "").await;
    assert_eq!(get.status, 200);
    let missed = get.event().await.expect("the missed notification");
    assert_eq!(
        missed.data.as_ref().unwrap()["method"],
        "notifications/tools/list_changed"
    );
    assert_ne!(missed.id, Some(last_id));
}
