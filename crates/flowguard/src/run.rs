//! Running the gateway: load the config, clean up after a predecessor that was killed, start the
//! servers, listen, and drain on `/close`, SIGTERM or Ctrl-C.

use crate::cli::RunArgs;
use crate::startup;
use anyhow::{anyhow, Context};
use flowguard_config::{Config, Mode, Transport};
use flowguard_gateway::Gateway;
use flowguard_upstream::{container, orphans};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code for a configuration the gateway cannot run with.
pub(crate) const EXIT_CONFIG: u8 = 2;

/// Sets the variables of a `.env` file that the environment does not already have: a value
/// given in the shell wins, as with docker compose and dotenv.
pub fn load_env_file(path: &Path) -> Result<(), flowguard_config::ConfigError> {
    for (k, v) in flowguard_config::load_env_file(path)? {
        if std::env::var_os(&k).is_some() {
            eprintln!(
                "note: {k} is set in the environment; its value in {} is not used",
                path.display()
            );
            continue;
        }
        // Single-threaded here: the runtime has not started yet.
        std::env::set_var(k, v);
    }
    Ok(())
}

fn load_config(args: &RunArgs) -> Result<Config, String> {
    if let Some(env) = &args.env {
        load_env_file(env).map_err(|e| e.to_string())?;
    }
    if args.config_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("error: reading the config from stdin: {e}"))?;
        let env = |k: &str| std::env::var(k).ok();
        flowguard_config::load_str(&text, flowguard_config::Format::Json, "<stdin>", &env)
            .map_err(|e| e.to_string())
    } else {
        if !args.config.exists() {
            return Err(format!(
                "error: config file {} not found\nhint: pass one with -c FILE (try examples/demo.toml), or pipe JSON with --config-stdin",
                args.config.display()
            ));
        }
        flowguard_config::load_file(&args.config).map_err(|e| e.to_string())
    }
}

fn listen_addr(args: &RunArgs, config: &Config) -> Result<SocketAddr, String> {
    match &args.listen {
        Some(text) => {
            let text = text.replace("localhost:", "127.0.0.1:");
            text.parse()
                .map_err(|e| format!("error: --listen {text:?} is not host:port ({e})"))
        }
        None => Ok(config
            .gateway
            .listen
            .unwrap_or_else(|| "127.0.0.1:3000".parse().expect("valid"))),
    }
}

/// Threads serving HTTP connections: `FLOWGUARD_WORKER_THREADS` when set; otherwise one per CPU
/// when every configured server is remote, and half the CPUs (at least one) when some run on
/// this machine. Local servers (stdio programs, containers) do the actual work of every call on
/// the same CPUs, and on two cores a second gateway thread took more from them than it gave (one
/// thread measured 1.1–1.2× the stdio throughput of two); a gateway of remote servers has the
/// machine to itself, and there two threads measured more HTTP passthrough throughput than one
/// (docs/benchmarks.md).
pub(crate) fn worker_threads(config: &Config) -> usize {
    std::env::var("FLOWGUARD_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            default_workers(cpus, config)
        })
}

fn default_workers(cpus: usize, config: &Config) -> usize {
    let all_remote = !config.servers.is_empty()
        && config
            .servers
            .iter()
            .all(|s| matches!(s.transport, Transport::Http(_) | Transport::Sse(_)));
    if all_remote {
        cpus.max(1)
    } else {
        (cpus / 2).max(1)
    }
}

