//! Server entries of Codex's `~/.codex/config.toml` (`[mcp_servers.<name>]` tables with
//! `command`, `args`, `env`), found with the spanned parser of the `toml` crate so that edits
//! splice only the `command` and `args` values and keep comments and layout.

use super::edit::{Args, Entry, Kind, Stdio};
use toml::de::{DeTable, DeValue};

pub fn entries(text: &str) -> Result<Vec<Entry>, String> {
    let root = DeTable::parse(text).map_err(|e| {
        format!(
            "is not valid TOML ({}); fix it or restore it, then run again",
            e.to_string().trim()
        )
    })?;
    let Some(servers) = root
        .get_ref()
        .get("mcp_servers")
        .and_then(|v| v.get_ref().as_table())
    else {
        return Ok(vec![]);
    };
    let mut out = vec![];
    for (name, value) in servers.iter() {
        let kind = match value.get_ref().as_table() {
            None => Kind::Unusable("not a table".into()),
            Some(t) => kind(text, t),
        };
        out.push(Entry {
            group: "mcp_servers".into(),
            name: name.get_ref().to_string(),
            kind,
        });
    }
    Ok(out)
}

fn kind(text: &str, t: &DeTable) -> Kind {
    if t.contains_key("url") {
        return Kind::Remote;
    }
    let Some((key, value)) = t.get_key_value("command") else {
        return Kind::Unusable("no command".into());
    };
    let Some(command) = value.get_ref().as_str() else {
        return Kind::Unusable("command is not a string".into());
    };
    let args = match t.get("args").map(|v| (v.get_ref(), v.span())) {
        None => None,
        Some((DeValue::Array(a), span)) => {
            let strings: Option<Vec<String>> = a
                .iter()
                .map(|v| v.get_ref().as_str().map(String::from))
                .collect();
            match strings {
                Some(values) => Some(Args {
                    values,
                    span,
                    items: a.iter().map(|v| v.span()).collect(),
                }),
                None => return Kind::Unusable("args is not a list of strings".into()),
            }
        }
        Some(_) => return Kind::Unusable("args is not a list of strings".into()),
    };
    let command_span = value.span();
    // `args` goes next to `command`: `, args = [...]` inside an inline table, else on a new
    // line with the same indentation and dotted-key prefix as `command`.
    let key_start = key.span().start;
    let line_start = text[..key_start].rfind('\n').map_or(0, |p| p + 1);
    let prefix = &text[line_start..key_start];
    let inline = prefix.trim_end().ends_with(['{', ',']);
    let before = if inline {
        ", args = ".to_string()
    } else {
        format!("\n{prefix}args = ")
    };
    Kind::Stdio(Stdio {
        command: command.to_string(),
        args_insert: (command_span.end, before),
        command_span,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::super::edit::{apply, Format};
    use super::*;

    fn wrapped(text: &str) -> String {
        let es = entries(text).unwrap();
        let Kind::Stdio(s) = &es[0].kind else {
            panic!("{es:?}")
        };
        apply(text, &s.wrap_edits(Format::Toml, "/fg", "a"))
    }

    #[test]
    fn wraps_tables_inline_tables_and_dotted_keys() {
        let t = "# c\n[mcp_servers.a]\ncommand = \"npx\" # run\nargs = [\"-y\", \"p\"]\n";
        assert_eq!(
            wrapped(t),
            "# c\n[mcp_servers.a]\ncommand = \"/fg\" # run\nargs = [\"wrap\", \"--name\", \"a\", \"--\", \"npx\", \"-y\", \"p\"]\n"
        );
        let t = "[mcp_servers]\na = { command = \"x\" }\n";
        assert_eq!(
            wrapped(t),
            "[mcp_servers]\na = { command = \"/fg\", args = [\"wrap\", \"--name\", \"a\", \"--\", \"x\"] }\n"
        );
        let t = "[mcp_servers]\n  a.command = \"x\"\n";
        let out = wrapped(t);
        assert!(out.ends_with("\n  a.args = [\"wrap\", \"--name\", \"a\", \"--\", \"x\"]\n"));
        assert!(entries(&out).is_ok());
        assert_eq!(
            wrapped("[mcp_servers.a]\ncommand = 'x'\nargs = []\n"),
            "[mcp_servers.a]\ncommand = \"/fg\"\nargs = [\"wrap\", \"--name\", \"a\", \"--\", \"x\"]\n"
        );
    }
}
