//! Just enough of RFC 6570 to tell which server's resource template a URI belongs to:
//! `{var}` matches one path segment, `{+var}` and `{#var}` match anything.

#[derive(Debug, Clone)]
pub struct UriTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Segment,
    Any,
}

impl UriTemplate {
    pub fn new(template: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let expr = &rest[open + 1..open + close];
            parts.push(if expr.starts_with('+') || expr.starts_with('#') {
                Part::Any
            } else {
                Part::Segment
            });
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        UriTemplate { parts }
    }

    pub fn matches(&self, uri: &str) -> bool {
        matches_from(&self.parts, uri)
    }
}

fn matches_from(parts: &[Part], s: &str) -> bool {
    match parts.split_first() {
        None => s.is_empty(),
        Some((Part::Literal(l), rest)) => s
            .strip_prefix(l.as_str())
            .is_some_and(|t| matches_from(rest, t)),
        Some((part, rest)) => {
            let limit = match part {
                Part::Segment => s.find('/').unwrap_or(s.len()),
                _ => s.len(),
            };
            (1..=limit)
                .rev()
                .any(|n| s.is_char_boundary(n) && matches_from(rest, &s[n..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_their_uris_only() {
        let t = UriTemplate::new("test://template/{id}/data");
        assert!(t.matches("test://template/123/data"));
        assert!(!t.matches("test://template/1/2/data"));
        assert!(!t.matches("test://template//data"));
        assert!(!t.matches("test://other/1/data"));
        assert!(UriTemplate::new("file:///{+path}").matches("file:///a/b/c"));
        assert!(UriTemplate::new("x://{a}").matches("x://y"));
    }
}