/// The main runtime: tokio's single-threaded scheduler on the main thread (no work-stealing
/// queues, no cross-thread wake-ups). It runs the servers' links and supervisors, the first
/// share of the HTTP connections, and the stdio front end; further worker threads, each with a
/// runtime like it, take the other HTTP connections (`downstream::serve`).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub fn run(args: RunArgs) -> ExitCode {
    let mut config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = crate::policy_cmd::add_policy_files(&mut config, &args.policy) {
        eprintln!("{e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let listen = match listen_addr(&args, &config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Err(e) = exposure_check(&config, listen) {
        eprintln!("{e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    guard_notes(&config);
    let mode = match (args.routed, args.unified) {
        (true, _) => Mode::Routed,
        (_, true) => Mode::Unified,
        _ => config.gateway.mode.unwrap_or(Mode::Both),
    };
    if let Some(configured) = config.gateway.mode.filter(|m| *m != mode) {
        eprintln!(
            "note: {} overrides mode = \"{}\" from {}",
            if args.routed { "--routed" } else { "--unified" },
            configured.as_str(),
            config.source
        );
    }
    let store = match open_store(&args, &config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let audit = match open_audit(&args, config.audit.as_ref(), store.clone()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = runtime();
    match runtime.block_on(serve(
        config,
        mode,
        listen,
        args.print_client_config,
        audit,
        store,
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A gateway reachable from other machines with nobody authenticated is refused, unless the
/// operator opted out on purpose.
fn exposure_check(config: &Config, listen: SocketAddr) -> Result<(), String> {
    let auth = &config.guard.0.auth;
    // Keys or tokens required, or a list of agent ids (the specification's shared secret).
    let guarded = (auth.verifies() && auth.required) || matches!(auth.agent_id, Some(Some(_)));
    if listen.ip().is_loopback() || guarded || auth.allow_unauthenticated {
        return Ok(());
    }
    Err(format!(
        "error: {listen} is reachable from other machines and no client authentication is required, so anyone who can connect could use every server\n\
         hint: configure [auth] (api_keys, jwt or oauth; see docs/security.md), listen on 127.0.0.1, or set auth.allow_unauthenticated = true to accept this on purpose"
    ))
}

/// What the operator should know about the guard before the first request.
pub(crate) fn guard_notes(config: &Config) {
    let g = &config.guard.0;
    for w in &g.warnings {
        eprintln!("warning: {w}");
    }
    if g.has_policy() && !g.auth.verifies() {
        eprintln!("note: the policy decides on identities that clients only assert (no api_keys, jwt or oauth under [auth]); a client can claim any subject");
    }
}

/// Removes what a gateway killed with SIGKILL left behind: processes carrying a dead owner's
/// tag, and containers named after one.
pub(crate) async fn clean_up_predecessors(config: &Config) {
    let killed = orphans::reap_orphans();
    if killed > 0 {
        tracing::warn!("ended {killed} process(es) left by a gateway that is no longer running");
    }
    let runtimes: std::collections::BTreeSet<&str> = config
        .servers
        .iter()
        .filter_map(|s| match &s.transport {
            Transport::Container(c) => Some(container::detect_runtime(
                c.runtime.or(config.gateway.container_runtime),
            )),
            _ => None,
        })
        .collect();
    for rt in runtimes {
        let removed = container::remove_stale(rt).await;
        if !removed.is_empty() {
            tracing::warn!(
                "removed {} stale container(s) left by a gateway that is gone: {}",
                removed.len(),
                removed.join(", ")
            );
        }
    }
}

/// The audit writer, when `--audit-log` or `[audit]` turns the audit on; keys are made at
/// first use. The flags win over the config.
fn open_audit(
    args: &RunArgs,
    config: Option<&flowguard_config::AuditSettings>,
    store: Option<Arc<flowguard_store::Store>>,
) -> Result<Option<Arc<flowguard_gateway::audit::Auditor>>, String> {
    let Some(path) = args
        .audit_log
        .clone()
        .or_else(|| config.map(|c| c.log.clone()))
    else {
        return Ok(None);
    };
    let mut opts = flowguard_audit::Options::new(&path);
    let (mut queue, mut fail_closed) = (65_536, false);
    if let Some(c) = config {
        if let Some(k) = &c.key {
            opts.seal = k.clone();
        }
        if let Some(v) = &c.verify_key {
            opts.verify_key = v.clone();
        }
        opts.checkpoint_records = c.checkpoint_records;
        opts.checkpoint_every = c.checkpoint_interval;
        opts.rotate_bytes = c.rotate_bytes;
        opts.keep_files = c.keep_files;
        (queue, fail_closed) = (c.queue, c.fail_closed);
    }
    if let Some(k) = &args.audit_key {
        opts.seal = k.clone();
    }
    let store = store.filter(|_| config.is_none_or(|c| c.store));
    let webhook = config.and_then(|c| c.checkpoint_webhook.clone());
    let a = flowguard_gateway::audit::Auditor::start(opts, queue, fail_closed, store, webhook).map_err(|e| {
        format!("error: the audit log cannot be opened: {e}\nhint: the log's keys live beside it unless [audit] key/verify_key say otherwise (docs/audit.md)")
    })?;
    let a = a.with_label_claims(config.map(|c| c.label_claims.clone()).unwrap_or_default());
    eprintln!("audit: recording every verdict to {}", path.display());
    Ok(Some(a))
}

/// Storage, opened at start-up when `[storage]` is written or the audit is on (its records are
/// copied there for queries); a database that cannot be reached stops the start with a clear
/// error.
fn open_store(
    args: &RunArgs,
    config: &Config,
) -> Result<Option<Arc<flowguard_store::Store>>, String> {
    let s = &config.storage;
    let audit_copies = config
        .audit
        .as_ref()
        .map_or(args.audit_log.is_some(), |a| a.store);
    // Pins and servers' risk status are kept in storage.
    let inspect = config.inspect.as_ref().is_some_and(|i| i.needs_storage());
    let wanted = s.configured || audit_copies || inspect;
    if !wanted {
        return Ok(None);
    }
    let store = crate::store_cmd::open(s, args.data_dir.as_deref())?;
    eprintln!("storage: {}", store.describe());
    Ok(Some(Arc::new(store)))
}

async fn serve(
    config: Config,
    mode: Mode,
    listen: SocketAddr,
    print_config: bool,
    audit: Option<Arc<flowguard_gateway::audit::Auditor>>,
    store: Option<Arc<flowguard_store::Store>>,
) -> anyhow::Result<()> {
    // The port first: a busy one is reported before any server starts.
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow!("cannot listen on {listen}: {e}\nhint: pick another address with -l 127.0.0.1:PORT")
    })?;
    let bound = listener.local_addr().context("reading the bound address")?;
    clean_up_predecessors(&config).await;
    let source = config.source.clone();
    let startup_timeout = config.gateway.startup_timeout;
    let grace = config.gateway.shutdown_grace;
    let workers = worker_threads(&config);
    let metrics_listen = config.metrics.listen.filter(|_| config.metrics.enabled);
    let inspect = config.inspect.clone();
    let server_configs = config.servers.clone();
    let gw = Gateway::new(config, mode, orphans::owner_tag());
    if let Some(i) = inspect {
        let ins = flowguard_gateway::inspect::Inspector::new(
            i,
            &server_configs,
            store.clone(),
            audit.clone(),
        )
        .map_err(|e| anyhow!("[inspect]: {e}"))?;
        let _ = gw.catalog.inspector.set(Arc::new(ins));
    }
    if let Some(a) = audit {
        let _ = gw.audit.set(a);
    }
    if let Some(s) = store {
        let _ = gw.store.set(s);
    }
    let metrics_server = match metrics_listen {
        Some(addr) => Some(serve_metrics(gw.clone(), addr).await?),
        None => None,
    };
    startup::announce_servers(&gw, &source);
    // Listen at once: servers start in the background, `/health` shows them `starting`, and a
    // request to one that is still starting waits for it (bounded) or gets a clear error.
    gw.start();
    startup::announce_endpoints(&gw, bound, print_config);
    let progress = tokio::spawn({
        let gw = gw.clone();
        async move { startup::report_progress(&gw, startup_timeout).await }
    });
    let signals = tokio::spawn(shutdown_on_signals(gw.clone()));
    let hangups = tokio::spawn(ignore_hangups());
    let sweeper = tokio::spawn(expire_sessions(gw.clone()));
    flowguard_gateway::downstream::serve::set_housekeeping(crate::memory::collect);
    let app = flowguard_gateway::downstream::app(gw.clone(), bound);
    let drain = {
        let gw = gw.clone();
        async move {
            gw.lifecycle.shutdown_requested().await;
            let left = gw.lifecycle.drain(grace).await;
            if left > 0 {
                tracing::warn!("{left} request(s) still running after the {grace:?} grace period; stopping anyway");
            }
            gw.close_streams();
        }
    };
    // Connections that outlive the drain (a client holding a stream open, a request past the
    // grace period) get at most a second more: the exit takes about `shutdown_grace`, then
    // the servers' own stop (docs/config.md).
    let linger = grace.min(Duration::from_secs(1));
    let workers = flowguard_gateway::downstream::serve::serve(
        listener,
        gw.clone(),
        app,
        drain,
        linger,
        workers,
    )
    .await;
    if let Some(m) = metrics_server {
        m.abort();
    }
    signals.abort();
    hangups.abort();
    sweeper.abort();
    progress.abort();
    tracing::info!("stopping servers");
    gw.stop_servers().await;
    workers.stop();
    if let Some(a) = gw.audit.get() {
        // The last records and the shutdown checkpoint.
        a.close();
    }
    if let Some(t) = &gw.tracer {
        t.shutdown();
    }
    if let Some(a) = &gw.alerts {
        a.shutdown();
    }
    tracing::info!("stopped");
    Ok(())
}

/// `/metrics` alone on `[metrics] listen`, so that scrapers need no access to the MCP endpoints.
async fn serve_metrics(
    gw: Arc<Gateway>,
    addr: SocketAddr,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow!("cannot listen on {addr} for metrics ([metrics] listen): {e}"))?;
    eprintln!("metrics: http://{addr}/metrics");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let gw = gw.clone();
            async move { flowguard_gateway::health::metrics_reply(&gw) }
        }),
    );
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the metrics listener stopped: {e}");
        }
    }))
}

