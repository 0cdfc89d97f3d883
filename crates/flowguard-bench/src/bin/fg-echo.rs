//! fg-echo: the stdio backend of the benchmark suite's gateway comparison (`bench/run.sh`, section 1).
//!
//!   fg-echo [--tools N]
//!
//! It answers exactly as `mcp-echo stdio` from `../shared/bench` does (`initialize`, `ping`,
//! `tools/list`, `tools/call` of `echo`), but on one thread with blocking, buffered I/O: it reads
//! every request already in its input buffer, then writes all their replies in one `write`.
//! `mcp-echo stdio` sends each reply through tokio's blocking threads (a write, then a flush, each a
//! hand-off between threads), so on a VM whose idle CPUs halt its rate is set by where the scheduler
//! puts those threads (4,300–13,700 req/s alone, 29,000 pinned to one CPU), below what a gateway
//! in front of it can carry. A gateway comparison needs a backend that is not the bottleneck; this
//! one runs at well over 100,000 calls a second on the same machine.
#![forbid(unsafe_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, BufWriter, Write};

/// Room for a batch of requests and their replies: one read and one write per batch.
const BUFFER: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tools = match tool_count(&args) {
        Ok(n) => tools(n),
        Err(message) => {
            eprintln!("fg-echo: {message}\nusage: fg-echo [--tools N]");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(&tools) {
        eprintln!("fg-echo: {e}");
        std::process::exit(1);
    }
}

fn tool_count(args: &[String]) -> Result<usize, String> {
    match args {
        [] => Ok(1),
        [flag, n] if flag == "--tools" => n
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("--tools takes a number of tools of at least 1, not {n:?}")),
        other => Err(format!("unexpected arguments {other:?}")),
    }
}

/// Newline-delimited JSON-RPC on stdin and stdout until stdin ends. Replies are flushed whenever no
/// complete request is left in the input buffer, so a client never waits on a reply held back.
fn serve(tools: &Value) -> std::io::Result<()> {
    let mut input = BufReader::with_capacity(BUFFER, std::io::stdin().lock());
    let mut output = BufWriter::with_capacity(BUFFER, std::io::stdout().lock());
    let mut line = Vec::new();
    loop {
        if !input.buffer().contains(&b'\n') {
            output.flush()?;
        }
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return output.flush();
        }
        // Lines that are not JSON are skipped, as `mcp-echo stdio` does.
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if let Some(reply) = answer(&message, tools) {
            serde_json::to_writer(&mut output, &reply)?;
            output.write_all(b"\n")?;
        }
    }
}

/// The reply to one message; None for a notification.
fn answer(message: &Value, tools: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let result = match message.get("method").and_then(Value::as_str).unwrap_or("") {
        "initialize" => json!({
            "protocolVersion": message.pointer("/params/protocolVersion").cloned().unwrap_or(json!("2025-06-18")),
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "fg-echo", "version": env!("CARGO_PKG_VERSION")},
        }),
        "ping" => json!({}),
        "tools/list" => json!({ "tools": tools }),
        "tools/call" => {
            let text = message
                .pointer("/params/arguments/message")
                .and_then(Value::as_str)
                .unwrap_or("");
            json!({"content": [{"type": "text", "text": text}], "isError": false})
        }
        _ => {
            return Some(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "Method not found"}}),
            )
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// `echo`, then synthetic tools up to `n`, as `mcp-echo --tools N` lists them.
fn tools(n: usize) -> Value {
    let echo = json!({"name": "echo", "description": "Echo back the message.", "inputSchema": {
        "type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}});
    let synthetic = (1..n).map(|i| {
        json!({"name": format!("tool_{i}"),
            "description": format!("Synthetic tool number {i} used to make tools/list realistic."),
            "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}, "limit": {"type": "integer"}}}})
    });
    Value::Array(std::iter::once(echo).chain(synthetic).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_echoed_and_a_notification_gets_no_reply() {
        let tools = tools(1);
        let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "hi"}}});
        assert_eq!(
            answer(&call, &tools),
            Some(json!({"jsonrpc": "2.0", "id": 7,
                "result": {"content": [{"type": "text", "text": "hi"}], "isError": false}}))
        );
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(answer(&note, &tools), None);
    }

    #[test]
    fn an_unknown_method_is_method_not_found_and_tools_lists_n() {
        let tools = tools(3);
        let unknown = json!({"jsonrpc": "2.0", "id": "a", "method": "nope"});
        assert_eq!(answer(&unknown, &tools).unwrap()["error"]["code"], -32601);
        let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        let names: Vec<_> = answer(&list, &tools).unwrap()["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["echo", "tool_1", "tool_2"]);
    }

    #[test]
    fn bad_arguments_say_what_was_wrong() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(tool_count(&args(&[])), Ok(1));
        assert_eq!(tool_count(&args(&["--tools", "100"])), Ok(100));
        assert!(tool_count(&args(&["--tools", "0"]))
            .unwrap_err()
            .contains("at least 1"));
        assert!(tool_count(&args(&["stdio"]))
            .unwrap_err()
            .contains("unexpected"));
    }
}
