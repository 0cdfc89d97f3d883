//! Validation of one server: which transport, and the keys that belong to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::checks::{check_env_name, check_header, check_server_id, check_url, parse_mount};
use super::{isolation, Ctx};
use crate::raw::{Count, RawServer, ServerType};
use crate::{
    model::DEFAULT_RETRIES, ConfigError, ContainerSpec, EnvValue, GatewaySettings, HttpSpec,
    ProcessSpec, Secret, ServerConfig, Transport,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Process,
    Container,
    Http,
}

/// Keys that only some kinds accept, with the kinds that accept them.
const KIND_KEYS: [(&str, &[Kind]); 11] = [
    ("args", &[Kind::Process]),
    ("env", &[Kind::Process, Kind::Container]),
    ("working_directory", &[Kind::Process, Kind::Container]),
    ("entrypoint", &[Kind::Container]),
    ("entrypoint_args", &[Kind::Container]),
    ("mounts", &[Kind::Container]),
    ("network", &[Kind::Container]),
    ("headers", &[Kind::Http]),
    ("retries", &[Kind::Http]),
    ("ca_file", &[Kind::Http]),
    ("subject_header", &[Kind::Http]),
];

pub(crate) fn server(
    id: String,
    raw: RawServer,
    gateway: &GatewaySettings,
    ctx: &Ctx<'_>,
) -> Result<ServerConfig, ConfigError> {
    let path = format!("{}.{id}", ctx.shape.servers_key());
    check_server_id(&id, &gateway.separator).map_err(|message| ctx.invalid(&path, message))?;
    let kind = kind(&raw, &path, ctx)?;
    reject_foreign_keys(&raw, kind, &path, ctx)?;
    let key_path = |snake: &str| format!("{path}.{}", ctx.shape.key(snake));
    let tools = tools(raw.tools, &key_path("tools"), ctx)?;
    let request_timeout = raw.request_timeout.map(|d| d.0);
    let env = env(raw.env.unwrap_or_default(), &key_path("env"), ctx)?;
    let isolation = isolation::isolation(
        isolation::RawIsolation {
            mode: raw.isolation,
            idle_timeout: raw.idle_timeout,
            env_from_headers: raw.env_from_headers,
        },
        kind == Kind::Http,
        &path,
        ctx,
    )?;
    let transport = match kind {
        Kind::Process => {
            let command = non_empty(raw.command, &key_path("command"), ctx)?;
            // A path (it has a `/`) is the config's, relative to its folder; a bare name is
            // looked up on PATH.
            let command = if command.contains('/') {
                ctx.resolve(&command)
            } else {
                command
            };
            let working_directory = match raw.working_directory {
                Some(dir) => Some(existing_dir(
                    ctx.resolve(&dir),
                    &key_path("working_directory"),
                    ctx,
                )?),
                None => None,
            };
            Transport::Stdio(ProcessSpec {
                command,
                args: raw.args.unwrap_or_default(),
                env,
                working_directory,
            })
        }
        Kind::Container => {
            let image = non_empty(raw.container, &key_path("container"), ctx)?;
            let mounts = raw.mounts.unwrap_or_default();
            let mounts = mounts.iter().enumerate().map(|(i, spec)| {
                parse_mount(spec)
                    .map_err(|m| ctx.invalid(format!("{}[{i}]", key_path("mounts")), m))
            });
            let working_directory = raw.working_directory.map(PathBuf::from);
            if let Some(dir) = working_directory.as_ref().filter(|d| !d.is_absolute()) {
                return Err(ctx.invalid(
                    key_path("working_directory"),
                    format!(
                        "\"{}\" must be an absolute path inside the container",
                        dir.display()
                    ),
                ));
            }
            Transport::Container(ContainerSpec {
                image,
                runtime: gateway.container_runtime,
                entrypoint: raw.entrypoint,
                entrypoint_args: raw.entrypoint_args.unwrap_or_default(),
                env,
                mounts: mounts.collect::<Result<_, _>>()?,
                network: raw.network,
                working_directory,
            })
        }
        Kind::Http => {
            let url = non_empty(raw.url, &key_path("url"), ctx)?;
            check_url(&url).map_err(|m| ctx.invalid(key_path("url"), m))?;
            let mut headers = Vec::new();
            for (name, value) in raw.headers.unwrap_or_default() {
                check_header(&name, &value)
                    .map_err(|m| ctx.invalid(format!("{}.{name}", key_path("headers")), m))?;
                headers.push((name, Secret::new(value)));
            }
            let ca_file = match raw.ca_file {
                Some(file) => Some(ca_file(file, &url, &key_path("ca_file"), ctx)?),
                None => None,
            };
            let subject_header = match raw.subject_header {
                Some(h) => {
                    check_header(&h, "x")
                        .map_err(|m| ctx.invalid(key_path("subject_header"), m))?;
                    if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&h)) {
                        return Err(ctx.invalid(
                            key_path("subject_header"),
                            format!("{h} is also set in headers; the two would disagree"),
                        ));
                    }
                    Some(h)
                }
                None => None,
            };
            let spec = HttpSpec {
                url,
                headers,
                ca_file,
                subject_header,
            };
            if raw.server_type == Some(ServerType::Sse) {
                Transport::Sse(spec)
            } else {
                Transport::Http(spec)
            }
        }
    };
    // Remote servers are pinged by default (a dead peer behind a proxy is otherwise noticed
    // only by the next request); a local child's death is seen at once, so it needs no pings.
    let ping_interval = match raw.ping_interval {
        Some(own) => own.0,
        None if kind == Kind::Http => gateway.ping_interval,
        None => None,
    };
    let retries = match raw.retries {
        None => DEFAULT_RETRIES,
        Some(Count(n)) => u32::try_from(n).ok().filter(|n| *n <= 10).ok_or_else(|| {
            ctx.invalid(key_path("retries"), format!("{n} is too many; use 0 to 10"))
        })?,
    };
    Ok(ServerConfig {
        id,
        transport,
        tools,
        request_timeout,
        isolation,
        ping_interval,
        retries,
    })
}

