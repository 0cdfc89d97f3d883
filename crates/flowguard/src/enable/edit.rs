//! The format-neutral part of `enable`/`disable`: a server entry found in a config file (with the
//! byte spans of its `command` value and of its `args` array and items), and the text edits that
//! wrap or un-wrap it. Edits are splices into the original text: the `command` value is
//! replaced, and `wrap --name <entry> -- CMD` is inserted before the first item of `args` (or
//! removed from there), so everything else in the file, comments between the args included,
//! keeps its bytes and order.

use std::ops::Range;

/// The syntax of a config file: decides how strings and arrays are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
}

impl Format {
    pub fn quote(self, s: &str) -> String {
        match self {
            Format::Json => serde_json::to_string(s).expect("a string serializes"),
            Format::Toml => toml::Value::String(s.to_string()).to_string(),
        }
    }
}

/// One server entry of a config file.
#[derive(Debug)]
pub struct Entry {
    /// Where the entry's table is, e.g. `mcpServers` or `projects."/p".mcpServers`.
    pub group: String,
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    /// A remote server (`url`, or an http/sse `type`): left alone.
    Remote,
    /// Not something `enable` understands; the reason is shown.
    Unusable(String),
    Stdio(Stdio),
}

#[derive(Debug)]
pub struct Stdio {
    pub command: String,
    pub command_span: Range<usize>,
    /// The entry's `args`, when it has them.
    pub args: Option<Args>,
    /// Where to insert `args` when it is missing, and the text that goes before the array.
    pub args_insert: (usize, String),
}

/// An `args` array: its strings, its span (`[` to `]`) and the span of each item.
#[derive(Debug)]
pub struct Args {
    pub values: Vec<String>,
    pub span: Range<usize>,
    pub items: Vec<Range<usize>>,
}

/// A replacement of `range` in the original text by `text`.
pub type Edit = (Range<usize>, String);

impl Stdio {
    /// Already wrapped: the args start with `wrap`.
    pub fn is_wrapped(&self) -> bool {
        matches!(&self.args, Some(a) if a.values.first().map(String::as_str) == Some("wrap"))
    }

    /// The edits that run this entry through `flowguard wrap`.
    pub fn wrap_edits(&self, format: Format, flowguard: &str, name: &str) -> Vec<Edit> {
        let head = ["wrap", "--name", name, "--", &self.command].map(|s| format.quote(s));
        let mut edits = vec![(self.command_span.clone(), format.quote(flowguard))];
        match &self.args {
            Some(a) => match a.items.first() {
                Some(first) => edits.push((first.start..first.start, head.join(", ") + ", ")),
                None => edits.push((a.span.start + 1..a.span.start + 1, head.join(", "))),
            },
            None => {
                let (at, before) = &self.args_insert;
                edits.push((*at..*at, format!("{before}[{}]", head.join(", "))));
            }
        }
        edits
    }

    /// The original command of an entry wrapped by `enable`, if it is one: its args are
    /// `wrap --name <name> -- CMD ARGS...` (whatever the flowguard binary is called, as
    /// `--binary` may name it anything; entries wrapped by hand in another form are left alone).
    pub fn unwrapped(&self, name: &str) -> Option<&str> {
        let values = &self.args.as_ref()?.values;
        if values.get(..4)? != ["wrap", "--name", name, "--"] {
            return None;
        }
        values.get(4).map(String::as_str)
    }

    /// The edits that put back the original command and args of a wrapped entry.
    pub fn unwrap_edits(&self, format: Format, name: &str) -> Option<Vec<Edit>> {
        let command = self.unwrapped(name)?;
        let a = self.args.as_ref()?;
        let args = match a.items.get(5) {
            Some(rest) => (a.items[0].start..rest.start, String::new()),
            None => (a.span.clone(), "[]".to_string()),
        };
        Some(vec![
            (self.command_span.clone(), format.quote(command)),
            args,
        ])
    }

    /// The edit that points a wrapped entry at another `flowguard` binary, when it is one
    /// wrapped by `enable` and runs a different one.
    pub fn rebind_edit(&self, format: Format, flowguard: &str, name: &str) -> Option<Edit> {
        self.unwrapped(name)?;
        (self.command != flowguard).then(|| (self.command_span.clone(), format.quote(flowguard)))
    }
}

/// `text` with the (non-overlapping) edits applied.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len() + 256);
    let mut pos = 0;
    for (range, new) in sorted {
        out.push_str(&text[pos..range.start]);
        out.push_str(new);
        pos = range.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// FNV-1a (64 bits) of `bytes`: tells whether a file is still what `enable` wrote.
pub fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdio(command: &str, args: &[&str]) -> Stdio {
        Stdio {
            command: command.into(),
            command_span: 0..0,
            args: Some(Args {
                values: args.iter().map(|s| s.to_string()).collect(),
                span: 0..0,
                items: vec![0..0; args.len()],
            }),
            args_insert: (0, String::new()),
        }
    }

    #[test]
    fn apply_splices_only_the_edited_bytes() {
        let edits = vec![(6..7, "2".to_string()), (0..0, "#".to_string())];
        assert_eq!(apply("a\nb = 1\nc\n", &edits), "#a\nb = 2\nc\n");
    }

    #[test]
    fn unwrapped_reads_the_original_back_from_the_args() {
        let s = stdio(
            "/usr/bin/flowguard",
            &["wrap", "--name", "x", "--", "npx", "-y"],
        );
        assert!(s.is_wrapped());
        assert_eq!(s.unwrapped("x"), Some("npx"));
        assert_eq!(s.unwrapped("y"), None);
        assert!(s
            .rebind_edit(Format::Json, "/usr/bin/flowguard", "x")
            .is_none());
        assert!(s.rebind_edit(Format::Json, "/opt/flowguard", "x").is_some());
        let by_hand = stdio("/usr/bin/flowguard", &["wrap", "--", "npx"]);
        assert!(by_hand.is_wrapped() && by_hand.rebind_edit(Format::Json, "/x", "x").is_none());
        assert_eq!(Format::Toml.quote("a\"b"), r#"'a"b'"#);
    }
}
