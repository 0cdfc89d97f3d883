//! `flowguard policy validate|test|diff`, `flowguard auth hash-key`, and `--policy FILE`: the
//! guard's decisions from the command line, with no gateway running.

use flowguard_config::{Config, Guard};
use flowguard_guard::policy::Args;
use flowguard_guard::setup::{Item, Setup};
use flowguard_guard::{apikey, AuthMethod, Decision, Principal};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Adds `--policy` files to a loaded config (each must allow a request, as `policy.files`).
pub fn add_policy_files(config: &mut Config, files: &[PathBuf]) -> Result<(), String> {
    if files.is_empty() {
        return Ok(());
    }
    let mut setup: Setup = (*config.guard.0).clone();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| format!("error: cannot read --policy {}: {e}", f.display()))?;
        let name = f.display().to_string();
        setup
            .load_file(&text, &name, "--policy")
            .map_err(|e| format!("error: {e}"))?;
    }
    config.guard = Guard(Arc::new(setup));
    Ok(())
}

/// `--subject` of the stdio front ends, over `auth.stdio_subject`.
pub fn set_stdio_subject(config: &mut Config, subject: Option<String>) {
    if let Some(s) = subject {
        let mut setup: Setup = (*config.guard.0).clone();
        setup.auth.stdio_subject = Some(s);
        config.guard = Guard(Arc::new(setup));
    }
}

/// Loads policy files into one setup, as the gateway would combine them.
fn load(files: &[PathBuf]) -> Result<Setup, String> {
    let mut setup = Setup::default();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
        let name = f.display().to_string();
        setup
            .load_file(&text, &name, &name)
            .map_err(|e| e.to_string())?;
    }
    Ok(setup)
}

