//! Evaluating a rule set: first match decides, implicit deny. A clause that cannot be
//! evaluated (a non-scalar where text is needed, a value over the cap, an ambiguous path,
//! arguments that are not an object) counts as matching a deny rule and not an allow rule.

use super::text::{mcpx_text, value_text};
use super::{Action, ArgClause, ArgTest, Constraint, Match, Profile, RuleSet};
use super::{MCPGW_MAX_INPUT, NATIVE_MAX_VALUE};
use crate::args;
use crate::glob::{self, Glob};
use crate::principal::{claim_strings, Principal};
use crate::verdict::{Stage, Verdict};
use serde_json::Value;

/// What a rule looks at in one message.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The server the message goes to (after routing), when one is known.
    pub server: Option<&'a str>,
    /// The tool of a `tools/call` (the server's own name).
    pub tool: Option<&'a str>,
    pub prompt: Option<&'a str>,
    /// The resource URI of `resources/read` and subscriptions.
    pub resource: Option<&'a str>,
    pub arguments: Args<'a>,
}

/// The arguments as a rule can know them.
#[derive(Debug, Clone, Copy)]
pub enum Args<'a> {
    /// Deciding whether an item appears in a list: arguments are not known yet.
    Unknown,
    /// The message has none.
    Absent,
    Present(&'a Value),
}

impl<'a> Request<'a> {
    pub fn method(method: &'a str) -> Self {
        Request {
            method,
            server: None,
            tool: None,
            prompt: None,
            resource: None,
            arguments: Args::Absent,
        }
    }
}

/// How one clause (or a whole match) came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum M {
    Yes,
    No,
    /// Depends on arguments not known yet (lists).
    Unknown,
    /// Could not be evaluated: matches a deny rule, not an allow rule.
    Fail,
}

pub(super) fn and(a: M, b: M) -> M {
    use M::*;
    match (a, b) {
        (No, _) | (_, No) => No,
        (Fail, _) | (_, Fail) => Fail,
        (Unknown, _) | (_, Unknown) => Unknown,
        _ => Yes,
    }
}

fn yes(b: bool) -> M {
    if b {
        M::Yes
    } else {
        M::No
    }
}

impl RuleSet {
    /// The verdict for one message. With `Args::Unknown` (a list), an allow rule that reads
    /// arguments shows the item and a deny rule that reads arguments does not hide it.
    pub fn decide(&self, who: &Principal, req: &Request<'_>) -> Verdict {
        for rule in &self.rules {
            let m = self.matches(&rule.when, who, req);
            if let Some(v) = self.verdict(rule, m) {
                return v;
            }
        }
        self.implicit_deny()
    }

