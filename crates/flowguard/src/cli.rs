//! The command line, as seed 000 has it (`-c`, `--config-stdin`, `--env`, `-l`, `--routed`,
//! `--unified`), plus `config check` and `config schema`, `wrap`, `stdio`, `enable` and `disable`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// FlowGuard: an MCP gateway that routes, aggregates and guards MCP servers behind one endpoint.
#[derive(Debug, Parser)]
#[command(name = "flowguard", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Path to the config file (TOML, YAML or JSON, by extension).
    #[arg(short, long, default_value = "config.toml")]
    pub config: PathBuf,
    /// Read the configuration from stdin as JSON (the mcpServers shape); overrides --config.
    #[arg(long)]
    pub config_stdin: bool,
    /// Load environment variables from a .env file before reading the config.
    #[arg(long, value_name = "FILE")]
    pub env: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:3000, or gateway.listen from the config].
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve only the per-server endpoints /mcp/<server>.
    #[arg(long, conflicts_with = "unified")]
    pub routed: bool,
    /// Serve only the unified endpoint /mcp.
    #[arg(long)]
    pub unified: bool,
    /// Print a ready-to-paste client config (JSON) on stdout once listening.
    #[arg(long)]
    pub print_client_config: bool,
    /// A policy file to enforce (native, mcpgw, mcpx or mcp-gateway roles); repeatable. Each
    /// must allow a request, together with the config's own `policy`.
    #[arg(long, value_name = "FILE")]
    pub policy: Vec<PathBuf>,
    /// Record every verdict of the guard in this tamper-evident log (docs/audit.md). Its keys
    /// are made at first use beside it: FILE.seal (keep it here) and FILE.verify-key (copy it
    /// off the machine).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// The audit's seal state (current key, checkpoint signing key) [default: FILE.seal].
    #[arg(long, value_name = "FILE", requires = "audit_log")]
    pub audit_key: Option<PathBuf>,
    /// Where state is kept (the SQLite store, flowguard.db) [default: FLOWGUARD_DATA_DIR, else
    /// ~/.local/share/flowguard]. Wins over [storage] data_dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put one local MCP server behind FlowGuard, speaking MCP on stdin/stdout: use
    /// `flowguard wrap -- CMD ARGS...` as the command of a server entry in Claude Desktop,
    /// Claude Code, Cursor or VS Code.
    Wrap {
        /// Gateway settings (timeouts, limits) from this config file; its servers are ignored.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Load environment variables from a .env file first.
        #[arg(long, value_name = "FILE")]
        env: Option<PathBuf>,
        /// The server's id in logs [default: the command's file name].
        #[arg(long)]
        name: Option<String>,
        /// A policy file to enforce on the wrapped server's messages; repeatable.
        #[arg(long, value_name = "FILE")]
        policy: Vec<PathBuf>,
        /// The identity of the stdio client: the subject policies see. Default:
        /// `auth.stdio_subject` of the config, else anonymous.
        #[arg(long, value_name = "NAME")]
        subject: Option<String>,
        /// The server's command and arguments, after `--`.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Serve the whole configured gateway on stdin/stdout (unified: tools named
    /// <server>___<tool>), for clients that launch their servers as programs.
    Stdio {
        /// Path to the config file (TOML, YAML or JSON, by extension).
        #[arg(short, long, default_value = "config.toml")]
        config: PathBuf,
        /// Load environment variables from a .env file before reading the config.
        #[arg(long, value_name = "FILE")]
        env: Option<PathBuf>,
        /// Serve only this server, with its names unchanged, or this virtual server, instead of
        /// all of them.
        #[arg(long, value_name = "ID")]
        server: Option<String>,
        /// The identity of the stdio client (there are no headers): the subject policies see.
        /// Default: `auth.stdio_subject`, else anonymous.
        #[arg(long, value_name = "NAME")]
        subject: Option<String>,
    },
    /// Rewrite the stdio MCP servers of client configs (Claude Code, Claude Desktop, Cursor,
    /// VS Code, Codex, Gemini CLI) to run through `flowguard wrap`; a backup is kept for
    /// `disable`.
    Enable {
        /// Only this client (repeatable) [default: every client with a config file].
        #[arg(long, value_enum, value_name = "NAME")]
        client: Vec<crate::enable::Client>,
        /// Print what would change as a unified diff on stdout (`patch -d / -p1` applies it)
        /// and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The project whose .mcp.json, .vscode/mcp.json and .gemini/settings.json to rewrite
        /// [default: current dir].
        #[arg(long, value_name = "DIR")]
        project: Option<PathBuf>,
        /// The flowguard binary the configs run [default: the `flowguard` on PATH, else this
        /// one]. Use an installed one: a binary in a cargo target/ folder goes away with
        /// `cargo clean`.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Undo `enable`: restore each file from its backup, or un-wrap the entries if the file
    /// was edited since.
    Disable {
        /// Only this client (repeatable) [default: every client with a config file].
        #[arg(long, value_enum, value_name = "NAME")]
        client: Vec<crate::enable::Client>,
        /// Print what would change as a unified diff on stdout (`patch -d / -p1` applies it)
        /// and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// The project whose .mcp.json, .vscode/mcp.json and .gemini/settings.json to restore
        /// [default: current dir].
        #[arg(long, value_name = "DIR")]
        project: Option<PathBuf>,
    },
    /// Check a config file or print the config's JSON Schema.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Check, try and compare policy files (native, mcpgw, mcpx, mcp-gateway roles).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// API keys: `hash-key` prints a new key and the digest to put in the config.
    Auth {
        #[command(subcommand)]
        action: AuthAction,
    },
    /// The audit log: `verify` checks its chain, tags and signed checkpoints.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Pinned tools, prompts, resources and server definitions ([inspect] pins): list them,
    /// approve a change.
    Pins {
        #[command(subcommand)]
        action: PinsAction,
    },
    /// Servers' risk status ([inspect] risk): list them, approve or deny one.
    Servers {
        #[command(subcommand)]
        action: ServersAction,
    },
    /// The detectors: `corpus` prints their precision and recall on a labelled corpus.
    Inspect {
        #[command(subcommand)]
        action: InspectAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum InspectAction {
    /// Runs the poisoning, injection and secret detectors over the labelled corpus (JSONL files
    /// of a directory) and prints precision and recall per family and per channel; exits 1 when
    /// a target of docs/inspection.md is missed.
    Corpus {
        /// The corpus directory [default: corpus].
        #[arg(default_value = "corpus")]
        dir: PathBuf,
        /// Also list every case a detector got wrong.
        #[arg(long)]
        misses: bool,
    },
}

/// Where a command finds storage.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The gateway's config, for its [storage] section.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store itself: `postgres://…`, `sqlite:PATH` or a file [default: from --config, else
    /// <data dir>/flowguard.db].
    #[arg(long, value_name = "URL")]
    pub storage: Option<String>,
    /// The data directory [default: FLOWGUARD_DATA_DIR, else ~/.local/share/flowguard].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ServersAction {
    /// Prints each rated server: id, status (pending, approved, denied), risk level, score and
    /// the tools that set the level.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Approves a server: its tools are shown again at the gateway's next list.
    Approve {
        #[command(flatten)]
        store: StoreArgs,
        server: String,
    },
    /// Denies a server: its tools stay held back.
    Deny {
        #[command(flatten)]
        store: StoreArgs,
        server: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PinsAction {
    /// Prints every pin: server, kind, name, and `ok` or `CHANGED` with the fields that changed.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this server's pins.
        #[arg(long)]
        server: Option<String>,
        /// Only changed items.
        #[arg(long)]
        changed: bool,
    },
    /// Approves the changed item NAME of SERVER (or every changed item with --all): its new
    /// version becomes the pin, and the gateway shows it again at its next list.
    Approve {
        #[command(flatten)]
        store: StoreArgs,
        server: String,
        name: Option<String>,
        /// tools, prompts, resources, resourceTemplates or server (when one name is in several).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Loads policy files as the gateway would and prints what they hold and any risky quirk.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Decides a request (from the flags) or every scenario of a file, printing the verdict
    /// and the rule that decided; exits 1 when a scenario's `expect` is not met.
    Test {
        /// Policy files (all must allow, as in the gateway).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A YAML list of scenarios: name, method, params, subject, roles, server, client,
        /// scopes, claims, expect (mcpgw's scenario format, plus FlowGuard's fields).
        #[arg(long, value_name = "FILE")]
        scenarios: Option<PathBuf>,
        #[arg(long, default_value = "tools/call")]
        method: String,
        /// The tool (or prompt) name.
        #[arg(long)]
        tool: Option<String>,
        /// The tool's arguments as JSON.
        #[arg(long, value_name = "JSON")]
        args: Option<String>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        client: Option<String>,
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// Which decisions change from OLD to NEW: over a scenario file, or over every tool of the
    /// servers of a config (started for the purpose, then stopped), for one caller.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_name = "FILE", required_unless_present = "config")]
        scenarios: Option<PathBuf>,
        /// A FlowGuard config whose servers are asked for their tools.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// With --config: the caller's subject, client, roles and scopes.
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        client: Option<String>,
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Verifies audit log files (the active one and its rotated ones, in any order; a
    /// directory or the active file alone finds its rotated files). Names the first bad record
    /// and every problem found; exits 1 on any.
    Verify {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The verification key [default: <log>.verify-key beside the log].
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The checkpoints [default: <log>.checkpoints beside the log].
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
    },
    /// Searches the audit records copied to storage; prints matching records as JSON lines
    /// (oldest first) and, on stderr, how to get the next page.
    Query(Box<QueryArgs>),
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The gateway's config, for its [storage] section.
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The store itself: `postgres://…`, `sqlite:PATH` or a file [default: from --config, else
    /// <data dir>/flowguard.db].
    #[arg(long, value_name = "URL")]
    pub storage: Option<String>,
    /// The data directory [default: FLOWGUARD_DATA_DIR, else ~/.local/share/flowguard].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// From this time (RFC 3339 UTC, `2026-12-03T10:00:00Z`, or a date).
    #[arg(long)]
    pub from: Option<String>,
    /// Before this time.
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long)]
    pub server: Option<String>,
    #[arg(long)]
    pub tool: Option<String>,
    /// allow, deny or modify.
    #[arg(long)]
    pub decision: Option<String>,
    #[arg(long)]
    pub rule: Option<String>,
    /// Records containing this text (any case).
    #[arg(long)]
    pub text: Option<String>,
    /// Records after this sequence number (the next page).
    #[arg(long, value_name = "SEQ")]
    pub after: Option<i64>,
    /// At most this many records [default: 100, at most 1000].
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// Prints a new random key and its `sha256:` digest; with --stdin, the digest of a key.
    HashKey {
        #[arg(long)]
        stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a config file and summarise it; exits 2 when it is invalid.
    Check {
        /// The file to check.
        file: PathBuf,
        /// Load environment variables from a .env file first.
        #[arg(long, value_name = "FILE")]
        env: Option<PathBuf>,
    },
    /// Print the JSON Schema of the config file (for editors).
    Schema,
}

pub fn config_command(action: ConfigAction) -> ExitCode {
    match action {
        ConfigAction::Schema => {
            let schema = flowguard_config::json_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a Value serializes")
            );
            ExitCode::SUCCESS
        }
        ConfigAction::Check { file, env } => {
            if let Some(env) = env {
                if let Err(e) = crate::run::load_env_file(&env) {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            }
            match flowguard_config::load_file(&file) {
                Ok(cfg) => {
                    let missing = missing_commands(&cfg);
                    if !missing.is_empty() {
                        for m in &missing {
                            eprintln!("{}: {m}", file.display());
                        }
                        return ExitCode::from(2);
                    }
                    println!("{}: ok, {} server(s)", file.display(), cfg.servers.len());
                    for s in &cfg.servers {
                        println!(
                            "  {} ({})",
                            s.id,
                            crate::startup::describe_transport(&s.transport)
                        );
                    }
                    for v in &cfg.virtual_servers {
                        let tools: Vec<String> = v.tools.iter().map(describe_tool).collect();
                        println!("  {} (virtual: {})", v.name, tools.join(", "));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The stdio servers whose command cannot be started as configured: a path (it has a `/`,
/// resolved against the config file's folder) that is not an executable file, or a name that
/// is not on `PATH`.
fn missing_commands(cfg: &flowguard_config::Config) -> Vec<String> {
    let executable = crate::enable::binary::is_executable;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let mut out = Vec::new();
    for s in &cfg.servers {
        let flowguard_config::Transport::Stdio(p) = &s.transport else {
            continue;
        };
        // A PATH the server's own `env` sets is the one its command is looked up on.
        let own_path = p.env.iter().find_map(|(k, v)| match v {
            flowguard_config::EnvValue::Set(v) if k == "PATH" => Some(std::ffi::OsString::from(v)),
            _ => None,
        });
        let search = own_path.as_ref().unwrap_or(&path_var);
        let found = if p.command.contains('/') {
            executable(std::path::Path::new(&p.command))
        } else {
            std::env::split_paths(search).any(|d| executable(&d.join(&p.command)))
        };
        if !found {
            out.push(if p.command.contains('/') {
                format!(
                    "servers.{}.command: {} is not an executable file (a relative command is resolved against the config file's folder)",
                    s.id, p.command
                )
            } else {
                format!(
                    "servers.{}.command: `{}` is not on PATH; install it, or give its path",
                    s.id, p.command
                )
            });
        }
    }
    out
}

/// `server/tool`, with ` as name` when the virtual server renames it.
fn describe_tool(t: &flowguard_config::VirtualTool) -> String {
    if t.name == t.tool {
        format!("{}/{}", t.server, t.tool)
    } else {
        format!("{}/{} as {}", t.server, t.tool, t.name)
    }
}
