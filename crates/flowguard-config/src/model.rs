//! The validated runtime model: what the rest of the gateway reads.
//!
//! Every value here has passed validation (see `validate`), so consumers never re-check ids,
//! durations, mounts or URLs. The raw, serde-facing model lives in `raw`; nothing outside this
//! crate sees it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Gateway-wide settings, defaults filled in.
    pub gateway: GatewaySettings,
    /// The configured servers, sorted by id so that every run (and every syntax of the same
    /// configuration) sees the same order; file order is not kept.
    pub servers: Vec<ServerConfig>,
    /// Named virtual servers (`/mcp/<name>`), sorted by name: chosen tools of several servers.
    pub virtual_servers: Vec<VirtualServer>,
    /// Where the configuration came from: a file path, or `<stdin>`.
    pub source: String,
    /// Authentication, roles, policy and limits, compiled.
    pub guard: Guard,
    /// The audit log, when `[audit]` is set.
    pub audit: Option<AuditSettings>,
    /// `[storage]`, defaults filled in.
    pub storage: StorageSettings,
    /// `[metrics]`.
    pub metrics: MetricsSettings,
    /// `[tracing]`, when an endpoint is set.
    pub tracing: Option<TracingSettings>,
    /// `[alerts]`, when a webhook is set.
    pub alerts: Option<AlertSettings>,
    /// `[inspect]`, when written.
    pub inspect: Option<InspectSettings>,
}

/// What an inspection does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InspectMode {
    Off,
    /// Log and audit; pass.
    Warn,
    /// Hold the item back (`enforce`, `quarantine`).
    Enforce,
}

/// `[inspect]` (docs/inspection.md).
#[derive(Debug, Clone, PartialEq)]
pub struct InspectSettings {
    pub pins: InspectMode,
    pub poison: InspectMode,
    pub secrets_in: SecretAction,
    pub secrets_out: SecretAction,
    pub secret_rules: Option<Vec<String>>,
    /// Server id → rule ids it may receive and send.
    pub allow_secrets: Vec<(String, Vec<String>)>,
    pub injection_in: InspectMode,
    pub injection_out: InspectMode,
    pub injection_threshold: f32,
    /// mcpgw's scores instead of FlowGuard's.
    pub injection_mcpgw_scores: bool,
    /// 0.7, 1.0 or 1.5.
    pub injection_sensitivity: f32,
    pub response_patterns: Vec<String>,
    pub max_scan_bytes: usize,
    pub schema: InspectMode,
    /// `schema = "strict"`.
    pub schema_strict: bool,
    pub risk: InspectMode,
    /// "low", "medium", "high".
    pub auto_approve: Vec<String>,
    pub high_risk_tools: Option<Vec<String>>,
    pub medium_risk_tools: Option<Vec<String>>,
    /// Servers with an `inspect` section of their own: their whole settings.
    pub per_server: Vec<(String, InspectSettings)>,
}

impl InspectSettings {
    /// Whether pins or risk status are kept (in this section or a server's): storage is needed.
    pub fn needs_storage(&self) -> bool {
        let own = self.pins != InspectMode::Off || self.risk != InspectMode::Off;
        own || self.per_server.iter().any(|(_, s)| s.needs_storage())
    }

    /// The settings for `server`.
    pub fn for_server(&self, server: &str) -> &InspectSettings {
        self.per_server
            .iter()
            .find(|(s, _)| s == server)
            .map_or(self, |(_, i)| i)
    }
}

/// What the secret detector does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAction {
    Off,
    Detect,
    Redact,
    Block,
}

/// `[storage]`: where state is kept. `url` None = `<data_dir>/flowguard.db`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StorageSettings {
    pub url: Option<String>,
    pub schema: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub secret_key_file: Option<PathBuf>,
    /// Whether the section was written (storage is opened at start-up then, even when nothing
    /// else needs it, so a bad URL shows at once).
    pub configured: bool,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            listen: None,
        }
    }
}

