//! Both document shapes in all three syntaxes load to the same runtime model.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{load_ok, test_env};
use crate::{load_file, ContainerRuntime, EnvValue, Format, Mode, Mount, PrefixMode, Transport};

const SERVERS_TOML: &str = r#"
[gateway]
listen = "localhost:3000"
mode = "both"
request_timeout = "90s"
startup_timeout = 10
shutdown_grace = "500ms"
tool_prefix = "conditional"
separator = "__"
page_size = 50
allowed_hosts = ["gw.internal:3000"]
allowed_origins = ["https://app.example"]
container_runtime = "podman"
max_line_bytes = 1024
stderr_lines = 20
session_idle_timeout = "5m"

[servers.echo]
command = "node"
args = ["server.js", "--token=${TOKEN}"]
env = { TOKEN = "x", HOME_DIR = "" }
working_directory = "/tmp"
tools = ["a", "b"]
request_timeout = "10s"

[servers.box]
type = "local"
container = "image:tag"
entrypoint = "/bin/sh"
entrypoint_args = ["-c", "x"]
mounts = ["/abs/host:/ctr/path:rw", "/data:/data"]
network = "none"

[servers.remote]
url = "http://127.0.0.1:9000/mcp"
headers = { Authorization = "Bearer ${TOKEN}" }
tools = ["*"]
"#;

const SERVERS_YAML: &str = r#"
gateway:
  listen: localhost:3000
  mode: both
  request_timeout: 90s
  startup_timeout: 10
  shutdown_grace: 500ms
  tool_prefix: conditional
  separator: __
  page_size: 50
  allowed_hosts: [gw.internal:3000]
  allowed_origins: ["https://app.example"]
  container_runtime: podman
  max_line_bytes: 1024
  stderr_lines: 20
  session_idle_timeout: 5m
servers:
  remote:
    url: http://127.0.0.1:9000/mcp
    headers: {Authorization: "Bearer ${TOKEN}"}
    tools: ["*"]
  echo:
    command: node
    args: [server.js, "--token=${TOKEN}"]
    env: {TOKEN: x, HOME_DIR: ""}
    working_directory: /tmp
    tools: [a, b]
    request_timeout: 10s
  box:
    type: local
    container: image:tag
    entrypoint: /bin/sh
    entrypoint_args: ["-c", x]
    mounts: ["/abs/host:/ctr/path:rw", "/data:/data"]
    network: none
"#;

const MCP_JSON: &str = r#"{
  "mcpServers": {
    "echo": {"type": "stdio", "command": "node", "args": ["server.js", "--token=${TOKEN}"],
             "env": {"TOKEN": "x", "HOME_DIR": ""}, "cwd": "/tmp", "tools": ["a", "b"],
             "requestTimeout": "10s"},
    "box": {"type": "local", "container": "image:tag", "entrypoint": "/bin/sh",
            "entrypointArgs": ["-c", "x"], "mounts": ["/abs/host:/ctr/path:rw", "/data:/data"],
            "network": "none"},
    "remote": {"type": "http", "url": "http://127.0.0.1:9000/mcp",
               "headers": {"Authorization": "Bearer ${TOKEN}"}, "tools": ["*"]}
  },
  "gateway": {
    "port": 3000, "mode": "both", "toolTimeout": "90s", "startupTimeout": 10,
    "shutdownGrace": "500ms", "toolPrefix": "conditional", "separator": "__", "pageSize": 50,
    "allowedHosts": ["gw.internal:3000"], "allowedOrigins": ["https://app.example"],
    "containerRuntime": "podman", "maxLineBytes": 1024, "stderrLines": 20,
    "sessionTimeout": "5m"
  }
}"#;