pub fn validate(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for f in files {
        match load(std::slice::from_ref(f)) {
            Ok(s) => {
                let rules: usize = s.rule_sets.iter().map(|r| r.rules.len()).sum();
                let kind = match s.rule_sets.first().map(|r| r.profile) {
                    Some(flowguard_guard::policy::Profile::Mcpgw) => "mcpgw policy",
                    Some(flowguard_guard::policy::Profile::Native) => "native policy",
                    None if !s.server_policies.is_empty() => "mcpx server policies",
                    None => "roles",
                };
                println!(
                    "{}: ok ({kind}, {rules} rule(s), {} server list(s))",
                    f.display(),
                    s.server_policies.servers.len() + s.server_policies.clients.len()
                );
                for w in &s.warnings {
                    println!("  warning: {w}");
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// One request to decide, as mcpgw's `policy test` scenarios give it (plus FlowGuard's own
/// fields: server, client, scopes, claims).
#[derive(Debug, Deserialize, Clone, Default)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    pub method: String,
    /// The request's params: an object, or its JSON text (mcpgw's form).
    #[serde(default)]
    pub params: Option<Value>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub claims: Option<serde_json::Map<String, Value>>,
    /// `allow` or `deny`.
    #[serde(default)]
    pub expect: Option<String>,
}

impl Scenario {
    fn params(&self) -> Result<Value, String> {
        match &self.params {
            None => Ok(Value::Null),
            Some(Value::String(s)) => {
                flowguard_guard::args::parse_strict(s).map_err(|e| format!("params: {e}"))
            }
            Some(v) => Ok(v.clone()),
        }
    }

    pub fn principal(&self) -> Principal {
        let mut p = match &self.subject {
            Some(s) if !s.is_empty() => Principal::agent(s),
            _ => Principal::anonymous(),
        };
        if p.subject.is_some() {
            p.method = AuthMethod::Jwt;
        }
        p.client = self.client.as_deref().map(Arc::from);
        p.scopes = self.scopes.iter().map(|s| Arc::from(s.as_str())).collect();
        p.claims = self.claims.clone().map(Arc::new);
        p.set_roles(self.roles.iter().map(|r| Arc::from(r.as_str())).collect());
        p
    }
}

/// The decision on one scenario: (allow or deny, the rule, the stage, whether it is enforced).
pub fn decide(setup: &Setup, s: &Scenario) -> Result<flowguard_guard::Verdict, String> {
    let params = s.params()?;
    let mut who = s.principal();
    let mapped = setup.roles.roles_for_claims(&who);
    if !mapped.is_empty() {
        let mut r = who.roles.clone();
        r.extend(mapped);
        who.set_roles(r);
    }
    let (kind, key) = match s.method.as_str() {
        "tools/call" => ("tools", "name"),
        "prompts/get" => ("prompts", "name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => ("resources", "uri"),
        _ => ("", ""),
    };
    let name = params.get(key).and_then(Value::as_str);
    let server = s.server.as_deref().unwrap_or("*");
    let item = name
        .filter(|_| !kind.is_empty())
        .map(|name| Item { kind, server, name });
    let args = params.get("arguments");
    let arguments = match args {
        Some(v) => Args::Present(v),
        None => Args::Absent,
    };
    Ok(setup.decide(&who, &s.method, item, arguments))
}

fn read_scenarios(path: &Path) -> Result<Vec<Scenario>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum File {
        List(Vec<Scenario>),
        Wrapped { scenarios: Vec<Scenario> },
    }
    let f: File = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("{}: not a scenario list: {e}", path.display()))?;
    Ok(match f {
        File::List(l) | File::Wrapped { scenarios: l } => l,
    })
}

fn outcome(v: &flowguard_guard::Verdict) -> &'static str {
    match (v.decision, v.blocks()) {
        (Decision::Deny, true) => "deny",
        (Decision::Deny, false) => "deny (audit: passes)",
        _ => "allow",
    }
}

pub fn test(files: &[PathBuf], scenarios: Option<&Path>, one: Scenario) -> ExitCode {
    let setup = match load(files) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let list = match scenarios {
        Some(p) => match read_scenarios(p) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => vec![one],
    };
    let (mut pass, mut fail) = (0, 0);
    for s in &list {
        let v = match decide(&setup, s) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: scenario {:?}: {e}", s.name);
                return ExitCode::from(2);
            }
        };
        // An audited deny lets the request through: it counts as allow against `expect`.
        let got = if v.blocks() { "deny" } else { "allow" };
        let label = if s.name.is_empty() {
            s.method.clone()
        } else {
            s.name.clone()
        };
        match s.expect.as_deref() {
            Some(want) if want != got => {
                fail += 1;
                println!(
                    "FAIL {label}: expected {want}, got {} by {} rule {:?}",
                    outcome(&v),
                    v.stage,
                    &*v.rule
                );
            }
            Some(_) => {
                pass += 1;
                println!(
                    "PASS {label}: {} by {} rule {:?}",
                    outcome(&v),
                    v.stage,
                    &*v.rule
                );
            }
            None => println!(
                "{label}: {} by {} rule {:?}{}",
                outcome(&v),
                v.stage,
                &*v.rule,
                if v.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.reason)
                }
            ),
        }
    }
    if scenarios.is_some() {
        println!("{pass} passed, {fail} failed");
    }
    if fail > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Which decisions change between two policies, over a scenario file.
pub fn diff(old: &Path, new: &Path, scenarios: &Path) -> ExitCode {
    let (a, b) = match (load(&[old.to_owned()]), load(&[new.to_owned()])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let list = match read_scenarios(scenarios) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut changed = 0;
    for s in &list {
        let (va, vb) = match (decide(&a, s), decide(&b, s)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: scenario {:?}: {e}", s.name);
                return ExitCode::from(2);
            }
        };
        let label = if s.name.is_empty() {
            s.method.clone()
        } else {
            s.name.clone()
        };
        if outcome(&va) != outcome(&vb) {
            changed += 1;
            println!(
                "CHANGED {label}: {} ({:?}) -> {} ({:?})",
                outcome(&va),
                &*va.rule,
                outcome(&vb),
                &*vb.rule
            );
        } else if va.rule != vb.rule {
            println!(
                "same    {label}: {} but by rule {:?} instead of {:?}",
                outcome(&vb),
                &*vb.rule,
                &*va.rule
            );
        }
    }
    println!("{changed} of {} decision(s) change", list.len());
    ExitCode::SUCCESS
}

