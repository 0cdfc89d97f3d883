//! Name and value patterns: `*` matches any run of bytes (including `/`), `?` exactly one byte,
//! everything else itself. No classes, braces or escapes, case-sensitive: mcpgw's glob, which
//! the native policy shares so that its files mean the same in both.

/// A compiled glob. The common shapes (`text`, `pre*`, `*suf`, `*part*`) are matched with a
/// comparison or a substring search; the rest iteratively with one backtrack point,
/// O(pattern × input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Literal,
    Prefix(Box<str>),
    Suffix(Box<str>),
    Contains(Box<str>),
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
            Shape::Contains(mid.into())
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
            Shape::Contains(c) => memchr::memmem::find(input.as_bytes(), c.as_bytes()).is_some(),
            Shape::General => glob_match(self.pattern.as_bytes(), input.as_bytes()),
        }
    }
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
        for p in [
            "*", "**", "abc", "abc*", "*abc", "*abc*", "a*c", "*b*c*", "?", "*?", "é*", "***",
        ] {
            let g = Glob::new(p);
            for i in inputs {
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
