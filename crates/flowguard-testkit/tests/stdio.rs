//! The gateway on stdin/stdout: `flowguard wrap -- CMD` puts one server behind it with names
//! unchanged, `flowguard stdio` serves the configured gateway unified. Progress, server-to-client
//! requests and cancellation travel as over HTTP; a client that skips initialize is served; stdin
//! EOF ends the gateway and its servers.

use flowguard_testkit::bins::{fake_bin, flowguard_bin};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct StdioGateway {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl StdioGateway {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(flowguard_bin())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("flowguard starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        StdioGateway {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line from stdout, as JSON (every line must be JSON-RPC).
    fn recv(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(15))
            .expect("a message on stdout");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// Messages until the response with `id`.
    fn until_response(&self, id: &Value) -> Vec<Value> {
        let mut msgs = vec![];
        loop {
            let m = self.recv();
            let done = &m["id"] == id && m.get("method").is_none();
            msgs.push(m);
            if done {
                return msgs;
            }
        }
    }

    fn initialize(&mut self, caps: Value) -> Value {
        self.send(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":caps,"clientInfo":{"name":"t","version":"0"}}}));
        let reply = self.until_response(&json!(0)).pop().unwrap();
        self.send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        reply
    }

    fn call(&mut self, id: Value, name: &str, args: Value) -> Vec<Value> {
        self.send(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":args}}));
        self.until_response(&id)
    }

    fn close_and_wait(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not exit after stdin closed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for StdioGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn wrap_serves_one_server_with_names_unchanged_and_exits_on_eof() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    let init = gw.initialize(json!({}));
    assert_eq!(init["result"]["serverInfo"]["name"], "fake", "{init}");
    gw.send(json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}));
    let list = gw.until_response(&json!("l")).pop().unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"echo") && names.contains(&"add"),
        "{names:?}"
    );
    let reply = gw
        .call(json!(-1), "echo", json!({"message":"through stdio"}))
        .pop()
        .unwrap();
    assert_eq!(text(&reply), "through stdio");
    let pid_reply = gw.call(json!(2), "pid", json!({})).pop().unwrap();
    let server_pid: u32 = text(&pid_reply).parse().unwrap();
    let status = gw.close_and_wait();
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !std::path::Path::new(&format!("/proc/{server_pid}")).exists(),
        "the wrapped server outlived the gateway"
    );
}

#[test]
fn progress_and_sampling_cross_the_stdio_transport() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    gw.initialize(json!({"sampling": {}}));
    gw.send(json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"progress","arguments":{"steps":2},"_meta":{"progressToken":"tok"}}}));
    let msgs = gw.until_response(&json!(5));
    let tokens: Vec<&Value> = msgs
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| &m["params"]["progressToken"])
        .collect();
    assert_eq!(tokens, vec![&json!("tok"), &json!("tok")], "{msgs:?}");

    gw.send(json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"sample","arguments":{"prompt":"hi"}}}));
    let request = gw.recv();
    assert_eq!(request["method"], "sampling/createMessage", "{request}");
    gw.send(json!({"jsonrpc":"2.0","id":request["id"],"result":{"role":"assistant","content":{"type":"text","text":"answered over stdio"},"model":"m"}}));
    let reply = gw.until_response(&json!(6)).pop().unwrap();
    assert!(text(&reply).contains("answered over stdio"), "{reply}");
}

#[test]
fn a_client_that_skips_initialize_is_served() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    let reply = gw
        .call(json!(1), "add", json!({"a": 2, "b": 3}))
        .pop()
        .unwrap();
    assert_eq!(text(&reply), "5", "{reply}");
}

#[test]
fn stdio_serves_the_configured_gateway_unified() {
    let dir = tempfile::tempdir().unwrap();
    let fake = fake_bin().display().to_string();
    let cfg = dir.path().join("g.toml");
    std::fs::write(
        &cfg,
        format!("[servers.a]\ncommand = \"{fake}\"\n\n[servers.b]\ncommand = \"{fake}\"\n"),
    )
    .unwrap();
    let mut gw = StdioGateway::start(&["stdio", "-c", cfg.to_str().unwrap()]);
    gw.initialize(json!({}));
    let reply = gw
        .call(json!(1), "b___echo", json!({"message":"to b"}))
        .pop()
        .unwrap();
    assert_eq!(text(&reply), "to b");
    let bad = gw
        .call(json!(2), "echo", json!({"message":"x"}))
        .pop()
        .unwrap();
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
}

#[test]
fn garbage_on_stdin_gets_a_parse_error_and_the_session_goes_on() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    gw.initialize(json!({}));
    gw.stdin
        .as_mut()
        .unwrap()
        .write_all(b"this is not json\n")
        .unwrap();
    let err = gw.recv();
    assert_eq!(err["error"]["code"], -32700, "{err}");
    let reply = gw
        .call(json!(3), "echo", json!({"message":"still here"}))
        .pop()
        .unwrap();
    assert_eq!(text(&reply), "still here");
}

