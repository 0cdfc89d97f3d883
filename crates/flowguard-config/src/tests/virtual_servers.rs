//! Virtual servers in both shapes, and the messages for the ways they go wrong.

use super::{load_err, load_ok};
use crate::{Format, VirtualTool};

const TWO_SERVERS: &str = "[servers.github]\ncommand = \"gh\"\n[servers.fs]\ncommand = \"fs\"\n";

fn toml(virtuals: &str) -> String {
    format!("{TWO_SERVERS}{virtuals}")
}

fn tool(server: &str, tool: &str, name: &str) -> VirtualTool {
    VirtualTool {
        server: server.into(),
        tool: tool.into(),
        name: name.into(),
    }
}

fn has(message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "expected {needle:?} in:\n{message}"
    );
}

#[test]
fn both_shapes_give_the_same_virtual_servers() {
    let from_toml = load_ok(
        &toml(
            "[virtual_servers.work]\ntools = [\"github/search\", \
             { server = \"fs\", tool = \"search\", name = \"fs_search\" }]\n",
        ),
        Format::Toml,
    );
    let from_json = load_ok(
        r#"{"mcpServers": {"github": {"command": "gh"}, "fs": {"command": "fs"}},
            "virtualServers": {"work": {"tools": ["github/search",
                {"server": "fs", "tool": "search", "name": "fs_search"}]}}}"#,
        Format::Json,
    );
    assert_eq!(from_toml.virtual_servers, from_json.virtual_servers);
    let work = &from_toml.virtual_servers[0];
    assert_eq!(work.name, "work");
    assert_eq!(
        work.tools,
        [
            tool("github", "search", "search"),
            tool("fs", "search", "fs_search")
        ]
    );
}

#[test]
fn a_tool_name_may_contain_a_slash_after_the_server() {
    let c = load_ok(
        &toml("[virtual_servers.v]\ntools = [\"fs/dir/list\"]\n"),
        Format::Toml,
    );
    assert_eq!(
        c.virtual_servers[0].tools,
        [tool("fs", "dir/list", "dir/list")]
    );
}

#[test]
fn unknown_server_suggests_a_configured_one() {
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [\"gihub/search\"]\n"),
        Format::Toml,
    );
    has(
        &err,
        "virtual_servers.v.tools[0]: no server `gihub` is configured; did you mean `github`?",
    );
    has(&err, "hint: configured servers: fs, github");
    let err = load_err(
        r#"{"mcpServers": {"fs": {"command": "fs"}},
            "virtualServers": {"v": {"tools": [{"server": "fz", "tool": "x"}]}}}"#,
        Format::Json,
    );
    has(&err, "virtualServers.v.tools[0].server: no server `fz`");
}

#[test]
fn a_virtual_name_must_not_be_a_server_id() {
    let err = load_err(
        &toml("[virtual_servers.github]\ntools = [\"fs/read\"]\n"),
        Format::Toml,
    );
    has(
        &err,
        "virtual_servers.github: `github` is already a server id",
    );
}

#[test]
fn duplicate_exposed_names_are_refused_with_a_rename_hint() {
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [\"github/search\", \"fs/search\"]\n"),
        Format::Toml,
    );
    has(
        &err,
        "virtual_servers.v.tools[1]: the name `search` is taken by virtual_servers.v.tools[0] (github/search)",
    );
    has(&err, "name = \"fs_search\"");
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [\"fs/a\", { server = \"fs\", tool = \"a\", name = \"b\" }]\n"),
        Format::Toml,
    );
    has(&err, "fs/a is listed twice");
}

#[test]
fn empty_lists_bad_names_and_bad_entries_are_refused() {
    let err = load_err(&toml("[virtual_servers.v]\ntools = []\n"), Format::Toml);
    has(
        &err,
        "virtual_servers.v.tools: a virtual server needs at least one tool",
    );
    let err = load_err(
        &toml("[virtual_servers.\"a.b\"]\ntools = [\"fs/x\"]\n"),
        Format::Toml,
    );
    has(&err, "virtual server name `a.b` contains `.`");
    let err = load_err(
        &toml("[virtual_servers.health]\ntools = [\"fs/x\"]\n"),
        Format::Toml,
    );
    has(&err, "reserved");
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [\"search\"]\n"),
        Format::Toml,
    );
    has(&err, "\"search\" does not name a server");
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [\"fs/\"]\n"),
        Format::Toml,
    );
    has(&err, "the tool name is empty");
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [{ server = \"fs\", tool = \"x\", name = \"a b\" }]\n"),
        Format::Toml,
    );
    has(
        &err,
        "virtual_servers.v.tools[0].name: tool name `a b` contains ` `",
    );
    let err = load_err(
        &toml("[virtual_servers.v]\ntools = [{ server = \"fs\", tool = \"x\", nmae = \"y\" }]\n"),
        Format::Toml,
    );
    has(&err, "nmae");
    let err = load_err(
        &toml("[virtual_servers.v]\ntool = [\"fs/x\"]\n"),
        Format::Toml,
    );
    has(&err, "did you mean `tools`?");
    let err = load_err(&toml("[virtual_servers.v]\ntools = [3]\n"), Format::Toml);
    has(&err, "\"<server>/<tool>\" or a table");
}

#[test]
fn a_tool_hidden_by_the_allow_list_cannot_be_exposed() {
    let err = load_err(
        "[servers.fs]\ncommand = \"fs\"\ntools = [\"read\"]\n\
         [virtual_servers.v]\ntools = [\"fs/write\"]\n",
        Format::Toml,
    );
    has(
        &err,
        "`write` is hidden by the `tools` allow-list of server `fs`",
    );
    has(&err, "hint: add \"write\" to servers.fs.tools");
}
