//! The rule engine against the seeds' examples and the pitfalls of the peers.

use super::native::RawRules;
use super::*;
use crate::principal::Principal;
use crate::verdict::Decision;
use serde_json::{json, Value};

const MCPGW_README: &str = r#"
version: v1
mode: enforce
rules:
  - name: admin-full-access
    match:
      methods: ["tools/call"]
      subjects: ["admin-*"]
    action: allow
  - name: block-dangerous-exec
    match:
      methods: ["tools/call"]
      tools: ["exec_*"]
      arguments:
        command: ["*rm -rf*", "*sudo*", "*chmod 777*"]
    action: deny
  - name: block-sensitive-files
    match:
      methods: ["tools/call"]
      tools: ["read_file"]
      arguments:
        path: ["/etc/*", "*.env", "*.pem", "*.key"]
    action: deny
  - name: default-allow
    match:
      methods: ["*"]
    action: allow
"#;

fn call<'a>(tool: &'a str, args: &'a Value) -> Request<'a> {
    Request {
        tool: Some(tool),
        server: Some("fs"),
        arguments: Args::Present(args),
        ..Request::method("tools/call")
    }
}

fn rule_of(set: &RuleSet, who: &Principal, req: &Request) -> (Decision, String) {
    let v = set.decide(who, req);
    (v.decision, v.rule.to_string())
}

#[test]
fn mcpgw_readme_example() {
    let (set, _) = mcpgw::load(MCPGW_README, "policy.yaml").unwrap();
    let user = Principal::agent("bob");
    let admin = Principal::agent("admin-alice");
    let rm = json!({"command": "sudo rm -rf /"});
    assert_eq!(
        rule_of(&set, &user, &call("exec_cmd", &rm)).1,
        "block-dangerous-exec"
    );
    assert_eq!(
        rule_of(&set, &admin, &call("exec_cmd", &rm)).1,
        "admin-full-access"
    );
    let etc = json!({"path": "/tmp/../etc/passwd"});
    assert_eq!(
        rule_of(&set, &user, &call("read_file", &etc)),
        (Decision::Deny, "block-sensitive-files".into()),
        "mcpgw cleans /tmp/../etc/passwd before matching /etc/*"
    );
    let ok = json!({"path": "/home/bob/notes.txt"});
    assert_eq!(
        rule_of(&set, &user, &call("read_file", &ok)).1,
        "default-allow"
    );
    // Quirk kept: a value over 512 bytes never matches, so the deny rule is skipped.
    let padded = json!({"command": format!("rm -rf / {}", " ".repeat(600))});
    assert_eq!(
        rule_of(&set, &user, &call("exec_cmd", &padded)).1,
        "default-allow"
    );
    // Quirk kept: the argument under another name is not checked.
    let other = json!({"cmd": "rm -rf /"});
    assert_eq!(
        rule_of(&set, &user, &call("exec_cmd", &other)).1,
        "default-allow"
    );
}

#[test]
fn mcpgw_tools_clause_only_on_calls_and_implicit_deny() {
    let text = r#"
version: v1
mode: enforce
rules:
  - name: no-exec
    match: { methods: ["*"], tools: ["exec_*"] }
    action: deny
"#;
    let (set, warnings) = mcpgw::load(text, "p.yaml").unwrap();
    assert!(warnings.iter().any(|w| w.contains("tools/call only")));
    let who = Principal::anonymous();
    // The tools clause is skipped for initialize, so the deny rule matches it.
    assert_eq!(
        rule_of(&set, &who, &Request::method("initialize")).1,
        "no-exec"
    );
    let args = json!({});
    assert_eq!(
        rule_of(&set, &who, &call("read", &args)),
        (Decision::Deny, "(implicit-deny)".into())
    );
}

