//! Tool arguments as rules see them: parsed strictly (duplicate keys refused), looked up by
//! dotted path, scalars in one canonical text form, path-like values normalised.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses JSON refusing duplicate object keys at any depth: the gateway and the server must
/// not read two different values from one message (`{"path":"/ok","path":"/etc/passwd"}`).
pub fn parse_strict(text: &str) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = StrictValue
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// [`parse_strict`]'s reader, for use inside another deserializer (`deserialize_with`).
pub fn deserialize_strict<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    StrictValue.deserialize(d).map(Some)
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(StrictValue)?;
            if out.insert(k.clone(), v).is_some() {
                return Err(de::Error::custom(format!("duplicate key {k:?}")));
            }
        }
        Ok(Value::Object(out))
    }
}

/// The value at a dotted path (`opts.path`) inside `args`; a key that itself holds dots is
/// found first (`{"a.b": 1}`), so either spelling of a name reaches a value.
pub fn lookup<'a>(args: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = args.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut v = obj.get(parts.next()?)?;
    for p in parts {
        v = match v {
            Value::Object(o) => o.get(p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Whether a dotted path can name two different values (`{"a.b": 1, "a": {"b": 2}}`): the
/// rule cannot know which one the server reads.
pub fn ambiguous(args: &Value, path: &str) -> bool {
    let Some(obj) = args.as_object() else {
        return false;
    };
    if !path.as_bytes().contains(&b'.') || !obj.contains_key(path) {
        return false;
    }
    let mut parts = path.split('.');
    let mut v = parts.next().and_then(|p| obj.get(p));
    for p in parts {
        v = v.and_then(|x| x.as_object()).and_then(|o| o.get(p));
    }
    v.is_some()
}

/// The native canonical text of a scalar: strings as they are, `true`/`false`, `null` as the
/// empty string, numbers without exponent or trailing zeros when integral and exact (`100`,
/// `100.0` and `1e2` are all `100`), otherwise their shortest round-trip form. `None` for
/// objects and arrays: a rule cannot compare them as text.
pub fn canonical(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Number(n) => Some(canonical_number(n)),
        _ => None,
    }
}

fn canonical_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        return format!("{}", f as i64);
    }
    format!("{f}")
}

/// Whether a string looks like a path or a file URL, and so is normalised before matching.
pub fn is_path_like(s: &str) -> bool {
    // One pass over the bytes: this runs for every argument clause of every rule.
    let b = s.as_bytes();
    if b.first() == Some(&b'~') || (b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"file:")) {
        return true;
    }
    let mut prev = 0u8;
    for &c in b {
        if matches!(c, b'/' | b'\\' | b'%') || (c == b'.' && prev == b'.') {
            return true;
        }
        prev = c;
    }
    false
}

/// The normal form of a path-like value: percent-escapes decoded (repeatedly, so `%252e`
/// cannot hide a dot), a `file:` scheme and host dropped, `$HOME` written `~`, backslashes as
/// slashes, then `.`, `..` and repeated slashes resolved (never above the root).
pub fn normalise_path(s: &str) -> String {
    let mut v = s.to_string();
    for _ in 0..3 {
        let d = percent_decode(&v);
        if d == v {
            break;
        }
        v = d;
    }
    let mut v = v.replace('\\', "/");
    if v.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("file:")) {
        let rest = &v[5..];
        v = match rest.strip_prefix("//") {
            // file://host/path or file:///path: the path from the first slash after the host.
            Some(after) => match after.find('/') {
                Some(i) => after[i..].to_string(),
                None => "/".to_string(),
            },
            None => rest.to_string(),
        };
    }
    if let Some(rest) = v.strip_prefix("$HOME") {
        v = format!("~{rest}");
    }
    clean(&v)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lexical path cleaning as Go's `path.Clean`: one slash between names, no `.`, `..` removed
/// with the name before it, never above the root of an absolute path.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(parse_strict(r#"{"path":"/ok","path":"/etc/passwd"}"#).is_err());
        assert!(parse_strict(r#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse_strict(r#"[{"x":1},{"x":2}]"#).is_ok());
        assert!(parse_strict(r#"{"a":1} x"#).is_err());
    }

    #[test]
    fn numbers_have_one_form() {
        for text in ["100", "100.0", "1e2", "1.0E2"] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(canonical(&v).unwrap(), "100", "{text}");
        }
        assert_eq!(canonical(&json!(0.5)).unwrap(), "0.5");
        assert_eq!(canonical(&json!(-3)).unwrap(), "-3");
        assert_eq!(
            canonical(&json!(18446744073709551615u64)).unwrap(),
            "18446744073709551615"
        );
        assert_eq!(canonical(&json!(true)).unwrap(), "true");
        assert_eq!(canonical(&json!(null)).unwrap(), "");
        assert_eq!(canonical(&json!({"a":1})), None);
    }

    #[test]
    fn path_likeness() {
        for p in ["/a", "a\\b", "~/x", "FILE:x", "a..b", "%2e"] {
            assert!(is_path_like(p), "{p}");
        }
        for p in ["hello", "a.b", "file", "x~"] {
            assert!(!is_path_like(p), "{p}");
        }
    }

    #[test]
    fn paths_are_normalised() {
        for (raw, want) in [
            ("/tmp/../etc/passwd", "/etc/passwd"),
            ("/data/%2e%2e/etc/passwd", "/etc/passwd"),
            ("/data/%252e%252e/etc/passwd", "/etc/passwd"),
            ("file:///etc/passwd", "/etc/passwd"),
            ("FILE://localhost/etc/shadow", "/etc/shadow"),
            ("~/.ssh/../.ssh/id_rsa", "~/.ssh/id_rsa"),
            ("$HOME/.aws/credentials", "~/.aws/credentials"),
            ("C:\\Users\\..\\Windows\\x", "C:/Windows/x"),
            ("/../../etc", "/etc"),
            ("a/../../b", "../b"),
            ("//etc//passwd", "/etc/passwd"),
        ] {
            assert_eq!(normalise_path(raw), want, "{raw}");
        }
    }

    #[test]
    fn dotted_lookup_and_ambiguity() {
        let a = json!({"opts": {"path": "/x", "list": ["a", "b"]}, "a.b": 1, "a": {"b": 2}});
        assert_eq!(lookup(&a, "opts.path"), Some(&json!("/x")));
        assert_eq!(lookup(&a, "opts.list.1"), Some(&json!("b")));
        assert_eq!(lookup(&a, "opts.missing"), None);
        assert!(ambiguous(&a, "a.b"));
        assert!(!ambiguous(&a, "opts.path"));
    }
}
