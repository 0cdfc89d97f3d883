//! Validation of the gateway section into `GatewaySettings`, defaults filled in.

use std::net::SocketAddr;

use super::checks::{listen_from_port, parse_listen};
use super::Ctx;
use crate::raw::{Count, PortAndDomain, RawGateway};
use crate::{ConfigError, GatewaySettings};

pub(crate) fn settings(
    raw: RawGateway,
    port_and_domain: PortAndDomain,
    ctx: &Ctx<'_>,
) -> Result<GatewaySettings, ConfigError> {
    let defaults = GatewaySettings::default();
    let listen = listen(raw.listen.as_deref(), port_and_domain, ctx)?;
    let separator = raw.separator.unwrap_or(defaults.separator);
    if separator.is_empty()
        || separator
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ctx.invalid(
            ctx.gateway_path("separator"),
            format!("separator \"{separator}\" must be non-empty and contain no whitespace"),
        ));
    }
    let max_line_bytes = count(
        raw.max_line_bytes,
        defaults.max_line_bytes,
        "max_line_bytes",
        ctx,
    )?;
    if max_line_bytes == 0 {
        return Err(ctx.invalid(ctx.gateway_path("max_line_bytes"), "must be at least 1"));
    }
    let max_sessions_per_server = count(
        raw.max_sessions_per_server,
        defaults.max_sessions_per_server,
        "max_sessions_per_server",
        ctx,
    )?;
    let max_sessions = count(raw.max_sessions, defaults.max_sessions, "max_sessions", ctx)?;
    if max_sessions == 0 {
        return Err(ctx.invalid(ctx.gateway_path("max_sessions"), "must be at least 1"));
    }
    let body_timeout = raw.body_timeout.map_or(defaults.body_timeout, |d| d.0);
    if body_timeout.is_zero() {
        return Err(ctx.invalid(ctx.gateway_path("body_timeout"), "must be more than 0s"));
    }
    if max_sessions_per_server == 0 {
        return Err(ctx.invalid(
            ctx.gateway_path("max_sessions_per_server"),
            "must be at least 1",
        ));
    }
    let allowed_hosts = raw.allowed_hosts.unwrap_or_default();
    check_list(&allowed_hosts, "allowed_hosts", ctx, |host| {
        !host.contains("://")
    })?;
    let allowed_origins = raw.allowed_origins.unwrap_or_default();
    check_list(&allowed_origins, "allowed_origins", ctx, |origin| {
        origin.contains("://")
    })?;
    Ok(GatewaySettings {
        listen,
        mode: raw.mode,
        request_timeout: raw
            .request_timeout
            .map_or(defaults.request_timeout, |d| d.0),
        startup_timeout: raw
            .startup_timeout
            .map_or(defaults.startup_timeout, |d| d.0),
        shutdown_grace: raw.shutdown_grace.map_or(defaults.shutdown_grace, |d| d.0),
        tool_prefix: raw.tool_prefix.unwrap_or(defaults.tool_prefix),
        separator,
        page_size: count(raw.page_size, defaults.page_size, "page_size", ctx)?,
        allowed_hosts,
        allowed_origins,
        container_runtime: raw.container_runtime,
        max_line_bytes,
        stderr_lines: count(raw.stderr_lines, defaults.stderr_lines, "stderr_lines", ctx)?,
        session_idle_timeout: raw
            .session_idle_timeout
            .map_or(defaults.session_idle_timeout, |d| d.0),
        max_sessions_per_server,
        max_sessions,
        auto_session_idle_timeout: raw
            .auto_session_idle_timeout
            .map_or(defaults.auto_session_idle_timeout, |d| d.0),
        body_timeout,
        ping_interval: raw.ping_interval.map_or(defaults.ping_interval, |i| i.0),
    })
}

/// `listen`, or (mcpServers shape) `port` with an optional `domain`; never both.
fn listen(
    listen: Option<&str>,
    port_and_domain: PortAndDomain,
    ctx: &Ctx<'_>,
) -> Result<Option<SocketAddr>, ConfigError> {
    let PortAndDomain { port, domain } = port_and_domain;
    match (listen, port, domain) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ctx.invalid_hint(
            "gateway",
            "`listen` conflicts with `port`/`domain`",
            "keep only `listen`, e.g. \"listen\": \"127.0.0.1:3000\"",
        )),
        (Some(text), None, None) => parse_listen(text)
            .map(Some)
            .map_err(|message| ctx.invalid(ctx.gateway_path("listen"), message)),
        (None, Some(Count(port)), domain) => listen_from_port(port, domain.as_deref())
            .map(Some)
            .map_err(|message| {
                ctx.invalid_hint(
                    if domain.is_some() {
                        "gateway.domain"
                    } else {
                        "gateway.port"
                    },
                    message,
                    "host names are not resolved; use `listen` with an IP address instead, \
                     e.g. \"listen\": \"0.0.0.0:8000\"",
                )
            }),
        (None, None, Some(_)) => Err(ctx.invalid_hint(
            "gateway.domain",
            "`domain` is only used together with `port`",
            "add `port`, or use `listen` with an IP address",
        )),
        (None, None, None) => Ok(None),
    }
}

fn count(
    value: Option<Count>,
    default: usize,
    snake: &str,
    ctx: &Ctx<'_>,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(Count(n)) => usize::try_from(n)
            .map_err(|_| ctx.invalid(ctx.gateway_path(snake), format!("{n} is too large"))),
    }
}

/// Entries must be non-empty, without whitespace, and pass `shape_ok` (hosts have no scheme,
/// origins have one).
fn check_list(
    items: &[String],
    snake: &str,
    ctx: &Ctx<'_>,
    shape_ok: impl Fn(&str) -> bool,
) -> Result<(), ConfigError> {
    for (index, item) in items.iter().enumerate() {
        if item.is_empty() || item.chars().any(char::is_whitespace) || !shape_ok(item) {
            let example = if snake == "allowed_hosts" {
                "example.com:3000"
            } else {
                "https://example.com"
            };
            return Err(ctx.invalid(
                format!("{}[{index}]", ctx.gateway_path(snake)),
                format!("\"{item}\" is not valid here; expected a value like \"{example}\""),
            ));
        }
    }
    Ok(())
}