#[test]
fn mcpgw_loader_errors_and_warnings() {
    let bad = [
        ("version: v2\nmode: enforce\nrules: [{name: a, match: {methods: ['*']}, action: allow}]", "version"),
        ("version: v1\nrules: [{name: a, match: {methods: ['*']}, action: allow}]", "mode"),
        ("version: v1\nmode: enforce\nrules: []", "rules"),
        ("version: v1\nmode: enforce\nrules: [{match: {methods: ['*']}, action: allow}]", "rules[0].name"),
        ("version: v1\nmode: enforce\nrules: [{name: a, match: {}, action: allow}]", "rules[0].match.methods"),
        ("version: v1\nmode: enforce\nrules: [{name: a, match: {methods: ['*']}, action: maybe}]", "rules[0].action"),
        ("version: v1\nmode: enforce\nrules: [{name: a, match: {methods: ['tools/*'], arguments: {p: ['x']}}, action: deny}]", "rules[0].match"),
    ];
    for (text, path) in bad {
        let e = mcpgw::load(text, "p").unwrap_err();
        assert_eq!(e.path, path, "{text}: {e}");
    }
    let (_, w) = mcpgw::load(
        "version: v1\nmode: audit\nrules: [{name: a, match: {methods: ['*'], argument: {p: ['x']}}, action: allow}]",
        "p",
    )
    .unwrap();
    assert!(
        w.iter().any(|w| w.contains("argument: mcpgw ignores")),
        "{w:?}"
    );
    assert!(w.iter().any(|w| w.contains("audit")));
}

#[test]
fn audit_mode_records_without_blocking() {
    let text = "version: v1\nmode: audit\nrules: [{name: x, match: {methods: ['tools/call']}, action: deny}]";
    let (set, _) = mcpgw::load(text, "p").unwrap();
    let args = json!({});
    let v = set.decide(&Principal::anonymous(), &call("t", &args));
    assert_eq!(v.decision, Decision::Deny);
    assert!(!v.blocks());
}

fn native(yaml: &str) -> RuleSet {
    let raw: RawRules = serde_yaml_ng::from_str(yaml).unwrap();
    raw.compile("test", "policy.").unwrap()
}

#[test]
fn native_pitfalls_are_decided_the_safe_way() {
    let set = native(
        r#"
rules:
  - name: no-secrets
    action: deny
    match: { tools: [read_file], arguments: { path: ["/etc/*", "~/.ssh/*"] } }
  - name: data-only
    action: allow
    match: { tools: [read_file], constraints: { path: { prefix: "/data/", required: true } } }
"#,
    );
    let who = Principal::anonymous();
    let d = |args: Value| set.decide(&who, &call("read_file", &args));
    for evil in [
        "/data/../etc/passwd",
        "/data/%2e%2e/etc/passwd",
        "file:///etc/passwd",
        "/data/..\\..\\etc\\passwd",
    ] {
        assert_eq!(
            d(json!({ "path": evil })).decision,
            Decision::Deny,
            "{evil}"
        );
    }
    assert_eq!(
        d(json!({"path": "~/.ssh/../.ssh/id_rsa"})).rule.as_ref(),
        "no-secrets"
    );
    assert_eq!(
        d(json!({"path": "/data/report.csv"})).decision,
        Decision::Allow
    );
    // Padding does not escape: too long to check is a deny match.
    let long = format!("/etc/{}", "a".repeat(70_000));
    assert_eq!(d(json!({ "path": long })).rule.as_ref(), "no-secrets");
    // Non-scalar where text is needed: the deny rule matches.
    assert_eq!(
        d(json!({"path": ["/etc/passwd"]})).rule.as_ref(),
        "no-secrets"
    );
    // Ambiguous dotted path: cannot know which value the server reads.
    let set2 = native(
        "rules:\n  - {name: d, action: deny, match: {arguments: {a.b: ['x']}}}\n  - {name: ok, action: allow}\n",
    );
    let v = set2.decide(&who, &call("t", &json!({"a.b": "y", "a": {"b": "x"}})));
    assert_eq!(v.rule.as_ref(), "d");
    // Missing required argument: the allow rule does not match, so nothing allows it.
    assert_eq!(d(json!({})).rule.as_ref(), "(implicit-deny)");
    // Numbers have one form: 100, 100.0 and 1e2 all equal "100".
    let set3 = native(
        "rules:\n  - {name: n, action: allow, match: {constraints: {n: {equals: '100'}}}}\n",
    );
    for n in [json!(100), json!(100.0), json!(1e2)] {
        assert_eq!(
            set3.decide(&who, &call("t", &json!({ "n": n }))).decision,
            Decision::Allow
        );
    }
}

