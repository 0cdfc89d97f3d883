//! The native policy: first-match rules as in mcpgw v1, plus servers, prompts, resources,
//! clients, scopes, claims and mcpx's argument constraints, with every unknown key refused and
//! every pitfall decided the safe way (see `eval`).

use super::{Action, ArgClause, ArgTest, Constraint, Match, Profile, Rule, RuleSet};
use crate::glob::Glob;
use crate::verdict::Enforcement;
use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `enforce` (a deny stops the message) or `audit` (a deny is recorded and the message passes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawMode {
    Enforce,
    Audit,
}

impl From<RawMode> for Enforcement {
    fn from(m: RawMode) -> Self {
        match m {
            RawMode::Enforce => Enforcement::Enforce,
            RawMode::Audit => Enforcement::Audit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawAction {
    Allow,
    Deny,
}

/// The native rules (in the config's `[policy]`, or a policy file without mcpgw's `version`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    /// `enforce` or `audit` for every rule without its own `mode`. Default `enforce`.
    pub mode: Option<RawMode>,
    /// Checked in order; the first rule that matches decides; no match denies.
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Named in verdicts, audit records and errors; unique in its list.
    pub name: String,
    /// `allow` or `deny`.
    pub action: RawAction,
    /// Overrides the list's mode for this rule.
    pub mode: Option<RawMode>,
    /// What the rule applies to; every clause given must hold. An empty `match` matches all.
    #[serde(rename = "match", default)]
    pub when: RawMatch,
}

/// The clauses of a rule. Globs: `*` any run of characters (including `/`), `?` one byte.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// JSON-RPC methods, e.g. `tools/call`, `resources/*`.
    pub methods: Option<Vec<String>>,
    /// Server ids.
    pub servers: Option<Vec<String>>,
    /// Tool names as the server knows them (without the unified prefix); only messages that
    /// name a tool match.
    pub tools: Option<Vec<String>>,
    /// Prompt names (`prompts/get`).
    pub prompts: Option<Vec<String>>,
    /// Resource URIs (`resources/read`, subscriptions).
    pub resources: Option<Vec<String>>,
    /// Subjects (token identity claim, API-key client name or agent id).
    pub subjects: Option<Vec<String>>,
    /// API-key client names.
    pub clients: Option<Vec<String>>,
    /// Roles; any role matching any glob.
    pub roles: Option<Vec<String>>,
    /// OAuth scopes the token must all hold. (Scopes every request needs go in
    /// `auth.oauth.scopes`, which answers 403 `insufficient_scope` naming the missing ones.)
    pub scopes: Option<Vec<String>>,
    /// Token claims by dotted path, each to globs (any value of an array claim may match).
    pub claims: Option<BTreeMap<String, Vec<String>>>,
    /// Tool arguments by dotted path (`opts.path`) to globs. Path-like values must match as
    /// written and after normalisation (`..`, `%2e`, `file://`, `~`, backslashes) alike.
    pub arguments: Option<BTreeMap<String, Vec<String>>>,
    /// Tool arguments by dotted path to regular expressions (unanchored unless written `^…$`).
    pub argument_patterns: Option<BTreeMap<String, Vec<String>>>,
    /// mcpx-style constraints by dotted path; all of an argument's constraints must hold.
    pub constraints: Option<BTreeMap<String, RawConstraint>>,
}

/// mcpx's argument constraints (ANDed).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConstraint {
    pub equals: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    /// A regular expression (unanchored unless written `^…$`).
    pub regex: Option<String>,
    /// The argument must be present. Default false.
    #[serde(default)]
    pub required: bool,
}

/// A problem in a rule list, with the path of the bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

pub(crate) fn err(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError {
        path: path.into(),
        message: message.into(),
    }
}

pub(crate) fn globs(v: &Option<Vec<String>>) -> Vec<Glob> {
    v.iter().flatten().map(|p| Glob::new(p)).collect()
}

/// Compiles a regex with a bounded size; the `regex` crate matches in linear time.
pub(crate) fn regex(pattern: &str, path: &str) -> Result<Regex, PolicyError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| err(path, format!("invalid regular expression: {e}")))
}