/// Exactly one of command, container and url, consistent with `type` when given.
fn kind(raw: &RawServer, path: &str, ctx: &Ctx<'_>) -> Result<Kind, ConfigError> {
    let set: Vec<(&str, Kind)> = [
        ("command", raw.command.is_some(), Kind::Process),
        ("container", raw.container.is_some(), Kind::Container),
        ("url", raw.url.is_some(), Kind::Http),
    ]
    .into_iter()
    .filter(|(_, present, _)| *present)
    .map(|(key, _, kind)| (key, kind))
    .collect();
    let explain = "a server is a local process (`command`), a container (`container`) or a \
                   remote HTTP server (`url`)";
    match (raw.server_type, set.as_slice()) {
        (_, [(a, _), (b, _), ..]) => Err(ctx.invalid_hint(
            path,
            format!(
                "`{}` and `{}` cannot both be set",
                ctx.shape.key(a),
                ctx.shape.key(b)
            ),
            explain,
        )),
        (Some(t @ (ServerType::Http | ServerType::Sse)), [(key, kind)]) if *kind != Kind::Http => {
            Err(ctx.invalid_hint(
                format!("{path}.type"),
                format!(
                    "type \"{}\" needs `url`, but the server sets `{}`",
                    type_name(t),
                    ctx.shape.key(key)
                ),
                explain,
            ))
        }
        (Some(ServerType::Stdio | ServerType::Local), [(_, Kind::Http)]) => Err(ctx.invalid_hint(
            format!("{path}.type"),
            "a stdio/local server needs `command` or `container`, but the server sets `url`",
            "remove `type` or set it to \"http\" (or \"sse\" for an HTTP+SSE server)",
        )),
        (_, [(_, kind)]) => Ok(*kind),
        (Some(t @ (ServerType::Http | ServerType::Sse)), []) => {
            Err(ctx.invalid(path, format!("type \"{}\" needs `url`", type_name(t))))
        }
        (_, []) => {
            Err(ctx.invalid_hint(path, "no `command`, `container` or `url` is set", explain))
        }
    }
}