#[test]
fn lists_show_what_an_allow_might_permit() {
    let set = native(
        r#"
rules:
  - {name: deny-args, action: deny, match: {tools: [write], arguments: {path: ["/etc/*"]}}}
  - {name: allow-read, action: allow, match: {tools: ["read*"]}}
  - {name: allow-write-data, action: allow, match: {tools: [write], constraints: {path: {prefix: /data/}}}}
"#,
    );
    let who = Principal::anonymous();
    let list = |tool| Request {
        tool: Some(tool),
        arguments: Args::Unknown,
        ..Request::method("tools/call")
    };
    assert_eq!(set.decide(&who, &list("read_x")).decision, Decision::Allow);
    assert_eq!(set.decide(&who, &list("write")).decision, Decision::Allow);
    assert_eq!(set.decide(&who, &list("exec")).decision, Decision::Deny);
}

#[test]
fn native_rules_refuse_unknown_keys_and_bad_regexes() {
    assert!(serde_yaml_ng::from_str::<RawRules>(
        "rules: [{name: a, action: allow, match: {tool: [x]}}]"
    )
    .is_err());
    let raw: RawRules = serde_yaml_ng::from_str(
        "rules: [{name: a, action: allow, match: {argument_patterns: {p: ['(']}}}]",
    )
    .unwrap();
    let e = raw.compile("t", "policy.").unwrap_err();
    assert_eq!(e.path, "policy.rules[0].match.argument_patterns.p[0]");
}

#[test]
fn subjects_roles_scopes_claims() {
    let set = native(
        r#"
rules:
  - {name: admins, action: allow, match: {roles: ["admin*"]}}
  - {name: scoped, action: allow, match: {scopes: [mcp:tools, mcp:write]}}
  - {name: eng, action: allow, match: {claims: {org.team: [eng]}}}
  - {name: anyone-named, action: deny, match: {subjects: ["*"]}}
"#,
    );
    let mut p = Principal::agent("x");
    p.set_roles(vec!["viewer".into(), "admin-eu".into()]);
    assert_eq!(
        set.decide(&p, &Request::method("tools/list")).rule.as_ref(),
        "admins"
    );
    let mut p = Principal::agent("x");
    p.scopes = vec!["mcp:tools".into()];
    assert_eq!(
        set.decide(&p, &Request::method("x")).rule.as_ref(),
        "anyone-named"
    );
    p.scopes.push("mcp:write".into());
    assert_eq!(
        set.decide(&p, &Request::method("x")).rule.as_ref(),
        "scoped"
    );
    let mut p = Principal::anonymous();
    p.claims = Some(std::sync::Arc::new(
        json!({"org": {"team": ["ops", "eng"]}})
            .as_object()
            .unwrap()
            .clone(),
    ));
    assert_eq!(set.decide(&p, &Request::method("x")).rule.as_ref(), "eng");
    // An empty subject never matches `subjects: ["*"]`.
    assert_eq!(
        set.decide(&Principal::anonymous(), &Request::method("x"))
            .rule
            .as_ref(),
        "(implicit-deny)"
    );
}