impl RawRules {
    /// The native rule set; `source` names it in messages (`config`, a file name).
    pub fn compile(&self, source: &str, prefix: &str) -> Result<RuleSet, PolicyError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut names = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let at = format!("{prefix}rules[{i}]");
            if r.name.trim().is_empty() {
                return Err(err(format!("{at}.name"), "a rule needs a name"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(err(
                    format!("{at}.name"),
                    format!("rule name {:?} is used twice; names must be unique", r.name),
                ));
            }
            rules.push(Rule {
                name: Arc::from(r.name.as_str()),
                action: match r.action {
                    RawAction::Allow => Action::Allow,
                    RawAction::Deny => Action::Deny,
                },
                mode: r.mode.map(Into::into),
                when: compile_match(&r.when, &format!("{at}.match"))?,
            });
        }
        Ok(RuleSet {
            source: Arc::from(source),
            profile: Profile::Native,
            mode: self.mode.map_or(Enforcement::Enforce, Into::into),
            rules,
            allowed_tools: Vec::new(),
            response_patterns: Vec::new(),
        })
    }
}

fn compile_match(m: &RawMatch, at: &str) -> Result<Match, PolicyError> {
    let mut arguments = Vec::new();
    for (path, pats) in m.arguments.iter().flatten() {
        check_path(path, &format!("{at}.arguments"))?;
        arguments.push(ArgClause {
            path: path.clone(),
            test: ArgTest::Globs(pats.iter().map(|p| Glob::new(p)).collect()),
        });
    }
    for (path, pats) in m.argument_patterns.iter().flatten() {
        let p = format!("{at}.argument_patterns.{path}");
        check_path(path, &p)?;
        let res = pats
            .iter()
            .enumerate()
            .map(|(i, r)| regex(r, &format!("{p}[{i}]")))
            .collect::<Result<_, _>>()?;
        arguments.push(ArgClause {
            path: path.clone(),
            test: ArgTest::Regexes(res),
        });
    }
    for (path, c) in m.constraints.iter().flatten() {
        let p = format!("{at}.constraints.{path}");
        check_path(path, &p)?;
        arguments.push(ArgClause {
            path: path.clone(),
            test: ArgTest::Constraint(constraint(c, &p)?),
        });
    }
    Ok(Match {
        methods: globs(&m.methods),
        servers: globs(&m.servers),
        tools: globs(&m.tools),
        prompts: globs(&m.prompts),
        resources: globs(&m.resources),
        subjects: globs(&m.subjects),
        clients: globs(&m.clients),
        roles: globs(&m.roles),
        scopes: m.scopes.clone().unwrap_or_default(),
        claims: m
            .claims
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.iter().map(|p| Glob::new(p)).collect()))
            .collect(),
        arguments,
    })
}

fn check_path(path: &str, at: &str) -> Result<(), PolicyError> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(err(
            at,
            format!("argument path {path:?} is not a dotted name like `path` or `opts.path`"),
        ));
    }
    Ok(())
}

pub(crate) fn constraint(c: &RawConstraint, at: &str) -> Result<Constraint, PolicyError> {
    let empty = c.equals.is_none()
        && c.one_of.is_none()
        && c.prefix.is_none()
        && c.suffix.is_none()
        && c.regex.is_none()
        && !c.required;
    if empty {
        return Err(err(
            at,
            "at least one constraint (equals, one_of, prefix, suffix, regex, required) is required",
        ));
    }
    Ok(Constraint {
        equals: c.equals.clone(),
        one_of: c.one_of.clone(),
        prefix: c.prefix.clone(),
        suffix: c.suffix.clone(),
        regex: c
            .regex
            .as_deref()
            .map(|r| regex(r, &format!("{at}.regex")))
            .transpose()?,
        required: c.required,
    })
}
