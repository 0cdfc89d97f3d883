//! The MCP clients `enable` knows, where their config files are (under `$HOME`, and in the
//! project directory for Claude Code's `.mcp.json`, VS Code's `.vscode/mcp.json` and Gemini
//! CLI's `.gemini/settings.json`), and where the server entries are inside each file.

use super::edit::{Entry, Format};
use super::json::Seg;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    Vscode,
    Codex,
    Gemini,
}

impl Client {
    pub const ALL: [Client; 6] = [
        Client::ClaudeCode,
        Client::ClaudeDesktop,
        Client::Cursor,
        Client::Vscode,
        Client::Codex,
        Client::Gemini,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::ClaudeDesktop => "claude-desktop",
            Client::Cursor => "cursor",
            Client::Vscode => "vscode",
            Client::Codex => "codex",
            Client::Gemini => "gemini",
        }
    }
}

/// Where the servers are in a file.
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// JSON (comments and trailing commas allowed), with these paths to tables of servers, each
    /// server an object with `command`, `args` (and `env`, `cwd`...), or a remote one with
    /// `url`, Gemini CLI's `httpUrl`, or an http/sse `type`.
    Json(&'static [&'static [Seg]]),
    /// Codex TOML: `[mcp_servers.<name>]`.
    CodexToml,
}

/// `{"mcpServers": {...}}`: Claude Desktop, Cursor, a project's `.mcp.json`, and Gemini CLI's
/// `settings.json` (whose other settings are left alone; `cwd`, `env`, `trust`... stay).
const MCP_SERVERS: &[&[Seg]] = &[&[Seg::Key("mcpServers")]];
/// Claude Code's `~/.claude.json`: user servers, and each project's.
const CLAUDE_JSON: &[&[Seg]] = &[
    &[Seg::Key("mcpServers")],
    &[Seg::Key("projects"), Seg::Any, Seg::Key("mcpServers")],
];
/// VS Code's `mcp.json`: `{"servers": {...}, "inputs": [...]}`, often with comments.
const VSCODE: &[&[Seg]] = &[&[Seg::Key("servers")]];

impl Layout {
    pub fn format(self) -> Format {
        match self {
            Layout::Json(_) => Format::Json,
            Layout::CodexToml => Format::Toml,
        }
    }

    pub fn entries(self, text: &str) -> Result<Vec<Entry>, String> {
        match self {
            Layout::Json(paths) => super::json::entries(text, paths),
            Layout::CodexToml => super::codex::entries(text),
        }
    }
}

/// One config file of one client.
#[derive(Debug)]
pub struct ConfigFile {
    pub client: Client,
    pub path: PathBuf,
    pub layout: Layout,
}

/// The config files of `client`, whether or not they exist.
pub fn files(client: Client, home: &Path, project: &Path) -> Vec<ConfigFile> {
    let f = |path: PathBuf, layout| ConfigFile {
        client,
        path,
        layout,
    };
    match client {
        Client::ClaudeCode => vec![
            f(home.join(".claude.json"), Layout::Json(CLAUDE_JSON)),
            f(project.join(".mcp.json"), Layout::Json(MCP_SERVERS)),
        ],
        Client::ClaudeDesktop => vec![f(
            home.join(".config/Claude/claude_desktop_config.json"),
            Layout::Json(MCP_SERVERS),
        )],
        Client::Cursor => vec![f(home.join(".cursor/mcp.json"), Layout::Json(MCP_SERVERS))],
        Client::Vscode => vec![
            f(
                home.join(".config/Code/User/mcp.json"),
                Layout::Json(VSCODE),
            ),
            f(project.join(".vscode/mcp.json"), Layout::Json(VSCODE)),
        ],
        Client::Codex => vec![f(home.join(".codex/config.toml"), Layout::CodexToml)],
        Client::Gemini => vec![
            f(
                home.join(".gemini/settings.json"),
                Layout::Json(MCP_SERVERS),
            ),
            f(
                project.join(".gemini/settings.json"),
                Layout::Json(MCP_SERVERS),
            ),
        ],
    }
}

/// `<file><suffix>`, next to the file.
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}
