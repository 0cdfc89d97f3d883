//! Tool arguments checked against the tool's advertised `inputSchema` (ROADMAP G5): JSON Schema
//! 2020-12 and draft 7 as MCP servers write them. Validation keywords: `type`, `enum`, `const`,
//! `properties`, `required`, `additionalProperties`, `patternProperties`, `propertyNames`,
//! `minProperties`, `maxProperties`, `dependentRequired`, `items` (a schema, or draft 7's array
//! form), `prefixItems`, `additionalItems`, `minItems`, `maxItems`, `uniqueItems`, `contains`,
//! `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum` (numbers, or draft 4's booleans), `multipleOf`, `allOf`, `anyOf`, `oneOf`,
//! `not`, `if`/`then`/`else`, and local `$ref`s (`#`, `#/$defs/...`, `#/definitions/...`).
//! `format` and other annotations are not checked (as the 2020-12 default says).
//!
//! What cannot be evaluated fails: a `pattern` the regex engine cannot compile (look-around,
//! back-references), a `$ref` to another document, a reference cycle deeper than 32 levels.
//! Errors name the field by its JSON pointer.

use serde_json::{Map, Value};

/// One reason the arguments do not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Where in the arguments (a JSON pointer; empty for the whole object).
    pub at: String,
    /// The keyword that failed (`type`, `required`, ...), for the rule id `schema.<keyword>`.
    pub keyword: &'static str,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.at.is_empty() {
            "arguments"
        } else {
            &self.at
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// Checks `args` against `schema`. `strict`: properties the schema does not name are refused
/// wherever `additionalProperties` is not written. At most 20 errors are returned.
pub fn validate(schema: &Value, args: &Value, strict: bool) -> Vec<Error> {
    let mut v = Validator {
        root: schema,
        strict,
        errors: Vec::new(),
    };
    v.check(schema, args, &mut String::new(), 0);
    v.errors.truncate(20);
    v.errors
}

struct Validator<'a> {
    root: &'a Value,
    strict: bool,
    errors: Vec<Error>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    let k = kind(v);
    k == t || (t == "number" && k == "integer")
}

fn num(v: Option<&Value>) -> Option<f64> {
    v.and_then(Value::as_f64)
}

impl<'a> Validator<'a> {
    fn fail(&mut self, at: &str, keyword: &'static str, message: String) {
        self.errors.push(Error {
            at: at.to_string(),
            keyword,
            message,
        });
    }

    /// Whether `x` fits `s`, without recording errors (for anyOf, oneOf, not, if).
    fn fits(&mut self, s: &'a Value, x: &Value, at: &mut String, depth: usize) -> bool {
        let saved = std::mem::take(&mut self.errors);
        self.check(s, x, at, depth);
        let ok = self.errors.is_empty();
        self.errors = saved;
        ok
    }

