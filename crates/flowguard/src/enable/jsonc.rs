//! JSON with comments (JSONC, as VS Code's `mcp.json` allows): `//` and `/* */` comments,
//! trailing commas and a leading byte-order mark are replaced by spaces, byte for byte, so the
//! result is plain JSON in which every value sits at the same byte offset (and line) as in the
//! original. Spans found in it are spliced into the original, which keeps its comments.

/// `text` with its comments, trailing commas and byte-order mark blanked out.
pub fn blank(text: &str) -> Result<String, String> {
    let src = text.as_bytes();
    let mut out = src.to_vec();
    let mut i = 0;
    if src.starts_with(b"\xEF\xBB\xBF") {
        out[..3].fill(b' ');
        i = 3;
    }
    let mut in_string = false;
    while i < src.len() {
        let c = src[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (c, src.get(i + 1)) {
            (b'"', _) => in_string = true,
            (b'/', Some(b'/')) => {
                let end = src[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(src.len(), |p| i + p);
                out[i..end].fill(b' ');
                i = end;
                continue;
            }
            (b'/', Some(b'*')) => {
                let Some(p) = src[i + 2..].windows(2).position(|w| w == b"*/") else {
                    return Err(format!(
                        "has a /* comment that is never closed with */ (line {}); close it, \
                         then run again",
                        line_of(src, i)
                    ));
                };
                let end = i + 2 + p + 2;
                for b in &mut out[i..end] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    blank_trailing_commas(&mut out);
    String::from_utf8(out).map_err(|_| "is not valid UTF-8; fix it, then run again".to_string())
}

/// Blanks each `,` (outside strings) that only whitespace separates from a `}` or `]`.
fn blank_trailing_commas(out: &mut [u8]) {
    let (mut in_string, mut escaped) = (false, false);
    let mut comma: Option<usize> = None;
    for i in 0..out.len() {
        let c = out[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b',' => comma = Some(i),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'}' | b']' => {
                if let Some(p) = comma.take() {
                    out[p] = b' ';
                }
            }
            b'"' => {
                in_string = true;
                comma = None;
            }
            _ => comma = None,
        }
    }
}

fn line_of(src: &[u8], at: usize) -> usize {
    src[..at].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_become_spaces() {
        let text = "{ // c\n \"u\": \"http://x/*y*/\", /* a\n b */ \"l\": [1, 2,],\n}";
        let plain = blank(text).unwrap();
        assert_eq!(plain.len(), text.len());
        assert_eq!(
            plain,
            "{     \n \"u\": \"http://x/*y*/\",     \n      \"l\": [1, 2 ] \n}"
        );
        let v: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(v["u"], "http://x/*y*/");
    }

    #[test]
    fn escapes_and_strings_are_not_comments() {
        let text = r#"{"a": "q\"//,}", "b": "\\", "c": 1 /* é */}"#;
        let plain = blank(text).unwrap();
        let v: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(v["a"], "q\"//,}");
        assert_eq!(v["b"], "\\");
        assert_eq!(plain.len(), text.len());
        assert!(blank("{} /* open").unwrap_err().contains("never closed"));
        assert_eq!(blank("\u{feff}{}").unwrap(), "   {}");
    }
}
