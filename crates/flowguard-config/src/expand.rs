//! Environment variable expansion in every string value of a configuration tree.
//!
//! Expansion runs on the parsed tree, not on the raw text, so a variable's value can never
//! break the syntax of the file, and every error can name the config path that needed the
//! variable (`servers.github.env.GITHUB_TOKEN`). Keys are never expanded.
//!
//! Grammar: `${NAME}` (NAME is `[A-Za-z_][A-Za-z0-9_]*`; unset is an error), `${NAME:-default}`
//! (the default, which may be empty, when NAME is unset or empty, as in the shell), `$$` for a
//! literal `$`. Any other `$` stays as it is, so `$HOME` is not expanded.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::ConfigError;

/// Looks a variable up (`std::env::var` in production, a map in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands every string in `value` in place. Returns the paths of values that contained an
/// expression and expanded to the empty string, so that `env = { X = "${Y:-}" }` can be told
/// apart from the passthrough marker `X = ""`.
pub(crate) fn expand_tree(
    value: &mut Value,
    lookup: Lookup<'_>,
    source_name: &str,
) -> Result<BTreeSet<String>, ConfigError> {
    let mut emptied = BTreeSet::new();
    let mut path = String::new();
    walk(value, &mut path, lookup, &mut emptied).map_err(|failure| match failure {
        Failure::Undefined { variable, path } => ConfigError::UndefinedVariable {
            source_name: source_name.to_owned(),
            variable,
            path,
        },
        Failure::Malformed { message, path } => ConfigError::Expansion {
            source_name: source_name.to_owned(),
            path,
            message,
        },
    })?;
    Ok(emptied)
}

enum Failure {
    Undefined { variable: String, path: String },
    Malformed { message: String, path: String },
}

fn walk(
    value: &mut Value,
    path: &mut String,
    lookup: Lookup<'_>,
    emptied: &mut BTreeSet<String>,
) -> Result<(), Failure> {
    match value {
        Value::String(text) if text.contains('$') => {
            let expanded = expand_str(text, lookup).map_err(|e| match e {
                StrError::Undefined(variable) => Failure::Undefined {
                    variable,
                    path: shown(path),
                },
                StrError::Malformed(message) => Failure::Malformed {
                    message,
                    path: shown(path),
                },
            })?;
            if expanded.is_empty() {
                emptied.insert(shown(path));
            }
            *text = expanded;
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(item, path, lookup, emptied)?;
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(item, path, lookup, emptied)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The path as shown to people: the same notation as `serde_path_to_error`.
fn shown(path: &str) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

#[derive(Debug, PartialEq)]
enum StrError {
    Undefined(String),
    Malformed(String),
}

fn expand_str(text: &str, lookup: Lookup<'_>) -> Result<String, StrError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(close) = body.find('}') else {
                return Err(StrError::Malformed(format!(
                    "unterminated `${{` in \"{text}\"; expected `${{NAME}}` or `${{NAME:-default}}`"
                )));
            };
            out.push_str(&substitute(&body[..close], lookup)?);
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one `${...}` body: `NAME` or `NAME:-default`.
fn substitute(body: &str, lookup: Lookup<'_>) -> Result<String, StrError> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_variable_name(name) {
        return Err(StrError::Malformed(format!(
            "`${{{body}}}` is not a valid variable reference; names are letters, digits and `_`, \
             not starting with a digit"
        )));
    }
    match (lookup(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok(default.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(default)) => Ok(default.to_owned()),
        (None, None) => Err(StrError::Undefined(name.to_owned())),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn expand(text: &str) -> Result<String, StrError> {
        expand_str(text, &env)
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(expand("Bearer ${TOKEN}").unwrap(), "Bearer t0k");
        assert_eq!(expand("${MISSING:-fallback}").unwrap(), "fallback");
        assert_eq!(expand("${MISSING:-}").unwrap(), "");
        assert_eq!(expand("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(expand("${TOKEN:-d}").unwrap(), "t0k");
        assert_eq!(expand("cost: $$5 and $HOME").unwrap(), "cost: $5 and $HOME");
        assert_eq!(expand("$${TOKEN}").unwrap(), "${TOKEN}");
        assert_eq!(expand("").unwrap(), "");
    }

    #[test]
    fn undefined_and_malformed_references_fail() {
        assert_eq!(expand("${NOPE}"), Err(StrError::Undefined("NOPE".into())));
        assert!(
            matches!(expand("x ${TOKEN"), Err(StrError::Malformed(m)) if m.contains("unterminated"))
        );
        assert!(matches!(expand("${1X}"), Err(StrError::Malformed(_))));
        assert!(matches!(expand("${}"), Err(StrError::Malformed(_))));
    }

    #[test]
    fn undefined_variable_error_names_variable_and_path() {
        let mut tree = json!({"servers": {"github": {"env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}}});
        let err = expand_tree(&mut tree, &env, "config.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("error: cannot expand environment variables in config.toml"));
        assert!(
            err.contains(
                "undefined environment variable GITHUB_TOKEN, required by \
                 servers.github.env.GITHUB_TOKEN"
            ),
            "{err}"
        );
        assert!(err.contains("hint: export GITHUB_TOKEN=... or load a .env file with --env FILE"));
    }

    #[test]
    fn paths_include_array_indices_and_emptied_values_are_reported() {
        let mut tree = json!({"s": {"a": {"args": ["ok", "${NOPE}"]}}});
        let err = expand_tree(&mut tree, &env, "f").unwrap_err();
        assert_eq!(err.config_path(), Some("s.a.args[1]"));

        let mut tree = json!({"s": {"env": {"A": "", "B": "${MISSING:-}", "C": "${TOKEN}"}}});
        let emptied = expand_tree(&mut tree, &env, "f").unwrap();
        assert_eq!(
            emptied.into_iter().collect::<Vec<_>>(),
            vec!["s.env.B".to_owned()]
        );
        assert_eq!(tree, json!({"s": {"env": {"A": "", "B": "", "C": "t0k"}}}));
    }
}
