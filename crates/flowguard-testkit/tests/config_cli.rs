//! The command line and the configuration as a user meets them: `config check` and its error
//! messages (path of the bad field, did-you-mean, undefined variables), `config schema`,
//! `--config-stdin` in the mcpServers shape, environment passthrough and defaults, `--env`
//! files, `working_directory`, and a missing config file.

use flowguard_testkit::client::tool_text;
use flowguard_testkit::config::{fake_path, fake_server, quote};
use flowguard_testkit::{CliOutput, GatewayOptions, McpClient};
use serde_json::{json, Value};
use std::path::Path;

/// `flowguard config check <file>` on `text` written to `gateway.toml`.
fn check(text: &str, opts: GatewayOptions) -> CliOutput {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    opts.run(&["config", "check", path.to_str().unwrap()], None)
}

fn assert_config_error(out: &CliOutput, needles: &[&str]) {
    assert_eq!(out.code(), Some(2), "exit code; stderr:\n{}", out.stderr);
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "stderr should mention {needle:?}:\n{}",
            out.stderr
        );
    }
}

/// The text of the fake's `env` tool for `name`, on a server called `f` reached at `/mcp/f`.
async fn env_of(client: &McpClient, name: &str) -> String {
    tool_text(&client.call_tool("env", json!({"name": name})).await).to_string()
}

#[test]
fn config_check_accepts_a_good_file_and_lists_its_servers() {
    let text = format!(
        "{}\n{}",
        fake_server("alpha", &[], ""),
        fake_server("beta", &[], "")
    );
    let out = check(&text, GatewayOptions::new());
    assert_eq!(out.code(), Some(0), "stderr:\n{}", out.stderr);
    assert!(out.stdout.contains("2 server(s)"), "{}", out.stdout);
    assert!(out.stdout.contains("alpha (stdio:"), "{}", out.stdout);
    assert!(out.stdout.contains("beta (stdio:"), "{}", out.stdout);
}

#[test]
fn config_check_names_an_unknown_field_by_path_and_suggests_the_right_one() {
    let out = check(
        &format!("[servers.x]\ncomand = {}\n", fake_path()),
        GatewayOptions::new(),
    );
    assert_config_error(&out, &["servers.x.comand", "`command`"]);
}

#[test]
fn config_check_names_a_field_of_the_wrong_type_by_path() {
    let out = check(
        &format!("[servers.x]\ncommand = {}\nargs = \"x\"\n", fake_path()),
        GatewayOptions::new(),
    );
    assert_config_error(&out, &["servers.x.args"]);
}

#[test]
fn config_check_names_an_undefined_variable_and_where_it_is_used() {
    let out = check(
        &format!(
            "[servers.x]\ncommand = {}\nenv = {{ TOKEN = \"${{NOPE_VAR}}\" }}\n",
            fake_path()
        ),
        GatewayOptions::new().env_remove("NOPE_VAR"),
    );
    assert_config_error(&out, &["NOPE_VAR", "servers.x.env.TOKEN"]);
}

#[tokio::test]
async fn config_stdin_passes_host_variables_through_and_sets_the_others() {
    let json = json!({"mcpServers": {"f": {
        "type": "local",
        "command": fake_path().trim_matches('"'),
        "env": {"FG_PASS": "", "FG_SET": "v"},
    }}});
    let gw = GatewayOptions::new()
        .env("FG_PASS", "from the host")
        .env("FG_SET", "not this one")
        .start_stdin_json(&json.to_string());
    let client = McpClient::connect(&gw.url("/mcp/f"), json!({})).await;
    assert_eq!(env_of(&client, "FG_PASS").await, "from the host");
    assert_eq!(env_of(&client, "FG_SET").await, "v");
}

#[tokio::test]
async fn working_directory_is_where_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = fake_server(
        "f",
        &[],
        &format!(
            "working_directory = {}",
            quote(dir.path().to_str().unwrap())
        ),
    );
    let gw = GatewayOptions::new().start(&config, "toml");
    let client = McpClient::connect(&gw.url("/mcp/f"), json!({})).await;
    let cwd = tool_text(&client.call_tool("cwd", json!({})).await).to_string();
    assert_eq!(
        Path::new(&cwd).canonicalize().unwrap(),
        dir.path().canonicalize().unwrap()
    );
}

