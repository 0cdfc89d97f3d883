//! Secrets and personal data in text crossing the gateway in either direction (ROADMAP G4):
//! detection by typed rules, and redaction with typed placeholders.
//!
//! Every rule is a `regex` crate pattern (linear time, no look-around) plus a check in code on
//! the candidate: word boundaries are emulated by looking at the bytes around the match, and
//! checksums (Luhn, ISO 13616 mod-97), issuer prefixes, entropy and documented example values
//! are verified there. One [`RegexSet`] pass over short trigger patterns tells which rules can
//! occur, so a clean text costs one pass, and a dirty one a pass more per rule triggered (each
//! mostly a literal search). Bytes past `max_bytes` are not scanned. Matched text is never
//! stored: a match is a rule id and a byte range.

use std::sync::Arc;

use memchr::memmem;
use regex::{Regex, RegexSet};
use serde_json::Value;

use crate::finding::Finding;

/// A detection rule: stable id (`secret.<name>` or `pii.<name>`), its family ("secret" or
/// "pii"), and the placeholder that replaces its matches on redaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub family: &'static str,
    pub placeholder: &'static str,
}

const fn rule(id: &'static str, family: &'static str, placeholder: &'static str) -> Rule {
    Rule {
        id,
        family,
        placeholder,
    }
}

/// All rules, secrets first. On equal overlapping matches the rule listed first wins, so the
/// specific token rules come before the generic `secret.high-entropy`.
pub const RULES: &[Rule] = &[
    rule(
        "secret.aws-access-key",
        "secret",
        "[REDACTED:aws-access-key]",
    ),
    rule(
        "secret.aws-secret-key",
        "secret",
        "[REDACTED:aws-secret-key]",
    ),
    rule("secret.github-token", "secret", "[REDACTED:github-token]"),
    rule("secret.gitlab-token", "secret", "[REDACTED:gitlab-token]"),
    rule("secret.slack-token", "secret", "[REDACTED:slack-token]"),
    rule("secret.stripe-key", "secret", "[REDACTED:stripe-key]"),
    rule("secret.openai-key", "secret", "[REDACTED:openai-key]"),
    rule("secret.anthropic-key", "secret", "[REDACTED:anthropic-key]"),
    rule("secret.private-key", "secret", "[REDACTED:private-key]"),
    rule("secret.jwt", "secret", "[REDACTED:jwt]"),
    rule("secret.high-entropy", "secret", "[REDACTED:high-entropy]"),
    rule("pii.email", "pii", "[REDACTED:email]"),
    rule("pii.phone", "pii", "[REDACTED:phone]"),
    rule("pii.ssn", "pii", "[REDACTED:ssn]"),
    rule("pii.card", "pii", "[REDACTED:card]"),
    rule("pii.iban", "pii", "[REDACTED:iban]"),
];

/// Indices into [`RULES`] of the two rules a JSON key can give context to.
const AWS_SECRET: usize = 1;
const HIGH_ENTROPY: usize = 10;

/// Rule id of the finding [`Secrets::scan_value`] adds for a string longer than `max_bytes`:
/// its tail was not scanned. Family "limit", score 0: a limit, not a detection.
pub const TRUNCATED: &str = "limit.secrets-truncated";

/// How a rule's candidates are checked after its regex matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    AwsAccess,
    AwsSecret,
    Token,
    OpenAi,
    PrivateKey,
    Entropy,
    Email,
    Phone,
    Ssn,
    Card,
    Iban,
}

