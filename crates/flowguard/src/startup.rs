//! What a person sees at start-up: each server starting, ready or failed (with its last stderr
//! lines), the URLs to use, and a client config to paste. Written to stderr; the client config
//! also to stdout with `--print-client-config`.

use flowguard_config::{Mode, Transport};
use flowguard_gateway::Gateway;
use flowguard_upstream::StateKind;
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

pub fn describe_transport(t: &Transport) -> String {
    match t {
        Transport::Stdio(p) => format!("stdio: {} {}", p.command, p.args.join(" "))
            .trim_end()
            .to_string(),
        Transport::Container(c) => format!("container: {}", c.image),
        Transport::Http(h) => format!("http: {}", h.url),
        Transport::Sse(h) => format!("sse: {}", h.url),
    }
}

pub fn announce_servers(gw: &Gateway, source: &str) {
    eprintln!(
        "FlowGuard {} — {} server(s) from {source}",
        env!("CARGO_PKG_VERSION"),
        gw.servers().len()
    );
    for s in gw.servers() {
        eprintln!(
            "  starting {:<16} {}",
            s.id(),
            describe_transport(&s.config().transport)
        );
    }
}

/// Waits for every server to be ready or failed, printing each outcome as it happens.
pub async fn report_progress(gw: &Gateway, timeout: Duration) {
    let waits = gw.servers().iter().map(|s| async move {
        if s.config().isolation.session().is_some() {
            eprintln!("  ◦ {:<16} one instance per client session, started on demand", s.id());
            return;
        }
        let mut rx = s.watch_state();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|st| st.kind != StateKind::Starting)).await;
        let st = s.state();
        match st.kind {
            StateKind::Ready => {
                let init = s.init_result();
                let name = init
                    .as_ref()
                    .and_then(|i| i.pointer("/serverInfo/name").and_then(|n| n.as_str()).map(str::to_string))
                    .unwrap_or_default();
                eprintln!("  ✓ {:<16} ready ({name})", s.id());
            }
            StateKind::Failed => eprintln!(
                "  ✗ {:<16} failed: {}\n    (it will be retried with backoff; /health shows its state)",
                s.id(),
                st.detail.unwrap_or_default()
            ),
            _ => eprintln!("  … {:<16} still starting after {timeout:?}", s.id()),
        }
    });
    futures_util::future::join_all(waits).await;
}

/// The endpoints a client should be given: the unified one, unless the user chose routed
/// (`--routed`, `mode = "routed"`), then one per server. Never both: a client given both sees
/// every tool twice. (name, URL) pairs.
fn chosen_endpoints(gw: &Gateway, base: &str) -> Vec<(String, String)> {
    if gw.mode == Mode::Routed {
        gw.servers()
            .iter()
            .map(|s| (s.id().to_string(), format!("{base}/mcp/{}", s.id())))
            .collect()
    } else {
        vec![("flowguard".to_string(), format!("{base}/mcp"))]
    }
}

/// The client config to paste (`mcpServers`, as Claude Code's `.mcp.json`, Cursor and Claude
/// Desktop read it): the chosen endpoints only.
pub fn client_config(gw: &Gateway, addr: SocketAddr) -> serde_json::Value {
    let base = format!("http://{addr}");
    let servers: serde_json::Map<String, serde_json::Value> = chosen_endpoints(gw, &base)
        .into_iter()
        .map(|(name, url)| (name, json!({ "type": "http", "url": url })))
        .collect();
    json!({ "mcpServers": servers })
}

/// Ready-to-run lines that add `name` at `url` to the clients people use.
fn add_lines(name: &str, url: &str) -> Vec<String> {
    let vscode = json!({ "name": name, "type": "http", "url": url });
    vec![
        format!("Claude Code  claude mcp add --transport http {name} {url}"),
        format!("Codex        codex mcp add {name} --url {url}"),
        format!("Gemini CLI   gemini mcp add --transport http {name} {url}"),
        format!("VS Code      code --add-mcp '{vscode}'"),
        format!("Cursor       ~/.cursor/mcp.json: {{\"mcpServers\": {{\"{name}\": {{\"url\": \"{url}\"}}}}}}"),
    ]
}

pub fn announce_endpoints(gw: &Gateway, addr: SocketAddr, print_config: bool) {
    let base = format!("http://{addr}");
    eprintln!("Listening on {base}");
    if gw.mode != Mode::Routed {
        eprintln!(
            "  unified  {base}/mcp   (tools named <server>{}<tool>)",
            gw.settings.separator
        );
    }
    if gw.mode != Mode::Unified {
        for s in gw.servers() {
            eprintln!("  routed   {base}/mcp/{}", s.id());
        }
    }
    for v in gw.virtual_servers() {
        eprintln!(
            "  virtual  {base}/mcp/{}   (tools of {})",
            v.name,
            v.servers.join(", ")
        );
    }
    eprintln!("  health   {base}/health     close: POST {base}/close");
    let chosen = chosen_endpoints(gw, &base);
    let what = if gw.mode == Mode::Routed {
        "routed, one entry per server"
    } else {
        "unified; --routed for one entry per server"
    };
    eprintln!("Add FlowGuard to a client ({what}):");
    for (name, url) in &chosen {
        for line in add_lines(name, url) {
            eprintln!("  {line}");
        }
    }
    // The Inspector on one server's routed endpoint (the first entry when routed is chosen).
    if let Some(s) = gw.servers().first() {
        let url = format!("{base}/mcp/{}", s.id());
        eprintln!("  Inspector    npx @modelcontextprotocol/inspector --cli {url} --transport http --method tools/list");
    }
    if !gw.virtual_servers().is_empty() {
        eprintln!("  A virtual server replaces the entry above for a client that should see only its tools:");
        for v in gw.virtual_servers() {
            eprintln!(
                "    claude mcp add --transport http {0} {base}/mcp/{0}",
                v.name
            );
        }
    }
    let cfg = client_config(gw, addr);
    let pretty = serde_json::to_string_pretty(&cfg).expect("a Value serializes");
    eprintln!("Or paste (Claude Code .mcp.json, Claude Desktop, Cursor):\n{pretty}");
    if print_config {
        println!(
            "{}",
            serde_json::to_string(&cfg).expect("a Value serializes")
        );
    }
}
