//! Name and value patterns: `*` matches any run of bytes (including `/`), `?` exactly one byte,
//! everything else itself. No classes, braces or escapes, case-sensitive: mcpgw's glob, which
//! the native policy shares so that its files mean the same in both.

/// A compiled glob. The common shapes (`text`, `pre*`, `*suf`, `*part*`) are matched with a
/// comparison or a substring search; the rest iteratively with one backtrack point,
/// O(pattern × input).
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: Box<str>,
    shape: Shape,
}

/// Two globs are equal when their patterns are.
impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

#[derive(Debug, Clone)]
enum Shape {
    Literal,
    Prefix(Box<str>),
    Suffix(Box<str>),
    /// The searcher is built once: building it costs more than searching a short value.
    Contains(Box<memchr::memmem::Finder<'static>>),
    General,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        let inner = |s: &str| !s.contains(['*', '?']);
        let shape = if inner(pattern) {
            Shape::Literal
        } else if let Some(mid) = pattern
            .strip_prefix('*')
            .and_then(|p| p.strip_suffix('*'))
            .filter(|m| inner(m) && !m.is_empty())
        {
            Shape::Contains(Box::new(
                memchr::memmem::Finder::new(mid.as_bytes()).into_owned(),
            ))
        } else if let Some(pre) = pattern.strip_suffix('*').filter(|p| inner(p)) {
            Shape::Prefix(pre.into())
        } else if let Some(suf) = pattern.strip_prefix('*').filter(|s| inner(s)) {
            Shape::Suffix(suf.into())
        } else {
            Shape::General
        };
        Glob {
            pattern: pattern.into(),
            shape,
        }
    }

    pub fn matches(&self, input: &str) -> bool {
        match &self.shape {
            Shape::Literal => *self.pattern == *input,
            Shape::Prefix(p) => input.starts_with(&**p),
            Shape::Suffix(s) => input.ends_with(&**s),
            Shape::Contains(f) => contains(f, input.as_bytes()),
            Shape::General => glob_match(self.pattern.as_bytes(), input.as_bytes()),
        }
    }
}

/// A substring search. Values are usually short, and the searcher costs more to start than a
/// short value takes to scan: below 64 bytes, candidates are found by their first byte.
fn contains(f: &memchr::memmem::Finder<'_>, hay: &[u8]) -> bool {
    let needle = f.needle();
    if hay.len() < needle.len() {
        return false;
    }
    if hay.len() >= 64 {
        return f.find(hay).is_some();
    }
    let last = hay.len() - needle.len();
    memchr::memchr_iter(needle[0], &hay[..=last]).any(|i| hay[i..].starts_with(needle))
}

fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || (p[pi] != b'*' && p[pi] == s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Any of several globs.
pub fn any(globs: &[Glob], input: &str) -> bool {
    globs.iter().any(|g| g.matches(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcpgw_semantics() {
        let g = |p: &str, s: &str| Glob::new(p).matches(s);
        assert!(g("exec_*", "exec_cmd"));
        assert!(g("*", ""));
        assert!(g("/etc/*", "/etc/ssl/certs/x"), "* crosses /");
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "aéc"), "? is one byte, é is two");
        assert!(g("a??c", "aéc"));
        assert!(g("[ab]", "[ab]"), "no classes: [ is literal");
        assert!(!g("[ab]", "a"));
        assert!(g("{a,b}", "{a,b}"));
        assert!(g("*rm -rf*", "sudo rm -rf /"));
        assert!(!g("Exec_*", "exec_x"), "case-sensitive");
        assert!(g("*.env", ".env"));
        assert!(g("a*b*c", "aXbYbZc"));
        assert!(!g("a*b*c", "aXbYbZ"));
    }

    #[test]
    fn shapes_agree_with_the_general_matcher() {
        let inputs = [
            "",
            "a",
            "abc",
            "xabcx",
            "abcabc",
            "/etc/passwd",
            "é",
            "**",
            "a*b",
        ];
        // Long inputs too: the substring search changes method at 64 bytes.
        let long = [
            format!("{}abc", "x".repeat(70)),
            format!("{}ab", "x".repeat(70)),
            format!("{}abc{}", "ab".repeat(40), "y".repeat(9)),
            format!("{}abc", "x".repeat(61)),
            format!("{}ab", "x".repeat(62)),
        ];
        let inputs = inputs
            .iter()
            .copied()
            .chain(long.iter().map(|s| s.as_str()));
        for p in [
            "*", "**", "abc", "abc*", "*abc", "*abc*", "a*c", "*b*c*", "?", "*?", "é*", "***",
        ] {
            let g = Glob::new(p);
            for i in inputs.clone() {
                assert_eq!(
                    g.matches(i),
                    glob_match(p.as_bytes(), i.as_bytes()),
                    "{p} on {i:?}"
                );
            }
        }
    }

    #[test]
    fn long_inputs_stay_linear_enough() {
        let s = "a".repeat(20_000);
        assert!(!Glob::new("*a*a*a*a*b").matches(&s));
    }
}