/// Per rule, in [`RULES`] order: how candidates are checked, the confidence that a match is
/// the real thing, and the regex. Capture groups: aws-secret-key 1 = value; high-entropy
/// 1 = name, 2 = value.
#[rustfmt::skip]
const SPECS: [(Kind, f32, &str); 16] = [
    (Kind::AwsAccess, 0.95, r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"),
    (Kind::AwsSecret, 0.9, r#"(?i:aws[_.\-]?secret[_.\-]?(?:access[_.\-]?)?key|secret[_.\-]?access[_.\-]?key)["']?[ \t]*(?::|=>?|>)[ \t]*["']?([A-Za-z0-9/+]{40})"#),
    (Kind::Token, 0.95, r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}"),
    (Kind::Token, 0.95, r"gl(?:pat|rt|ptt|dt|soat|cbt|imt|ft|oas)-[A-Za-z0-9_\-]{20,}"),
    (Kind::Token, 0.9, r"xox[baprs]-[A-Za-z0-9]{4,}-[A-Za-z0-9\-]{8,}|xapp-[0-9]-[A-Za-z0-9]{8,}-[0-9]{8,}-[A-Za-z0-9]{16,}|(?:https?://)?hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}"),
    (Kind::Token, 0.95, r"[sr]k_(?:live|test)_[A-Za-z0-9]{24,}"),
    (Kind::OpenAi, 0.9, r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,}|sk-[A-Za-z0-9_\-]{6,}T3BlbkFJ[A-Za-z0-9_\-]{6,}|sk-[A-Za-z0-9]{48}"),
    (Kind::Token, 0.95, r"sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{20,}"),
    (Kind::PrivateKey, 1.0, r"-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?-----"),
    (Kind::Token, 0.7, r"eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"),
    (Kind::Entropy, 0.6, r#"(?i)([A-Za-z0-9_.\-]*(?:token|secret|password|passwd|api[_\-]?key|access[_\-]?key|auth|credential|private[_\-]?key)[A-Za-z0-9_.\-]*)["']?[ \t]*(?::|=>?)[ \t]*["']?(?:(?:bearer|basic|token)[ \t]+)?([^\s"'`,;&<>(){}\[\]]{16,})"#),
    (Kind::Email, 0.5, r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}"),
    (Kind::Phone, 0.4, r"\+[1-9][0-9]{0,2}(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}|(?:1[ .\-])?(?:\([2-9][0-9]{2}\)[ .\-]?|[2-9][0-9]{2}[ .\-])[0-9]{3}[ .\-][0-9]{4}"),
    (Kind::Ssn, 0.8, r"[0-9]{3}-[0-9]{2}-[0-9]{4}"),
    (Kind::Card, 0.85, r"[0-9]{4,6}(?:[ \-][0-9]{3,6}){1,4}|[0-9]{13,19}"),
    (Kind::Iban, 0.7, r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"),
];

/// Per rule, in [`RULES`] order: a short pattern that every match of the rule contains. One
/// [`RegexSet`] pass over these says which rules can occur, and only those run. (A set of the
/// full patterns is slow: their counted repetitions over overlapping classes overflow the lazy
/// DFA's cache on text like long upper-case runs, and the set falls back to a slower engine.)
#[rustfmt::skip]
const TRIGGERS: [&str; 16] = [
    r"AKIA|ASIA|ABIA|ACCA",
    r"(?i)aws[_.\-]?secret|secret[_.\-]?access",
    r"gh[pousr]_|github_pat_",
    r"gl(?:pat|rt|ptt|dt|soat|cbt|imt|ft|oas)-",
    r"xox[baprs]-|xapp-[0-9]-|hooks\.slack\.com/services/",
    r"[sr]k_(?:live|test)_",
    r"sk-",
    r"sk-ant-",
    r"-----BEGIN ",
    r"eyJ",
    r"(?i)token|secret|passw|api[_\-]?key|access[_\-]?key|auth|credential|private[_\-]?key",
    r"@",
    r"\+[1-9]|[0-9]{3}[ .\-]",
    r"[0-9]{3}-[0-9]{2}-",
    r"[0-9]{4}",
    r"[A-Z]{2}[0-9]{2}",
];

/// Words in a name (key, assignment target) saying that its value is a secret.
const SECRET_WORDS: &str = "token|secret|password|passwd|apikey|api_key|api-key|accesskey|\
    access_key|access-key|auth|credential|privatekey|private_key|private-key";

/// Values published in AWS documentation as examples: never a finding, whatever the rule.
const EXAMPLES: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "AKIAI44QH8DHBEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
];

/// Longest PEM body searched for its END line; past it only the BEGIN line is a match.
const MAX_PEM: usize = 64 * 1024;

/// One match in a scanned text: the rule id and the byte range. The text is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub rule: &'static str,
    pub start: usize,
    pub end: usize,
}

/// What [`Secrets::scan_report`] found, and how much of the text it looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub matches: Vec<Match>,
    /// Bytes scanned from the start of the text (at most `max_bytes`, on a char boundary).
    pub scanned: usize,
    /// The text was longer than `max_bytes`: its tail was not scanned.
    pub truncated: bool,
}

/// The compiled detector. Compiled once; cloning shares the compiled regexes (an `Arc`), and it
/// is `Send + Sync`, so one instance serves every connection.
#[derive(Clone)]
pub struct Secrets {
    inner: Arc<Inner>,
    max_bytes: usize,
}

struct Inner {
    set: RegexSet,
    /// (index into RULES, its regex) for the enabled rules, in RULES order.
    rules: Vec<(usize, Regex)>,
    enabled: [bool; 16],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.inner.rules.iter().map(|(i, _)| RULES[*i].id).collect();
        let max = self.max_bytes;
        f.debug_struct("Secrets")
            .field("rules", &ids)
            .field("max_bytes", &max)
            .finish()
    }
}

/// A candidate after checks: (start, end, index into RULES).
type Hit = (usize, usize, usize);

/// (searched from, next occurrence found): see [`next_at`].
type Cache = (usize, Option<usize>);

impl Secrets {
    /// All rules, or only those named (ids with or without the `secret.`/`pii.` prefix, or the
    /// families "secret"/"pii"); an unknown name is an Err naming it and listing the known ones.
    pub fn new(only: Option<&[String]>) -> Result<Secrets, String> {
        let mut enabled = [only.is_none(); 16];
        for name in only.unwrap_or_default() {
            let name = name.trim();
            let mut known = false;
            for (i, r) in RULES.iter().enumerate() {
                let short = r.id.split_once('.').map_or(r.id, |(_, s)| s);
                if name == r.family || name == r.id || name == short {
                    enabled[i] = true;
                    known = true;
                }
            }
            if !known {
                let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
                let ids = ids.join(", ");
                return Err(format!(
                    "unknown secrets rule `{name}`; known: secret, pii, {ids}"
                ));
            }
        }
        let chosen: Vec<usize> = (0..RULES.len()).filter(|i| enabled[*i]).collect();
        let set = RegexSet::new(chosen.iter().map(|i| TRIGGERS[*i]))
            .map_err(|e| format!("secrets rule set: {e}"))?;
        let mut rules = Vec::with_capacity(chosen.len());
        for i in chosen {
            let re = Regex::new(SPECS[i].2).map_err(|e| format!("{}: {e}", RULES[i].id))?;
            rules.push((i, re));
        }
        let inner = Arc::new(Inner {
            set,
            rules,
            enabled,
        });
        Ok(Secrets {
            inner,
            max_bytes: 1 << 20,
        })
    }

    /// At most `n` bytes of each string are scanned (default 1 MiB), which bounds the cost of a
    /// huge result; the rest is reported as not scanned ([`Report::truncated`], [`TRUNCATED`]).
    pub fn with_max_bytes(mut self, n: usize) -> Secrets {
        self.max_bytes = n;
        self
    }

    /// Matches in `text`, sorted by start, non-overlapping (on overlap keep the longer/earlier).
    pub fn scan(&self, text: &str) -> Vec<Match> {
        self.scan_report(text).matches
    }

    /// Like [`Secrets::scan`], and says whether the text was cut at `max_bytes`.
    pub fn scan_report(&self, text: &str) -> Report {
        let (hits, scanned) = self.find(text, None);
        let to_match = |(start, end, i): Hit| Match {
            rule: RULES[i].id,
            start,
            end,
        };
        let matches = hits.into_iter().map(to_match).collect();
        Report {
            matches,
            scanned,
            truncated: scanned < text.len(),
        }
    }