#[test]
fn servers_shape_toml_loads_every_key() {
    let config = load_ok(SERVERS_TOML, Format::Toml);
    let gw = &config.gateway;
    assert_eq!(
        gw.listen,
        Some("127.0.0.1:3000".parse::<SocketAddr>().unwrap())
    );
    assert_eq!(gw.mode, Some(Mode::Both));
    assert_eq!(gw.request_timeout, Duration::from_secs(90));
    assert_eq!(gw.startup_timeout, Duration::from_secs(10));
    assert_eq!(gw.shutdown_grace, Duration::from_millis(500));
    assert_eq!(gw.tool_prefix, PrefixMode::Conditional);
    assert_eq!((gw.separator.as_str(), gw.page_size), ("__", 50));
    assert_eq!(gw.allowed_hosts, ["gw.internal:3000"]);
    assert_eq!(gw.allowed_origins, ["https://app.example"]);
    assert_eq!(gw.container_runtime, Some(ContainerRuntime::Podman));
    assert_eq!((gw.max_line_bytes, gw.stderr_lines), (1024, 20));
    assert_eq!(gw.session_idle_timeout, Duration::from_secs(300));
    assert_eq!(config.source, "test.cfg");

    let ids: Vec<&str> = config.servers.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["box", "echo", "remote"], "servers are sorted by id");

    let Transport::Container(boxed) = &config.servers[0].transport else {
        panic!()
    };
    assert_eq!(boxed.image, "image:tag");
    assert_eq!(boxed.runtime, Some(ContainerRuntime::Podman));
    assert_eq!(boxed.entrypoint.as_deref(), Some("/bin/sh"));
    assert_eq!(boxed.entrypoint_args, ["-c", "x"]);
    assert_eq!(boxed.network.as_deref(), Some("none"));
    let data = Mount {
        host: "/data".into(),
        container: "/data".into(),
        read_only: true,
    };
    assert_eq!(boxed.mounts[1], data);
    assert!(!boxed.mounts[0].read_only);

    let echo = &config.servers[1];
    assert_eq!(echo.tools, Some(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(echo.request_timeout, Some(Duration::from_secs(10)));
    let Transport::Stdio(process) = &echo.transport else {
        panic!()
    };
    assert_eq!(process.command, "node");
    assert_eq!(process.args, ["server.js", "--token=s3cret"]);
    assert_eq!(
        process.env,
        [
            ("HOME_DIR".to_owned(), EnvValue::Passthrough),
            ("TOKEN".to_owned(), EnvValue::Set("x".into()))
        ]
    );
    assert_eq!(process.working_directory, Some(PathBuf::from("/tmp")));

    let remote = &config.servers[2];
    assert_eq!(remote.tools, None, "[\"*\"] means all tools");
    let Transport::Http(http) = &remote.transport else {
        panic!()
    };
    assert_eq!(http.url, "http://127.0.0.1:9000/mcp");
    assert_eq!(http.headers[0].0, "Authorization");
    assert_eq!(http.headers[0].1.expose(), "Bearer s3cret");
    assert!(
        !format!("{config:?}").contains("Bearer s3cret"),
        "header values never print"
    );
}

#[test]
fn the_same_configuration_in_every_shape_and_syntax_is_equal() {
    let toml = load_ok(SERVERS_TOML, Format::Toml);
    let yaml = load_ok(SERVERS_YAML, Format::Yaml);
    let mcp_json = load_ok(MCP_JSON, Format::Json);
    assert_eq!(toml, yaml);
    assert_eq!(toml, mcp_json);

    let servers_json =
        serde_json::to_string(&toml::from_str::<serde_json::Value>(SERVERS_TOML).unwrap()).unwrap();
    assert_eq!(load_ok(&servers_json, Format::Json), toml);
    let mcp_value: serde_json::Value = serde_json::from_str(MCP_JSON).unwrap();
    let mcp_yaml = serde_yaml_ng::to_string(&mcp_value).unwrap();
    assert_eq!(load_ok(&mcp_yaml, Format::Yaml), toml);
    let mcp_toml = toml::to_string(&mcp_value).unwrap();
    assert_eq!(load_ok(&mcp_toml, Format::Toml), toml);
}

#[test]
fn minimal_configurations_get_defaults_and_inferred_types() {
    let config = load_ok(
        "[servers.a]\ncommand = \"x\"\n[servers.b]\nurl = \"https://h/mcp\"\n",
        Format::Toml,
    );
    assert_eq!(config.gateway, crate::GatewaySettings::default());
    assert!(matches!(config.servers[0].transport, Transport::Stdio(_)));
    assert!(matches!(config.servers[1].transport, Transport::Http(_)));

    let seed = r#"{"mcpServers": {"github": {"type": "local",
        "container": "ghcr.io/github/github-mcp-server:latest",
        "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": ""}}}}"#;
    let config = load_ok(seed, Format::Json);
    let Transport::Container(spec) = &config.servers[0].transport else {
        panic!()
    };
    assert_eq!(
        spec.env,
        [(
            "GITHUB_PERSONAL_ACCESS_TOKEN".to_owned(),
            EnvValue::Passthrough
        )]
    );
    assert_eq!(spec.runtime, None);
}

