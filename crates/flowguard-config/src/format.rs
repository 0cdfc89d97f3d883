//! Surface syntaxes: TOML, YAML and JSON text into one `serde_json::Value` tree.
//!
//! Everything after this module works on the tree, so the three syntaxes behave the same.
//! Parsing goes through [`StrictValue`] so that a key written twice in the same object is an
//! error in every syntax (plain `serde_json::Value` keeps the last one silently, which would drop
//! a server without a word).

use std::collections::btree_map::Entry;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::ConfigError;

/// The surface syntax of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (`.toml`).
    Toml,
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`, and `--config-stdin`).
    Json,
}

impl Format {
    /// Picks the syntax from the file extension (case-insensitive).
    pub fn from_path(path: &Path) -> Result<Format, ConfigError> {
        let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
        match extension.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("toml") => Ok(Format::Toml),
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("json") => Ok(Format::Json),
            _ => Err(ConfigError::UnknownFormat {
                path: path.to_owned(),
                extension,
            }),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        })
    }
}

/// Parses `text` into a tree, keeping the parser's line and column in errors.
pub(crate) fn parse(text: &str, format: Format, source_name: &str) -> Result<Value, ConfigError> {
    let syntax = |line, column, message: String| ConfigError::Syntax {
        source_name: source_name.to_owned(),
        format,
        line,
        column,
        message,
    };
    // A byte-order mark (editors on Windows write one) is not part of the document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = match format {
        Format::Json => serde_json::from_str::<StrictValue>(text).map_err(|e| {
            let known = e.line() > 0;
            let message = strip_location(&e.to_string());
            syntax(known.then(|| e.line()), known.then(|| e.column()), message)
        }),
        Format::Yaml => serde_yaml_ng::from_str::<StrictValue>(text).map_err(|e| {
            let location = e.location();
            let message = strip_location(&e.to_string());
            syntax(
                location.as_ref().map(|l| l.line()),
                location.map(|l| l.column()),
                message,
            )
        }),
        Format::Toml => toml::from_str::<StrictValue>(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => line_and_column(text, span.start),
                None => (None, None),
            };
            syntax(line, column, e.message().trim().to_owned())
        }),
    };
    parsed.map(|strict| strict.0)
}

/// Removes a trailing " at line L column C" that the parsers append (the error has its own).
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => message[..at].to_owned(),
        _ => message.to_owned(),
    }
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (Some(line), Some(column))
}

/// A `serde_json::Value` whose objects reject duplicate keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // A BTreeMap first, because serde_json's Map has no entry-or-error API that is
        // the same with and without its `preserve_order` feature.
        let mut entries = std::collections::BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            match entries.entry(key) {
                Entry::Occupied(e) => {
                    return Err(de::Error::custom(format!("duplicate key `{}`", e.key())));
                }
                Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
        }
        Ok(Value::Object(entries.into_iter().collect::<Map<_, _>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax_error(text: &str, format: Format) -> String {
        parse(text, format, "cfg").unwrap_err().to_string()
    }

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("a/b.TOML")).unwrap(),
            Format::Toml
        );
        assert_eq!(Format::from_path(Path::new("b.yml")).unwrap(), Format::Yaml);
        assert_eq!(
            Format::from_path(Path::new("b.json")).unwrap(),
            Format::Json
        );
        let err = Format::from_path(Path::new("b.ini"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`.ini`"), "{err}");
        let err = Format::from_path(Path::new("config"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no extension"), "{err}");
    }

    #[test]
    fn syntax_errors_keep_line_and_column_and_name_the_file() {
        let err = syntax_error("{\n  \"a\": 1,\n  oops\n}", Format::Json);
        assert!(err.starts_with("error: invalid JSON in cfg"), "{err}");
        assert!(err.contains("line 3, column 3"), "{err}");
        let err = syntax_error("[servers]\nx = \n", Format::Toml);
        assert!(
            err.contains("invalid TOML in cfg") && err.contains("line 2"),
            "{err}"
        );
        let err = syntax_error("servers:\n  a: [1,\n", Format::Yaml);
        assert!(
            err.contains("invalid YAML in cfg") && err.contains("line "),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_in_every_syntax() {
        let err = syntax_error(r#"{"servers": {"a": {}, "a": {}}}"#, Format::Json);
        assert!(err.contains("duplicate key `a`"), "{err}");
        let err = syntax_error("servers:\n  a: {}\n  a: {}\n", Format::Yaml);
        assert!(err.contains("duplicate"), "{err}");
        let err = syntax_error("[servers.a]\n[servers.a]\n", Format::Toml);
        assert!(err.contains("invalid TOML"), "{err}");
    }

    #[test]
    fn the_three_syntaxes_give_the_same_tree() {
        let json = parse(
            r#"{"servers": {"a": {"args": ["x", 1]}}}"#,
            Format::Json,
            "j",
        );
        let yaml = parse("servers:\n  a:\n    args: [x, 1]\n", Format::Yaml, "y");
        let toml = parse("[servers.a]\nargs = [\"x\", 1]\n", Format::Toml, "t");
        assert_eq!(json.as_ref().unwrap(), yaml.as_ref().unwrap());
        assert_eq!(json.unwrap(), toml.unwrap());
    }
}