    /// `text` with each match replaced by its rule's placeholder; None when nothing matched.
    /// An unscanned tail (past `max_bytes`) is kept as it is.
    pub fn redact(&self, text: &str) -> Option<String> {
        replace(text, &self.find(text, None).0)
    }

    /// Every string value inside a JSON value (keys are not scanned), after JSON decoding, so
    /// escapes like `\u0041KIA` do not hide a key; `at` is the JSON pointer of the string. A
    /// string directly under a key naming a secret (`"api_key": "..."`) is also checked whole
    /// for `secret.high-entropy` / `secret.aws-secret-key`: the key is its assignment context.
    /// A string cut at `max_bytes` adds a [`TRUNCATED`] finding.
    pub fn scan_value(&self, v: &Value) -> Vec<Finding> {
        let mut out = Vec::new();
        // An explicit stack: no recursion, so no stack overflow on deeply nested values.
        let mut stack: Vec<(String, Option<&str>, &Value)> = vec![(String::new(), None, v)];
        while let Some((at, key, v)) = stack.pop() {
            match v {
                Value::String(s) => {
                    let (hits, scanned) = self.find(s, key);
                    for (s, e, i) in hits {
                        let (rule, score) = (&RULES[i], SPECS[i].1);
                        out.push(finding(rule.id, rule.family, at.clone(), (s, e), score));
                    }
                    if scanned < s.len() {
                        out.push(finding(TRUNCATED, "limit", at, (scanned, s.len()), 0.0));
                    }
                }
                Value::Array(a) => {
                    for (i, x) in a.iter().enumerate().rev() {
                        stack.push((pointer(&at, &i.to_string()), None, x));
                    }
                }
                Value::Object(o) => {
                    for (k, x) in o.iter().rev() {
                        stack.push((pointer(&at, k), Some(k.as_str()), x));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Redacts in place; returns the findings (empty: the value is unchanged). A lone
    /// [`TRUNCATED`] finding also leaves the value unchanged.
    pub fn redact_value(&self, v: &mut Value) -> Vec<Finding> {
        let found = self.scan_value(v);
        for group in found.chunk_by(|a, b| a.at == b.at) {
            let hits: Vec<Hit> = group
                .iter()
                .filter_map(|f| Some((f.span?.0, f.span?.1, rule_index(f.rule)?)))
                .collect();
            if let Some(Value::String(s)) = v.pointer_mut(&group[0].at) {
                if let Some(new) = replace(s, &hits) {
                    *s = new;
                }
            }
        }
        found
    }

    /// Checked, non-overlapping hits in the first `max_bytes` of `text`, and the bytes scanned.
    fn find(&self, text: &str, key: Option<&str>) -> (Vec<Hit>, usize) {
        let mut cut = self.max_bytes.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let hay = text.get(..cut).unwrap_or_default();
        let mut hits = Vec::new();
        if !hay.is_empty() {
            let present = self.inner.set.matches(hay);
            for (k, (i, re)) in self.inner.rules.iter().enumerate() {
                if present.matched(k) {
                    collect(*i, re, hay, &mut hits);
                }
            }
            if let Some(key) = key.filter(|_| cut == text.len()) {
                self.keyed(key, hay, &mut hits);
            }
        }
        hits.retain(|h| !hay.get(h.0..h.1).is_some_and(|m| EXAMPLES.contains(&m)));
        (resolve(hits), cut)
    }

    /// A whole string under a key naming a secret: the key is the assignment context.
    fn keyed(&self, key: &str, text: &str, hits: &mut Vec<Hit>) {
        let mut s = text.len() - text.trim_start().len();
        let mut value = text.trim();
        for p in ["bearer ", "basic ", "token "] {
            if value
                .get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
            {
                let rest = value.get(p.len()..).unwrap_or_default().trim_start();
                s += value.len() - rest.len();
                value = rest;
            }
        }
        let e = s + value.len();
        let squashed: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
        let squashed = squashed.to_ascii_lowercase();
        if self.inner.enabled[AWS_SECRET]
            && (squashed.contains("secretaccesskey") || squashed.contains("awssecret"))
            && value.len() == 40
            && value.bytes().all(is_b64)
        {
            hits.push((s, e, AWS_SECRET));
        } else if self.inner.enabled[HIGH_ENTROPY]
            && !value.contains(char::is_whitespace)
            && secret_name(key)
            && entropy_ok(key, value)
        {
            hits.push((s, e, HIGH_ENTROPY));
        }
    }
}

fn finding(
    rule: &'static str,
    family: &'static str,
    at: String,
    span: (usize, usize),
    score: f32,
) -> Finding {
    let span = Some(span);
    Finding {
        rule,
        family,
        at,
        span,
        score,
    }
}

fn rule_index(id: &str) -> Option<usize> {
    RULES.iter().position(|r| r.id == id)
}

/// Runs one rule over `hay` and keeps the candidates that pass its checks.
fn collect(i: usize, re: &Regex, hay: &str, hits: &mut Vec<Hit>) {
    let b = hay.as_bytes();
    let kind = SPECS[i].0;
    if kind == Kind::AwsSecret || kind == Kind::Entropy {
        for c in re.captures_iter(hay) {
            let v = if kind == Kind::AwsSecret {
                c.get(1)
                    .filter(|v| !byte_at(b, v.end()).is_some_and(is_b64))
            } else {
                let name = c.get(1).map_or("", |n| n.as_str());
                c.get(2)
                    .filter(|v| secret_name(name) && entropy_ok(name, v.as_str()))
            };
            if let Some(v) = v {
                hits.push((v.start(), v.end(), i));
            }
        }
        return;
    }
    let (mut newline, mut pem_end): (Cache, Cache) = ((usize::MAX, None), (usize::MAX, None));
    for m in re.find_iter(hay) {
        let (s, e) = (m.start(), m.end());
        let (prev, next) = (byte_at(b, s.wrapping_sub(1)), byte_at(b, e));
        let token = !word(prev) && !tokenish(next);
        let span = match kind {
            Kind::AwsAccess => (token
                && !matches!(prev, Some(b'/' | b'+'))
                && !matches!(next, Some(b'/' | b'+' | b'=')))
            .then_some((s, e)),
            Kind::Token => (token && !placeholder(m.as_str())).then_some((s, e)),
            Kind::OpenAi => {
                (token && !m.as_str().starts_with("sk-ant-") && !placeholder(m.as_str()))
                    .then_some((s, e))
            }
            Kind::PrivateKey => Some((s, private_key_end(b, e, &mut newline, &mut pem_end))),
            Kind::Email => email_ok(m.as_str(), next).then_some((s, e)),
            Kind::Phone => {
                let n = m.as_str().bytes().filter(u8::is_ascii_digit).count();
                let ok = if b[s] == b'+' {
                    (10..=15).contains(&n)
                } else {
                    n == 10 || n == 11
                };
                (ok && digit_bounded(b, s, e)).then_some((s, e))
            }
            Kind::Ssn => (ssn_ok(m.as_str()) && digit_bounded(b, s, e)).then_some((s, e)),
            Kind::Card => card_span(b, s, e),
            Kind::Iban => iban_span(hay, s, e),
            Kind::AwsSecret | Kind::Entropy => None,
        };
        if let Some((s, e)) = span {
            hits.push((s, e, i));
        }
    }
}

/// Sorted by start; on overlap the longer wins, on equal length the earlier rule.
fn resolve(mut hits: Vec<Hit>) -> Vec<Hit> {
    hits.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits.into_iter().filter(|h| h.0 < h.1) {
        match out.last_mut() {
            Some(last) if h.0 < last.1 => {
                if h.1 - h.0 > last.1 - last.0 {
                    *last = h;
                }
            }
            _ => out.push(h),
        }
    }
    out
}

/// `text` with the (sorted, non-overlapping) hits replaced by placeholders.
fn replace(text: &str, hits: &[Hit]) -> Option<String> {
    if hits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for &(s, e, i) in hits {
        if let Some(before) = text.get(pos..s) {
            out.push_str(before);
            out.push_str(RULES[i].placeholder);
            pos = e;
        }
    }
    out.push_str(text.get(pos..).unwrap_or_default());
    Some(out)
}

/// `at` extended by one JSON pointer segment (RFC 6901 escaping).
fn pointer(at: &str, seg: &str) -> String {
    format!("{at}/{}", seg.replace('~', "~0").replace('/', "~1"))
}

fn byte_at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

fn word(b: Option<u8>) -> bool {
    b.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn tokenish(b: Option<u8>) -> bool {
    word(b) || b == Some(b'-')
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'+'
}

/// A number not glued to letters or to more digits (`12-`, `.3`): phone, SSN and card
/// candidates inside order numbers, versions and timestamps are not findings.
fn digit_bounded(b: &[u8], s: usize, e: usize) -> bool {
    let glued = |near: Option<u8>, far: Option<u8>| {
        near.is_some_and(|c| c.is_ascii_alphanumeric())
            || (matches!(near, Some(b'.' | b'-' | b'/' | b':')) && far.is_some_and(is_digit))
    };
    let before = glued(byte_at(b, s.wrapping_sub(1)), byte_at(b, s.wrapping_sub(2)));
    !before && !glued(byte_at(b, e), byte_at(b, e + 1))
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

/// The next `needle` at or after `from`. Callers ask with growing `from`, and the answer is
/// remembered while still ahead, so many BEGIN lines do not search the same text again.
fn next_at(b: &[u8], from: usize, needle: &[u8], cache: &mut Cache) -> Option<usize> {
    if cache.0 > from || cache.1.is_some_and(|p| p < from) {
        *cache = (from, memmem::find(&b[from..], needle).map(|i| from + i));
    }
    cache.1
}

/// End of a private key match: its END line when one follows within [`MAX_PEM`], else the end
/// of the BEGIN line (which also covers a body flattened onto that line).
fn private_key_end(b: &[u8], begin: usize, newline: &mut Cache, pem_end: &mut Cache) -> usize {
    let line_end = next_at(b, begin, b"\n", newline).unwrap_or(b.len());
    if let Some(p) = next_at(b, begin, b"-----END ", pem_end).filter(|p| p - begin <= MAX_PEM) {
        let line = &b[p..b.len().min(p + 120)];
        if let Some(close) = memmem::find(&line[9..], b"-----").map(|q| 9 + q) {
            if memmem::find(&line[..close], b"PRIVATE KEY").is_some() {
                return p + close + 5;
            }
        }
    }
    line_end
}

fn email_ok(m: &str, next: Option<u8>) -> bool {
    let tld = m
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let files = [
        "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "js", "css", "json",
    ];
    // `git@github.com:org/repo` is a remote, and a no-reply address (commit authors) reaches
    // no one.
    let (local, domain) = m.rsplit_once('@').unwrap_or_default();
    let domain = domain.to_ascii_lowercase();
    let noreply = domain.split('.').any(|l| l == "noreply" || l == "no-reply");
    !tokenish(next)
        && next != Some(b':')
        && !files.contains(&tld.as_str())
        && !noreply
        && !local.is_empty()
}

/// A token that is a stand-in, not a credential: a long run of one character
/// (`ghp_XXXXXXXX...`, `sk_live_xxxx...`).
fn placeholder(v: &str) -> bool {
    let (mut run, mut last, mut longest) = (0, None, 0);
    for c in v.chars() {
        run = if Some(c) == last { run + 1 } else { 1 };
        last = Some(c);
        longest = longest.max(run);
    }
    longest >= 8
}

/// A value that names where a secret comes from, or is public by design, rather than being
/// one: a code reference or constant name (`process.env.OPENAI_API_KEY`,
/// `REPLACE_WITH_YOUR_TOKEN`: letters in words joined by `.` or `_`, no digit), a stand-in, or
/// a publishable key (`pk_live_...`, meant for browsers).
fn not_a_secret(v: &str) -> bool {
    let words = v.split(['.', '_']).collect::<Vec<_>>();
    let reference = words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|c| c.is_ascii_alphabetic()));
    reference || placeholder(v) || v.starts_with("pk_live_") || v.starts_with("pk_test_")
}

fn ssn_ok(m: &str) -> bool {
    let area = m.get(0..3).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    let group = m.get(4..6).unwrap_or("00");
    let serial = m.get(7..11).unwrap_or("0000");
    area != 0 && area != 666 && area < 900 && group != "00" && serial != "0000"
}

/// The card in a candidate: all of it, or all but a trailing group (a card followed by a
/// short number such as a CVV), when separators, digit count, issuer prefix and Luhn agree.
fn card_span(b: &[u8], s: usize, e: usize) -> Option<(usize, usize)> {
    if !digit_bounded(b, s, e) {
        return None;
    }
    let cand = &b[s..e];
    let seps: Vec<usize> = (0..cand.len()).filter(|&i| !is_digit(cand[i])).collect();
    if seps.iter().any(|&i| cand[i] != cand[seps[0]]) {
        return None;
    }
    let ok = |c: &[u8]| {
        let d: String = c
            .iter()
            .filter(|x| x.is_ascii_digit())
            .map(|&x| char::from(x))
            .collect();
        (13..=19).contains(&d.len()) && issuer_known(d.as_bytes()) && luhn(&d)
    };
    if ok(cand) {
        return Some((s, e));
    }
    match seps.last() {
        Some(&last) if seps.len() >= 2 && ok(&cand[..last]) => Some((s, s + last)),
        _ => None,
    }
}

/// Visa, Mastercard, Amex, Discover, JCB, Diners prefixes (`d` holds at least 4 digits).
fn issuer_known(d: &[u8]) -> bool {
    let n = |k: usize| {
        d.iter()
            .take(k)
            .fold(0u32, |a, &x| a * 10 + u32::from(x - b'0'))
    };
    let (p2, p3, p4) = (n(2), n(3), n(4));
    d.first() == Some(&b'4')
        || (51..=55).contains(&p2)
        || (2221..=2720).contains(&p4)
        || [34, 37, 65, 36, 38].contains(&p2)
        || p4 == 6011
        || (644..=649).contains(&p3)
        || (3528..=3589).contains(&p4)
        || (300..=305).contains(&p3)
}

/// Luhn checksum of a string of ASCII digits (false for anything else, or an empty string).
pub fn luhn(digits: &str) -> bool {
    const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
    if digits.is_empty() || !digits.bytes().all(is_digit) {
        return false;
    }
    let sum: u32 = digits.bytes().rev().enumerate().fold(0, |sum, (i, c)| {
        let d = usize::from(c - b'0');
        sum + if i % 2 == 1 { DOUBLED[d] } else { d as u32 }
    });
    sum.is_multiple_of(10)
}

/// IBAN lengths by country (ISO 13616 registry): SEPA and the other common ones.
const IBAN_LENGTHS: &str = "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29BY28CH21CR22CY28CZ24\
    DE22DK18DO28EE20EG29ES24FI18FO18FR27GB22GE22GI23GL18GR27GT28HR21HU28IE22IL23IQ23IS26IT27\
    JO30KW30KZ20LB28LC32LI21LT20LU20LV21MC27MD24ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25\
    QA29RO24RS22SA24SC31SE24SI19SK24SM27ST25SV28TL23TN24TR26UA29VA22VG24XK20";

fn iban_length(country: &[u8]) -> Option<usize> {
    let entry = IBAN_LENGTHS
        .as_bytes()
        .chunks(4)
        .find(|c| c.get(..2) == Some(country))?;
    std::str::from_utf8(entry.get(2..)?).ok()?.parse().ok()
}

/// The ISO 7064 mod-97 remainder of alphanumerics (letters count as 10..35).
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    chars.fold(0, |r, c| match c {
        b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
        _ => (r * 100 + u32::from(c.to_ascii_uppercase().wrapping_sub(b'A')) + 10) % 97,
    })
}

/// A valid IBAN: known country, its length, ISO 13616 mod-97 == 1. Spaces are allowed.
pub fn iban_valid(s: &str) -> bool {
    let c: Vec<u8> = s
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    c.len() >= 15
        && c[..2].iter().all(u8::is_ascii_uppercase)
        && c[2..4].iter().all(u8::is_ascii_digit)
        && c.iter().all(u8::is_ascii_alphanumeric)
        && iban_length(&c[..2]) == Some(c.len())
        && mod97(c[4..].iter().chain(&c[..4]).copied()) == 1
}

/// The IBAN in a candidate, cut to its country's length at a group boundary.
fn iban_span(hay: &str, s: usize, e: usize) -> Option<(usize, usize)> {
    let b = hay.as_bytes();
    if word(byte_at(b, s.wrapping_sub(1))) {
        return None;
    }
    let want = iban_length(&b[s..s + 2])?;
    let (mut n, mut i) = (0, s);
    while i < e && n < want {
        n += usize::from(b[i] != b' ');
        i += 1;
    }
    let clean_end = if i < e {
        b[i] == b' '
    } else {
        !word(byte_at(b, e))
    };
    (n == want && clean_end && iban_valid(&hay[s..i])).then_some((s, i))
}

/// A name (key or assignment target) that says it holds a secret; `author` is not `auth`
/// (`authorization` is).
fn secret_name(name: &str) -> bool {
    let lower = name
        .to_ascii_lowercase()
        .replace("authori", "auth-")
        .replace("author", "");
    SECRET_WORDS.split('|').any(|w| lower.contains(w.trim()))
}

/// Shannon entropy in bits per byte.
fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    s.bytes().for_each(|b| counts[usize::from(b)] += 1);
    let n = s.len() as f64;
    let h = |&c: &u32| f64::from(c) / n * -(f64::from(c) / n).log2();
    counts.iter().filter(|&&c| c > 0).map(h).sum()
}

/// A value assigned to a secret-named field that looks random: >= 16 chars, >= 3.5 bits/char,
/// and not a URL, a path, a timestamp, or a digest under a name saying it is one.
fn entropy_ok(name: &str, v: &str) -> bool {
    let b = v.as_bytes();
    let dirs = ["/", "./", "../", "~/"];
    let path = dirs.iter().any(|p| v.starts_with(p)) && v.matches('/').count() >= 2;
    let stamp = b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    let lower = name.to_ascii_lowercase();
    let digest = ["hash", "sha", "digest", "checksum", "commit"]
        .iter()
        .any(|w| lower.contains(w))
        && (b.len() == 40 || b.len() == 64)
        && b.iter().all(u8::is_ascii_hexdigit);
    let plain = !v.contains("://") && !path && !stamp && !digest && !not_a_secret(v);
    plain && v.chars().count() >= 16 && entropy(v) >= 3.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn all() -> &'static Secrets {
        static S: OnceLock<Secrets> = OnceLock::new();
        S.get_or_init(|| Secrets::new(None).expect("rules compile"))
    }

    /// Deterministic random-looking text: synthetic, never a live credential. Classes: U upper
    /// and digits, A alphanumeric, B base64, H hex, S mixed with symbols.
    fn synth(n: usize, class: char, seed: u64) -> String {
        let a: &[u8] = match class {
            'U' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            'B' => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            'H' => b"0123456789abcdef",
            'S' => b"abcdefghijkmnopqrstuvwxyzABCDEFGH23456789!@#%^*",
            _ => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        };
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            x = x
                .wrapping_mul(0x5851_F42D_4C95_7F2D)
                .wrapping_add(0x1405_7B7E_F767_814F);
            char::from(a[((x >> 33) % a.len() as u64) as usize])
        };
        (0..n).map(|_| next()).collect()
    }

    /// A template with `{U16}`-style runs made by [`synth`], and the span marked by `[[`/`]]`.
    fn expand(t: &str) -> (String, Option<(usize, usize)>) {
        let (mut out, mut span, mut rest) = (String::new(), (0, 0), t);
        while let Some(c) = rest.chars().next() {
            if let Some(r) = rest.strip_prefix("[[") {
                (span.0, rest) = (out.len(), r);
            } else if let Some(r) = rest.strip_prefix("]]") {
                (span.1, rest) = (out.len(), r);
            } else if let Some((class, n, r)) = run(rest) {
                out.push_str(&synth(n, class, out.len() as u64));
                rest = r;
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        (out, (span.1 > 0).then_some(span))
    }

    /// `{U16}` at the start of `t`: class, length, and what follows.
    fn run(t: &str) -> Option<(char, usize, &str)> {
        let (run, rest) = t.strip_prefix('{')?.split_once('}')?;
        let class = run.chars().next().filter(|c| "UABHS".contains(*c))?;
        Some((class, run[1..].parse().ok()?, rest))
    }

    fn found(text: &str) -> Vec<(&'static str, String)> {
        let m = all().scan(text).into_iter();
        m.map(|m| (m.rule, text[m.start..m.end].to_string()))
            .collect()
    }

    fn card(prefix: &str) -> String {
        (0..10)
            .map(|d| format!("{prefix}{d}"))
            .find(|c| luhn(c))
            .unwrap()
    }

    #[rustfmt::skip]
    const POSITIVES: &[(&str, &str)] = &[
        ("aws-access-key", "key [[AKIA{U16}]], end"),
        ("aws-secret-key", "aws_secret_access_key = [[{B40}]]"),
        ("aws-secret-key", r#"{"SecretAccessKey": "[[{B40}]]"}"#),
        ("aws-secret-key", "<SecretAccessKey>[[{B40}]]</SecretAccessKey>"),
        ("github-token", "GH=[[ghp_{A36}]]"),
        ("github-token", "[[github_pat_{A82}]]"),
        ("gitlab-token", "[[glpat-{A20}]]"),
        ("slack-token", "[[xoxb-123456789012-{A24}]]"),
        ("slack-token", "post to [[https://hooks.slack.com/services/T{U8}/B{U8}/{A24}]]."),
        ("stripe-key", "[[sk_live_{A24}]]"),
        ("stripe-key", "[[rk_test_{A30}]]"),
        ("openai-key", "[[sk-proj-{A60}]]"),
        ("openai-key", "[[sk-{A48}]]"),
        ("openai-key", "[[sk-{A20}T3BlbkFJ{A20}]]"),
        ("anthropic-key", "[[sk-ant-api03-{A93}AA]]"),
        ("private-key", "[[-----BEGIN RSA PRIVATE KEY-----\n{B64}\n{B40}\n-----END RSA PRIVATE KEY-----]]\n"),
        ("private-key", "x [[-----BEGIN EC PRIVATE KEY----- {B20}]]\n{B64}\n"),
        ("jwt", "Authorization: Bearer [[eyJ{A20}.eyJ{A30}.{A43}]]"),
        ("high-entropy", "db_password = [[{S24}]]"),
        ("high-entropy", r#"{"X-Auth-Token": "[[{S24}]]"}"#),
        ("high-entropy", "curl -H 'Authorization: Bearer [[{S24}]]'"),
        ("email", "write to [[jane.doe+test@mail.example.co.uk]]."),
        ("phone", "call [[+44 20 7946 0958]] now"),
        ("phone", "call [[(415) 555-2671]]"),
        ("phone", "call [[+1-415-555-2671]]"),
        ("phone", "tel:[[555-123-4567]]"),
        ("ssn", "ssn [[123-45-6789]]"),
        ("card", "visa [[4111 1111 1111 1111]] exp 12/29"),
        ("card", "amex [[3782-822463-10005]]"),
        ("card", "card [[4111 1111 1111 1111]] 123"),
        ("iban", "IBAN [[DE89 3704 0044 0532 0130 00]]"),
        ("iban", "IBAN: [[GB82WEST12345698765432]]"),
        ("iban", "[[NL91 ABNA 0417 1643 00]] EUR"),
    ];

    /// Hard negatives: digests, ids, base64 blobs, documented examples, numbers that are not
    /// cards, phones or SSNs, public keys, names that only look like secrets.
    const NEGATIVES: &[&str] = &[
        "commit {H40} (short {H7}), sha256:{H64}",
        "id 550e8400-e29b-41d4-a716-446655440000 12345678-1234-5678-1234-567812345678",
        "<img src=\"data:image/png;base64,iVBORw0KGgo{B4000}==\">",
        "payload {B100000}",
        "AKIAIOSFODNN7EXAMPLE aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "4111 1111 1111 1112 and 4111111111111112 and 5500-0000-0000-0005",
        "v1.2.3, 10.15.7, 2.31.0-rc1, Chrome/120.0.6099.109, 1.0.0-beta.20240115",
        "1700000000 or 1700000000123 or 2024-01-15T12:30:45.123Z or 2024-01-15 12:30:45",
        "order 123456789012345, ref 98765432109876543210, ORD-20240115551234567",
        "pk_live_{A24} is public",
        "ssn 000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000",
        "author: Jonathan Swift Esq, max_tokens: 4096, token_url=https://example.com/oauth",
        "credentials_file = /home/someone/.aws/credentials, password: ${DB_PASSWORD}",
        "logo@2x.png and pkg@1.2.3 and IBAN DE00370400440532013000 (bad check digits)",
        "xAKIA{U16}, AKIA{U16}Z, ghp_{A36}c, aghp_{A36}, a4111111111111111, 4111111111111111-2",
    ];

    #[test]
    fn tables_agree() {
        assert_eq!((SPECS.len(), TRIGGERS.len()), (RULES.len(), RULES.len()));
        assert_eq!(RULES[AWS_SECRET].id, "secret.aws-secret-key");
        assert_eq!(RULES[HIGH_ENTROPY].id, "secret.high-entropy");
        for r in RULES {
            let (family, name) = r.id.split_once('.').unwrap();
            let placeholder = format!("[REDACTED:{name}]");
            assert_eq!((r.family, r.placeholder), (family, placeholder.as_str()));
        }
    }

    #[test]
    fn true_positives() {
        for (name, template) in POSITIVES {
            let (text, span) = expand(template);
            let (s, e) = span.unwrap();
            let rule = RULES.iter().find(|r| r.id.ends_with(name)).unwrap().id;
            assert_eq!(
                found(&text),
                vec![(rule, text[s..e].to_string())],
                "{text:?}"
            );
        }
        let ids: Vec<&str> = POSITIVES.iter().map(|p| p.0).collect();
        assert!(RULES.iter().all(|r| ids.iter().any(|n| r.id.ends_with(n))));
        for c in [
            card("222100000000000"),
            card("601100000000000"),
            card("3530111333300"),
        ] {
            assert_eq!(found(&format!("card {c}.")), vec![("pii.card", c)]);
        }
        let cjk = expand("密钥[[AKIA{U16}]]。").0;
        assert_eq!(found(&cjk).len(), 1, "non-ASCII letters are a boundary");
    }

    #[test]
    fn hard_negatives() {
        for t in NEGATIVES {
            let text = expand(t).0;
            assert_eq!(found(&text), vec![], "{}", &text[..text.len().min(120)]);
        }
    }

    #[test]
    fn private_key_blocks() {
        let block = "-----BEGIN PRIVATE KEY-----\n";
        assert_eq!(all().scan(&block.repeat(1000)).len(), 1000);
        assert_eq!(all().scan(&block.trim_end().repeat(30_000)).len(), 1);
        // A JWT inside a private key block: the longer match wins.
        let pem = "-----BEGIN PRIVATE KEY-----\neyJabcde.eyJfghij.klm\n-----END PRIVATE KEY-----";
        assert_eq!(found(pem), vec![("secret.private-key", pem.into())]);
    }

    #[test]
    fn overlapping_matches() {
        // high-entropy and github-token cover the same bytes: the rule listed first wins.
        let (text, _) = expand("token = \"ghp_{A36}\" and a@b.io");
        let m = all().scan(&text);
        let rules: Vec<&str> = m.iter().map(|m| m.rule).collect();
        assert_eq!(rules, ["secret.github-token", "pii.email"]);
        assert!(m[0].end <= m[1].start);
        let hits = vec![
            (0, 10, 10),
            (0, 10, 2),
            (2, 30, 14),
            (25, 40, 11),
            (40, 41, 12),
        ];
        assert_eq!(resolve(hits), vec![(2, 30, 14), (40, 41, 12)]);
    }

    #[test]
    fn redaction() {
        let (text, _) = expand("id AKIA{U16} mail jane@example.com, ok");
        let want = "id [REDACTED:aws-access-key] mail [REDACTED:email], ok";
        assert_eq!(all().redact(&text).unwrap(), want);
        assert_eq!(all().redact("nothing to see"), None);
        assert_eq!(all().redact(""), None);
    }

    #[test]
    fn json_strings_are_decoded_and_pointed_at() {
        let tail = synth(16, 'U', 1);
        let raw = format!(r#"{{"k":"\u0041KIA{tail}","a/b":[{{"c~d":"to x@ex.org"}}],"n":1}}"#);
        let v: Value = serde_json::from_str(&raw).unwrap();
        let f = all().scan_value(&v);
        let got: Vec<_> = f.iter().map(|f| (f.rule, f.at.as_str(), f.span)).collect();
        let email = ("pii.email", "/a~1b/0/c~0d", Some((3, 11)));
        assert_eq!(
            got,
            vec![email, ("secret.aws-access-key", "/k", Some((0, 20)))]
        );
        assert!(f.iter().all(|f| f.score > 0.0 && f.family != "limit"));
        let mut w = v.clone();
        assert_eq!(all().redact_value(&mut w), f);
        assert_eq!(w["k"], "[REDACTED:aws-access-key]");
        assert_eq!(w["a/b"][0]["c~d"], "to [REDACTED:email]");
        let mut clean = serde_json::json!({"a": ["hello", 5, null], "b": {"c": "world"}});
        let before = clean.clone();
        assert!(all().redact_value(&mut clean).is_empty());
        assert_eq!(clean, before);
        let mut root = Value::String("a@example.com".into());
        assert_eq!(all().redact_value(&mut root)[0].at, "");
        assert_eq!(root, "[REDACTED:email]");
    }

    #[test]
    fn json_keys_are_context_for_whole_values() {
        let (hi, aws) = (synth(32, 'A', 2), synth(40, 'B', 3));
        let bearer = format!("Bearer {hi}");
        let v = serde_json::json!({"Authorization": bearer, "SecretAccessKey": aws,
            "api_key": hi, "author": hi, "note": hi});
        let got: Vec<_> = all()
            .scan_value(&v)
            .into_iter()
            .map(|f| (f.rule, f.at, f.span))
            .collect();
        let want = [
            ("secret.high-entropy", "/Authorization", (7, 39)),
            ("secret.aws-secret-key", "/SecretAccessKey", (0, 40)),
            ("secret.high-entropy", "/api_key", (0, 32)),
        ];
        assert_eq!(got, want.map(|(r, a, s)| (r, a.to_string(), Some(s))));
    }

    #[test]
    fn max_bytes_cap() {
        let key = expand("AKIA{U16}").0;
        let s = Secrets::new(None).unwrap().with_max_bytes(100);
        let late = format!("{}{key}", "é".repeat(75));
        let r = s.scan_report(&late);
        assert_eq!((r.matches.len(), r.scanned, r.truncated), (0, 100, true));
        assert_eq!(s.redact(&late), None);
        let early = format!("{key} {}", "x".repeat(200));
        let want = format!("[REDACTED:aws-access-key] {}", "x".repeat(200));
        assert_eq!(s.redact(&early).unwrap(), want);
        let f = s.scan_value(&Value::String(late.clone()));
        assert_eq!(
            (f.len(), f[0].rule, f[0].span),
            (1, TRUNCATED, Some((100, late.len())))
        );
        assert_eq!(s.clone().with_max_bytes(1).scan_report("é").scanned, 0);
        assert!(s.with_max_bytes(0).scan(&key).is_empty());
    }

    #[test]
    fn one_megabyte_text() {
        let gh = expand("ghp_{A36}").0;
        let mut text = String::new();
        let mut lines = 0;
        while text.len() < 1 << 20 {
            let hash = synth(40, 'H', lines);
            text.push_str(&format!(
                "line {lines} v1.2.{lines} commit {hash} at 1700000000 ok\n"
            ));
            if lines % 1000 == 0 {
                text.push_str(&format!("token {gh} from ops{lines}@example.com\n"));
            }
            lines += 1;
        }
        let m = Secrets::new(None)
            .unwrap()
            .with_max_bytes(4 << 20)
            .scan(&text);
        let want = lines.div_ceil(1000) as usize;
        assert_eq!(
            m.iter().filter(|m| m.rule == "secret.github-token").count(),
            want
        );
        assert_eq!(m.iter().filter(|m| m.rule == "pii.email").count(), want);
        assert_eq!(m.len(), 2 * want);
    }

    #[test]
    fn selection_by_name_and_family() {
        let s = Secrets::new(Some(&["github-token".into(), "pii".into()])).unwrap();
        let text = expand("AKIA{U16} ghp_{A36} a@b.org").0;
        let rules: Vec<&str> = s.scan(&text).iter().map(|m| m.rule).collect();
        assert_eq!(rules, ["secret.github-token", "pii.email"]);
        assert!(Secrets::new(Some(&["secret.jwt".into(), "secret".into()])).is_ok());
        assert_eq!(Secrets::new(Some(&[])).unwrap().scan(&text), vec![]);
        let err = Secrets::new(Some(&["pii.jwt".into()])).unwrap_err();
        assert!(
            err.contains("pii.jwt") && err.contains("secret.aws-access-key"),
            "{err}"
        );
    }

    #[test]
    fn checksums() {
        assert!(luhn("4111111111111111") && luhn("0") && !luhn("4111111111111112"));
        assert!(!luhn("") && !luhn("4111-1111") && !luhn("٤١"));
        assert!(iban_valid("DE89 3704 0044 0532 0130 00") && iban_valid("gb82west12345698765432"));
        assert!(!iban_valid("DE89 3704 0044 0532 0130 01") && !iban_valid("DE8937040044053201"));
        assert!(!iban_valid("ZZ89370400440532013000") && !iban_valid("") && !iban_valid("ÄÖ"));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let v = serde_json::json!(["", "é€😀\u{0}", "+", "@", "sk-", "ghp_", {"token": " "}]);
        assert!(all().scan_value(&v).is_empty());
        let odd = [
            "😀".repeat(999),
            "9".repeat(5000),
            "A1".repeat(5000),
            "-----END ".repeat(99),
        ];
        for t in odd {
            assert_eq!(all().redact(&t), None);
        }
        fn shared<T: Send + Sync + Clone>(_: &T) {}
        shared(all());
    }

    #[test]
    fn stand_ins_and_non_addresses_are_not_findings() {
        for t in [
            "GITHUB_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
            "STRIPE_SECRET_KEY=pk_live_BhXNCS5gJNxcEtZAEsf1z6dq",
            "token: REPLACE_WITH_YOUR_TOKEN",
            "apiKey: process.env.OPENAI_API_KEY",
            "git clone git@github.com:acme/platform.git",
            "Author: Diego Costa <diego89@users.noreply.example.com>",
        ] {
            assert!(all().scan(t).is_empty(), "{t}: {:?}", all().scan(t));
        }
        for t in [
            "The token for the mirror job is glrt-qSykAWA-_5BGb1E49J2Z; it has api scope.",
            "token xapp-1-ASPRBBSZ4PQ-4613181183284-31e7b57490c2089b5eddb1b379cc2e01",
            "mail dana@example.org now",
        ] {
            assert!(!all().scan(t).is_empty(), "{t}");
        }
    }
}
