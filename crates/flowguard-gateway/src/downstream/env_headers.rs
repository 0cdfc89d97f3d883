//! `ENV_<NAME>: value` headers (seed 001's per-session environment, made safe): a client sets
//! variables for its own instances of `isolation = "session"` servers, but only names some
//! server of the endpoint allow-lists in `env_from_headers`. Anything else is refused with a
//! 400 naming the allowed names, so a misspelt token header never silently starts a server
//! without its token. Values are secrets from here on.

use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::session::Scope;
use axum::http::HeaderMap;
use flowguard_config::Secret;

/// The header prefix; header names are case-insensitive, so is the prefix.
const PREFIX: &str = "env_";

/// The `ENV_*` variables of a session-creating request, each checked against the allow-lists
/// of the endpoint's servers.
pub(crate) fn env_from_headers(
    gw: &Gateway,
    scope: &Scope,
    headers: &HeaderMap,
) -> Result<Vec<(String, Secret<String>)>, Rejection> {
    let mut env = Vec::new();
    for (name, value) in headers {
        // `HeaderName` is always lower case.
        let Some(var) = name.as_str().strip_prefix(PREFIX) else {
            continue;
        };
        let allowed: Vec<&str> = gw
            .servers_in(scope)
            .filter_map(|s| s.config().isolation.session())
            .flat_map(|iso| iso.env_from_headers.iter().map(String::as_str))
            .collect();
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(var)) {
            let list = if allowed.is_empty() {
                "none (no server of this endpoint has env_from_headers)".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(Rejection::EnvNotAllowed(var.to_ascii_uppercase(), list));
        }
        let Ok(value) = value.to_str() else {
            return Err(Rejection::Invalid(format!(
                "header ENV_{} must be visible ASCII",
                var.to_ascii_uppercase()
            )));
        };
        env.push((var.to_string(), Secret::new(value.to_string())));
    }
    Ok(env)
}
