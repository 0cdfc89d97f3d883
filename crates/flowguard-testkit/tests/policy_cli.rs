//! `flowguard policy validate|test|diff` and `flowguard auth hash-key` on the seeds' files and
//! native ones, as a user runs them.

use flowguard_testkit::GatewayOptions;
use std::path::Path;

const MCPGW: &str = r#"
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

const SCENARIOS: &str = r#"
- name: admin runs anything
  method: tools/call
  params: '{"name":"exec_cmd","arguments":{"command":"sudo rm -rf /"}}'
  subject: admin-alice
  expect: allow
- name: others cannot sudo
  method: tools/call
  params: '{"name":"exec_cmd","arguments":{"command":"sudo ls"}}'
  subject: bob
  expect: deny
- name: traversal is cleaned
  method: tools/call
  params: '{"name":"read_file","arguments":{"path":"/tmp/../etc/passwd"}}'
  subject: bob
  expect: deny
- name: ordinary read
  method: tools/call
  params: '{"name":"read_file","arguments":{"path":"/home/bob/notes.txt"}}'
  subject: bob
  expect: allow
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn validate_reports_the_kind_and_the_risky_quirks() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "policy.yaml", MCPGW);
    let out = GatewayOptions::new().run(&["policy", "validate", &f], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("ok (mcpgw policy, 4 rule(s)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("longer than 512 bytes"),
        "{}",
        out.stdout
    );
    let bad = write(dir.path(), "bad.yaml", "version: v1\nmode: enforce\nrules:\n  - name: x\n    match: {methods: ['tools/*'], arguments: {p: ['*']}}\n    action: deny\n");
    let out = GatewayOptions::new().run(&["policy", "validate", &bad], None);
    assert_eq!(out.code(), Some(2));
    assert!(
        out.stderr
            .contains("rules[0].match: arguments and argument_patterns need \"tools/call\""),
        "{}",
        out.stderr
    );
    let native = write(
        dir.path(),
        "native.yaml",
        "rules:\n  - {name: a, action: allow, match: {tool: [x]}}\n",
    );
    let out = GatewayOptions::new().run(&["policy", "validate", &native], None);
    assert_eq!(out.code(), Some(2));
    assert!(
        out.stderr.contains("unknown field `tool`"),
        "{}",
        out.stderr
    );
}

#[test]
fn test_runs_mcpgw_scenarios_and_single_requests() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "policy.yaml", MCPGW);
    let s = write(dir.path(), "scenarios.yaml", SCENARIOS);
    let out = GatewayOptions::new().run(&["policy", "test", &f, "--scenarios", &s], None);
    assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("4 passed, 0 failed"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("PASS others cannot sudo: deny by policy rule \"block-dangerous-exec\""),
        "{}",
        out.stdout
    );
    let out = GatewayOptions::new().run(
        &[
            "policy",
            "test",
            &f,
            "--tool",
            "read_file",
            "--args",
            r#"{"path":"x.pem"}"#,
            "--subject",
            "bob",
        ],
        None,
    );
    assert_eq!(out.code(), Some(0));
    assert!(
        out.stdout
            .contains("deny by policy rule \"block-sensitive-files\""),
        "{}",
        out.stdout
    );
    let wrong = write(dir.path(), "wrong.yaml", "- {name: w, method: tools/call, params: '{\"name\":\"exec_x\",\"arguments\":{\"command\":\"sudo\"}}', expect: allow}\n");
    let out = GatewayOptions::new().run(&["policy", "test", &f, "--scenarios", &wrong], None);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stdout.contains("FAIL w: expected allow"),
        "{}",
        out.stdout
    );
}

#[test]
fn diff_shows_which_decisions_change() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.yaml", MCPGW);
    let new = write(dir.path(), "new.yaml", &MCPGW.replace("\"*sudo*\", ", ""));
    let s = write(dir.path(), "scenarios.yaml", SCENARIOS);
    let out = GatewayOptions::new().run(&["policy", "diff", &old, &new, "--scenarios", &s], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("CHANGED others cannot sudo: deny (\"block-dangerous-exec\") -> allow (\"default-allow\")"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 of 4 decision(s) change"),
        "{}",
        out.stdout
    );
}

#[test]
fn hash_key_prints_a_key_and_its_digest() {
    let out = GatewayOptions::new().run(&["auth", "hash-key"], None);
    assert_eq!(out.code(), Some(0));
    let key = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key:    "))
        .unwrap()
        .to_string();
    let digest = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap()
        .to_string();
    assert!(key.starts_with("fg_") && key.len() > 40, "{key}");
    assert_eq!(digest, flowguard_guard::apikey::digest_of(&key));
    let out =
        GatewayOptions::new().run(&["auth", "hash-key", "--stdin"], Some(&format!("{key}\n")));
    assert_eq!(out.stdout.trim(), digest);
}

#[test]
fn diff_over_the_tools_of_the_configured_servers() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(dir.path(), "old.yaml", "version: v1\nmode: enforce\nrules:\n  - name: all\n    match: {methods: ['*']}\n    action: allow\n");
    let new = write(
        dir.path(),
        "new.yaml",
        "rules:\n  - {name: no-add, action: deny, match: {tools: [add]}}\n  - {name: bob-no-echo, action: deny, match: {tools: [echo], subjects: [bob]}}\n  - {name: rest, action: allow}\n",
    );
    let cfg = write(
        dir.path(),
        "gw.toml",
        &flowguard_testkit::config::fake_server("fake", &[], ""),
    );
    let out = GatewayOptions::new().run(&["policy", "diff", &old, &new, "--config", &cfg], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("CHANGED fake/add: allow (\"all\") -> hidden (\"\")"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("fake/echo"), "{}", out.stdout);
    let out = GatewayOptions::new().run(
        &[
            "policy",
            "diff",
            &old,
            &new,
            "--config",
            &cfg,
            "--subject",
            "bob",
        ],
        None,
    );
    assert!(out.stdout.contains("CHANGED fake/echo"), "{}", out.stdout);
    assert!(out.stdout.contains("2 of "), "{}", out.stdout);
}