/// `[tracing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    pub otlp_endpoint: String,
    pub service_name: String,
    pub sample_ratio: f64,
    pub headers: Vec<(String, String)>,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    pub webhook: String,
    /// 0 info, 1 warning, 2 critical.
    pub min_severity: u8,
    pub rules: Option<Vec<String>>,
    pub window: Duration,
    pub queue: usize,
    pub headers: Vec<(String, String)>,
}

/// `[audit]`, validated (docs/audit.md).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditSettings {
    pub log: PathBuf,
    pub key: Option<PathBuf>,
    pub verify_key: Option<PathBuf>,
    pub checkpoint_records: u64,
    pub checkpoint_interval: Duration,
    pub rotate_bytes: u64,
    pub keep_files: Option<usize>,
    pub queue: usize,
    pub fail_closed: bool,
    /// Records are copied to storage.
    pub store: bool,
    /// Token claims whose values label each record.
    pub label_claims: Vec<String>,
    /// Where each checkpoint is POSTed as it is made.
    pub checkpoint_webhook: Option<String>,
}

/// The guard's compiled setup. Two configs are equal here when they compile the same
/// sections; the comparison looks at what decides (rule names, clients, limits), enough for
/// the tests that compare one config written in several syntaxes.
#[derive(Debug, Clone, Default)]
pub struct Guard(pub std::sync::Arc<flowguard_guard::setup::Setup>);

impl PartialEq for Guard {
    fn eq(&self, other: &Self) -> bool {
        let key = |g: &Guard| {
            let s = &*g.0;
            let rules: Vec<Vec<String>> = s
                .rule_sets
                .iter()
                .map(|r| r.rules.iter().map(|x| x.name.to_string()).collect())
                .collect();
            let keys: Vec<String> = s.auth.api_keys.iter().map(|k| k.name.to_string()).collect();
            format!(
                "{rules:?}{keys:?}{:?}{:?}",
                s.auth.required,
                s.limits.rates.len()
            )
        };
        key(self) == key(other)
    }
}

/// Gateway-wide settings. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewaySettings {
    /// Address to listen on; `None` lets the command line decide.
    pub listen: Option<SocketAddr>,
    /// Routing mode; `None` lets the command line decide.
    pub mode: Option<Mode>,
    /// How long a request may wait for a server's answer.
    pub request_timeout: Duration,
    /// How long a server may take to start and answer `initialize`.
    pub startup_timeout: Duration,
    /// How long in-flight requests may finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// When unified mode prefixes tool names with the server id.
    pub tool_prefix: PrefixMode,
    /// Text between server id and tool name in prefixed tool names.
    pub separator: String,
    /// Items per page of aggregated lists; 0 means no pagination.
    pub page_size: usize,
    /// `Host` header values accepted besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// `Origin` header values accepted besides the loopback ones.
    pub allowed_origins: Vec<String>,
    /// Container runtime; `None` means detect at run time.
    pub container_runtime: Option<ContainerRuntime>,
    /// Longest line a stdio server may write before it is treated as broken.
    pub max_line_bytes: usize,
    /// How many stderr lines of each server are kept for diagnostics.
    pub stderr_lines: usize,
    /// How long an idle client session lives.
    pub session_idle_timeout: Duration,
    /// Most per-session children (or containers) one isolated server may have at once.
    pub max_sessions_per_server: usize,
    /// Most client sessions kept at once.
    pub max_sessions: usize,
    /// How long an idle session made for a `tools/call` without `initialize` lives.
    pub auto_session_idle_timeout: Duration,
    /// How long a request's body may take to arrive once its headers are in.
    pub body_timeout: Duration,
    /// How often remote servers are pinged by default; `None` means never.
    pub ping_interval: Option<Duration>,
}