#[test]
fn expansion_defaults_escapes_and_empty_results() {
    let text = r#"
[gateway]
listen = "127.0.0.1:${PORT}"
[servers.a]
command = "${CMD:-node}"
args = ["$$HOME", "${UNSET:-}", "${TOKEN}"]
env = { PASS = "", EMPTY = "${UNSET:-}" }
"#;
    let config = load_ok(text, Format::Toml);
    assert_eq!(
        config.gateway.listen,
        Some("127.0.0.1:8123".parse().unwrap())
    );
    let Transport::Stdio(process) = &config.servers[0].transport else {
        panic!()
    };
    assert_eq!(process.command, "node");
    assert_eq!(process.args, ["$HOME", "", "s3cret"]);
    assert_eq!(
        process.env[0],
        ("EMPTY".to_owned(), EnvValue::Set(String::new()))
    );
    assert_eq!(process.env[1], ("PASS".to_owned(), EnvValue::Passthrough));
}

#[test]
fn port_from_the_environment_and_domain_literals() {
    let json = r#"{"mcpServers": {"a": {"command": "x"}}, "gateway": {"port": "${PORT}", "domain": "0.0.0.0"}}"#;
    let config = load_ok(json, Format::Json);
    assert_eq!(config.gateway.listen, Some("0.0.0.0:8123".parse().unwrap()));
    let json = r#"{"mcpServers": {"a": {"command": "x"}}, "gateway": {"port": 80, "domain": "localhost"}}"#;
    assert_eq!(
        load_ok(json, Format::Json).gateway.listen,
        Some("127.0.0.1:80".parse().unwrap())
    );
}

#[test]
fn load_file_reads_by_extension_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.yaml");
    std::fs::write(&path, "servers:\n  a:\n    command: x\n").unwrap();
    let config = load_file(&path).unwrap();
    assert_eq!(config.source, path.display().to_string());

    std::fs::write(&path, "servers:\n  a:\n    comand: x\n").unwrap();
    let err = load_file(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "error: invalid configuration in {}",
            path.display()
        )),
        "{err}"
    );
    assert!(test_env("TOKEN").is_some());
}

#[test]
fn pings_default_to_remote_servers_only() {
    let text = "[gateway]\nping_interval = \"10s\"\n\
        [servers.local]\ncommand = \"x\"\n\
        [servers.pinged]\ncommand = \"x\"\nping_interval = \"5s\"\n\
        [servers.remote]\nurl = \"http://h/mcp\"\n\
        [servers.quiet]\nurl = \"http://h/mcp\"\nping_interval = \"off\"\nretries = 0\n\
        [servers.legacy]\ntype = \"sse\"\nurl = \"http://h/sse\"\n";
    let config = load_ok(text, Format::Toml);
    let by_id = |id: &str| config.servers.iter().find(|s| s.id == id).unwrap();
    assert_eq!(by_id("local").ping_interval, None);
    assert_eq!(by_id("pinged").ping_interval, Some(Duration::from_secs(5)));
    assert_eq!(by_id("remote").ping_interval, Some(Duration::from_secs(10)));
    assert_eq!((by_id("remote").retries, by_id("quiet").retries), (2, 0));
    assert_eq!(by_id("quiet").ping_interval, None);
    assert!(matches!(by_id("legacy").transport, Transport::Sse(_)));
    assert_eq!(
        crate::GatewaySettings::default().ping_interval,
        Some(Duration::from_secs(30))
    );
}

#[test]
fn a_byte_order_mark_before_the_document_is_ignored() {
    let docs = [
        (
            Format::Json,
            "\u{feff}{\"mcpServers\": {\"a\": {\"command\": \"x\"}}}",
        ),
        (Format::Yaml, "\u{feff}servers:\n  a:\n    command: x\n"),
        (Format::Toml, "\u{feff}[servers.a]\ncommand = \"x\"\n"),
    ];
    for (format, text) in docs {
        let config = load_ok(text, format);
        assert_eq!(config.servers[0].id, "a", "{format:?}");
    }
}
