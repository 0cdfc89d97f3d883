//! The seeds' own policy files, decided as their code decides (fixtures/NOTES.md says where
//! each behaviour is in their code): mcpgw policies with scenarios in its `policy test` format
//! and the proxy's verdict, mcpgw files its loader refuses, mcpx per-server policies and
//! client overrides, and mcp-gateway roles with attribute mappings.
//!
//! Where FlowGuard decides on purpose otherwise, the scenario is named in `DEVIATIONS` with
//! the reason; every other scenario must match, and every deviation must still occur.

use flowguard_guard::policy::{mcpgw, mcpx, roles, Args};
use flowguard_guard::setup::{Item, Setup};
use flowguard_guard::{AuthMethod, Principal};
use serde_json::Value;
use serde_yaml_ng::Value as Yaml;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// (fixture file, scenario name, why FlowGuard differs).
const DEVIATIONS: &[(&str, &str, &str)] = &[
    (
        "method-scope-deny.yaml",
        "case-insensitive-duplicate-name-key",
        "FlowGuard reads `name` as the server does (JSON keys are case-sensitive); mcpgw's Go decoder takes `NAME` too, so a denied tool gets through under another spelling",
    ),
    (
        "value-formatting.yaml",
        "overflowing-number-raw-text",
        "FlowGuard refuses a number beyond a 64-bit float at the door (-32700), before any rule",
    ),
    (
        "value-formatting.yaml",
        "object-raw-bytes-with-space",
        "objects are compared as compact JSON text; mcpgw compares the bytes as received, spaces included",
    ),
    (
        "value-formatting.yaml",
        "array-raw-bytes",
        "arrays are compared as compact JSON text; mcpgw compares the bytes as received",
    ),
    (
        "read-only-no-filter.yaml",
        "read-only-tools-visible-without-filter",
        "FlowGuard always filters lists per caller; mcpx only with inspection.filter_tools_list",
    ),
    (
        "read-only-no-filter.yaml",
        "denied-tool-visible-without-filter",
        "FlowGuard always filters lists per caller; mcpx only with inspection.filter_tools_list",
    ),
    (
        "scenarios.yaml",
        "memory-key-colon-collision",
        "a quirk of mcp-gateway's in-memory store (mappings kept under \"key:value\"); its PostgreSQL store, like FlowGuard, compares key and value apart",
    ),
];

/// mcpx lets requests it cannot parse through (fail-open); FlowGuard refuses them at the door
/// (-32700/-32600) or the router (-32602 `needs params.name`) before any server sees them.
const MCPX_FAIL_OPEN: &[&str] = &[
    "no-params-allowed",
    "name-not-string-allowed",
    "arguments-array-allowed",
    "overflowing-number-bypasses-deny",
    "case-folded-duplicate-name",
    "case-folded-duplicate-method",
    "batch-skips-policy",
    "no-method-skips-policy",
    "bad-envelope-skips-policy",
];

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
}

fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn s(v: &Yaml, k: &str) -> Option<String> {
    v.get(k).and_then(|x| match x {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn principal(subject: Option<String>, roles: Vec<String>, client: Option<String>) -> Principal {
    let mut p = match subject.filter(|s| !s.is_empty()) {
        Some(s) => {
            let mut p = Principal::agent(&s);
            p.method = AuthMethod::Jwt;
            p
        }
        None => Principal::anonymous(),
    };
    p.client = client.map(|c| Arc::from(c.as_str()));
    p.set_roles(roles.iter().map(|r| Arc::from(r.as_str())).collect());
    p
}

struct Outcome {
    checked: usize,
    mismatches: Vec<String>,
}

fn judge(out: &mut Outcome, file: &str, name: &str, ok: bool, detail: String) {
    out.checked += 1;
    let deviation = DEVIATIONS.iter().any(|(f, n, _)| *f == file && *n == name)
        || (file == "unparseable-tools-call.yaml" && MCPX_FAIL_OPEN.contains(&name));
    match (ok, deviation) {
        (true, false) | (false, true) => {}
        (false, false) => out.mismatches.push(format!("{file} / {name}: {detail}")),
        (true, true) => out.mismatches.push(format!(
            "{file} / {name}: listed in DEVIATIONS but now matches"
        )),
    }
}

fn decide_mcpgw(setup: &Setup, sc: &Yaml) -> flowguard_guard::Verdict {
    let method = s(sc, "method").unwrap_or_default();
    let params: Value = s(sc, "params")
        .filter(|p| !p.is_empty())
        .and_then(|p| serde_json::from_str(&p).ok())
        .unwrap_or(Value::Null);
    let roles: Vec<String> = sc
        .get("roles")
        .and_then(Yaml::as_sequence)
        .map(|r| {
            r.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let who = principal(s(sc, "subject"), roles, None);
    let name = params.get("name").and_then(Value::as_str);
    let item = (method == "tools/call")
        .then_some(name)
        .flatten()
        .map(|name| Item {
            kind: "tools",
            server: "srv",
            name,
        });
    let args = match params.get("arguments") {
        Some(v) => Args::Present(v),
        None => Args::Absent,
    };
    let v = setup.decide(&who, &method, item, args);
    // The cached path decides the same: candidates first (no arguments), then the arguments.
    let candidates = setup.candidates(&who, &method, item);
    let cached = setup.decide_with(&who, &method, item, args, Some(&candidates));
    assert_eq!(
        (v.decision, &v.rule, v.blocks()),
        (cached.decision, &cached.rule, cached.blocks())
    );
    v
}

#[test]
fn mcpgw_policies_decide_as_mcpgw_does() {
    let mut out = Outcome {
        checked: 0,
        mismatches: Vec::new(),
    };
    for policy in files("mcpgw", ".yaml") {
        let stem = policy.file_name().unwrap().to_string_lossy().to_string();
        if stem.ends_with(".scenarios.yaml") || stem == "wire.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&policy).unwrap();
        let (set, _warnings) = mcpgw::load(&text, &stem).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let setup = Setup {
            rule_sets: vec![set],
            ..Setup::default()
        };
        let sc_path = policy.with_file_name(stem.replace(".yaml", ".scenarios.yaml"));
        let doc: Yaml =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&sc_path).unwrap()).unwrap();
        let list = doc.get("scenarios").cloned().unwrap_or(doc);
        for sc in list.as_sequence().unwrap() {
            let name = s(sc, "name").unwrap_or_default();
            let v = decide_mcpgw(&setup, sc);
            // The proxy's verdict (roles applied, audit passes) where given, else the engine's.
            let want_pass = match s(sc, "proxy").as_deref() {
                Some("pass") => true,
                Some("block") => false,
                _ => s(sc, "engine").or_else(|| s(sc, "expect")).as_deref() == Some("allow"),
            };
            let mut ok = want_pass != v.blocks();
            // `rule` is what `policy test` prints, which never applies roles.
            let has_roles = sc
                .get("roles")
                .and_then(Yaml::as_sequence)
                .is_some_and(|r| !r.is_empty());
            if let Some(rule) = s(sc, "rule").filter(|r| !r.is_empty() && !has_roles) {
                ok &= *v.rule == *rule;
            }
            judge(
                &mut out,
                &stem,
                &name,
                ok,
                format!(
                    "want pass={want_pass} rule={:?}, got {:?} by {:?}",
                    s(sc, "rule"),
                    v.decision,
                    &*v.rule
                ),
            );
        }
    }
    report("mcpgw", out);
}

#[test]
fn files_mcpgw_refuses_are_refused() {
    let mut out = Outcome {
        checked: 0,
        mismatches: Vec::new(),
    };
    for policy in files("mcpgw/invalid", ".yaml") {
        let stem = policy.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&policy).unwrap();
        let r = mcpgw::load(&text, &stem);
        judge(
            &mut out,
            &stem,
            "load",
            r.is_err(),
            "loaded, but mcpgw refuses it".into(),
        );
    }
    report("mcpgw invalid", out);
}

/// An mcpx fixture's `servers` map and `clients`, as an mcpx config holds them.
fn mcpx_doc(doc: &Yaml) -> Yaml {
    let mut servers = Vec::new();
    if let Some(m) = doc.get("servers").and_then(Yaml::as_mapping) {
        for (name, policy) in m {
            let mut entry = serde_yaml_ng::Mapping::new();
            entry.insert("name".into(), name.clone());
            if !policy.is_null() {
                entry.insert("policy".into(), policy.clone());
            }
            servers.push(Yaml::Mapping(entry));
        }
    }
    let mut out = serde_yaml_ng::Mapping::new();
    out.insert("servers".into(), Yaml::Sequence(servers));
    if let Some(c) = doc.get("clients") {
        out.insert("clients".into(), c.clone());
    }
    Yaml::Mapping(out)
}

#[test]
fn mcpx_policies_decide_as_mcpx_does() {
    let mut out = Outcome {
        checked: 0,
        mismatches: Vec::new(),
    };
    for file in files("mcpx", ".yaml") {
        let stem = file.file_name().unwrap().to_string_lossy().to_string();
        let doc: Yaml = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let loaded = mcpx::load(&mcpx_doc(&doc));
        if doc.get("expect_load_error").is_some() {
            judge(
                &mut out,
                &stem,
                "load",
                loaded.is_err(),
                "loaded, but mcpx refuses it".into(),
            );
            continue;
        }
        let (policies, _) = loaded.unwrap_or_else(|e| panic!("{stem}: {e}"));
        for sc in doc
            .get("scenarios")
            .and_then(Yaml::as_sequence)
            .into_iter()
            .flatten()
        {
            let name = s(sc, "name").unwrap_or_default();
            let who = principal(None, Vec::new(), s(sc, "client"));
            let server = s(sc, "server").unwrap_or_default();
            let method = s(sc, "method").unwrap_or_else(|| "tools/call".into());
            let tool = s(sc, "tool").unwrap_or_default();
            let want = s(sc, "expect").unwrap_or_default();
            let args: Option<Value> = match (
                sc.get("arguments_json").and_then(Yaml::as_str),
                sc.get("arguments"),
            ) {
                (Some(text), _) => serde_json::from_str(text).ok(),
                (None, Some(a)) => serde_json::to_value(a).ok(),
                (None, None) => None,
            };
            let got = match want.as_str() {
                "hidden" | "visible" => {
                    // FlowGuard always filters lists (mcpx: with inspection.filter_tools_list).
                    let visible = policies.visible(&who, &server, &tool);
                    if visible {
                        "visible"
                    } else {
                        "hidden"
                    }
                }
                _ if method != "tools/call" => "allow",
                // A raw body FlowGuard's door or router refuses (malformed JSON-RPC, a call with no
                // usable name, a batch) or drops (a notification named like a request).
                _ if sc.get("body").is_some() && sc.get("tool").is_none() => "deny",
                _ => match policies.decide_call(&who, &server, &tool, args.as_ref()) {
                    Some(_) => "deny",
                    None => "allow",
                },
            };
            judge(
                &mut out,
                &stem,
                &name,
                got == want,
                format!("want {want}, got {got}"),
            );
        }
    }
    report("mcpx", out);
}

#[test]
fn mcp_gateway_roles_decide_as_mcp_gateway_does() {
    let mut out = Outcome {
        checked: 0,
        mismatches: Vec::new(),
    };
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixtures("mcp-gateway").join(f)).unwrap())
            .unwrap()
    };
    let doc = serde_json::json!({ "roles": read("roles.json"), "attribute_to_roles": read("attribute_to_roles.json") });
    let r = roles::load_mcp_gateway(&doc).unwrap();
    for bad in [
        "readme-camelcase-role.json",
        "readme-camelcase-attribute-to-roles.json",
    ] {
        let v = read(bad);
        let doc = if bad.contains("attribute") {
            serde_json::json!({ "roles": [], "attribute_to_roles": v })
        } else {
            serde_json::json!({ "roles": v })
        };
        judge(
            &mut out,
            bad,
            "load",
            roles::load_mcp_gateway(&doc).is_err(),
            "camelCase keys were accepted".into(),
        );
    }
    let scenarios: Yaml = serde_yaml_ng::from_str(
        &std::fs::read_to_string(fixtures("mcp-gateway").join("scenarios.yaml")).unwrap(),
    )
    .unwrap();
    for sc in scenarios.as_sequence().unwrap() {
        let name = s(sc, "name").unwrap_or_default();
        let claims: Value = sc
            .get("claims")
            .map(|c| serde_json::to_value(c).unwrap())
            .unwrap_or(Value::Null);
        let mut who = Principal::anonymous();
        who.claims = claims.as_object().cloned().map(Arc::new);
        let mapped = r.roles_for_claims(&who);
        who.set_roles(mapped);
        let allowed = r.permits(
            &who,
            &s(sc, "object_type").unwrap_or_default(),
            &s(sc, "proxy").unwrap_or_default(),
            &s(sc, "object_name").unwrap_or_default(),
        );
        let want = s(sc, "expect").unwrap_or_default();
        judge(
            &mut out,
            "scenarios.yaml",
            &name,
            (want == "allow") == allowed,
            format!("want {want}, got allow={allowed}"),
        );
    }
    report("mcp-gateway", out);
}

fn report(what: &str, out: Outcome) {
    eprintln!(
        "{what}: {} scenario(s) checked, {} mismatch(es)",
        out.checked,
        out.mismatches.len()
    );
    assert!(
        out.mismatches.is_empty(),
        "{what}:\n{}",
        out.mismatches.join("\n")
    );
}