/// Default request timeout: long enough for slow tools, short enough to notice a hang.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default startup timeout (the MCP Gateway Specification's 30 s).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default shutdown grace (the MCP Gateway Specification's ~30 s for in-flight requests).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Default separator: three underscores are valid in tool names and rare inside them.
pub const DEFAULT_SEPARATOR: &str = "___";
/// Default line limit, 16 MiB: large tool results fit, a runaway server does not eat memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Default stderr ring size: enough context for a crash report.
pub const DEFAULT_STDERR_LINES: usize = 200;
/// Default ping interval for remote servers: frequent enough to notice a dead peer (or a proxy
/// that silently dropped the connection) within about two minutes, rare enough to cost nothing.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// Default retries of idempotent requests to a remote server.
pub const DEFAULT_RETRIES: u32 = 2;
/// Default idle session lifetime (the MCP Gateway Specification's 6 h).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(6 * 60 * 60);
/// Default cap on per-session children of one isolated server: enough for a team's clients, few
/// enough that a client opening sessions in a loop cannot exhaust the host's processes.
pub const DEFAULT_MAX_SESSIONS_PER_SERVER: usize = 64;
/// Default cap on client sessions: about 13 MB of session state (docs/benchmarks.md).
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;
/// Default life of an idle session made for a `tools/call` without `initialize`: such clients
/// rarely come back with the id, so their sessions must not pile up for the 6 h of the others.
pub const DEFAULT_AUTO_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a request's body may take to arrive: a client that stalls mid-body must not
/// hold a connection (and the memory of its body) for ever.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: None,
            mode: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tool_prefix: PrefixMode::Always,
            separator: DEFAULT_SEPARATOR.to_owned(),
            page_size: 0,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            container_runtime: None,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            stderr_lines: DEFAULT_STDERR_LINES,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            max_sessions_per_server: DEFAULT_MAX_SESSIONS_PER_SERVER,
            max_sessions: DEFAULT_MAX_SESSIONS,
            auto_session_idle_timeout: DEFAULT_AUTO_SESSION_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            ping_interval: Some(DEFAULT_PING_INTERVAL),
        }
    }
}

/// How servers are exposed over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each server at `/mcp/<id>`.
    Routed,
    /// All servers aggregated at `/mcp`.
    Unified,
    /// Both endpoints.
    Both,
}

impl Mode {
    /// The config file's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Routed => "routed",
            Mode::Unified => "unified",
            Mode::Both => "both",
        }
    }
}

/// When aggregated tool names carry the server id as a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrefixMode {
    /// Always `<id><separator><tool>`.
    Always,
    /// Only when two servers offer the same tool name.
    Conditional,
    /// Never; a clash of names is an error at run time.
    Never,
}

/// The program that runs container servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerRuntime {
    /// `docker`.
    Docker,
    /// `podman`.
    Podman,
}

impl ContainerRuntime {
    /// The executable to run.
    pub fn program(&self) -> &'static str {
        match self {
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::Podman => "podman",
        }
    }
}

impl FromStr for ContainerRuntime {
    type Err = String;

    /// Parses `docker` or `podman` (for command-line flags and environment variables).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "docker" => Ok(ContainerRuntime::Docker),
            "podman" => Ok(ContainerRuntime::Podman),
            other => Err(format!(
                "unknown container runtime `{other}`, expected `docker` or `podman`"
            )),
        }
    }
}

/// One configured server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Unique id: `[A-Za-z0-9_-]+`, never containing the separator.
    pub id: String,
    /// How to reach the server.
    pub transport: Transport,
    /// Tool allow-list; `None` means all tools.
    pub tools: Option<Vec<String>>,
    /// Per-server override of the gateway's request timeout.
    pub request_timeout: Option<Duration>,
    /// How often the server is pinged; `None` means never. Already resolved against the
    /// gateway default (remote servers) at load time.
    pub ping_interval: Option<Duration>,
    /// How many times an idempotent request to a remote server is retried.
    pub retries: u32,
    /// One instance for all client sessions, or one per session.
    pub isolation: Isolation,
}

/// A named virtual server: an endpoint offering chosen tools of several servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// Its name, under the same rules as server ids and distinct from every one of them.
    pub name: String,
    /// The exposed tools, in configuration order; exposed names are unique.
    pub tools: Vec<VirtualTool>,
}

/// One tool of a virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualTool {
    /// The id of a configured server.
    pub server: String,
    /// The server's own name of the tool.
    pub tool: String,
    /// The name the virtual server shows it under (`tool` unless renamed).
    pub name: String,
}