#[tokio::test]
async fn variable_default_is_used_when_the_variable_is_unset() {
    let config = fake_server(
        "f",
        &[],
        "env = { FG_D = \"${FG_TEST_SURELY_UNSET:-fallback}\" }",
    );
    let gw = GatewayOptions::new()
        .env_remove("FG_TEST_SURELY_UNSET")
        .start(&config, "toml");
    let client = McpClient::connect(&gw.url("/mcp/f"), json!({})).await;
    assert_eq!(env_of(&client, "FG_D").await, "fallback");
}

#[tokio::test]
async fn env_file_supplies_variables_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("test.env");
    std::fs::write(&env_file, "# a comment\nFG_FROM_FILE=from the file\n").unwrap();
    let config = fake_server("f", &[], "env = { FG_X = \"${FG_FROM_FILE}\" }");
    let gw = GatewayOptions::new()
        .env_remove("FG_FROM_FILE")
        .args(&["--env", env_file.to_str().unwrap()])
        .start(&config, "toml");
    let client = McpClient::connect(&gw.url("/mcp/f"), json!({})).await;
    assert_eq!(env_of(&client, "FG_X").await, "from the file");
}

/// Whether some object in `v` has `properties.command.description`.
fn describes_command(v: &Value) -> bool {
    match v {
        Value::Object(map) => {
            let here = map
                .get("properties")
                .and_then(|p| p.get("command"))
                .and_then(|c| c.get("description"))
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty());
            here || map.values().any(describes_command)
        }
        Value::Array(items) => items.iter().any(describes_command),
        _ => false,
    }
}

#[test]
fn config_schema_prints_json_schema_with_field_descriptions() {
    let out = GatewayOptions::new().run(&["config", "schema"], None);
    assert_eq!(out.code(), Some(0), "stderr:\n{}", out.stderr);
    let schema: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    assert!(
        describes_command(&schema),
        "no description of `command` in the schema"
    );
}

#[test]
fn missing_config_file_fails_with_a_hint() {
    let out = GatewayOptions::new().run(
        &[
            "-c",
            "/nonexistent/flowguard-test.toml",
            "-l",
            "127.0.0.1:0",
        ],
        None,
    );
    assert!(!out.status.success(), "it started; stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("/nonexistent/flowguard-test.toml"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
}

/// A folder beside the gateway's config folder (both in the temp dir) holding a link to the
/// fake server, and the command that names it relative to the config file: `../<dir>/fake`.
fn fake_beside_config() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(flowguard_testkit::bins::fake_bin(), dir.path().join("fake"))
        .unwrap();
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    (dir, format!("../{name}/fake"))
}

#[tokio::test]
async fn a_relative_command_is_resolved_against_the_config_files_folder() {
    let (_dir, command) = fake_beside_config();
    let config = format!("[servers.f]\ncommand = {}\n", quote(&command));
    // The gateway runs in this crate's folder; the command is relative to the config's.
    let gw = GatewayOptions::new().start(&config, "toml");
    let client = McpClient::connect(&gw.url("/mcp/f"), json!({})).await;
    let reply = client.call_tool("echo", json!({"message": "found"})).await;
    assert_eq!(tool_text(&reply), "found", "{}", gw.stderr_text());
}

#[test]
fn config_check_reports_commands_that_cannot_be_started() {
    let out = check(
        "[servers.gone]\ncommand = \"bin/no-such-server\"\n\n\
         [servers.unknown]\ncommand = \"no-such-program-on-path\"\n",
        GatewayOptions::new(),
    );
    assert_config_error(
        &out,
        &[
            "servers.gone.command:",
            "bin/no-such-server is not an executable file",
            "resolved against the config file's folder",
            "servers.unknown.command: `no-such-program-on-path` is not on PATH",
        ],
    );
    assert!(!out.stdout.contains(": ok"), "{}", out.stdout);
}
