//! `flowguard wrap -- CMD ARGS...` and `flowguard stdio`: the gateway with stdin/stdout as its
//! client connection. stdout carries only MCP messages; start-up lines and logs go to stderr.

use crate::run::{clean_up_predecessors, load_env_file, runtime, EXIT_CONFIG};
use flowguard_config::{Config, GatewaySettings, Mode, ProcessSpec, ServerConfig, Transport};
use flowguard_gateway::session::{Scope, VirtualEndpoint};
use flowguard_gateway::Gateway;
use flowguard_upstream::orphans;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// A server id from a command: its file name, with anything but `[A-Za-z0-9_-]` replaced.
fn id_from_command(command: &str) -> String {
    let base = Path::new(command)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("server");
    let id: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() {
        "server".into()
    } else {
        id
    }
}

fn load(config: Option<&Path>, env: Option<&Path>) -> Result<Option<Config>, String> {
    if let Some(env) = env {
        load_env_file(env).map_err(|e| e.to_string())?;
    }
    config
        .map(|c| flowguard_config::load_file(c).map_err(|e| e.to_string()))
        .transpose()
}

pub fn wrap(
    config: Option<PathBuf>,
    env: Option<PathBuf>,
    name: Option<String>,
    policy: Vec<PathBuf>,
    subject: Option<String>,
    command: Vec<String>,
) -> ExitCode {
    let (gateway, guard) = match load(config.as_deref(), env.as_deref()) {
        Ok(c) => c
            .map(|c| (c.gateway, c.guard))
            .unwrap_or_else(|| (GatewaySettings::default(), Default::default())),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (program, args) = command.split_first().expect("clap requires a command");
    let id = name.unwrap_or_else(|| id_from_command(program));
    let server = ServerConfig {
        id: id.clone(),
        transport: Transport::Stdio(ProcessSpec {
            command: program.clone(),
            args: args.to_vec(),
            env: vec![],
            working_directory: None,
        }),
        tools: None,
        request_timeout: None,
        isolation: Default::default(),
        // A wrapped child's exit is seen at once; retries apply only to remote servers.
        ping_interval: None,
        retries: 0,
    };
    let config = Config {
        gateway,
        servers: vec![server],
        virtual_servers: vec![],
        source: format!("wrap -- {program}"),
        guard,
        audit: None,
        storage: Default::default(),
        metrics: Default::default(),
        tracing: None,
        alerts: None,
        inspect: None,
    };
    let mut config = config;
    if let Err(e) = crate::policy_cmd::add_policy_files(&mut config, &policy) {
        eprintln!("{e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    crate::policy_cmd::set_stdio_subject(&mut config, subject);
    serve(config, Scope::Routed(Arc::from(id)))
}

pub fn serve_config(
    config: PathBuf,
    env: Option<PathBuf>,
    server: Option<String>,
    subject: Option<String>,
) -> ExitCode {
    let mut config = match load(Some(&config), env.as_deref()) {
        Ok(c) => c.expect("a path was given"),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    crate::policy_cmd::set_stdio_subject(&mut config, subject);
    let scope = match server {
        None => Scope::Unified,
        Some(id) if config.servers.iter().any(|s| s.id == id) => Scope::Routed(Arc::from(id)),
        Some(id) if config.virtual_servers.iter().any(|v| v.name == id) => {
            let v = config.virtual_servers.iter().find(|v| v.name == id);
            Scope::Virtual(Arc::new(VirtualEndpoint::new(v.expect("just found"))))
        }
        Some(id) => {
            let ids: Vec<&str> = config
                .servers
                .iter()
                .map(|s| s.id.as_str())
                .chain(config.virtual_servers.iter().map(|v| v.name.as_str()))
                .collect();
            eprintln!(
                "error: --server {id}: no such server in the config (configured: {})",
                ids.join(", ")
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    serve(config, scope)
}

/// `[inspect]` for a stdio front end: pins in storage (opened here when pins are on); there is
/// no audit on stdio yet, so findings are logged only.
fn inspector(
    config: &Config,
) -> Result<Option<Arc<flowguard_gateway::inspect::Inspector>>, String> {
    let Some(i) = config.inspect.clone() else {
        return Ok(None);
    };
    let store = if i.needs_storage() {
        Some(Arc::new(crate::store_cmd::open(&config.storage, None)?))
    } else {
        None
    };
    let ins = flowguard_gateway::inspect::Inspector::new(i, &config.servers, store, None)
        .map_err(|e| format!("error: [inspect]: {e}"))?;
    Ok(Some(Arc::new(ins)))
}

fn serve(config: Config, scope: Scope) -> ExitCode {
    crate::run::guard_notes(&config);
    let runtime = runtime();
    runtime.block_on(async move {
        clean_up_predecessors(&config).await;
        let startup_timeout = config.gateway.startup_timeout;
        let source = config.source.clone();
        let mode = if scope == Scope::Unified {
            Mode::Unified
        } else {
            Mode::Routed
        };
        let inspector = match inspector(&config) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let gw = Gateway::new(config, mode, orphans::owner_tag());
        if let Some(i) = inspector {
            let _ = gw.catalog.inspector.set(i);
        }
        crate::startup::announce_servers(&gw, &source);
        gw.start();
        // The client is served at once; a request waits for its server (bounded).
        let progress = tokio::spawn({
            let gw = gw.clone();
            async move { crate::startup::report_progress(&gw, startup_timeout).await }
        });
        let hangups = tokio::spawn(crate::run::ignore_hangups());
        // The one stdio session lives as long as stdin; only its instances can idle out.
        let sweeper = tokio::spawn({
            let gw = gw.clone();
            async move {
                let mut tick = tokio::time::interval(gw.sweep_interval());
                loop {
                    tick.tick().await;
                    gw.expire_idle_instances();
                }
            }
        });
        let served = flowguard_gateway::downstream::stdio::serve(
            gw.clone(),
            scope,
            tokio::io::stdin(),
            tokio::io::stdout(),
        )
        .await;
        sweeper.abort();
        progress.abort();
        hangups.abort();
        gw.stop_servers().await;
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::id_from_command;

    #[test]
    fn ids_come_from_the_command_name() {
        assert_eq!(id_from_command("/usr/bin/node"), "node");
        assert_eq!(id_from_command("mcp-server.py"), "mcp-server_py");
        assert_eq!(id_from_command(""), "server");
    }
}
