//! mcpgw v1 policy files, loaded as they are and decided as mcpgw's code decides (its engine,
//! not only its README): unknown keys ignored, `tools` and argument clauses checked on
//! `tools/call` only, argument values as Go text, path cleaning for argument globs only, and
//! inputs over 512 bytes never matching. `load` returns warnings for the risky quirks.

use super::native::{err, globs, regex, PolicyError};
use super::{Action, ArgClause, ArgTest, Match, Profile, Rule, RuleSet};
use crate::glob::Glob;
use crate::verdict::Enforcement;
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
struct File {
    version: Option<String>,
    mode: Option<String>,
    #[serde(default)]
    response_patterns: Vec<String>,
    #[serde(default)]
    allowed_tools: Vec<String>,
    #[serde(default)]
    rules: Vec<FileRule>,
}

#[derive(Debug, Default, Deserialize)]
struct FileRule {
    #[serde(default)]
    name: String,
    #[serde(rename = "match", default)]
    when: FileMatch,
    #[serde(default)]
    action: String,
    mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FileMatch {
    #[serde(default)]
    methods: Vec<String>,
    tools: Option<Vec<String>>,
    subjects: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    arguments: Option<BTreeMap<String, Vec<String>>>,
    argument_patterns: Option<BTreeMap<String, Vec<String>>>,
}

/// Whether a YAML text is an mcpgw policy (it says `version: v1`).
pub fn looks_like(doc: &Yaml) -> bool {
    doc.get("version").and_then(Yaml::as_str) == Some("v1") && doc.get("rules").is_some()
}

/// Loads an mcpgw policy. Errors are the ones mcpgw's loader reports; warnings name the
/// quirks that make a file decide other than it reads.
pub fn load(text: &str, source: &str) -> Result<(RuleSet, Vec<String>), PolicyError> {
    let doc: Yaml =
        serde_yaml_ng::from_str(text).map_err(|e| err("", format!("not a YAML document: {e}")))?;
    let mut warnings = Vec::new();
    unknown_keys(&doc, &mut warnings);
    let f: File =
        serde_yaml_ng::from_value(doc).map_err(|e| err("", format!("not an mcpgw policy: {e}")))?;
    if f.version.as_deref() != Some("v1") {
        return Err(err("version", "must be \"v1\" (mcpgw policy format)"));
    }
    let mode = match f.mode.as_deref() {
        Some(m) => Enforcement::parse(m)
            .ok_or_else(|| err("mode", format!("must be enforce or audit, not {m:?}")))?,
        None => return Err(err("mode", "is required: enforce or audit")),
    };
    if mode == Enforcement::Audit {
        warnings.push("mode: audit: every deny is only recorded; nothing is blocked".into());
    }
    if f.rules.is_empty() {
        return Err(err("rules", "at least one rule is required"));
    }
    let mut rules = Vec::new();
    for (i, r) in f.rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        if r.name.is_empty() {
            return Err(err(format!("{at}.name"), "is required"));
        }
        if r.when.methods.is_empty() {
            return Err(err(
                format!("{at}.match.methods"),
                "at least one method is required",
            ));
        }
        let action = match r.action.as_str() {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            a => {
                return Err(err(
                    format!("{at}.action"),
                    format!("must be allow or deny, not {a:?}"),
                ))
            }
        };
        let rule_mode = match r.mode.as_deref() {
            None | Some("") => None,
            Some(m) => Some(Enforcement::parse(m).ok_or_else(|| {
                err(
                    format!("{at}.mode"),
                    format!("must be enforce or audit, not {m:?}"),
                )
            })?),
        };
        let has_args = r.when.arguments.as_ref().is_some_and(|a| !a.is_empty())
            || r.when
                .argument_patterns
                .as_ref()
                .is_some_and(|a| !a.is_empty());
        if has_args && !r.when.methods.iter().any(|m| m == "tools/call") {
            return Err(err(
                format!("{at}.match"),
                "arguments and argument_patterns need \"tools/call\" written in methods",
            ));
        }
        for (key, map) in [
            ("arguments", &r.when.arguments),
            ("argument_patterns", &r.when.argument_patterns),
        ] {
            for (name, pats) in map.iter().flatten() {
                if pats.is_empty() {
                    return Err(err(
                        format!("{at}.match.{key}.{name}"),
                        "must have at least one pattern",
                    ));
                }
            }
        }
        let mut arguments = Vec::new();
        for (name, pats) in r.when.arguments.iter().flatten() {
            arguments.push(ArgClause {
                path: name.clone(),
                test: ArgTest::Globs(pats.iter().map(|p| Glob::new(p)).collect()),
            });
        }
        for (name, pats) in r.when.argument_patterns.iter().flatten() {
            let at = format!("{at}.match.argument_patterns.{name}");
            let res = pats
                .iter()
                .enumerate()
                .map(|(j, p)| regex(p, &format!("{at}[{j}]")))
                .collect::<Result<_, _>>()?;
            arguments.push(ArgClause {
                path: name.clone(),
                test: ArgTest::Regexes(res),
            });
        }
        quirks(r, action, &at, &mut warnings);
        rules.push(Rule {
            name: Arc::from(r.name.as_str()),
            action,
            mode: rule_mode,
            when: Match {
                methods: globs(&Some(r.when.methods.clone())),
                tools: globs(&r.when.tools),
                subjects: globs(&r.when.subjects),
                roles: globs(&r.when.roles),
                arguments,
                ..Match::default()
            },
        });
    }
    if !f.allowed_tools.is_empty() {
        warnings.push("allowed_tools: mcpgw refuses a whole tools/list (-32603) when one tool is outside it; FlowGuard hides those tools instead and answers calls to them as unknown".into());
    }
    if !f.response_patterns.is_empty() {
        warnings.push("response_patterns: FlowGuard scans tool results (the first MiB of each `tools/call` reply); mcpgw scans every server-to-client body, so other replies pass unscanned here".into());
    }
    let response_patterns = f
        .response_patterns
        .iter()
        .enumerate()
        .map(|(i, p)| regex(p, &format!("response_patterns[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok((
        RuleSet {
            source: Arc::from(source),
            profile: Profile::Mcpgw,
            mode,
            rules,
            allowed_tools: globs(&Some(f.allowed_tools)),
            response_patterns,
        },
        warnings,
    ))
}

fn quirks(r: &FileRule, action: Action, at: &str, warnings: &mut Vec<String>) {
    let name = &r.name;
    let only_call = r.when.methods.iter().all(|m| m == "tools/call");
    if r.when.tools.is_some() && !only_call {
        warnings.push(format!(
            "{at} ({name}): `tools` is checked on tools/call only; for the other methods in {:?} this rule matches whatever the tool",
            r.when.methods
        ));
    }
    let has_args = r.when.arguments.is_some() || r.when.argument_patterns.is_some();
    if has_args && action == Action::Deny {
        warnings.push(format!(
            "{at} ({name}): a deny on arguments is skipped when the argument is missing (another name, or nested) and when its value is longer than 512 bytes, so padding escapes it; the native policy treats both the safe way"
        ));
    }
    if r.when.argument_patterns.is_some() {
        warnings.push(format!(
            "{at} ({name}): argument_patterns see paths as written (no cleaning of .. or %2e), and are unanchored"
        ));
    }
}

const TOP: &[&str] = &[
    "version",
    "mode",
    "response_patterns",
    "allowed_tools",
    "rules",
];
const RULE: &[&str] = &["name", "match", "action", "mode"];
const MATCH: &[&str] = &[
    "methods",
    "tools",
    "subjects",
    "roles",
    "arguments",
    "argument_patterns",
];

/// mcpgw ignores keys it does not know; a misspelled one (`argument:`) silently does nothing.
fn unknown_keys(doc: &Yaml, warnings: &mut Vec<String>) {
    let mut check = |v: &Yaml, known: &[&str], at: &str| {
        if let Some(m) = v.as_mapping() {
            for k in m.keys() {
                let k = k.as_str().unwrap_or("?");
                if !known.contains(&k) {
                    warnings.push(format!(
                        "{at}{k}: mcpgw ignores this key, so it has no effect; check its spelling"
                    ));
                }
            }
        }
    };
    check(doc, TOP, "");
    if let Some(rules) = doc.get("rules").and_then(Yaml::as_sequence) {
        for (i, r) in rules.iter().enumerate() {
            check(r, RULE, &format!("rules[{i}]."));
            if let Some(m) = r.get("match") {
                check(m, MATCH, &format!("rules[{i}].match."));
            }
        }
    }
}
