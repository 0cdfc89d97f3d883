//! Containers: the `run` argv of seed 000 (`--rm -i`, `NO_COLOR`, `TERM=dumb`,
//! `PYTHONUNBUFFERED`), docker or podman, validated mounts, and removal of containers left by a
//! gateway that died. Container names carry the owner tag so stale ones can be recognised.

use crate::orphans;
use crate::stdio::CommandSpec;
use flowguard_config::{ContainerRuntime, ContainerSpec, EnvValue};
use std::process::Stdio;
use std::time::Duration;

/// Every container FlowGuard starts is named `flowguard-<owner tag>-<server>-<random>`.
pub const NAME_PREFIX: &str = "flowguard-";

/// The runtime to use: the configured one, else podman when installed, else docker.
pub fn detect_runtime(configured: Option<ContainerRuntime>) -> &'static str {
    if let Some(rt) = configured {
        return rt.program();
    }
    if on_path("podman") {
        "podman"
    } else {
        "docker"
    }
}

pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// The full command for a container server. Values of `env` entries are given to the runtime
/// process's environment and named with `-e KEY`, so secrets never appear in the argv (which
/// any local user can read in `ps`).
pub fn command(
    server: &str,
    spec: &ContainerSpec,
    configured: Option<ContainerRuntime>,
    owner_tag: &str,
) -> Result<CommandSpec, String> {
    let runtime = detect_runtime(spec.runtime.or(configured));
    let name = format!(
        "{NAME_PREFIX}{owner_tag}-{}-{}",
        server.to_lowercase(),
        crate::random_hex(3)
    );
    let mut args: Vec<String> = ["run", "--rm", "-i", "--name", &name]
        .into_iter()
        .map(String::from)
        .collect();
    for fixed in ["NO_COLOR=1", "TERM=dumb", "PYTHONUNBUFFERED=1"] {
        args.extend(["-e".to_string(), fixed.to_string()]);
    }
    let mut env = Vec::new();
    for (key, value) in &spec.env {
        args.extend(["-e".to_string(), key.clone()]);
        match value {
            EnvValue::Set(v) => env.push((key.clone(), v.clone())),
            EnvValue::Passthrough if std::env::var_os(key).is_none() => {
                tracing::warn!(
                    server,
                    "environment variable {key} is passed through but not set"
                );
            }
            EnvValue::Passthrough => {}
        }
    }
    for m in &spec.mounts {
        let mode = if m.read_only { "ro" } else { "rw" };
        args.extend([
            "-v".into(),
            format!("{}:{}:{mode}", m.host.display(), m.container.display()),
        ]);
    }
    if let Some(net) = &spec.network {
        args.extend(["--network".into(), net.clone()]);
    }
    if let Some(dir) = &spec.working_directory {
        args.extend(["-w".into(), dir.display().to_string()]);
    }
    if let Some(ep) = &spec.entrypoint {
        args.extend(["--entrypoint".into(), ep.clone()]);
    }
    args.push(spec.image.clone());
    args.extend(spec.entrypoint_args.iter().cloned());
    Ok(CommandSpec {
        program: runtime.to_string(),
        args,
        env,
        cwd: None,
        container: Some((runtime.to_string(), name)),
    })
}

/// Removes one container, quietly and with a bound: it may already be gone (`--rm`).
pub async fn remove(runtime: &str, name: &str) {
    let mut cmd = tokio::process::Command::new(runtime);
    cmd.args(["rm", "-f"]);
    // podman waits 10 s for a running container to stop before `-f` kills it; docker kills at
    // once (and has no `--time` for rm).
    if runtime.ends_with("podman") {
        cmd.args(["--time", "0"]);
    }
    cmd.arg(name).stdout(Stdio::null()).stderr(Stdio::null());
    let _ = tokio::time::timeout(Duration::from_secs(15), cmd.status()).await;
}

/// Removes containers left behind by gateways that are no longer running.
pub async fn remove_stale(runtime: &str) -> Vec<String> {
    let mut cmd = tokio::process::Command::new(runtime);
    cmd.args([
        "ps",
        "-a",
        "--filter",
        &format!("name={NAME_PREFIX}"),
        "--format",
        "{{.Names}}",
    ])
    .stderr(Stdio::null());
    let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(15), cmd.output()).await else {
        return vec![];
    };
    let mut removed = vec![];
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(rest) = name.trim().strip_prefix(NAME_PREFIX) else {
            continue;
        };
        let owner = rest.split('-').next().unwrap_or("");
        if !orphans::owner_alive(owner) {
            remove(runtime, name.trim()).await;
            removed.push(name.trim().to_string());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowguard_config::Mount;

    #[test]
    fn argv_follows_seed_000_and_keeps_values_out_of_it() {
        let spec = ContainerSpec {
            image: "img:1".into(),
            runtime: Some(ContainerRuntime::Podman),
            entrypoint: Some("/bin/srv".into()),
            entrypoint_args: vec!["--stdio".into()],
            env: vec![
                ("TOKEN".into(), EnvValue::Set("s3cret".into())),
                ("HOME".into(), EnvValue::Passthrough),
            ],
            mounts: vec![Mount {
                host: "/data".into(),
                container: "/d".into(),
                read_only: true,
            }],
            network: Some("none".into()),
            working_directory: None,
        };
        let c = command("gh", &spec, None, "12.34").unwrap();
        assert_eq!(c.program, "podman");
        let argv = c.args.join(" ");
        assert!(
            argv.starts_with("run --rm -i --name flowguard-12.34-gh-"),
            "{argv}"
        );
        assert!(argv.contains("-e NO_COLOR=1 -e TERM=dumb -e PYTHONUNBUFFERED=1 -e TOKEN -e HOME"));
        assert!(argv.ends_with("-v /data:/d:ro --network none --entrypoint /bin/srv img:1 --stdio"));
        assert!(!argv.contains("s3cret"));
        assert_eq!(c.env, vec![("TOKEN".to_string(), "s3cret".to_string())]);
    }
}
