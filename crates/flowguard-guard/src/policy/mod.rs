//! The one rule form inside (DESIGN-NOTES §9): first-match rules, each `allow` or `deny`,
//! `enforce` or `audit`, deny when nothing matches. Loaders outside translate the native
//! policy, mcpgw files, mcpx per-server lists and mcp-gateway roles into it; a [`Profile`] pins
//! the semantics that differ between them (which clauses apply to which methods, how values
//! become text, the input cap, path cleaning).

mod eval;
pub mod mcpgw;
pub mod mcpx;
pub mod native;
pub mod roles;
mod text;

pub use eval::{Args, Request};

use crate::glob::Glob;
use crate::verdict::Enforcement;
use regex::Regex;
use std::sync::Arc;

/// Whose semantics a rule set follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// FlowGuard's own: every pitfall decided the safe way.
    Native,
    /// mcpgw v1, quirks included (tools and argument clauses only on `tools/call`, 512-byte
    /// cap that never matches, Go number text, path cleaning only for argument globs).
    Mcpgw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

/// A first-match rule list.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Where it came from (a file name, `config`), for messages.
    pub source: Arc<str>,
    pub profile: Profile,
    /// The file's mode; a rule's own mode wins.
    pub mode: Enforcement,
    pub rules: Vec<Rule>,
    /// mcpgw's `allowed_tools`: a whole `tools/list` is refused when any tool is outside it.
    pub allowed_tools: Vec<Glob>,
    /// mcpgw's `response_patterns` (server-to-client scan; kept for the inspection stage).
    pub response_patterns: Vec<Regex>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: Arc<str>,
    pub action: Action,
    pub mode: Option<Enforcement>,
    pub when: Match,
}

/// The clauses of a rule; every clause present must hold. An empty list is no clause.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub methods: Vec<Glob>,
    pub servers: Vec<Glob>,
    pub tools: Vec<Glob>,
    pub prompts: Vec<Glob>,
    pub resources: Vec<Glob>,
    pub subjects: Vec<Glob>,
    pub clients: Vec<Glob>,
    pub roles: Vec<Glob>,
    /// Every one of these scopes is required.
    pub scopes: Vec<String>,
    /// Claim path → any of the globs matches any of the claim's values.
    pub claims: Vec<(String, Vec<Glob>)>,
    pub arguments: Vec<ArgClause>,
}

/// A test on one argument, by dotted path.
#[derive(Debug, Clone)]
pub struct ArgClause {
    pub path: String,
    pub test: ArgTest,
}

#[derive(Debug, Clone)]
pub enum ArgTest {
    /// Any glob matches (paths normalised first).
    Globs(Vec<Glob>),
    /// Any regex matches (unanchored, as written).
    Regexes(Vec<Regex>),
    /// mcpx's constraints, all of which must hold.
    Constraint(Constraint),
}

#[derive(Debug, Clone, Default)]
pub struct Constraint {
    pub equals: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
    pub regex: Option<Regex>,
    /// The argument must be present (otherwise a missing argument passes the constraint).
    pub required: bool,
}

/// The native cap on an argument's text: longer values cannot be matched, so they count as
/// matching a deny rule and not an allow rule.
pub const NATIVE_MAX_VALUE: usize = 64 * 1024;
/// mcpgw's cap: a longer input never matches any glob (a padded argument escapes deny rules;
/// FlowGuard keeps the behaviour under the mcpgw profile and `validate` warns about it).
pub const MCPGW_MAX_INPUT: usize = 512;

#[cfg(test)]
mod tests;
