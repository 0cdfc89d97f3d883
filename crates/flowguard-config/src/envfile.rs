//! `.env` files: `KEY=VALUE` lines read into pairs; the caller decides whether to set them.
//!
//! Accepted: blank lines, `# comments`, an optional `export ` prefix, values in single quotes
//! (literal), double quotes (with `\n`, `\"`, `\\` escapes) or bare (trimmed; ` #` starts a
//! comment). Multi-line values are not supported: a line that cannot be read is an error naming
//! the file and the line, never skipped.

use std::path::Path;

use crate::ConfigError;

/// Reads a `.env` file into `(KEY, VALUE)` pairs in file order.
pub fn load_env_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_env(&text).map_err(|(line, message)| ConfigError::EnvFile {
        path: path.to_owned(),
        line,
        message,
    })
}

/// Parses `.env` text; errors are (1-based line, message).
pub(crate) fn parse_env(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut pairs = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err((index + 1, format!("expected KEY=VALUE, found \"{line}\"")));
        };
        let key = key.trim();
        if !is_key(key) {
            return Err((
                index + 1,
                format!("`{key}` is not a variable name (letters, digits, `_`; no leading digit)"),
            ));
        }
        let value = parse_value(value.trim()).map_err(|message| (index + 1, message))?;
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(raw: &str) -> Result<String, String> {
    let (value, rest) = match raw.chars().next() {
        Some('\'') => {
            let body = &raw[1..];
            let end = body.find('\'').ok_or("unterminated single quote")?;
            (body[..end].to_owned(), &body[end + 1..])
        }
        Some('"') => double_quoted(&raw[1..])?,
        _ => {
            let value = match raw.find(" #").or_else(|| raw.find("\t#")) {
                Some(comment) => raw[..comment].trim_end(),
                None => raw,
            };
            return Ok(value.to_owned());
        }
    };
    let rest = rest.trim_start();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!(
            "unexpected text after the closing quote: \"{rest}\""
        ));
    }
    Ok(value)
}

/// The value of a double-quoted string (after the opening quote) and the text after it.
fn double_quoted(body: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[at + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, other)) => value.push(other),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("unterminated double quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_env(text).unwrap()
    }

    #[test]
    fn parses_the_usual_dotenv_forms() {
        let text = "# tokens\n\nA=1\nexport B = two words \nC='lit $X # not comment'\n\
                    D=\"line\\nnext \\\"q\\\"\" # trailing\nE=\nF=x # comment\nG=a#b\n";
        let expected = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "lit $X # not comment"),
            ("D", "line\nnext \"q\""),
            ("E", ""),
            ("F", "x"),
            ("G", "a#b"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs(text), expected);
    }

    #[test]
    fn bad_lines_report_their_number() {
        assert_eq!(parse_env("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert!(parse_env("1A=x")
            .unwrap_err()
            .1
            .contains("not a variable name"));
        assert!(parse_env("A='open").unwrap_err().1.contains("unterminated"));
        assert!(parse_env("A=\"open")
            .unwrap_err()
            .1
            .contains("unterminated"));
        assert!(parse_env("A='x' y")
            .unwrap_err()
            .1
            .contains("after the closing quote"));
    }

    #[test]
    fn file_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "OK=1\n\nbroken\n").unwrap();
        let err = load_env_file(&path).unwrap_err().to_string();
        assert!(err.starts_with("error: invalid .env file in "), "{err}");
        assert!(err.contains(".env") && err.contains("line 3:"), "{err}");
        let missing = load_env_file(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
