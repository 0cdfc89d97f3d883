//! The "mcpServers shape": `{"mcpServers": {...}, "gateway": {...}}` with camelCase keys.
//!
//! This is the shape Claude Desktop, Cursor, VS Code and the MCP Gateway Specification use, and
//! the one `--config-stdin` reads. It converts into the servers shape's raw types, so
//! validation is written once; `port`/`domain` become `listen` there.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::servers::{IsolationMode, RawGateway, RawServer, ServerType};
use super::values::{Count, DurationValue, IntervalValue};
use super::virtual_servers::RawVirtualServer;
use crate::{ContainerRuntime, Mode, PrefixMode};

/// A configuration in the mcpServers shape (`{"mcpServers": {...}}`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct McpDocument {
    /// URL of a JSON Schema for editors; ignored by the gateway.
    #[serde(rename = "$schema")]
    #[allow(dead_code)] // accepted so that editors can point at the schema; nothing reads it
    pub schema: Option<String>,
    /// The servers, by id. Ids are letters, digits, `_` and `-`.
    pub mcp_servers: BTreeMap<String, McpServer>,
    /// Gateway-wide settings; every key is optional.
    pub gateway: Option<McpGateway>,
    /// Named virtual servers, by name: each an endpoint at `/mcp/<name>` offering chosen tools
    /// of the servers in `mcpServers`. Names follow the rules of server ids and differ from them.
    pub virtual_servers: Option<BTreeMap<String, RawVirtualServer>>,
    /// Who may call (keys inside in snake_case, as in the servers shape).
    pub auth: Option<flowguard_guard::setup::RawAuth>,
    /// What callers may do.
    pub policy: Option<flowguard_guard::setup::RawPolicy>,
    /// Roles by name.
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

/// Gateway-wide settings of the mcpServers shape.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct McpGateway {
    /// Address to listen on, `host:port`; conflicts with `port`.
    pub listen: Option<String>,
    /// Port to listen on, on 127.0.0.1 unless `domain` is given.
    pub port: Option<Count>,
    /// With `port`: an IP address or `localhost` to listen on. Host names are not resolved;
    /// use `listen` with an address instead.
    pub domain: Option<String>,
    /// `routed`, `unified` or `both`. Default: the command line's choice.
    pub mode: Option<Mode>,
    /// The agent id every request must carry (`Authorization` or `X-Agent-ID`).
    pub agent_id: Option<String>,
    /// Several accepted agent ids.
    pub agent_ids: Option<Vec<String>>,
    /// Deprecated alias of `agentId`.
    pub api_key: Option<String>,
    /// How long a request may wait for a server's answer (alias `toolTimeout`). Default 60s.
    #[serde(alias = "toolTimeout")]
    pub request_timeout: Option<DurationValue>,
    /// How long a server may take to start and answer `initialize`. Default 30s.
    pub startup_timeout: Option<DurationValue>,
    /// How long in-flight requests may finish after shutdown begins. Default 30s.
    pub shutdown_grace: Option<DurationValue>,
    /// `always`, `conditional` or `never`. Default `always`.
    pub tool_prefix: Option<PrefixMode>,
    /// Text between server id and tool name in prefixed names. Default `___`.
    pub separator: Option<String>,
    /// Items per page of aggregated lists; 0 means no pagination. Default 0.
    pub page_size: Option<Count>,
    /// Extra `Host` header values accepted besides the loopback ones.
    pub allowed_hosts: Option<Vec<String>>,
    /// Extra `Origin` header values accepted besides the loopback ones.
    pub allowed_origins: Option<Vec<String>>,
    /// `docker` or `podman`. Default: detected at run time.
    pub container_runtime: Option<ContainerRuntime>,
    /// Longest line a stdio server may write, in bytes. Default 16777216 (16 MiB).
    pub max_line_bytes: Option<Count>,
    /// Lines of each server's stderr kept for diagnostics. Default 200.
    pub stderr_lines: Option<Count>,
    /// How long an idle client session lives (alias `sessionTimeout`). Default 6h.
    #[serde(alias = "sessionTimeout")]
    pub session_idle_timeout: Option<DurationValue>,
    /// Most per-session instances one isolated server may run at once. Default 64.
    pub max_sessions_per_server: Option<Count>,
    /// Most client sessions the gateway keeps at once. Default 10000.
    pub max_sessions: Option<Count>,
    /// How long an idle session made for a `tools/call` without `initialize` lives. Default 60s.
    pub auto_session_idle_timeout: Option<DurationValue>,
    /// How long a client may take to send a request's body once its headers are in. Default 30s.
    pub body_timeout: Option<DurationValue>,
    /// How often remote (`url`) servers are pinged; 0 turns pings off. Default 30s.
    pub ping_interval: Option<IntervalValue>,
}

