//! Instructions per `Envelope::parse`, measured with callgrind (docs/benchmarks.md):
//!
//! ```text
//! cargo build --release -p flowguard-protocol --example parse_cost
//! valgrind --tool=callgrind target/release/examples/parse_cost 0       # start-up only
//! valgrind --tool=callgrind target/release/examples/parse_cost 100000  # 100,000 parses
//! ```
//!
//! (instructions of the second run - the first) / 100,000 = instructions per parse. A second
//! argument picks the message: `call` (default: a 300-byte `tools/call`), `small` (a 200-byte
//! one), `text` (300 bytes with `\n` and `\"` escapes), `escaped` (the same with a commit
//! hash, whose `9e1f` makes the door look at exponents), `list` (a 200 kB `tools/list` reply:
//! more than 127 brackets, the door's full scan). A third argument `lenient` measures
//! `Envelope::parse_lenient` (no door) instead, `door` the door's check alone.

use flowguard_protocol::Envelope;
use std::hint::black_box;

const CALL: &str = r#"{"jsonrpc":"2.0","id":4711,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"label:bug state:open sort:updated","repository":"acme/flowguard","limit":25,"include_comments":false},"_meta":{"progressToken":"a1b2c3d4-e5f6-7890-abcd-ef0123456789"}}}"#;

const SMALL: &str = r#"{"jsonrpc":"2.0","id":4711,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"label:bug state:open","repository":"acme/flowguard","limit":25}}}"#;

const ESCAPED: &str = r#"{"jsonrpc":"2.0","id":4712,"method":"tools/call","params":{"name":"write_file","arguments":{"path":"src/main.rs","content":"fn main() {\n    println!(\"hi\");\n}\n","commit":"9e1f0c2d7b3a"},"_meta":{"progressToken":"a1b2c3d4-e5f6-7890-abcd-ef0123456789"}}}"#;

fn padded(msg: &str, len: usize) -> Vec<u8> {
    let pad = len.saturating_sub(msg.len());
    msg.replacen("\"2.0\"", &format!("\"2.0\"{}", " ".repeat(pad)), 1)
        .into_bytes()
}

fn tools_list() -> Vec<u8> {
    let tool = r#"{"name":"tool_N","description":"Searches the issues of a repository and returns the matching ones, newest first, with their labels and assignees.","inputSchema":{"type":"object","properties":{"query":{"type":"string","description":"GitHub search syntax"},"limit":{"type":"integer","minimum":1,"maximum":100},"labels":{"type":"array","items":{"type":"string"}}},"required":["query"]}}"#;
    let mut out = String::from(r#"{"jsonrpc":"2.0","id":12,"result":{"tools":["#);
    let mut i = 0;
    while out.len() < 200_000 {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&tool.replace("tool_N", &format!("tool_{i}")));
        i += 1;
    }
    out.push_str("]}}");
    out.into_bytes()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let msg = match args.next().as_deref() {
        Some("list") => tools_list(),
        Some("small") => padded(SMALL, 200),
        Some("escaped") => padded(ESCAPED, 300),
        Some("text") => padded(&ESCAPED.replace("9e1f", "9a1f"), 300),
        _ => padded(CALL, 300),
    };
    eprintln!("message: {} bytes, {n} parses", msg.len());
    // Generic, so that each parse is a direct call, as in the gateway (through a function
    // pointer it would not be inlined, which costs about 150 instructions more).
    match args.next().as_deref() {
        Some("lenient") => run(&msg, n, Envelope::parse_lenient),
        Some("door") => {
            for _ in 0..n {
                black_box(flowguard_protocol::door::check(black_box(&msg)).is_ok());
            }
        }
        _ => run(&msg, n, Envelope::parse),
    }
}

fn run<'a, F>(msg: &'a [u8], n: usize, parse: F)
where
    F: Fn(&'a [u8]) -> Result<Envelope<'a>, flowguard_protocol::envelope::EnvelopeError>,
{
    for _ in 0..n {
        let env = parse(black_box(msg)).expect("the message is valid");
        black_box(env.kind().ok());
    }
}
