//! `ConfigError`: every way loading a configuration can fail.
//!
//! `Display` renders the message a person reads on the terminal, in the shape
//! `error: <what> in <file>`, then indented detail lines, then `hint: ...` lines. Variants carry
//! the pieces (file, config path, variable) so a caller can also act on them programmatically.

use std::fmt;
use std::path::PathBuf;

use crate::Format;

/// Why a configuration (or `.env` file) could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file name does not say which syntax it uses.
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Its extension, if it has one.
        extension: Option<String>,
    },
    /// The text is not valid TOML, YAML or JSON.
    Syntax {
        /// File path or `<stdin>`.
        source_name: String,
        /// The syntax that was expected.
        format: Format,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// `${VAR}` names a variable that is not set and has no default.
    UndefinedVariable {
        /// File path or `<stdin>`.
        source_name: String,
        /// The variable.
        variable: String,
        /// Config path of the value that uses it, e.g. `servers.github.env.TOKEN`.
        path: String,
    },
    /// A `${...}` expression is malformed (unterminated, bad name).
    Expansion {
        /// File path or `<stdin>`.
        source_name: String,
        /// Config path of the value.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A key that the configuration does not know.
    UnknownField {
        /// File path or `<stdin>`.
        source_name: String,
        /// Config path of the unknown key itself.
        path: String,
        /// The closest known key, if one is close.
        suggestion: Option<String>,
        /// The keys allowed at that place.
        expected: Vec<String>,
    },
    /// A value of the wrong type, or one that fails validation.
    Invalid {
        /// File path or `<stdin>`.
        source_name: String,
        /// Config path of the value (`.` for the whole document).
        path: String,
        /// What is wrong and what was expected.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// A feature that a configuration asks for but this version does not implement.
    Unsupported {
        /// File path or `<stdin>`.
        source_name: String,
        /// Config path of the field.
        path: String,
        /// What is not supported.
        message: String,
        /// What to do instead.
        hint: String,
    },
    /// The configuration defines no server.
    NoServers {
        /// File path or `<stdin>`.
        source_name: String,
    },
    /// A line of a `.env` file could not be parsed.
    EnvFile {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The config path the error is about, if it is about one value.
    pub fn config_path(&self) -> Option<&str> {
        match self {
            ConfigError::UndefinedVariable { path, .. }
            | ConfigError::Expansion { path, .. }
            | ConfigError::UnknownField { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::Unsupported { path, .. } => Some(path),
            _ => None,
        }
    }

    /// (what happened, where, detail lines, hint lines).
    fn parts(&self) -> (String, String, Vec<String>, Vec<String>) {
        match self {
            ConfigError::Read { path, source } => (
                "cannot read configuration".into(),
                path.display().to_string(),
                vec![source.to_string()],
                vec![],
            ),
            ConfigError::UnknownFormat { path, extension } => (
                "unknown configuration format".into(),
                path.display().to_string(),
                vec![match extension {
                    Some(ext) => format!("the extension `.{ext}` is not one of the known ones"),
                    None => "the file name has no extension".into(),
                }],
                vec!["name the file *.toml, *.yaml, *.yml or *.json".into()],
            ),
            ConfigError::Syntax {
                source_name,
                format,
                line,
                column,
                message,
            } => {
                let at = match (line, column) {
                    (Some(l), Some(c)) => format!("line {l}, column {c}: "),
                    (Some(l), None) => format!("line {l}: "),
                    _ => String::new(),
                };
                (
                    format!("invalid {format}"),
                    source_name.clone(),
                    vec![format!("{at}{message}")],
                    vec![],
                )
            }
            ConfigError::UndefinedVariable {
                source_name,
                variable,
                path,
            } => (
                "cannot expand environment variables".into(),
                source_name.clone(),
                vec![format!(
                    "undefined environment variable {variable}, required by {path}"
                )],
                vec![
                    format!("export {variable}=... or load a .env file with --env FILE"),
                    format!("or give a default: ${{{variable}:-default}}"),
                ],
            ),
            ConfigError::Expansion {
                source_name,
                path,
                message,
            } => (
                "cannot expand environment variables".into(),
                source_name.clone(),
                vec![format!("{path}: {message}")],
                vec!["write `$$` for a literal `$`".into()],
            ),
            ConfigError::UnknownField {
                source_name,
                path,
                suggestion,
                expected,
            } => {
                let detail = match suggestion {
                    Some(s) => format!("{path}: unknown field; did you mean `{s}`?"),
                    None => format!("{path}: unknown field"),
                };
                let hints = if expected.is_empty() {
                    vec![]
                } else {
                    vec![format!("allowed here: {}", expected.join(", "))]
                };
                (
                    "invalid configuration".into(),
                    source_name.clone(),
                    vec![detail],
                    hints,
                )
            }
            ConfigError::Invalid {
                source_name,
                path,
                message,
                hint,
            } => (
                "invalid configuration".into(),
                source_name.clone(),
                vec![format!("{path}: {message}")],
                hint.iter().cloned().collect(),
            ),
            ConfigError::Unsupported {
                source_name,
                path,
                message,
                hint,
            } => (
                "unsupported configuration".into(),
                source_name.clone(),
                vec![format!("{path}: {message}")],
                vec![hint.clone()],
            ),
            ConfigError::NoServers { source_name } => (
                "no servers configured".into(),
                source_name.clone(),
                vec!["the configuration defines no server".into()],
                vec![
                    "add [servers.<id>] with `command`, `container` or `url` (TOML/YAML), \
                     or {\"mcpServers\": {\"<id>\": {...}}} (JSON)"
                        .into(),
                ],
            ),
            ConfigError::EnvFile {
                path,
                line,
                message,
            } => (
                "invalid .env file".into(),
                path.display().to_string(),
                vec![format!("line {line}: {message}")],
                vec!["each line is KEY=VALUE, `export KEY=VALUE`, a # comment or blank".into()],
            ),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, place, details, hints) = self.parts();
        write!(f, "error: {what} in {place}")?;
        for detail in details {
            write!(f, "\n  {detail}")?;
        }
        for hint in hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}
