//! One verdict type for every stage (DESIGN-NOTES §9): the audit record, the metric label and
//! the client's error are all made from it, so they cannot disagree.

use std::fmt;
use std::sync::Arc;

/// Where in the pipeline a verdict was reached, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Size caps on what arrives, before anything is parsed further.
    Size,
    /// Who is calling: tokens, keys, agent ids.
    Authenticate,
    /// Role permissions (object type, server, name).
    Roles,
    /// The policy's rules (native, mcpgw) and per-server lists (mcpx).
    Policy,
    /// Rate limits and per-session call limits.
    RateLimit,
    /// The server's circuit breaker.
    Breaker,
    /// Inspection of what servers offer and what passes (pins, poisoning, injection, secrets).
    Inspect,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Size => "size",
            Stage::Authenticate => "authenticate",
            Stage::Roles => "roles",
            Stage::Policy => "policy",
            Stage::RateLimit => "rate-limit",
            Stage::Breaker => "breaker",
            Stage::Inspect => "inspect",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allow,
    Deny,
    /// Allowed with the message changed (redaction, rewritten arguments: later stages).
    Modify,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Modify => "modify",
        }
    }
}

/// Whether a rule's deny stops the message (`enforce`) or is only recorded (`audit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Enforcement {
    #[default]
    Enforce,
    Audit,
}

impl Enforcement {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enforce" => Some(Enforcement::Enforce),
            "audit" => Some(Enforcement::Audit),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::Audit => "audit",
        }
    }
}

/// A stage's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    pub stage: Stage,
    /// The rule that decided (`(implicit-deny)` when none matched, `(default)` for an allow
    /// with no rule configured).
    pub rule: Arc<str>,
    /// Why, in words safe to show the caller.
    pub reason: String,
    pub enforcement: Enforcement,
}

impl Verdict {
    pub fn allow(stage: Stage, rule: impl Into<Arc<str>>) -> Self {
        Verdict {
            decision: Decision::Allow,
            stage,
            rule: rule.into(),
            reason: String::new(),
            enforcement: Enforcement::Enforce,
        }
    }

    pub fn deny(stage: Stage, rule: impl Into<Arc<str>>, reason: impl Into<String>) -> Self {
        Verdict {
            decision: Decision::Deny,
            stage,
            rule: rule.into(),
            reason: reason.into(),
            enforcement: Enforcement::Enforce,
        }
    }

    pub fn audited(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = enforcement;
        self
    }

    /// Whether the message must stop here: a deny that is enforced.
    pub fn blocks(&self) -> bool {
        self.decision == Decision::Deny && self.enforcement == Enforcement::Enforce
    }
}
