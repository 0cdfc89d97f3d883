//! Validation of virtual servers: names (the rules of server ids, and none equal to a server
//! id, since both are served at `/mcp/<name>`), the servers their tools come from, and exposed
//! names that are unique within each virtual server.
//!
//! Tool names cannot be checked against the servers here (their lists exist only at run time);
//! a tool a server does not offer is absent from the virtual server's list, with a warning then.
//! A tool hidden by the server's own `tools` allow-list is known now, so it is an error now.

use std::collections::{BTreeMap, HashMap};

use super::checks::check_endpoint_name;
use super::Ctx;
use crate::raw::{RawVirtualServer, RawVirtualTool};
use crate::suggest::did_you_mean;
use crate::{ConfigError, GatewaySettings, ServerConfig, VirtualServer, VirtualTool};

/// The longest tool name MCP recommends (2025-11-25, "Tool names").
const MAX_TOOL_NAME: usize = 128;

pub(crate) fn all(
    raw: BTreeMap<String, RawVirtualServer>,
    servers: &[ServerConfig],
    gateway: &GatewaySettings,
    ctx: &Ctx<'_>,
) -> Result<Vec<VirtualServer>, ConfigError> {
    raw.into_iter()
        .map(|(name, v)| one(name, v, servers, gateway, ctx))
        .collect()
}

fn one(
    name: String,
    raw: RawVirtualServer,
    servers: &[ServerConfig],
    gateway: &GatewaySettings,
    ctx: &Ctx<'_>,
) -> Result<VirtualServer, ConfigError> {
    let path = format!("{}.{name}", ctx.shape.key("virtual_servers"));
    check_endpoint_name("virtual server name", &name, &gateway.separator)
        .map_err(|m| ctx.invalid(&path, m))?;
    if servers.iter().any(|s| s.id == name) {
        return Err(ctx.invalid_hint(
            &path,
            format!("`{name}` is already a server id; /mcp/{name} can serve only one of them"),
            "give the virtual server another name",
        ));
    }
    let tools_path = format!("{path}.tools");
    if raw.tools.is_empty() {
        return Err(ctx.invalid_hint(
            &tools_path,
            "a virtual server needs at least one tool",
            "list tools as \"<server>/<tool>\"",
        ));
    }
    let mut tools: Vec<VirtualTool> = Vec::with_capacity(raw.tools.len());
    let mut exposed: HashMap<String, usize> = HashMap::new();
    for (i, entry) in raw.tools.into_iter().enumerate() {
        let at = format!("{tools_path}[{i}]");
        let tool = entry_of(entry, servers, &at, ctx)?;
        if let Some(j) = tools
            .iter()
            .position(|t| t.server == tool.server && t.tool == tool.tool)
        {
            return Err(ctx.invalid(
                &at,
                format!(
                    "{}/{} is listed twice (also at {tools_path}[{j}])",
                    tool.server, tool.tool
                ),
            ));
        }
        if let Some(j) = exposed.insert(tool.name.clone(), i) {
            let other = &tools[j];
            return Err(ctx.invalid_hint(
                &at,
                format!(
                    "the name `{}` is taken by {tools_path}[{j}] ({}/{})",
                    tool.name, other.server, other.tool
                ),
                rename_hint(ctx, &tool),
            ));
        }
        tools.push(tool);
    }
    Ok(VirtualServer { name, tools })
}

/// One entry, checked: a configured server, a tool name, an exposed name.
fn entry_of(
    entry: RawVirtualTool,
    servers: &[ServerConfig],
    at: &str,
    ctx: &Ctx<'_>,
) -> Result<VirtualTool, ConfigError> {
    // `renamed`: the entry gave a `name`, which must then follow MCP's rules; a server's own
    // name is taken as it is (the server already shows it to clients).
    let (server, tool, name, table, renamed) = match entry {
        RawVirtualTool::Path(text) => {
            // Server ids cannot contain `/`, so the first one ends the id; the rest is the tool.
            let Some((server, tool)) = text.split_once('/') else {
                return Err(ctx.invalid_hint(
                    at,
                    format!("\"{text}\" does not name a server: expected \"<server>/<tool>\""),
                    "write \"<server>/<tool>\", e.g. \"github/search_issues\"",
                ));
            };
            let (server, tool) = (server.to_owned(), tool.to_owned());
            (server, tool.clone(), tool, false, false)
        }
        RawVirtualTool::Table(t) => {
            let renamed = t.name.is_some();
            let name = t.name.unwrap_or_else(|| t.tool.clone());
            (t.server, t.tool, name, true, renamed)
        }
    };
    // In table form each part has its own key; in string form the entry is the place.
    let field = |key: &str| {
        if table {
            format!("{at}.{key}")
        } else {
            at.to_owned()
        }
    };
    let Some(config) = servers.iter().find(|s| s.id == server) else {
        let ids: Vec<String> = servers.iter().map(|s| s.id.clone()).collect();
        let message = match did_you_mean(&server, &ids) {
            Some(s) => format!("no server `{server}` is configured; did you mean `{s}`?"),
            None => format!("no server `{server}` is configured"),
        };
        return Err(ctx.invalid_hint(
            field("server"),
            message,
            format!("configured servers: {}", ids.join(", ")),
        ));
    };
    if tool.trim().is_empty() {
        return Err(ctx.invalid(field("tool"), "the tool name is empty"));
    }
    if renamed {
        check_tool_name(&name).map_err(|m| ctx.invalid(field("name"), m))?;
    }
    if let Some(allowed) = &config.tools {
        if !allowed.contains(&tool) {
            return Err(ctx.invalid_hint(
                field("tool"),
                format!(
                    "`{tool}` is hidden by the `tools` allow-list of server `{server}`, so no \
                     endpoint can offer it"
                ),
                format!(
                    "add \"{tool}\" to {}.{server}.tools",
                    ctx.shape.servers_key()
                ),
            ));
        }
    }
    Ok(VirtualTool { server, tool, name })
}

/// Exposed names follow MCP's tool name rules: 1 to 128 of `A-Z a-z 0-9 _ - .`.
fn check_tool_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_TOOL_NAME {
        return Err(format!(
            "tool name `{name}` must be 1 to {MAX_TOOL_NAME} characters long"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(bad) => Err(format!(
            "tool name `{name}` contains `{bad}`; use letters, digits, `_`, `-` and `.`"
        )),
        None => Ok(()),
    }
}

/// How to rename an entry, in the syntax of the configuration's shape.
fn rename_hint(ctx: &Ctx<'_>, tool: &VirtualTool) -> String {
    let new = format!("{}_{}", tool.server, tool.tool);
    match ctx.shape {
        super::Shape::Servers => format!(
            "rename one: {{ server = \"{}\", tool = \"{}\", name = \"{new}\" }}",
            tool.server, tool.tool
        ),
        super::Shape::McpServers => format!(
            "rename one: {{\"server\": \"{}\", \"tool\": \"{}\", \"name\": \"{new}\"}}",
            tool.server, tool.tool
        ),
    }
}
