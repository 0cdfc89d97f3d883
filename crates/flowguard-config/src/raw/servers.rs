//! The "servers shape": `[gateway]` and `[servers.<id>]` with snake_case keys.
//!
//! This is the native shape of FlowGuard's TOML and YAML files (JSON files may use it too).
//! The doc comments here become the JSON Schema descriptions and the config reference.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::values::{Count, DurationValue, IntervalValue};
use super::virtual_servers::RawVirtualServer;
use crate::{ContainerRuntime, Mode, PrefixMode};

/// A FlowGuard configuration in the servers shape (`[gateway]`, `[servers.<id>]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServersDocument {
    /// URL of a JSON Schema for editors; ignored by the gateway.
    #[serde(rename = "$schema")]
    #[allow(dead_code)] // accepted so that editors can point at the schema; nothing reads it
    pub schema: Option<String>,
    /// Gateway-wide settings; every key is optional.
    pub gateway: Option<RawGateway>,
    /// The servers, by id. Ids are letters, digits, `_` and `-`.
    pub servers: BTreeMap<String, RawServer>,
    /// Named virtual servers, by name: each an endpoint at `/mcp/<name>` offering chosen tools
    /// of the servers above. Names follow the rules of server ids and differ from them.
    pub virtual_servers: Option<BTreeMap<String, RawVirtualServer>>,
    /// Who may call: agent ids, API keys, JWTs, OAuth (docs/security.md).
    pub auth: Option<flowguard_guard::setup::RawAuth>,
    /// What callers may do: native first-match rules and policy files (docs/security.md).
    pub policy: Option<flowguard_guard::setup::RawPolicy>,
    /// Roles by name, each with permissions (object type, server, name).
    pub roles: Option<BTreeMap<String, flowguard_guard::policy::roles::RawRole>>,
    /// Token claims that give roles.
    pub role_mappings: Option<Vec<flowguard_guard::policy::roles::RawRoleMapping>>,
    /// Rate limits and per-session call limits.
    pub limits: Option<flowguard_guard::setup::RawLimits>,
    /// The tamper-evident audit log (docs/audit.md).
    pub audit: Option<super::audit::RawAudit>,
    /// Where state that outlives a restart is kept (SQLite by default, or PostgreSQL).
    pub storage: Option<super::signals::RawStorage>,
    /// Prometheus metrics at `/metrics`.
    pub metrics: Option<super::signals::RawMetrics>,
    /// OpenTelemetry traces over OTLP/HTTP.
    pub tracing: Option<super::signals::RawTracing>,
    /// Webhook alerts on denials.
    pub alerts: Option<super::signals::RawAlerts>,
    /// Pinned tools and the poisoning scan.
    pub inspect: Option<super::inspect::RawInspect>,
    /// mcpgw's plugins (`pii`, `injection`, `schema`), read into `[inspect]`.
    pub plugins: Option<Vec<super::inspect::RawPlugin>>,
}

/// Gateway-wide settings (`[gateway]`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    /// Address to listen on, `host:port` (`[::1]:3000` for IPv6; `localhost:PORT` means
    /// 127.0.0.1). Default: the command line's `--listen`, else 127.0.0.1:3000.
    pub listen: Option<String>,
    /// `routed` (each server at /mcp/<id>), `unified` (all servers at /mcp) or `both`.
    /// Default: the command line's choice.
    pub mode: Option<Mode>,
    /// The MCP Gateway Specification's agent id: every request must carry it (in
    /// `Authorization`, as a raw value or `Bearer <id>`, or in `X-Agent-ID`). Same as
    /// `auth.agent_id.allowed = [<id>]`.
    pub agent_id: Option<String>,
    /// Several accepted agent ids (the specification's `agentIds`).
    pub agent_ids: Option<Vec<String>>,
    /// The specification's deprecated alias of `agent_id`.
    pub api_key: Option<String>,
    /// How long a request may wait for a server's answer. Default 60s.
    pub request_timeout: Option<DurationValue>,
    /// How long a server may take to start and answer `initialize`. Default 30s.
    pub startup_timeout: Option<DurationValue>,
    /// How long in-flight requests may finish after shutdown begins. Default 30s.
    pub shutdown_grace: Option<DurationValue>,
    /// When unified mode prefixes tool names with the server id: `always`, `conditional`
    /// (only on a clash) or `never`. Default `always`.
    pub tool_prefix: Option<PrefixMode>,
    /// Text between server id and tool name in prefixed names. Default `___`.
    pub separator: Option<String>,
    /// Items per page of aggregated lists; 0 means no pagination. Default 0.
    pub page_size: Option<Count>,
    /// Extra `Host` header values accepted besides the loopback ones. Default none.
    pub allowed_hosts: Option<Vec<String>>,
    /// Extra `Origin` header values accepted besides the loopback ones. Default none.
    pub allowed_origins: Option<Vec<String>>,
    /// `docker` or `podman` for container servers. Default: detected at run time.
    pub container_runtime: Option<ContainerRuntime>,
    /// Longest line a stdio server may write, in bytes. Default 16777216 (16 MiB).
    pub max_line_bytes: Option<Count>,
    /// Lines of each server's stderr kept for diagnostics. Default 200.
    pub stderr_lines: Option<Count>,
    /// How long an idle client session lives. Default 6h.
    pub session_idle_timeout: Option<DurationValue>,
    /// Most per-session instances one `isolation = "session"` server may run at once; a
    /// session beyond it gets an error. Default 64.
    pub max_sessions_per_server: Option<Count>,
    /// Most client sessions the gateway keeps at once; a new session beyond it first ends the
    /// oldest idle session made for a `tools/call` without `initialize`, else is refused.
    /// Default 10000.
    pub max_sessions: Option<Count>,
    /// How long an idle session made for a `tools/call` without `initialize` lives. Default 60s.
    pub auto_session_idle_timeout: Option<DurationValue>,
    /// How long a client may take to send a request's body once its headers are in. Default 30s.
    pub body_timeout: Option<DurationValue>,
    /// How often remote (`url`) servers are pinged; 0 turns pings off. Three failed pings in a
    /// row count as a lost connection. stdio servers are pinged only with their own
    /// `ping_interval`. Default 30s.
    pub ping_interval: Option<IntervalValue>,
}