#[test]
fn mcpx_readme_policies() {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        r#"
servers:
  - name: filesystem
    policy:
      allow_tools: [read_file, list_directory]
      deny_tools: [write_file, delete_file]
      tool_rules:
        read_file: { args: { path: { prefix: "/data/" } } }
  - name: database
    policy: { read_only: true }
  - name: open
clients:
  ci-bot:
    servers:
      filesystem: { allow_tools: [read_file] }
"#,
    )
    .unwrap();
    let (p, w) = mcpx::load(&doc).unwrap();
    assert!(w.is_empty());
    let anon = Principal::anonymous();
    let mut bot = Principal::anonymous();
    bot.client = Some("ci-bot".into());
    let call = |who, server, tool, args: Value| {
        p.decide_call(who, server, tool, Some(&args))
            .map(|v| v.rule.to_string())
    };
    assert_eq!(
        call(&anon, "filesystem", "read_file", json!({"path": "/data/a"})),
        None
    );
    assert_eq!(
        call(&anon, "filesystem", "read_file", json!({"path": "/etc/a"})).unwrap(),
        "mcpx:server:filesystem:tool_rules"
    );
    // mcpx's prefix is literal: recorded as mcpx decides.
    assert_eq!(
        call(
            &anon,
            "filesystem",
            "read_file",
            json!({"path": "/data/../etc/passwd"})
        ),
        None
    );
    assert_eq!(
        call(&anon, "filesystem", "write_file", json!({})).unwrap(),
        "mcpx:server:filesystem:deny_tools"
    );
    assert_eq!(
        call(&anon, "filesystem", "exec", json!({})).unwrap(),
        "mcpx:server:filesystem:allow_tools"
    );
    assert_eq!(
        call(&anon, "database", "query", json!({})).unwrap(),
        "mcpx:server:database:read_only"
    );
    assert_eq!(call(&anon, "open", "anything", json!({})), None);
    assert_eq!(
        call(&bot, "filesystem", "list_directory", json!({})).unwrap(),
        "mcpx:client:filesystem:allow_tools"
    );
    assert!(p.visible(&anon, "filesystem", "list_directory"));
    assert!(!p.visible(&bot, "filesystem", "list_directory"));
    assert!(!p.visible(&anon, "database", "query"));
    assert!(
        p.visible(&anon, "filesystem", "read_file"),
        "argument rules never hide a tool"
    );
    assert_eq!(
        call(&anon, "filesystem", "read_file", json!({"path": {"x": 1}})).unwrap(),
        "mcpx:server:filesystem:tool_rules"
    );
}

#[test]
fn mcp_gateway_roles() {
    let doc = json!({
        "roles": [
            {"name": "admin", "permissions": [{"object_type": "*", "proxy": "*", "object_name": "*"}]},
            {"name": "reader", "permissions": [{"object_type": "tools", "proxy": "fs", "object_name": "read_*"}]}
        ],
        "attribute_to_roles": [
            {"attribute_key": "groups", "attribute_value": "admins", "roles": ["admin"]},
            {"attribute_key": "email_verified", "attribute_value": "true", "roles": ["reader"]}
        ]
    });
    assert!(roles::looks_like(&doc));
    let r = roles::load_mcp_gateway(&doc).unwrap();
    let mut p = Principal::anonymous();
    p.claims = Some(std::sync::Arc::new(
        json!({"groups": ["dev", "admins"]})
            .as_object()
            .unwrap()
            .clone(),
    ));
    let got = r.roles_for_claims(&p);
    p.set_roles(got);
    assert!(r.permits(&p, "prompts", "any", "thing"));
    let mut q = Principal::anonymous();
    q.claims = Some(std::sync::Arc::new(
        json!({"email_verified": true}).as_object().unwrap().clone(),
    ));
    let got = r.roles_for_claims(&q);
    q.set_roles(got);
    // mcp-gateway compares exactly: "read_*" is not a glob there.
    assert!(!r.permits(&q, "tools", "fs", "read_file"));
    assert!(r.permits(&q, "tools", "fs", "read_*"));
}
