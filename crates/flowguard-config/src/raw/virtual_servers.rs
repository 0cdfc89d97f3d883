//! Virtual servers as written: `[virtual_servers.<name>]` (servers shape) or
//! `"virtualServers": {"<name>": ...}` (mcpServers shape), both with a `tools` list whose
//! entries are `"server/tool"` strings or `{ server, tool, name }` tables.
//!
//! An entry is read by hand rather than with `#[serde(untagged)]`, whose only error is "did not
//! match any variant": a string and a table each get their own message, and a table keeps
//! `deny_unknown_fields` (so `nmae` gets a did-you-mean).

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A virtual server: an endpoint at `/mcp/<name>` offering chosen tools of several servers.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVirtualServer {
    /// The tools it offers: `"<server>/<tool>"`, or `{ server = "...", tool = "...", name =
    /// "..." }` to show the tool under another name. At least one.
    pub tools: Vec<RawVirtualTool>,
}

/// One tool of a virtual server.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawVirtualTool {
    /// `"<server>/<tool>"`: the tool, under its own name.
    Path(String),
    /// The tool, optionally under another name.
    Table(RawVirtualToolTable),
}

/// A virtual server's tool in table form.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVirtualToolTable {
    /// The id of a configured server.
    pub server: String,
    /// The server's own name of the tool.
    pub tool: String,
    /// The name the virtual server shows it under. Default: `tool`.
    pub name: Option<String>,
}

impl<'de> Deserialize<'de> for RawVirtualTool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ToolVisitor)
    }
}

struct ToolVisitor;

impl<'de> Visitor<'de> for ToolVisitor {
    type Value = RawVirtualTool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("\"<server>/<tool>\" or a table { server, tool, name }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(RawVirtualTool::Path(v.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let table = RawVirtualToolTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(RawVirtualTool::Table(table))
    }
}
