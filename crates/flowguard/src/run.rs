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

pub fn load_env_file(path: &Path) -> Result<(), flowguard_config::ConfigError> {
    for (k, v) in flowguard_config::load_env_file(path)? {
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

/// Half the CPUs (at least one), unless `FLOWGUARD_WORKER_THREADS` says otherwise. The gateway
/// shares the machine with its stdio servers, and on a small machine a second worker thread
/// costs more in cross-thread wake-ups than it gains: on 2 cores one worker measured 1.5× the
/// HTTP passthrough throughput of two (docs/benchmarks.md).
pub(crate) fn worker_threads() -> usize {
    std::env::var("FLOWGUARD_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cpus / 2).max(1)
        })
}

/// The runtime: with one worker, tokio's single-threaded scheduler on the main thread (no
/// work-stealing queues, no cross-thread wake-ups); with more, the multi-threaded one.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    let mut builder = match worker_threads() {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all().build().expect("a tokio runtime")
}

pub fn run(args: RunArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let listen = match listen_addr(&args, &config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mode = match (args.routed, args.unified) {
        (true, _) => Mode::Routed,
        (_, true) => Mode::Unified,
        _ => config.gateway.mode.unwrap_or(Mode::Both),
    };
    let runtime = runtime();
    match runtime.block_on(serve(config, mode, listen, args.print_client_config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
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

async fn serve(
    config: Config,
    mode: Mode,
    listen: SocketAddr,
    print_config: bool,
) -> anyhow::Result<()> {
    clean_up_predecessors(&config).await;
    let source = config.source.clone();
    let startup_timeout = config.gateway.startup_timeout;
    let grace = config.gateway.shutdown_grace;
    let gw = Gateway::new(config, mode, orphans::owner_tag());
    startup::announce_servers(&gw, &source);
    gw.start();
    startup::report_progress(&gw, startup_timeout).await;
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            gw.stop_servers().await;
            return Err(anyhow!(
                "cannot listen on {listen}: {e}\nhint: pick another address with -l 127.0.0.1:PORT"
            ));
        }
    };
    let bound = listener.local_addr().context("reading the bound address")?;
    startup::announce_endpoints(&gw, bound, print_config);
    let signals = tokio::spawn(shutdown_on_signals(gw.clone()));
    let sweeper = tokio::spawn(expire_sessions(gw.clone()));
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
    // Connections that outlive the drain (a client holding a stream open) do not hold the exit.
    flowguard_gateway::downstream::serve::serve(
        listener,
        gw.clone(),
        app,
        drain,
        Duration::from_secs(5),
    )
    .await;
    signals.abort();
    sweeper.abort();
    tracing::info!("stopping servers");
    gw.stop_servers().await;
    tracing::info!("stopped");
    Ok(())
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
