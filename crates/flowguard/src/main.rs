//! `flowguard`: parses the command line, starts logging, runs the gateway or a config command,
//! and turns errors into exit codes (2 for a bad configuration, 1 for anything else).
#![deny(unsafe_code)]

mod audit_cmd;
mod cli;
mod corpus_cmd;
mod enable;
mod memory;
mod pins_cmd;
mod policy_cmd;
mod run;
mod startup;
mod stdio;
mod store_cmd;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: a forwarded message costs dozens of small
/// allocations (hyper, axum, the envelope), and glibc's malloc/free was a fifth of the
/// gateway's instructions per request (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    match cli.command {
        Some(cli::Command::Config { action }) => cli::config_command(action),
        Some(cli::Command::Wrap {
            config,
            env,
            name,
            policy,
            subject,
            command,
        }) => stdio::wrap(config, env, name, policy, subject, command),
        Some(cli::Command::Policy { action }) => match action {
            cli::PolicyAction::Validate { files } => policy_cmd::validate(&files),
            cli::PolicyAction::Test {
                files,
                scenarios,
                method,
                tool,
                args,
                server,
                subject,
                client,
                roles,
                scopes,
            } => {
                let mut params = serde_json::Map::new();
                if let Some(t) = tool {
                    let key = if method.starts_with("resources/") {
                        "uri"
                    } else {
                        "name"
                    };
                    params.insert(key.into(), t.into());
                }
                if let Some(a) = args {
                    match flowguard_guard::args::parse_strict(&a) {
                        Ok(v) => drop(params.insert("arguments".into(), v)),
                        Err(e) => {
                            eprintln!("error: --args is not JSON: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
                let one = policy_cmd::Scenario {
                    method,
                    params: Some(serde_json::Value::Object(params)),
                    subject,
                    roles,
                    server,
                    client,
                    scopes,
                    ..Default::default()
                };
                policy_cmd::test(&files, scenarios.as_deref(), one)
            }
            cli::PolicyAction::Diff {
                old,
                new,
                scenarios,
                config,
                subject,
                client,
                roles,
                scopes,
            } => match (scenarios, config) {
                (Some(s), _) => policy_cmd::diff(&old, &new, &s),
                (None, Some(c)) => {
                    let who = policy_cmd::Scenario {
                        subject,
                        client,
                        roles,
                        scopes,
                        ..Default::default()
                    };
                    policy_cmd::diff_tools(&old, &new, &c, &who)
                }
                (None, None) => unreachable!("clap requires --scenarios or --config"),
            },
        },
        Some(cli::Command::Auth { action }) => match action {
            cli::AuthAction::HashKey { stdin } => policy_cmd::hash_key(stdin),
        },
        Some(cli::Command::Audit { action }) => match action {
            cli::AuditAction::Verify {
                files,
                key,
                checkpoints,
            } => audit_cmd::verify(&files, key, checkpoints),
            cli::AuditAction::Query(q) => store_cmd::query(*q),
        },
        Some(cli::Command::Pins { action }) => pins_cmd::run(action),
        Some(cli::Command::Servers { action }) => pins_cmd::servers(action),
        Some(cli::Command::Inspect { action }) => match action {
            cli::InspectAction::Corpus { dir, misses } => corpus_cmd::run(&dir, misses),
        },
        Some(cli::Command::Stdio {
            config,
            env,
            server,
            subject,
        }) => stdio::serve_config(config, env, server, subject),
        Some(cli::Command::Enable {
            client,
            dry_run,
            project,
            binary,
        }) => enable::enable(enable::Options {
            clients: client,
            dry_run,
            project,
            binary,
        }),
        Some(cli::Command::Disable {
            client,
            dry_run,
            project,
        }) => enable::disable(enable::Options {
            clients: client,
            dry_run,
            project,
            binary: None,
        }),
        None => run::run(cli.run),
    }
}

/// Logs go to stderr (stdout stays free for `--print-client-config`); `RUST_LOG` or
/// `FLOWGUARD_LOG` set the filter, `info` by default; `FLOWGUARD_LOG_FORMAT=json` writes one
/// JSON object per line.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("FLOWGUARD_LOG")
        .ok()
        .map(EnvFilter::new)
        .unwrap_or_else(|| {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
        });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match std::env::var("FLOWGUARD_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().flatten_event(true).init(),
        Ok("text") | Err(_) => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => {
            builder.with_ansi(false).init();
            tracing::warn!("FLOWGUARD_LOG_FORMAT={other:?} is not text or json; writing text");
        }
    }
}