/// Prints a new key and its digest, or the digest of a key read from stdin.
pub fn hash_key(stdin: bool) -> ExitCode {
    if stdin {
        let mut key = String::new();
        if std::io::stdin().read_line(&mut key).is_err() || key.trim().is_empty() {
            eprintln!("error: no key on stdin; pipe one in, e.g. `printf %s \"$KEY\" | flowguard auth hash-key --stdin`");
            return ExitCode::from(2);
        }
        println!("{}", apikey::digest_of(key.trim_end_matches(['\r', '\n'])));
        return ExitCode::SUCCESS;
    }
    match apikey::generate() {
        Ok(key) => {
            println!("key:    {key}");
            println!("digest: {}", apikey::digest_of(&key));
            eprintln!("Give the key to the client (it is shown only now); put the digest in the config:\n  [[auth.api_keys]]\n  name = \"<client>\"\n  digest = \"{}\"", apikey::digest_of(&key));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Which tools of the configured servers change between two policies, for one caller: each
/// server is started, asked for its tools, and stopped; every tool's list visibility and call
/// verdict (arguments not known) is compared.
pub fn diff_tools(old: &Path, new: &Path, config: &Path, who: &Scenario) -> ExitCode {
    let (a, b) = match (load(&[old.to_owned()]), load(&[new.to_owned()])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match flowguard_config::load_file(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let tools = crate::run::runtime().block_on(server_tools(cfg));
    let principal = who.principal();
    let (mut changed, mut total) = (0, 0);
    for (server, listed) in &tools {
        let names = match listed {
            Ok(n) => n,
            Err(e) => {
                eprintln!("warning: server {server}: {e}; its tools are not compared");
                continue;
            }
        };
        for name in names {
            total += 1;
            let item = Item {
                kind: "tools",
                server,
                name,
            };
            let shown = |s: &Setup| {
                if !s.visible(&principal, item) {
                    return ("hidden", String::new());
                }
                let v = s.decide(&principal, "tools/call", Some(item), Args::Unknown);
                (outcome(&v), v.rule.to_string())
            };
            let (oa, ra) = shown(&a);
            let (ob, rb) = shown(&b);
            if oa != ob {
                changed += 1;
                println!("CHANGED {server}/{name}: {oa} ({ra:?}) -> {ob} ({rb:?})");
            }
        }
    }
    println!("{changed} of {total} tool(s) change");
    ExitCode::SUCCESS
}

type Listed = Vec<(String, Result<Vec<String>, String>)>;

/// Each configured server's tool names (first page), the servers started and stopped here.
async fn server_tools(cfg: Config) -> Listed {
    let gw = flowguard_gateway::Gateway::new(
        cfg,
        flowguard_config::Mode::Both,
        flowguard_upstream::orphans::owner_tag(),
    );
    gw.start();
    let mut out = Vec::new();
    for s in gw.servers() {
        let listed = async {
            s.ready().await.map_err(|e| e.to_string())?;
            let reply = s
                .request("tools/list", None)
                .await
                .map_err(|e| e.to_string())?;
            let result = reply.map_err(|e| format!("tools/list failed: {}", e.get()))?;
            let v: Value = serde_json::from_str(result.get()).map_err(|e| e.to_string())?;
            Ok(v.get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
                .collect())
        };
        out.push((s.id().to_string(), listed.await));
    }
    gw.stop_servers().await;
    out
}