    /// The rules that can still decide once the arguments are known: each rule whose clauses
    /// other than its argument clauses hold for (who, the request), up to and including the
    /// first that reads no argument (it decides whatever the arguments). These depend on the
    /// caller and the item only, so a caller's repeated calls can keep them
    /// ([`RuleSet::decide_among`]).
    pub fn candidates(&self, who: &Principal, req: &Request<'_>) -> Vec<u32> {
        let mut req = *req;
        req.arguments = Args::Unknown;
        let mut out = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            match self.matches(&rule.when, who, &req) {
                M::No => {}
                M::Yes => {
                    out.push(i as u32);
                    break;
                }
                _ => out.push(i as u32),
            }
        }
        out
    }

    /// The same verdict as [`RuleSet::decide`], checking only the argument clauses of the
    /// candidate rules.
    pub fn decide_among(&self, candidates: &[u32], req: &Request<'_>) -> Verdict {
        let call_only = self.profile == Profile::Mcpgw && req.method != "tools/call";
        let mut memo = None;
        for &i in candidates {
            let Some(rule) = self.rules.get(i as usize) else {
                continue;
            };
            let m = if call_only || rule.when.arguments.is_empty() {
                M::Yes
            } else {
                let args = match req.arguments {
                    Args::Unknown => {
                        if let Some(v) = self.verdict(rule, M::Unknown) {
                            return v;
                        }
                        continue;
                    }
                    Args::Absent => None,
                    Args::Present(v) => Some(v),
                };
                let mut m = M::Yes;
                for c in &rule.when.arguments {
                    m = and(m, self.argument_memo(c, args, &mut memo));
                    if m == M::No {
                        break;
                    }
                }
                m
            };
            if let Some(v) = self.verdict(rule, m) {
                return v;
            }
        }
        self.implicit_deny()
    }

    fn verdict(&self, rule: &super::Rule, m: M) -> Option<Verdict> {
        let hit = matches!(
            (rule.action, m),
            (_, M::Yes) | (Action::Deny, M::Fail) | (Action::Allow, M::Unknown)
        );
        if !hit {
            return None;
        }
        let mode = rule.mode.unwrap_or(self.mode);
        Some(match rule.action {
            Action::Allow => Verdict::allow(Stage::Policy, rule.name.clone()),
            Action::Deny => {
                let why = if m == M::Fail {
                    format!(
                        "denied by policy rule {:?} (an argument could not be checked)",
                        &*rule.name
                    )
                } else {
                    format!("denied by policy rule {:?}", &*rule.name)
                };
                Verdict::deny(Stage::Policy, rule.name.clone(), why).audited(mode)
            }
        })
    }

    fn implicit_deny(&self) -> Verdict {
        Verdict::deny(
            Stage::Policy,
            "(implicit-deny)",
            "denied by policy: no rule allows it",
        )
        .audited(self.mode)
    }

    fn cap(&self) -> usize {
        match self.profile {
            Profile::Native => NATIVE_MAX_VALUE,
            Profile::Mcpgw => MCPGW_MAX_INPUT,
        }
    }

    /// A name clause: under mcpgw an input over 512 bytes never matches.
    fn name(&self, globs: &[Glob], input: Option<&str>) -> M {
        if globs.is_empty() {
            return M::Yes;
        }
        match input {
            Some(s) if self.profile == Profile::Mcpgw && s.len() > MCPGW_MAX_INPUT => M::No,
            Some(s) => yes(glob::any(globs, s)),
            None => M::No,
        }
    }

    fn matches(&self, m: &Match, who: &Principal, req: &Request<'_>) -> M {
        let mcpgw = self.profile == Profile::Mcpgw;
        // mcpgw checks `tools` and argument clauses on tools/call only, skipping them elsewhere.
        let call_only = mcpgw && req.method != "tools/call";
        // Clauses in order of cost; the first that fails decides (no further work).
        let mut r = M::Yes;
        macro_rules! clause {
            ($e:expr) => {
                r = and(r, $e);
                if r == M::No {
                    return M::No;
                }
            };
        }
        clause!(self.name(&m.methods, Some(req.method)));
        if !call_only {
            clause!(self.name(&m.tools, req.tool));
        }
        clause!(self.name(&m.servers, req.server));
        clause!(self.name(&m.prompts, req.prompt));
        clause!(self.name(&m.resources, req.resource));
        clause!(self.name(&m.subjects, who.subject.as_deref()));
        clause!(self.name(&m.clients, who.client.as_deref()));
        if !m.roles.is_empty() {
            let any = who
                .roles
                .iter()
                .any(|role| self.name(&m.roles, Some(role)) == M::Yes);
            clause!(yes(any));
        }
        if !m.scopes.is_empty() {
            let all = m
                .scopes
                .iter()
                .all(|s| who.scopes.iter().any(|h| **h == **s));
            clause!(yes(all));
        }
        for (path, globs) in &m.claims {
            let any = who
                .claim(path)
                .map(claim_strings)
                .unwrap_or_default()
                .iter()
                .any(|v| glob::any(globs, v));
            clause!(yes(any));
        }
        if call_only || m.arguments.is_empty() {
            return r;
        }
        let args = match req.arguments {
            Args::Unknown => return and(r, M::Unknown),
            Args::Absent => None,
            Args::Present(v) => Some(v),
        };
        for c in &m.arguments {
            clause!(self.argument(c, args));
        }
        r
    }

    /// [`RuleSet::argument`], with what depends only on the clause's path (the value, its
    /// text, whether it is path-like and its normal form) kept from the previous clause when
    /// it reads the same path: rules often test one argument several times.
    fn argument_memo<'r, 'v>(
        &self,
        clause: &'r ArgClause,
        args: Option<&'v Value>,
        memo: &mut Option<Memo<'r, 'v>>,
    ) -> M {
        if self.profile != Profile::Native || matches!(clause.test, ArgTest::Constraint(_)) {
            return self.argument(clause, args);
        }
        let m = match memo {
            Some(m) if m.path == clause.path => m,
            _ => memo.insert(Memo::new(&clause.path, args)),
        };
        let text = match &m.text {
            Resolved::Fail => return M::Fail,
            Resolved::Missing => return M::No,
            Resolved::Text(t) => t,
        };
        let test = |t: &str| match &clause.test {
            ArgTest::Globs(globs) => glob::any(globs, t),
            ArgTest::Regexes(res) => res.iter().any(|re| re.is_match(t)),
            ArgTest::Constraint(_) => false,
        };
        let raw = test(text);
        if !*m.path_like.get_or_insert_with(|| args::is_path_like(text)) {
            return yes(raw);
        }
        let normal = m.normal.get_or_insert_with(|| args::normalise_path(text));
        combine(raw, test(normal))
    }

    fn argument(&self, clause: &ArgClause, args: Option<&Value>) -> M {
        let mcpgw = self.profile == Profile::Mcpgw;
        let value = match args {
            None | Some(Value::Null) => None,
            // mcpgw reads no arguments from a non-object: the argument is missing.
            Some(v) if !v.is_object() && mcpgw => None,
            Some(v) if !v.is_object() => return M::Fail,
            Some(v) if !mcpgw && args::ambiguous(v, &clause.path) => return M::Fail,
            Some(v) if mcpgw => mcpgw_lookup(v, &clause.path),
            Some(v) => args::lookup(v, &clause.path),
        };
        if let ArgTest::Constraint(c) = &clause.test {
            return match self.profile {
                Profile::Native => both_forms(value, |v| constraint(c, v)),
                Profile::Mcpgw => constraint(c, value),
            };
        }
        // A missing argument does not match (mcpgw: every listed argument must be present).
        let Some(value) = value else {
            return M::No;
        };
        let Some(mut text) = value_text(self.profile, value) else {
            return M::Fail;
        };
        // mcpgw cleans a value for argument globs (when it starts with a slash or backslash or
        // holds `..`) before its 512-byte cap applies; regexes see the value as written.
        if mcpgw
            && matches!(clause.test, ArgTest::Globs(_))
            && (text.starts_with(['/', '\\']) || text.contains(".."))
        {
            text = std::borrow::Cow::Owned(args::clean(&text.replace('\\', "/")));
        }
        if text.len() > self.cap() {
            return match self.profile {
                Profile::Mcpgw => M::No,
                Profile::Native => M::Fail,
            };
        }
        let test = |t: &str| match &clause.test {
            ArgTest::Globs(globs) => glob::any(globs, t),
            ArgTest::Regexes(res) => res.iter().any(|re| re.is_match(t)),
            ArgTest::Constraint(_) => false,
        };
        match self.profile {
            // mcpgw cleans values for argument globs only, when they start with a slash or
            // backslash or hold `..`; regexes see the value as written.
            Profile::Mcpgw => yes(test(&text)),
            // Native: a path-like value must match as written and in its normal form alike;
            // when only one of them matches, the clause cannot be decided and fails closed
            // (a deny rule matches, an allow rule does not).
            Profile::Native => {
                let raw = test(&text);
                if !args::is_path_like(&text) {
                    return yes(raw);
                }
                combine(raw, test(&args::normalise_path(&text)))
            }
        }
    }
}