/// How a server is reached. Inferred when absent: `url` means `http`, otherwise `stdio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ServerType {
    /// A local process or container speaking JSON-RPC on stdin/stdout.
    Stdio,
    /// Same as `stdio` (the MCP Gateway Specification's name).
    Local,
    /// A remote Streamable HTTP server at `url`.
    Http,
    /// A remote server on the 2024-11-05 HTTP+SSE transport; `url` is its SSE endpoint.
    Sse,
}

/// One server (`[servers.<id>]`): exactly one of `command`, `container` or `url`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    /// `stdio`, `local` (same as stdio), `http` (Streamable HTTP) or `sse` (the 2024-11-05
    /// HTTP+SSE transport, `url` being the SSE endpoint). Default: `http` when `url` is set,
    /// else `stdio`.
    #[serde(rename = "type")]
    pub server_type: Option<ServerType>,
    /// Program to run as a local stdio server (looked up in PATH).
    pub command: Option<String>,
    /// Arguments of `command`.
    pub args: Option<Vec<String>>,
    /// Environment variables for the process or container. The empty string `""` passes the
    /// gateway's own value of that variable through.
    pub env: Option<BTreeMap<String, String>>,
    /// Directory the process starts in (must exist); for a container, an absolute path inside
    /// it.
    pub working_directory: Option<String>,
    /// Container image to run as a stdio server, instead of `command`.
    pub container: Option<String>,
    /// Replaces the image's entrypoint (container only).
    pub entrypoint: Option<String>,
    /// Arguments after the image name (container only).
    pub entrypoint_args: Option<Vec<String>>,
    /// Bind mounts `"/host/path:/container/path[:ro|rw]"`, both absolute; mode defaults to
    /// `ro` (container only).
    pub mounts: Option<Vec<String>>,
    /// Container network, e.g. `none` or `bridge` (container only).
    pub network: Option<String>,
    /// URL of a remote Streamable HTTP server (`http://` or `https://`).
    pub url: Option<String>,
    /// HTTP headers sent to the remote server, e.g. `Authorization = "Bearer ${TOKEN}"` (url
    /// only). Values are treated as secrets and never logged.
    pub headers: Option<BTreeMap<String, String>>,
    /// A header in which the gateway passes the caller's verified subject (a token's identity
    /// claim or an API-key client's name) to this remote server, e.g. `X-FlowGuard-Subject`.
    /// Never the client's own token. Default: none.
    pub subject_header: Option<String>,
    /// PEM file of the certificate authorities trusted for this `https://` server, instead of
    /// the system's (url only). Default: the system's trusted roots.
    pub ca_file: Option<String>,
    /// Allow-list of tool names; absent or `["*"]` means all tools.
    pub tools: Option<Vec<String>>,
    /// Overrides the gateway's request timeout for this server.
    pub request_timeout: Option<DurationValue>,
    /// How often this server is pinged; 0 turns pings off. Default: the gateway's
    /// `ping_interval` for `url` servers, off for stdio and container servers.
    pub ping_interval: Option<IntervalValue>,
    /// How many times an idempotent request (lists, reads, `ping`, `initialize`) is retried
    /// after a connection error or an HTTP 502/503/504 (url only); `tools/call` never is.
    /// Default 2.
    pub retries: Option<Count>,
    /// `shared` (one instance for every client session) or `session` (a process or container
    /// per client session, stopped when the session ends). Default `shared`.
    pub isolation: Option<IsolationMode>,
    /// With `isolation = "session"`: stop a session's instance idle this long; the next use
    /// starts a fresh one. Default: only when the session ends.
    pub idle_timeout: Option<DurationValue>,
    /// With `isolation = "session"`: variable names a client may set for its own instance with
    /// an `ENV_<NAME>` header on `initialize`. Names such as PATH, HOME or LD_* are refused.
    pub env_from_headers: Option<Vec<String>>,
    /// mcpx-style tool policy of this server: `allow_tools`, `deny_tools`, `read_only`,
    /// `tool_rules`.
    pub policy: Option<flowguard_guard::policy::mcpx::RawServerPolicy>,
    /// This server's inspection: any `[inspect]` key, over the global section's.
    pub inspect: Option<super::inspect::RawInspect>,
}

/// Whether client sessions share one instance of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum IsolationMode {
    /// One instance for every client session.
    Shared,
    /// One process or container per client session.
    Session,
}