fn reject_foreign_keys(
    raw: &RawServer,
    kind: Kind,
    path: &str,
    ctx: &Ctx<'_>,
) -> Result<(), ConfigError> {
    let present = |key: &str| match key {
        "args" => raw.args.is_some(),
        "env" => raw.env.is_some(),
        "working_directory" => raw.working_directory.is_some(),
        "entrypoint" => raw.entrypoint.is_some(),
        "entrypoint_args" => raw.entrypoint_args.is_some(),
        "mounts" => raw.mounts.is_some(),
        "network" => raw.network.is_some(),
        "retries" => raw.retries.is_some(),
        "ca_file" => raw.ca_file.is_some(),
        "subject_header" => raw.subject_header.is_some(),
        _ => raw.headers.is_some(),
    };
    for (key, kinds) in KIND_KEYS {
        if present(key) && !kinds.contains(&kind) {
            let applies: Vec<&str> = kinds.iter().map(|k| kind_name(*k)).collect();
            let hint = match (key, kind) {
                ("args", Kind::Container) => {
                    format!(
                        "use `{}` for arguments after the image",
                        ctx.shape.key("entrypoint_args")
                    )
                }
                _ => format!(
                    "remove `{}` from this {} server",
                    ctx.shape.key(key),
                    kind_name(kind)
                ),
            };
            return Err(ctx.invalid_hint(
                format!("{path}.{}", ctx.shape.key(key)),
                format!(
                    "`{}` applies only to {} servers",
                    ctx.shape.key(key),
                    applies.join(" and ")
                ),
                hint,
            ));
        }
    }
    Ok(())
}

fn type_name(t: ServerType) -> &'static str {
    match t {
        ServerType::Sse => "sse",
        _ => "http",
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Process => "command",
        Kind::Container => "container",
        Kind::Http => "url",
    }
}

fn non_empty(value: Option<String>, path: &str, ctx: &Ctx<'_>) -> Result<String, ConfigError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ctx.invalid(path, "must not be empty")),
    }
}

/// `""` is the passthrough marker, unless `${...}` expansion produced it.
fn env(
    raw: BTreeMap<String, String>,
    path: &str,
    ctx: &Ctx<'_>,
) -> Result<Vec<(String, EnvValue)>, ConfigError> {
    raw.into_iter()
        .map(|(name, value)| {
            let entry_path = format!("{path}.{name}");
            check_env_name(&name).map_err(|m| ctx.invalid(&entry_path, m))?;
            let value = if value.is_empty() && !ctx.emptied.contains(&entry_path) {
                EnvValue::Passthrough
            } else {
                EnvValue::Set(value)
            };
            Ok((name, value))
        })
        .collect()
}

/// `None` for all tools (absent or `["*"]`), else the allow-list.
fn tools(
    raw: Option<Vec<String>>,
    path: &str,
    ctx: &Ctx<'_>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(list) = raw else { return Ok(None) };
    if list.len() == 1 && list[0] == "*" {
        return Ok(None);
    }
    if let Some(index) = list.iter().position(|t| t == "*" || t.trim().is_empty()) {
        return Err(ctx.invalid_hint(
            format!("{path}[{index}]"),
            "`*` must be alone and tool names must not be empty",
            "use [\"*\"] (or leave the key out) for all tools, or list tool names",
        ));
    }
    Ok(Some(list))
}

/// A CA file must exist, and is only meaningful for `https://`.
fn ca_file(file: String, url: &str, path: &str, ctx: &Ctx<'_>) -> Result<PathBuf, ConfigError> {
    if !url.starts_with("https://") {
        return Err(ctx.invalid_hint(
            path,
            format!("a CA file applies only to https:// URLs, and the URL is {url}"),
            "remove `ca_file`, or use the server's https:// URL",
        ));
    }
    match Path::new(&file).metadata() {
        Ok(meta) if meta.is_file() => Ok(PathBuf::from(file)),
        Ok(_) => Err(ctx.invalid(path, format!("\"{file}\" is not a file"))),
        Err(err) => Err(ctx.invalid(path, format!("CA file \"{file}\" cannot be used: {err}"))),
    }
}

fn existing_dir(dir: String, path: &str, ctx: &Ctx<'_>) -> Result<PathBuf, ConfigError> {
    let meta = Path::new(&dir).metadata();
    match meta {
        Ok(meta) if meta.is_dir() => Ok(PathBuf::from(dir)),
        Ok(_) => Err(ctx.invalid(path, format!("\"{dir}\" is not a directory"))),
        Err(err) => Err(ctx.invalid(path, format!("directory \"{dir}\" cannot be used: {err}"))),
    }
}