/// `_meta` of a 2026-07-28 request; `caps` are the client's capabilities.
fn modern_meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}
    })
}

#[test]
fn wrap_serves_2026_07_28_clients_statelessly_as_http_does() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    // A dual-era client's probe: answered, naming the revision.
    gw.send(json!({"jsonrpc":"2.0","id":"d","method":"server/discover","params":{"_meta": modern_meta(json!({}))}}));
    let discover = gw.until_response(&json!("d")).pop().unwrap();
    let versions = discover["result"]["supportedVersions"].to_string();
    assert!(versions.contains("2026-07-28"), "{discover}");
    assert_eq!(discover["result"]["resultType"], "complete", "{discover}");

    // Requests carry the envelope; the server behind (which refuses enveloped requests on its
    // handshake connection, as the Python SDK 2.x does) gets them without it.
    gw.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta": modern_meta(json!({}))}}));
    let list = gw.until_response(&json!(1)).pop().unwrap();
    assert!(
        list["result"]["tools"].to_string().contains("\"echo\""),
        "{list}"
    );
    gw.send(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"2026 over stdio"},"_meta": modern_meta(json!({}))}}));
    let reply = gw.until_response(&json!(2)).pop().unwrap();
    assert_eq!(text(&reply), "2026 over stdio", "{reply}");
    assert_eq!(reply["result"]["resultType"], "complete", "{reply}");
    assert_eq!(
        reply["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "fake",
        "{reply}"
    );

    // A server-to-client request becomes an input-required result; the retry answers it.
    let caps = json!({"sampling": {}});
    gw.send(json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sample","arguments":{"prompt":"hi"},"_meta": modern_meta(caps.clone())}}));
    let asked = gw.until_response(&json!(3)).pop().unwrap();
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let requests = asked["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    let (key, request) = requests.iter().next().expect("one request");
    assert_eq!(request["method"], "sampling/createMessage", "{asked}");
    let answer =
        json!({"role":"assistant","content":{"type":"text","text":"answered in 2026"},"model":"m"});
    gw.send(json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{
        "name":"sample","arguments":{"prompt":"hi"},"_meta": modern_meta(caps),
        "requestState": asked["result"]["requestState"], "inputResponses": {key.as_str(): answer}}}));
    let done = gw.until_response(&json!(4)).pop().unwrap();
    assert!(text(&done).contains("answered in 2026"), "{done}");

    // A request that breaks the revision's rules gets the revision's error.
    gw.send(json!({"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}));
    let bad = gw.until_response(&json!(5)).pop().unwrap();
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let status = gw.close_and_wait();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_2026_listen_over_stdio_is_acknowledged_and_ends_with_the_input() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    gw.send(
        json!({"jsonrpc":"2.0","id":"sub","method":"subscriptions/listen","params":{
        "notifications": {"toolsListChanged": true}, "_meta": modern_meta(json!({}))}}),
    );
    let ack = gw.recv();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub",
        "{ack}"
    );
    // The fake's `mutate` changes its tool list and says so.
    gw.send(json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"mutate","arguments":{},"_meta": modern_meta(json!({}))}}));
    let msgs = gw.until_response(&json!(7));
    let changed = msgs
        .iter()
        .any(|m| m["method"] == "notifications/tools/list_changed");
    let changed = changed || gw.recv()["method"] == "notifications/tools/list_changed";
    assert!(changed, "{msgs:?}");
    // The listen subscription does not keep the gateway alive after its input ends.
    let status = gw.close_and_wait();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_server_asking_a_2026_client_without_roots_for_roots_carries_on() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    gw.send(json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"roots","arguments":{},"_meta": modern_meta(json!({}))}}));
    let reply = gw.until_response(&json!(1)).pop().unwrap();
    assert!(text(&reply).starts_with("no roots ("), "{reply}");
    assert_eq!(reply["result"]["resultType"], "complete", "{reply}");
}

#[test]
fn a_2026_listen_over_stdio_ends_when_cancelled() {
    let fake = fake_bin().display().to_string();
    let mut gw = StdioGateway::start(&["wrap", "--", &fake]);
    gw.send(
        json!({"jsonrpc":"2.0","id":"sub","method":"subscriptions/listen","params":{
        "notifications": {"toolsListChanged": true}, "_meta": modern_meta(json!({}))}}),
    );
    let ack = gw.recv();
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    gw.send(
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"sub"}}),
    );
    std::thread::sleep(Duration::from_millis(200));
    gw.send(json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"mutate","arguments":{},"_meta": modern_meta(json!({}))}}));
    let msgs = gw.until_response(&json!(7));
    assert_eq!(msgs.len(), 1, "a cancelled listen still carried: {msgs:?}");
    let late = gw.lines.recv_timeout(Duration::from_millis(500));
    assert!(late.is_err(), "a cancelled listen still carried: {late:?}");
}
