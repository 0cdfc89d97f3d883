//! Server entries of a JSON client config (`mcpServers`, VS Code's `servers`), found with
//! `serde_json::value::RawValue` so that each value's byte span in the file is known and edits
//! leave the rest of the file (key order, spacing) as it was. The file may be JSONC (comments,
//! trailing commas): it is read through [`super::jsonc::blank`], which keeps every offset.

use super::edit::{Args, Entry, Kind, Stdio};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::ops::Range;

/// One step of the path to a table of servers.
#[derive(Debug, Clone, Copy)]
pub enum Seg {
    Key(&'static str),
    /// Every key of an object (e.g. each project of `~/.claude.json`).
    Any,
}

type Object<'a> = BTreeMap<String, &'a RawValue>;

/// The entries of `text` under each of `paths`; an error when the file is not a JSON (or
/// JSONC) object. The spans are byte offsets in `text`.
pub fn entries(text: &str, paths: &[&[Seg]]) -> Result<Vec<Entry>, String> {
    let plain = super::jsonc::blank(text)?;
    let root: Object = serde_json::from_str(&plain).map_err(|e| {
        format!(
            "is not valid JSON or not a JSON object ({e}); fix it or restore it, then run again"
        )
    })?;
    let mut out = vec![];
    for path in paths {
        walk(&plain, &root, path, String::new(), &mut out);
    }
    Ok(out)
}

fn walk(text: &str, obj: &Object, path: &[Seg], label: String, out: &mut Vec<Entry>) {
    let join = |k: &str| {
        let k = if k.chars().all(|c| c.is_alphanumeric() || c == '_') {
            k.to_string()
        } else {
            serde_json::to_string(k).expect("a string serializes")
        };
        if label.is_empty() {
            k
        } else {
            format!("{label}.{k}")
        }
    };
    match path.split_first() {
        None => {
            for (name, raw) in obj {
                out.push(Entry {
                    group: label.clone(),
                    name: name.clone(),
                    kind: kind(text, raw),
                });
            }
        }
        Some((Seg::Key(k), rest)) => {
            if let Some(child) = obj.get(*k).and_then(|r| object(r)) {
                walk(text, &child, rest, join(k), out);
            }
        }
        Some((Seg::Any, rest)) => {
            for (k, raw) in obj {
                if let Some(child) = object(raw) {
                    walk(text, &child, rest, join(k), out);
                }
            }
        }
    }
}

fn object(raw: &RawValue) -> Option<Object<'_>> {
    serde_json::from_str(raw.get()).ok()
}

/// The byte span of `raw` in `text` (it is a slice of it).
fn span(text: &str, raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
    debug_assert!(start + raw.get().len() <= text.len());
    start..start + raw.get().len()
}

fn kind(text: &str, raw: &RawValue) -> Kind {
    let Some(entry) = object(raw) else {
        return Kind::Unusable("not an object".into());
    };
    let string = |key: &str| {
        entry
            .get(key)
            .and_then(|r| serde_json::from_str::<String>(r.get()).ok())
    };
    let remote_type = matches!(
        string("type").as_deref(),
        Some("http" | "sse" | "streamable-http" | "streamableHttp")
    );
    if entry.contains_key("url") || entry.contains_key("httpUrl") || remote_type {
        return Kind::Remote;
    }
    let (Some(command), Some(command_raw)) = (string("command"), entry.get("command")) else {
        return Kind::Unusable("no command".into());
    };
    let args = match entry.get("args") {
        None => None,
        Some(raw) => match args(text, raw) {
            Some(a) => Some(a),
            None => return Kind::Unusable("args is not a list of strings".into()),
        },
    };
    let command_span = span(text, command_raw);
    Kind::Stdio(Stdio {
        command,
        args_insert: (command_span.end, ", \"args\": ".into()),
        command_span,
        args,
    })
}

fn args(text: &str, raw: &RawValue) -> Option<Args> {
    let items: Vec<&RawValue> = serde_json::from_str(raw.get()).ok()?;
    let values = items
        .iter()
        .map(|r| serde_json::from_str::<String>(r.get()).ok())
        .collect::<Option<Vec<String>>>()?;
    Some(Args {
        values,
        span: span(text, raw),
        items: items.iter().map(|r| span(text, r)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::edit::{apply, Format};
    use super::*;

    #[test]
    fn wraps_in_place_keeping_everything_else() {
        let text = "{\n  \"z\": 1,\n  \"mcpServers\": {\n    \"fs\": { \"command\": \"npx\", \"env\": {} },\n    \"r\": {\"url\": \"http://x\"}\n  }\n}\n";
        let es = entries(text, &[&[Seg::Key("mcpServers")]]).unwrap();
        assert_eq!(es.len(), 2);
        assert!(matches!(es[1].kind, Kind::Remote));
        let Kind::Stdio(s) = &es[0].kind else {
            panic!()
        };
        let out = apply(text, &s.wrap_edits(Format::Json, "/fg", "fs"));
        assert_eq!(
            out,
            text.replace(
                "\"command\": \"npx\"",
                "\"command\": \"/fg\", \"args\": [\"wrap\", \"--name\", \"fs\", \"--\", \"npx\"]"
            )
        );
    }

    #[test]
    fn empty_args_and_unwrap_give_the_entry_back() {
        let text = "{\"mcpServers\": {\"e\": {\"command\": \"a\", \"args\": [ /* none */ ]}}}";
        let es = entries(text, &[&[Seg::Key("mcpServers")]]).unwrap();
        let Kind::Stdio(s) = &es[0].kind else {
            panic!()
        };
        let out = apply(text, &s.wrap_edits(Format::Json, "/fg", "e"));
        assert!(out.contains(r#""args": ["wrap", "--name", "e", "--", "a" /* none */ ]"#));
        let es = entries(&out, &[&[Seg::Key("mcpServers")]]).unwrap();
        let Kind::Stdio(s) = &es[0].kind else {
            panic!()
        };
        let back = apply(&out, &s.unwrap_edits(Format::Json, "e").unwrap());
        assert_eq!(back, text.replace("[ /* none */ ]", "[]"));
    }
}
