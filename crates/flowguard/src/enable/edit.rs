//! The format-neutral part of `enable`/`disable`: a server entry found in a config file (with the
//! byte spans of its `command` and `args` values), the text edits that wrap or un-wrap it, and a
//! unified-diff-like rendering of those edits for `--dry-run`. Edits are splices into the
//! original text, so everything else in the file keeps its bytes, order and comments.

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

    pub fn array(self, items: &[String]) -> String {
        let items: Vec<String> = items.iter().map(|s| self.quote(s)).collect();
        format!("[{}]", items.join(", "))
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
    /// The args and the span of the array, when the entry has `args`.
    pub args: Option<(Vec<String>, Range<usize>)>,
    /// Where to insert `args` when it is missing, and the text that goes before the array.
    pub args_insert: (usize, String),
}

/// A replacement of `range` in the original text by `text`.
pub type Edit = (Range<usize>, String);

impl Stdio {
    /// Already wrapped: the args start with `wrap`.
    pub fn is_wrapped(&self) -> bool {
        matches!(&self.args, Some((a, _)) if a.first().map(String::as_str) == Some("wrap"))
    }

    /// The edits that run this entry through `flowguard wrap`.
    pub fn wrap_edits(&self, format: Format, flowguard: &str, name: &str) -> Vec<Edit> {
        let mut args = vec!["wrap".into(), "--name".into(), name.into(), "--".into()];
        args.push(self.command.clone());
        if let Some((a, _)) = &self.args {
            args.extend(a.iter().cloned());
        }
        let mut edits = vec![(self.command_span.clone(), format.quote(flowguard))];
        match &self.args {
            Some((_, span)) => edits.push((span.clone(), format.array(&args))),
            None => {
                let (at, before) = &self.args_insert;
                edits.push((*at..*at, format!("{before}{}", format.array(&args))));
            }
        }
        edits
    }

    /// The original command and args of an entry wrapped by `enable`, if it is one: the
    /// command is a `flowguard` binary and the args are `wrap --name <name> -- CMD ARGS...`
    /// (entries wrapped by hand in another form are left alone).
    pub fn unwrapped(&self, name: &str) -> Option<(String, Vec<String>)> {
        let (args, _) = self.args.as_ref()?;
        let file = std::path::Path::new(&self.command).file_name()?.to_str()?;
        if !file.starts_with("flowguard") || args.get(..4)? != ["wrap", "--name", name, "--"] {
            return None;
        }
        Some((args.get(4)?.clone(), args[5..].to_vec()))
    }

    /// The edits that put back the original command and args of a wrapped entry.
    pub fn unwrap_edits(&self, format: Format, name: &str) -> Option<Vec<Edit>> {
        let (command, args) = self.unwrapped(name)?;
        let (_, span) = self.args.as_ref()?;
        Some(vec![
            (self.command_span.clone(), format.quote(&command)),
            (span.clone(), format.array(&args)),
        ])
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

/// The changed lines, as `@@ line N @@` hunks of `-` and `+` lines.
pub fn diff(text: &str, edits: &[Edit]) -> String {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| r.start);
    let line_start = |i: usize| text[..i].rfind('\n').map_or(0, |p| p + 1);
    let line_end = |i: usize| text[i..].find('\n').map_or(text.len(), |p| i + p);
    // Hunks: line-aligned ranges of the original, each with the edits inside it.
    let mut hunks: Vec<(Range<usize>, Vec<&Edit>)> = vec![];
    for edit in sorted {
        let (start, end) = (line_start(edit.0.start), line_end(edit.0.end));
        match hunks.last_mut() {
            Some((r, es)) if start <= r.end + 1 => {
                r.end = r.end.max(end);
                es.push(edit);
            }
            _ => hunks.push((start..end, vec![edit])),
        }
    }
    let mut out = String::new();
    for (range, es) in hunks {
        let line_no = text[..range.start].matches('\n').count() + 1;
        out.push_str(&format!("@@ line {line_no} @@\n"));
        for line in text[range.clone()].split('\n') {
            out.push_str(&format!("-{line}\n"));
        }
        let shifted: Vec<Edit> = es
            .iter()
            .map(|(r, s)| (r.start - range.start..r.end - range.start, s.clone()))
            .collect();
        for line in apply(&text[range], &shifted).split('\n') {
            out.push_str(&format!("+{line}\n"));
        }
    }
    out
}

/// The lines that differ between `old` and `new` (common first and last lines trimmed).
pub fn diff_texts(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.split('\n').collect(), new.split('\n').collect());
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let max_tail = a.len().min(b.len()) - head;
    let tail = (0..max_tail)
        .take_while(|i| a[a.len() - 1 - i] == b[b.len() - 1 - i])
        .count();
    if head == a.len() && a.len() == b.len() {
        return String::new();
    }
    let mut out = format!("@@ line {} @@\n", head + 1);
    for line in &a[head..a.len() - tail] {
        out.push_str(&format!("-{line}\n"));
    }
    for line in &b[head..b.len() - tail] {
        out.push_str(&format!("+{line}\n"));
    }
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

    #[test]
    fn apply_and_diff_splice_only_the_edited_lines() {
        let text = "a\nb = 1\nc\n";
        let edits = vec![(6..7, "2".to_string())];
        assert_eq!(apply(text, &edits), "a\nb = 2\nc\n");
        assert_eq!(diff(text, &edits), "@@ line 2 @@\n-b = 1\n+b = 2\n");
    }

    #[test]
    fn unwrapped_reads_the_original_back_from_the_args() {
        let s = Stdio {
            command: "/usr/bin/flowguard".into(),
            command_span: 0..0,
            args: Some((
                ["wrap", "--name", "x", "--", "npx", "-y"]
                    .map(String::from)
                    .to_vec(),
                0..0,
            )),
            args_insert: (0, String::new()),
        };
        assert!(s.is_wrapped());
        assert_eq!(s.unwrapped("x"), Some(("npx".into(), vec!["-y".into()])));
        assert_eq!(s.unwrapped("y"), None);
        assert_eq!(Format::Toml.array(&["a\"b".into()]), r#"['a"b']"#);
    }
}