/// Whether client sessions share one instance of a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Isolation {
    /// One process, container or remote session for every client session.
    #[default]
    Shared,
    /// Each client session gets its own process or container (stdio and container servers).
    Session(SessionIsolation),
}

/// The settings of a server isolated per session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionIsolation {
    /// A session's instance idle this long is stopped (and started again on next use).
    pub idle_timeout: Option<Duration>,
    /// Variables a client may set for its own instance with `ENV_<NAME>` request headers.
    pub env_from_headers: Vec<String>,
}

impl Isolation {
    /// The per-session settings, when the server is isolated.
    pub fn session(&self) -> Option<&SessionIsolation> {
        match self {
            Isolation::Shared => None,
            Isolation::Session(s) => Some(s),
        }
    }
}

/// How the gateway talks to a server.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// A local process speaking JSON-RPC over stdin/stdout.
    Stdio(ProcessSpec),
    /// A container speaking JSON-RPC over stdin/stdout.
    Container(ContainerSpec),
    /// A remote Streamable HTTP server.
    Http(HttpSpec),
    /// A remote server on the 2024-11-05 HTTP+SSE transport; `url` is its SSE endpoint.
    Sse(HttpSpec),
}

/// A local process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSpec {
    /// Program to run (looked up in `PATH` when not a path).
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment, in key order.
    pub env: Vec<(String, EnvValue)>,
    /// Directory to start in; checked to exist at load time.
    pub working_directory: Option<PathBuf>,
}

/// A container run with `docker run -i` or `podman run -i`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// Copied from the gateway setting; `None` means detect at run time.
    pub runtime: Option<ContainerRuntime>,
    /// Overrides the image's entrypoint.
    pub entrypoint: Option<String>,
    /// Arguments after the image name.
    pub entrypoint_args: Vec<String>,
    /// Environment passed with `-e`, in key order.
    pub env: Vec<(String, EnvValue)>,
    /// Bind mounts.
    pub mounts: Vec<Mount>,
    /// Container network (`--network`).
    pub network: Option<String>,
    /// Working directory inside the container (absolute).
    pub working_directory: Option<PathBuf>,
}

/// A bind mount; both paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Path on the host.
    pub host: PathBuf,
    /// Path in the container.
    pub container: PathBuf,
    /// Mounted read-only (the default when no mode is given).
    pub read_only: bool,
}

/// A remote server (Streamable HTTP or HTTP+SSE).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    /// `http://` or `https://` URL with a host.
    pub url: String,
    /// Headers sent with every request; values are secrets (tokens, mostly).
    pub headers: Vec<(String, Secret<String>)>,
    /// PEM file of the CAs trusted for an `https://` URL instead of the system's roots; it
    /// existed when the configuration was loaded.
    pub ca_file: Option<PathBuf>,
    /// A header that carries the verified subject of the caller to this server.
    pub subject_header: Option<String>,
}

/// One environment variable of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// Set to this value.
    Set(String),
    /// Written as `""`: the gateway's own value of the same variable is passed through.
    Passthrough,
}

/// A value that must never reach a log: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret itself; call only where the value is sent, never where it is logged.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("Bearer abc".to_owned());
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "Bearer abc");
    }

    #[test]
    fn container_runtime_parses_and_names_its_program() {
        assert_eq!(
            "docker".parse::<ContainerRuntime>(),
            Ok(ContainerRuntime::Docker)
        );
        assert_eq!(
            "podman".parse::<ContainerRuntime>().unwrap().program(),
            "podman"
        );
        let err = "dockr".parse::<ContainerRuntime>().unwrap_err();
        assert!(err.contains("`docker` or `podman`"), "{err}");
    }

    #[test]
    fn defaults_match_the_documentation() {
        let settings = GatewaySettings::default();
        assert_eq!(settings.request_timeout, Duration::from_secs(60));
        assert_eq!(settings.separator, "___");
        assert_eq!(settings.max_line_bytes, 16_777_216);
        assert_eq!(settings.session_idle_timeout, Duration::from_secs(21_600));
    }
}
