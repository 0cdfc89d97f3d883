//! Where the store is: a SQLite file (the default, `<data dir>/flowguard.db`) or a PostgreSQL
//! URL. The data directory is `--data-dir`, else `FLOWGUARD_DATA_DIR`, else
//! `$XDG_DATA_HOME/flowguard`, else `~/.local/share/flowguard`.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// `schema`: the tables go in this schema (created when missing) instead of the default.
    Postgres {
        url: String,
        schema: Option<String>,
    },
}

/// The file name of the default SQLite store inside the data directory.
pub const DB_FILE: &str = "flowguard.db";

impl Location {
    /// From the `url` key: `postgres://…` / `postgresql://…`, `sqlite:PATH` / `sqlite://PATH`,
    /// or a plain path (a SQLite file). A relative path is taken from `base` (the config file's
    /// directory).
    pub fn parse(url: &str, schema: Option<String>, base: &Path) -> Result<Location, String> {
        let u = url.trim();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            if let Some(s) = &schema {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("schema {s:?}: use letters, digits and _ only"));
                }
            }
            return Ok(Location::Postgres {
                url: u.to_string(),
                schema,
            });
        }
        if schema.is_some() {
            return Err("`schema` applies to PostgreSQL only".into());
        }
        let path = u
            .strip_prefix("sqlite://")
            .or_else(|| u.strip_prefix("sqlite:"))
            .unwrap_or(u);
        if path.is_empty() {
            return Err("an empty path: give a file, `sqlite:PATH` or `postgres://…`".into());
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "unknown scheme {scheme:?}: use `postgres://…`, `sqlite:PATH` or a file path"
            ));
        }
        Ok(Location::Sqlite(base.join(path)))
    }

    /// The default: a SQLite file in the data directory.
    pub fn default_in(data_dir: &Path) -> Location {
        Location::Sqlite(data_dir.join(DB_FILE))
    }
}

/// The data directory when none is given.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FLOWGUARD_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("flowguard");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/flowguard"),
        None => PathBuf::from(".flowguard"),
    }
}

/// A URL with its password (and any `password=` parameter) replaced by `***`.
pub fn hide_password(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(rest_at) = url.find("://").map(|i| i + 3) {
        let auth_end = url[rest_at..]
            .find(['/', '?'])
            .map_or(url.len(), |i| rest_at + i);
        if let Some(at) = url[rest_at..auth_end].rfind('@') {
            let userinfo = &url[rest_at..rest_at + at];
            if let Some(colon) = userinfo.find(':') {
                out = format!(
                    "{}{}:***{}",
                    &url[..rest_at],
                    &userinfo[..colon],
                    &url[rest_at + at..]
                );
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "SQLite file {}", p.display()),
            Location::Postgres { url, schema } => {
                write!(f, "PostgreSQL {}", hide_password(url))?;
                if let Some(s) = schema {
                    write!(f, " (schema {s})")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let base = Path::new("/etc/fg");
        assert_eq!(
            Location::parse("state.db", None, base).unwrap(),
            Location::Sqlite("/etc/fg/state.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/fg.db", None, base).unwrap(),
            Location::Sqlite("/var/fg.db".into())
        );
        assert!(matches!(
            Location::parse("postgresql://u@h/db", Some("fg".into()), base).unwrap(),
            Location::Postgres { .. }
        ));
        assert!(Location::parse("mysql://x", None, base).is_err());
        assert!(Location::parse("x.db", Some("s".into()), base).is_err());
        assert!(Location::parse("postgres://h/db", Some("a;drop".into()), base).is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            hide_password("postgres://fg:s3cret@db:5432/x?sslmode=disable&password=two"),
            "postgres://fg:***@db:5432/x?sslmode=disable&password=***"
        );
        assert_eq!(hide_password("postgres://fg@db/x"), "postgres://fg@db/x");
        let l = Location::Postgres {
            url: "postgres://a:pw@h/d".into(),
            schema: None,
        };
        assert!(!l.to_string().contains("pw"));
    }
}
