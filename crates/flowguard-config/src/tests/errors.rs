//! What people see when a configuration is wrong: the path, the reason, and what to do.

use super::{load, load_err};
use crate::Format;

fn toml_err(text: &str) -> String {
    load_err(text, Format::Toml)
}

fn json_err(text: &str) -> String {
    load_err(text, Format::Json)
}

fn has(message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "expected {needle:?} in:\n{message}"
    );
}

#[test]
fn undefined_variable_names_variable_and_path() {
    let err = toml_err(
        "[servers.github]\ncommand = \"x\"\nenv = { GITHUB_TOKEN = \"${GITHUB_TOKEN}\" }\n",
    );
    has(
        &err,
        "undefined environment variable GITHUB_TOKEN, required by servers.github.env.GITHUB_TOKEN",
    );
    has(
        &err,
        "hint: export GITHUB_TOKEN=... or load a .env file with --env FILE",
    );
    let err = json_err(r#"{"mcpServers": {"gh": {"command": "x", "args": ["${NOPE"]}}}"#);
    has(&err, "mcpServers.gh.args[0]: unterminated `${`");
}

#[test]
fn unknown_fields_name_the_path_and_suggest() {
    let err = toml_err("[servers.echo]\ncomand = \"node\"\n");
    has(
        &err,
        "servers.echo.comand: unknown field; did you mean `command`?",
    );
    has(&err, "hint: allowed here: type, command, args");
    let err = toml_err("[gateway]\nrequest_timout = 5\n[servers.a]\ncommand = \"x\"\n");
    has(
        &err,
        "gateway.request_timout: unknown field; did you mean `request_timeout`?",
    );
    let err = json_err(r#"{"mcpServers": {"a": {"command": "x", "entrypoint_args": []}}}"#);
    has(
        &err,
        "mcpServers.a.entrypoint_args: unknown field; did you mean `entrypointArgs`?",
    );
    let err = json_err(r#"{"mcpServers": {"a": {"command": "x"}}, "extra": 1}"#);
    has(&err, "extra: unknown field");
    let err = toml_err("[server.a]\ncommand = \"x\"\n");
    has(&err, "server: unknown field; did you mean `servers`?");
    let err = toml_err("[gateway]\ncontainer_runtime = \"dockr\"\n[servers.a]\ncommand = \"x\"\n");
    has(&err, "gateway.container_runtime: unknown variant `dockr`");
    has(&err, "did you mean `docker`?");
}

#[test]
fn wrong_types_name_the_path() {
    let err = toml_err("[servers.echo]\ncommand = \"node\"\nargs = \"x\"\n");
    has(
        &err,
        "servers.echo.args: invalid type: string \"x\", expected a sequence",
    );
    let err = json_err(r#"{"mcpServers": {"a": {"command": "x", "env": {"N": 1}}}}"#);
    has(
        &err,
        "mcpServers.a.env.N: invalid type: integer `1`, expected a string",
    );
    let err = toml_err("[gateway]\nrequest_timeout = \"5x\"\n[servers.a]\ncommand = \"x\"\n");
    has(
        &err,
        "gateway.request_timeout: invalid duration unit in \"5x\"",
    );
    let err = toml_err("[gateway]\nstartup_timeout = 0\n[servers.a]\ncommand = \"x\"\n");
    has(&err, "gateway.startup_timeout: duration must be positive");
    let err = load_err("- a\n- b\n", Format::Yaml);
    has(
        &err,
        "expected a table of settings at the top level, found a list",
    );
}

#[test]
fn conflicting_and_misplaced_keys() {
    let err = toml_err("[servers.a]\ncommand = \"x\"\nurl = \"http://h/\"\n");
    has(&err, "servers.a: `command` and `url` cannot both be set");
    has(&err, "hint: a server is a local process (`command`)");
    let err = toml_err("[servers.a]\ncommand = \"x\"\ncontainer = \"img\"\n");
    has(&err, "`command` and `container` cannot both be set");
    let err = toml_err("[servers.a]\nargs = [\"x\"]\n");
    has(&err, "servers.a: no `command`, `container` or `url` is set");
    let err = toml_err("[servers.a]\ncommand = \"x\"\nheaders = { A = \"b\" }\n");
    has(
        &err,
        "servers.a.headers: `headers` applies only to url servers",
    );
    let err = toml_err("[servers.a]\ncommand = \"x\"\nmounts = [\"/a:/b\"]\n");
    has(
        &err,
        "servers.a.mounts: `mounts` applies only to container servers",
    );
    let err = toml_err("[servers.a]\ncontainer = \"img\"\nargs = [\"x\"]\n");
    has(
        &err,
        "hint: use `entrypoint_args` for arguments after the image",
    );
    let err = json_err(r#"{"mcpServers": {"a": {"type": "http", "command": "x"}}}"#);
    has(
        &err,
        "mcpServers.a.type: type \"http\" needs `url`, but the server sets `command`",
    );
    let err = json_err(r#"{"mcpServers": {"a": {"type": "local", "url": "http://h/"}}}"#);
    has(
        &err,
        "mcpServers.a.type: a stdio/local server needs `command` or `container`",
    );
    let err = json_err(r#"{"mcpServers": {"a": {"url": "http://h/", "cwd": "/tmp"}}}"#);
    has(
        &err,
        "mcpServers.a.cwd: `cwd` applies only to command and container servers",
    );
    let err = json_err(
        r#"{"mcpServers": {"a": {"command": "x"}}, "gateway": {"port": 1, "listen": "127.0.0.1:2"}}"#,
    );
    has(&err, "gateway: `listen` conflicts with `port`/`domain`");
}

#[test]
fn bad_values() {
    let err = toml_err("[servers.a]\ncontainer = \"img\"\nmounts = [\"/ok:/ok\", \"rel:/x\"]\n");
    has(
        &err,
        "servers.a.mounts[1]: mount \"rel:/x\": the host path `rel` must be absolute",
    );
    let err = toml_err("[servers.a]\ncontainer = \"img\"\nmounts = [\"/a:/b:rx\"]\n");
    has(&err, "mode `rx` is not `ro` or `rw`");
    let err = toml_err("[servers.a]\nurl = \"ftp://h/\"\n");
    has(
        &err,
        "servers.a.url: \"ftp://h/\" is not an http:// or https:// URL",
    );
    let err = toml_err("[servers.a]\ncommand = \"x\"\nworking_directory = \"/no/such/dir/here\"\n");
    has(
        &err,
        "servers.a.working_directory: directory \"/no/such/dir/here\" cannot be used",
    );
    let err = toml_err("[gateway]\nlisten = \"example.com:80\"\n[servers.a]\ncommand = \"x\"\n");
    has(
        &err,
        "gateway.listen: invalid listen address \"example.com:80\"",
    );
    let err = json_err(
        r#"{"mcpServers": {"a": {"command": "x"}}, "gateway": {"port": 80, "domain": "example.com"}}"#,
    );
    has(
        &err,
        "gateway.domain: domain \"example.com\" is not an IP address",
    );
    has(&err, "hint: host names are not resolved; use `listen`");
    let err = toml_err("[servers.a]\ncommand = \"x\"\ntools = [\"*\", \"b\"]\n");
    has(&err, "servers.a.tools[0]: `*` must be alone");
}

#[test]
fn server_ids_are_checked() {
    let err = toml_err("[servers.\"my.server\"]\ncommand = \"x\"\n");
    has(
        &err,
        "servers.my.server: server id `my.server` contains `.`; only letters, digits",
    );
    let err = toml_err("[servers.health]\ncommand = \"x\"\n");
    has(&err, "server id `health` is reserved");
    let err = toml_err("[servers.a___b]\ncommand = \"x\"\n");
    has(&err, "contains the tool name separator `___`");
    let err = json_err(r#"{"mcpServers": {"a": {"command": "x"}, "a": {"command": "y"}}}"#);
    has(&err, "duplicate key `a`");
}

#[test]
fn specification_agent_ids_become_the_allowed_agent_ids() {
    for key in ["apiKey", "agentId"] {
        let text = format!(
            r#"{{"mcpServers": {{"a": {{"command": "x"}}}}, "gateway": {{"{key}": "demo-agent"}}}}"#
        );
        let cfg = load(&text, Format::Json).unwrap();
        assert_eq!(
            cfg.guard.0.auth.agent_id,
            Some(Some(vec!["demo-agent".to_string()])),
            "{key}"
        );
    }
    let text = r#"{"mcpServers": {"a": {"command": "x"}}, "gateway": {"agentIds": ["a", "b"]}}"#;
    let cfg = load(text, Format::Json).unwrap();
    assert_eq!(
        cfg.guard.0.auth.agent_id,
        Some(Some(vec!["a".into(), "b".into()]))
    );
    let err = json_err(r#"{"mcpServers": {"a": {"command": "x"}}, "gateway": {"agentId": ""}}"#);
    has(&err, "gateway.agentId: an agent id must not be empty");
}

#[test]
fn sse_servers_need_a_url_and_retries_belong_to_url_servers() {
    let err = json_err(r#"{"mcpServers": {"legacy": {"type": "sse", "command": "x"}}}"#);
    has(
        &err,
        "mcpServers.legacy.type: type \"sse\" needs `url`, but the server sets `command`",
    );
    has(
        &json_err(r#"{"mcpServers": {"legacy": {"type": "sse"}}}"#),
        "type \"sse\" needs `url`",
    );
    let err = toml_err("[servers.a]\ncommand = \"x\"\nretries = 3\n");
    has(
        &err,
        "servers.a.retries: `retries` applies only to url servers",
    );
    let err = toml_err("[servers.a]\nurl = \"http://h/mcp\"\nca_file = \"/etc/hostname\"\n");
    has(
        &err,
        "servers.a.ca_file: a CA file applies only to https:// URLs",
    );
    let err = toml_err("[servers.a]\nurl = \"https://h/mcp\"\nca_file = \"/no/such.pem\"\n");
    has(
        &err,
        "servers.a.ca_file: CA file \"/no/such.pem\" cannot be used",
    );
    let err = toml_err("[servers.a]\nurl = \"http://h/mcp\"\nretries = 99\n");
    has(&err, "servers.a.retries: 99 is too many; use 0 to 10");
}

#[test]
fn configurations_without_servers_are_errors() {
    let err = toml_err("[gateway]\nlisten = \"127.0.0.1:1\"\n");
    has(&err, "error: no servers configured in test.cfg");
    has(&err, "hint: add [servers.<id>]");
    has(&toml_err("[servers]\n"), "no servers configured");
    has(&json_err(r#"{"mcpServers": {}}"#), "no servers configured");
    has(&load_err("", Format::Yaml), "no servers configured");
    has(
        &load_err("servers:\n", Format::Yaml),
        "no servers configured",
    );
    has(
        &json_err(r#"{"servers": {}, "mcpServers": {}}"#),
        "both `servers` and `mcpServers` are set",
    );
}