/// SIGHUP (a closed terminal, or an operator expecting a reload) is logged and ignored: its
/// default action would kill the gateway with every call in flight. Reloading the config is
/// not supported yet.
pub(crate) async fn ignore_hangups() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        tracing::warn!("SIGHUP ignored: FlowGuard does not reload its config yet; restart it to apply changes (SIGTERM or POST /close drain it first)");
    }
}

async fn shutdown_on_signals(gw: Arc<Gateway>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: draining"),
    }
    gw.lifecycle.begin_shutdown();
}

async fn expire_sessions(gw: Arc<Gateway>) {
    let mut tick = tokio::time::interval(gw.sweep_interval());
    loop {
        tick.tick().await;
        let n = gw.expire_idle_sessions();
        if n > 0 {
            tracing::info!("{n} idle session(s) expired");
        }
        gw.expire_idle_instances();
    }
}

#[cfg(test)]
mod tests {
    use super::default_workers;
    use flowguard_config::{load_str, Format};

    fn config(text: &str) -> flowguard_config::Config {
        load_str(text, Format::Toml, "test.toml", &|_| None).expect("a valid config")
    }

    #[test]
    fn remote_only_gateways_take_every_cpu_and_local_servers_leave_half() {
        let remote = config(
            "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\n\
             [servers.b]\nurl = \"http://127.0.0.1:2/sse\"\ntype = \"sse\"\n",
        );
        let mixed = config(
            "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\n\
             [servers.b]\ncommand = \"echo\"\n",
        );
        assert_eq!(default_workers(2, &remote), 2);
        assert_eq!(default_workers(8, &remote), 8);
        assert_eq!(default_workers(2, &mixed), 1);
        assert_eq!(default_workers(8, &mixed), 4);
        assert_eq!(default_workers(1, &mixed), 1);
    }
}