/// One server of the mcpServers shape: exactly one of `command`, `container` or `url`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct McpServer {
    /// `local`/`stdio` (a process or container), `http` (Streamable HTTP) or `sse` (the
    /// 2024-11-05 HTTP+SSE transport; `url` is the SSE endpoint). Default: `http` when `url` is
    /// set, else `stdio`.
    #[serde(rename = "type")]
    pub server_type: Option<ServerType>,
    /// Program to run as a local stdio server.
    pub command: Option<String>,
    /// Arguments of `command`.
    pub args: Option<Vec<String>>,
    /// Environment variables; `""` passes the gateway's own value through.
    pub env: Option<BTreeMap<String, String>>,
    /// Directory the process starts in (alias `workingDirectory`).
    #[serde(alias = "workingDirectory")]
    pub cwd: Option<String>,
    /// Container image to run as a stdio server, instead of `command`.
    pub container: Option<String>,
    /// Replaces the image's entrypoint (container only).
    pub entrypoint: Option<String>,
    /// Arguments after the image name (container only).
    pub entrypoint_args: Option<Vec<String>>,
    /// Bind mounts `"/host:/container[:ro|rw]"`, mode `ro` by default (container only).
    pub mounts: Option<Vec<String>>,
    /// Container network (container only).
    pub network: Option<String>,
    /// URL of a remote Streamable HTTP server.
    pub url: Option<String>,
    /// HTTP headers for the remote server (url only); values are secrets.
    pub headers: Option<BTreeMap<String, String>>,
    /// PEM file of the certificate authorities trusted for this `https://` server (url only).
    pub ca_file: Option<String>,
    /// Allow-list of tool names; absent or `["*"]` means all tools.
    pub tools: Option<Vec<String>>,
    /// Overrides the gateway's request timeout for this server.
    pub request_timeout: Option<DurationValue>,
    /// `shared` or `session` (a process or container per client session). Default `shared`.
    pub isolation: Option<IsolationMode>,
    /// With isolation `session`: stop a session's idle instance after this long.
    pub idle_timeout: Option<DurationValue>,
    /// With isolation `session`: variables a client may set with `ENV_<NAME>` headers.
    pub env_from_headers: Option<Vec<String>>,
    /// How often this server is pinged; 0 turns pings off. Default: the gateway's
    /// `pingInterval` for `url` servers, off for stdio and container servers.
    pub ping_interval: Option<IntervalValue>,
    /// Retries of idempotent requests after a connection error or HTTP 502/503/504 (url only).
    /// Default 2.
    pub retries: Option<Count>,
    /// mcpx-style tool policy: `allow_tools`, `deny_tools`, `read_only`, `tool_rules`.
    pub policy: Option<flowguard_guard::policy::mcpx::RawServerPolicy>,
    /// A header carrying the caller's verified subject to this remote server.
    pub subject_header: Option<String>,
    /// This server's inspection: any `inspect` key (snake_case), over the global one's.
    pub inspect: Option<super::inspect::RawInspect>,
}

impl From<McpServer> for RawServer {
    fn from(s: McpServer) -> Self {
        RawServer {
            server_type: s.server_type,
            command: s.command,
            args: s.args,
            env: s.env,
            working_directory: s.cwd,
            container: s.container,
            entrypoint: s.entrypoint,
            entrypoint_args: s.entrypoint_args,
            mounts: s.mounts,
            network: s.network,
            url: s.url,
            headers: s.headers,
            ca_file: s.ca_file,
            tools: s.tools,
            request_timeout: s.request_timeout,
            isolation: s.isolation,
            idle_timeout: s.idle_timeout,
            env_from_headers: s.env_from_headers,
            ping_interval: s.ping_interval,
            retries: s.retries,
            policy: s.policy,
            subject_header: s.subject_header,
            inspect: s.inspect,
        }
    }
}

/// The listen address the mcpServers shape asks for, before validation.
#[derive(Debug, Clone, Default)]
pub(crate) struct PortAndDomain {
    pub port: Option<Count>,
    pub domain: Option<String>,
}

impl McpGateway {
    /// Splits into the common gateway settings and the shape's own `port`/`domain`.
    pub(crate) fn into_parts(self) -> (RawGateway, PortAndDomain) {
        let common = RawGateway {
            listen: self.listen,
            mode: self.mode,
            agent_id: self.agent_id,
            agent_ids: self.agent_ids,
            api_key: self.api_key,
            request_timeout: self.request_timeout,
            startup_timeout: self.startup_timeout,
            shutdown_grace: self.shutdown_grace,
            tool_prefix: self.tool_prefix,
            separator: self.separator,
            page_size: self.page_size,
            allowed_hosts: self.allowed_hosts,
            allowed_origins: self.allowed_origins,
            container_runtime: self.container_runtime,
            max_line_bytes: self.max_line_bytes,
            stderr_lines: self.stderr_lines,
            session_idle_timeout: self.session_idle_timeout,
            max_sessions_per_server: self.max_sessions_per_server,
            max_sessions: self.max_sessions,
            auto_session_idle_timeout: self.auto_session_idle_timeout,
            body_timeout: self.body_timeout,
            ping_interval: self.ping_interval,
        };
        (
            common,
            PortAndDomain {
                port: self.port,
                domain: self.domain,
            },
        )
    }
}