/// One argument as the native profile reads it for text tests, kept across the clauses of a
/// request that read the same path.
struct Memo<'r, 'v> {
    path: &'r str,
    text: Resolved<'v>,
    path_like: Option<bool>,
    normal: Option<String>,
}

enum Resolved<'v> {
    /// Cannot be evaluated: arguments not an object, an ambiguous path, a value that is not a
    /// scalar or is over the cap.
    Fail,
    Missing,
    Text(std::borrow::Cow<'v, str>),
}

impl<'r, 'v> Memo<'r, 'v> {
    fn new(path: &'r str, args: Option<&'v Value>) -> Self {
        let value = match args {
            None | Some(Value::Null) => Ok(None),
            Some(v) if !v.is_object() || args::ambiguous(v, path) => Err(()),
            Some(v) => Ok(args::lookup(v, path)),
        };
        let text = match value {
            Err(()) => Resolved::Fail,
            Ok(None) => Resolved::Missing,
            Ok(Some(v)) => match value_text(Profile::Native, v) {
                Some(t) if t.len() <= NATIVE_MAX_VALUE => Resolved::Text(t),
                _ => Resolved::Fail,
            },
        };
        Memo {
            path,
            text,
            path_like: None,
            normal: None,
        }
    }
}

/// mcpgw's view of an argument: top-level keys, and nested objects flattened to `a.b` paths of
/// at most 5 segments; arrays are not descended into.
fn mcpgw_lookup<'v>(args: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = args.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() > 5 {
        return None;
    }
    let mut v = obj.get(parts[0])?;
    for p in &parts[1..] {
        v = v.as_object()?.get(*p)?;
    }
    Some(v)
}

fn combine(raw: bool, normal: bool) -> M {
    match (raw, normal) {
        (true, true) => M::Yes,
        (false, false) => M::No,
        _ => M::Fail,
    }
}

/// A constraint on a path-like string, checked on the value as written and its normal form.
fn both_forms(value: Option<&Value>, check: impl Fn(Option<&Value>) -> M) -> M {
    let m = check(value);
    match (m, value) {
        (M::Yes | M::No, Some(Value::String(s))) if args::is_path_like(s) => {
            let n = Value::String(args::normalise_path(s));
            combine(m == M::Yes, check(Some(&n)) == M::Yes)
        }
        _ => m,
    }
}

/// mcpx's constraints (all must hold). A missing argument passes unless `required`; a value
/// that is not a scalar fails closed.
pub(super) fn constraint(c: &Constraint, value: Option<&Value>) -> M {
    let Some(value) = value else {
        return yes(!c.required);
    };
    let Some(text) = mcpx_text(value) else {
        return M::Fail;
    };
    if text.len() > NATIVE_MAX_VALUE {
        return M::Fail;
    }
    let ok = c.equals.as_ref().is_none_or(|e| *e == text)
        && c.one_of.as_ref().is_none_or(|o| o.contains(&text))
        && c.prefix
            .as_ref()
            .is_none_or(|p| text.starts_with(p.as_str()))
        && c.suffix.as_ref().is_none_or(|s| text.ends_with(s.as_str()))
        && c.regex.as_ref().is_none_or(|re| re.is_match(&text));
    yes(ok)
}