    fn resolve(&mut self, r: &str, at: &str) -> Option<&'a Value> {
        let Some(pointer) = r.strip_prefix('#') else {
            self.fail(
                at,
                "$ref",
                format!("the schema refers to another document ({r}), which cannot be checked"),
            );
            return None;
        };
        let found = self.root.pointer(pointer);
        if found.is_none() {
            self.fail(
                at,
                "$ref",
                format!("the schema's reference {r} leads nowhere"),
            );
        }
        found
    }

    fn check(&mut self, s: &'a Value, x: &Value, at: &mut String, depth: usize) {
        if depth > 32 {
            self.fail(
                at,
                "$ref",
                "the schema nests or refers too deeply to be checked".into(),
            );
            return;
        }
        let s = match s {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                self.fail(at, "false", "no value is allowed here".into());
                return;
            }
            Value::Object(o) => o,
            _ => return,
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            if let Some(target) = self.resolve(r, at) {
                self.check(target, x, at, depth + 1);
            }
        }
        self.types(s, x, at);
        if let Some(Value::Array(allowed)) = s.get("enum") {
            if !allowed.iter().any(|a| a == x) {
                self.fail(
                    at,
                    "enum",
                    format!("must be one of {}", Value::from(allowed.clone())),
                );
            }
        }
        if let Some(c) = s.get("const") {
            if c != x {
                self.fail(at, "const", format!("must be {c}"));
            }
        }
        match x {
            Value::Object(o) => self.object(s, o, at, depth),
            Value::Array(a) => self.array(s, a, at, depth),
            Value::String(t) => self.string(s, t, at),
            Value::Number(_) => self.number(s, x, at),
            _ => {}
        }
        self.combinators(s, x, at, depth);
    }

    fn types(&mut self, s: &Map<String, Value>, x: &Value, at: &str) {
        let ok = match s.get("type") {
            Some(Value::String(t)) => is_type(x, t),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).any(|t| is_type(x, t)),
            _ => true,
        };
        if !ok {
            let want = match &s["type"] {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            self.fail(at, "type", format!("expected {want}, got {}", kind(x)));
        }
    }

    fn object(
        &mut self,
        s: &'a Map<String, Value>,
        o: &Map<String, Value>,
        at: &mut String,
        depth: usize,
    ) {
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    self.fail(at, "required", format!("`{r}` is required"));
                }
            }
        }
        if let Some(n) = s.get("minProperties").and_then(Value::as_u64) {
            if (o.len() as u64) < n {
                self.fail(
                    at,
                    "minProperties",
                    format!("needs at least {n} properties"),
                );
            }
        }
        if let Some(n) = s.get("maxProperties").and_then(Value::as_u64) {
            if (o.len() as u64) > n {
                self.fail(
                    at,
                    "maxProperties",
                    format!("allows at most {n} properties"),
                );
            }
        }
        if let Some(Value::Object(deps)) = s.get("dependentRequired") {
            for (k, needs) in deps {
                if o.contains_key(k) {
                    for n in needs
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !o.contains_key(n) {
                            self.fail(
                                at,
                                "dependentRequired",
                                format!("`{n}` is required with `{k}`"),
                            );
                        }
                    }
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let patterns: Vec<(regex::Regex, &'a Value)> = match s.get("patternProperties") {
            Some(Value::Object(pp)) => {
                let mut out = Vec::new();
                for (p, sub) in pp {
                    match regex::Regex::new(p) {
                        Ok(r) => out.push((r, sub)),
                        Err(_) => self.fail(
                            at,
                            "patternProperties",
                            format!("the schema's pattern {p:?} cannot be evaluated here"),
                        ),
                    }
                }
                out
            }
            _ => Vec::new(),
        };
        let additional = match s.get("additionalProperties") {
            Some(a) => Some(a),
            None if self.strict => Some(&Value::Bool(false)),
            None => None,
        };
        for (k, v) in o {
            let len = at.len();
            at.push('/');
            at.push_str(&k.replace('~', "~0").replace('/', "~1"));
            if let Some(names) = s.get("propertyNames") {
                let mut here = at.clone();
                if !self.fits(names, &Value::from(k.as_str()), &mut here, depth + 1) {
                    self.fail(
                        at,
                        "propertyNames",
                        "is not an allowed property name".into(),
                    );
                }
            }
            let mut matched = false;
            if let Some(sub) = props.and_then(|p| p.get(k)) {
                matched = true;
                self.check(sub, v, at, depth + 1);
            }
            for (r, sub) in &patterns {
                if r.is_match(k) {
                    matched = true;
                    self.check(sub, v, at, depth + 1);
                }
            }
            if !matched {
                match additional {
                    Some(Value::Bool(false)) => self.fail(
                        at,
                        "additionalProperties",
                        "is not a property the tool accepts".into(),
                    ),
                    Some(sub) => self.check(sub, v, at, depth + 1),
                    None => {}
                }
            }
            at.truncate(len);
        }
    }

    fn array(&mut self, s: &'a Map<String, Value>, a: &[Value], at: &mut String, depth: usize) {
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < n {
                self.fail(at, "minItems", format!("needs at least {n} items"));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > n {
                self.fail(at, "maxItems", format!("allows at most {n} items"));
            }
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            let dup = (1..a.len()).any(|i| a[..i].contains(&a[i]));
            if dup {
                self.fail(at, "uniqueItems", "has repeated items".into());
            }
        }
        // 2020-12 `prefixItems` + `items`; draft 7 `items: [..]` + `additionalItems`.
        let (prefix, rest): (&[Value], Option<&'a Value>) =
            match (s.get("prefixItems"), s.get("items")) {
                (Some(Value::Array(p)), items) => (p.as_slice(), items),
                (None, Some(Value::Array(p))) => (p.as_slice(), s.get("additionalItems")),
                (_, items) => (&[], items),
            };
        for (i, x) in a.iter().enumerate() {
            let sub = match prefix.get(i) {
                Some(p) => Some(p),
                None => rest,
            };
            if let Some(sub) = sub {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                self.check(sub, x, at, depth + 1);
                at.truncate(len);
            }
        }
        if let Some(c) = s.get("contains") {
            let any = a
                .iter()
                .any(|x| self.fits(c, x, &mut at.clone(), depth + 1));
            if !any {
                self.fail(at, "contains", "has no item of the required kind".into());
            }
        }
    }

    fn string(&mut self, s: &Map<String, Value>, t: &str, at: &str) {
        let n = t.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if n < min {
                self.fail(
                    at,
                    "minLength",
                    format!("must be at least {min} characters"),
                );
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if n > max {
                self.fail(at, "maxLength", format!("must be at most {max} characters"));
            }
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            match regex::Regex::new(p) {
                Ok(r) if r.is_match(t) => {}
                Ok(_) => self.fail(at, "pattern", format!("does not match {p:?}")),
                Err(_) => self.fail(at, "pattern", format!("the schema's pattern {p:?} cannot be evaluated here (look-around or back-references), so the value is refused")),
            }
        }
    }

    fn number(&mut self, s: &Map<String, Value>, x: &Value, at: &str) {
        let Some(v) = x.as_f64() else { return };
        let excl = |k: &str| s.get(k) == Some(&Value::Bool(true));
        if let Some(m) = num(s.get("minimum")) {
            if v < m || (excl("exclusiveMinimum") && v == m) {
                self.fail(at, "minimum", format!("must be at least {m}"));
            }
        }
        if let Some(m) = num(s.get("maximum")) {
            if v > m || (excl("exclusiveMaximum") && v == m) {
                self.fail(at, "maximum", format!("must be at most {m}"));
            }
        }
        if let Some(m) = num(s.get("exclusiveMinimum")) {
            if v <= m {
                self.fail(at, "exclusiveMinimum", format!("must be more than {m}"));
            }
        }
        if let Some(m) = num(s.get("exclusiveMaximum")) {
            if v >= m {
                self.fail(at, "exclusiveMaximum", format!("must be less than {m}"));
            }
        }
        if let Some(m) = num(s.get("multipleOf")).filter(|m| *m > 0.0) {
            let q = v / m;
            if (q - q.round()).abs() > 1e-9 {
                self.fail(at, "multipleOf", format!("must be a multiple of {m}"));
            }
        }
    }

    fn combinators(&mut self, s: &'a Map<String, Value>, x: &Value, at: &mut String, depth: usize) {
        if let Some(Value::Array(all)) = s.get("allOf") {
            for sub in all {
                self.check(sub, x, at, depth + 1);
            }
        }
        if let Some(Value::Array(any)) = s.get("anyOf") {
            if !any
                .iter()
                .any(|sub| self.fits(sub, x, &mut at.clone(), depth + 1))
            {
                self.fail(at, "anyOf", "fits none of the allowed shapes".into());
            }
        }
        if let Some(Value::Array(one)) = s.get("oneOf") {
            let n = one
                .iter()
                .filter(|sub| self.fits(sub, x, &mut at.clone(), depth + 1))
                .count();
            if n != 1 {
                self.fail(
                    at,
                    "oneOf",
                    format!("must fit exactly one of the allowed shapes (fits {n})"),
                );
            }
        }
        if let Some(not) = s.get("not") {
            if self.fits(not, x, &mut at.clone(), depth + 1) {
                self.fail(at, "not", "is of a shape that is not allowed".into());
            }
        }
        if let Some(cond) = s.get("if") {
            let branch = if self.fits(cond, x, &mut at.clone(), depth + 1) {
                "then"
            } else {
                "else"
            };
            if let Some(sub) = s.get(branch) {
                self.check(sub, x, at, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(schema: Value, args: Value) -> Vec<String> {
        validate(&schema, &args, false)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn types_required_and_fields_are_named() {
        let s = json!({"type": "object", "properties": {"path": {"type": "string"}, "n": {"type": "integer", "minimum": 1}}, "required": ["path"]});
        assert!(errs(s.clone(), json!({"path": "/x", "n": 2})).is_empty());
        assert_eq!(
            errs(s.clone(), json!({"n": 0})),
            ["arguments: `path` is required", "/n: must be at least 1"]
        );
        assert_eq!(
            errs(s.clone(), json!({"path": 3})),
            ["/path: expected string, got integer"]
        );
        assert_eq!(
            errs(s.clone(), json!({"path": "x", "n": 1.5})),
            ["/n: expected integer, got number"]
        );
        assert!(
            errs(s.clone(), json!({"path": "x", "n": 2.0})).is_empty(),
            "2.0 is an integer"
        );
        // Strict: unknown properties refused.
        let e = validate(&s, &json!({"path": "x", "extra": 1}), true);
        assert_eq!(
            e[0].to_string(),
            "/extra: is not a property the tool accepts"
        );
        assert!(validate(&s, &json!({"path": "x", "extra": 1}), false).is_empty());
    }

    #[test]
    fn nested_arrays_refs_and_combinators() {
        let s = json!({
            "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
            "type": "object",
            "properties": {
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "maxItems": 2, "uniqueItems": true},
                "mode": {"oneOf": [{"const": "fast"}, {"type": "integer"}]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5}
            },
            "additionalProperties": false
        });
        assert!(errs(
            s.clone(),
            json!({"tags": ["a"], "mode": "fast", "name": "abc"})
        )
        .is_empty());
        let e = errs(
            s.clone(),
            json!({"tags": ["a", "c", "a"], "mode": "slow", "name": "ABCDEFG", "x": 1}),
        );
        assert!(
            e.contains(&"/tags/1: must be one of [\"a\",\"b\"]".to_string()),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("/tags: allows at most 2")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.starts_with("/mode: must fit exactly one")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.starts_with("/name: does not match")),
            "{e:?}"
        );
        assert!(
            e.contains(&"/x: is not a property the tool accepts".to_string()),
            "{e:?}"
        );
        // Draft 7 tuple form and definitions.
        let d7 = json!({"definitions": {"n": {"type": "number"}}, "type": "array", "items": [{"$ref": "#/definitions/n"}, {"type": "string"}], "additionalItems": false});
        assert!(errs(d7.clone(), json!([1, "x"])).is_empty());
        assert_eq!(
            errs(d7, json!([1, "x", 2])),
            ["/2: no value is allowed here"]
        );
    }

    #[test]
    fn what_cannot_be_evaluated_fails() {
        let s = json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(?=x)"}, "b": {"$ref": "https://example.com/s.json"}}});
        let e = validate(&s, &json!({"a": "x", "b": 1}), false);
        assert_eq!(e.len(), 2, "{e:?}");
        let cyclic = json!({"$ref": "#"});
        assert!(!validate(&cyclic, &json!({}), false).is_empty());
    }
}
