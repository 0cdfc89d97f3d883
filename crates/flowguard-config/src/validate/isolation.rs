//! Validation of `isolation`, `idle_timeout` and `env_from_headers`: per-session instances are
//! for servers the gateway starts itself, and a client may set only variables the operator
//! allow-listed, never ones that change which program runs or how it loads code.

use super::checks::check_env_name;
use super::Ctx;
use crate::raw::{DurationValue, IsolationMode};
use crate::{ConfigError, Isolation, SessionIsolation};

/// The raw isolation keys of one server.
pub(crate) struct RawIsolation {
    pub mode: Option<IsolationMode>,
    pub idle_timeout: Option<DurationValue>,
    pub env_from_headers: Option<Vec<String>>,
}

/// Names a client must never set: they decide which program runs, which libraries or modules
/// it loads, or where it keeps its files. Exact names, then prefixes.
const DANGEROUS_NAMES: [&str; 12] = [
    "PATH",
    "HOME",
    "SHELL",
    "USER",
    "LOGNAME",
    "IFS",
    "ENV",
    "BASH_ENV",
    "NODE_OPTIONS",
    "NODE_PATH",
    "TMPDIR",
    "FLOWGUARD_OWNER",
];
const DANGEROUS_PREFIXES: [&str; 8] = [
    "LD_", "DYLD_", "PYTHON", "PERL", "RUBY", "JAVA_", "NODE_", "GIT_",
];

/// Whether a client-supplied variable of this name could take over the server process.
pub fn is_dangerous_env_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DANGEROUS_NAMES.contains(&upper.as_str())
        || DANGEROUS_PREFIXES.iter().any(|p| upper.starts_with(p))
        || upper.starts_with("FLOWGUARD")
}

pub(crate) fn isolation(
    raw: RawIsolation,
    remote: bool,
    path: &str,
    ctx: &Ctx<'_>,
) -> Result<Isolation, ConfigError> {
    let key = |snake: &str| format!("{path}.{}", ctx.shape.key(snake));
    let session = raw.mode == Some(IsolationMode::Session);
    if !session {
        for (snake, set) in [
            ("idle_timeout", raw.idle_timeout.is_some()),
            ("env_from_headers", raw.env_from_headers.is_some()),
        ] {
            if set {
                return Err(ctx.invalid_hint(
                    key(snake),
                    format!(
                        "`{}` needs `{}` = \"session\"",
                        ctx.shape.key(snake),
                        ctx.shape.key("isolation")
                    ),
                    "a shared instance serves every client, so it has no per-session settings; \
                     add isolation = \"session\" or remove the key",
                ));
            }
        }
        return Ok(Isolation::Shared);
    }
    if remote {
        return Err(ctx.invalid_hint(
            key("isolation"),
            "isolation \"session\" applies only to command and container servers",
            "a remote server keeps its own per-client state; remove `isolation` from this url \
             server",
        ));
    }
    let names = raw.env_from_headers.unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        let at = format!("{}[{i}]", key("env_from_headers"));
        check_env_name(name).map_err(|m| ctx.invalid(&at, m))?;
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ctx.invalid(
                &at,
                format!("`{name}` must be letters, digits and `_` (it is sent as a header name)"),
            ));
        }
        if is_dangerous_env_name(name) {
            return Err(ctx.invalid_hint(
                &at,
                format!("`{name}` cannot be set by clients: it can change what the server runs"),
                "PATH, HOME, SHELL, USER, LOGNAME, IFS, ENV, BASH_ENV, TMPDIR, NODE_OPTIONS and \
                 names starting with LD_, DYLD_, PYTHON, PERL, RUBY, JAVA_, NODE_, GIT_ or \
                 FLOWGUARD are refused; allow-list only the variables the server reads, \
                 e.g. GITHUB_TOKEN",
            ));
        }
    }
    Ok(Isolation::Session(SessionIsolation {
        idle_timeout: raw.idle_timeout.map(|d| d.0),
        env_from_headers: names,
    }))
}

#[cfg(test)]
mod tests {
    use super::is_dangerous_env_name;

    #[test]
    fn names_that_change_what_runs_are_dangerous_in_any_case() {
        for name in [
            "PATH",
            "path",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "PYTHONPATH",
            "NODE_OPTIONS",
            "HOME",
            "FLOWGUARD_OWNER",
            "BASH_ENV",
        ] {
            assert!(is_dangerous_env_name(name), "{name}");
        }
        for name in ["GITHUB_TOKEN", "API_KEY", "FG_TOKEN", "PATHFINDER_KEY"] {
            assert!(!is_dangerous_env_name(name), "{name}");
        }
    }
}
