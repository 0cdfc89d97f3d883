//! The inspection stage on what servers offer (ROADMAP G1, G2): every tool, prompt, resource
//! and resource template a server lists is pinned by its canonical hash and scanned for
//! poisoning before any client sees it; so are the server's definition (from the config) and
//! its `instructions`. Decisions come from `flowguard-inspect`; this module keeps the pins in
//! storage, writes the audit records and says which items the catalog may show.
//!
//! A held-back item is dropped from the lists and, since calls resolve names through the same
//! lists, cannot be called: the caller is told the name is unknown, as for any hidden tool.

use crate::catalog::ListKind;
use flowguard_config::model::{InspectMode, InspectSettings, ServerConfig, Transport};
use flowguard_guard::{Principal, Stage, Verdict};
use flowguard_inspect::{canon, poison, risk};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The storage namespace of pins; keys are `["server","kind","name"]` as JSON.
pub const PINS: &str = "pins";
/// The storage namespace of servers' risk status; keys are server ids.
pub const SERVERS: &str = "servers";

pub struct Inspector {
    settings: InspectSettings,
    /// Arguments and results (`scan.rs`); `None` when nothing is looked at there.
    scanner: Option<Arc<crate::scan::Scanner>>,
    /// Servers with settings of their own, and their scanners.
    scanners: Vec<(String, Option<Arc<crate::scan::Scanner>>)>,
    scan: poison::PoisonScan,
    store: Option<Arc<flowguard_store::Store>>,
    audit: Option<Arc<crate::audit::Auditor>>,
    /// Server id → the hash of its definition in the config.
    definitions: Vec<(String, Value)>,
    /// What was logged and audited already (`key|hash|rule`): a list rebuilt again does not
    /// repeat it.
    told: Mutex<HashSet<String>>,
    /// (server, tool) → its `inputSchema`, from the lists.
    schemas: Mutex<HashMap<(String, String), Arc<Value>>>,
    risk: risk::Rules,
}

/// One stored pin.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    /// The approved item's hash, and the item.
    pub approved: String,
    pub approved_item: Value,
    /// The last item seen, when it differs from the approved one.
    pub seen: Option<(String, Value)>,
    pub since_ms: i64,
}

impl Pin {
    pub fn to_json(&self) -> String {
        json!({
            "approved": self.approved,
            "approved_item": self.approved_item,
            "seen": self.seen.as_ref().map(|s| &s.0),
            "seen_item": self.seen.as_ref().map(|s| &s.1),
            "since_ms": self.since_ms,
        })
        .to_string()
    }

    pub fn from_json(s: &str) -> Option<Pin> {
        let v: Value = serde_json::from_str(s).ok()?;
        let seen = match (v["seen"].as_str(), v.get("seen_item")) {
            (Some(h), Some(i)) => Some((h.to_string(), i.clone())),
            _ => None,
        };
        Some(Pin {
            approved: v["approved"].as_str()?.to_string(),
            approved_item: v.get("approved_item").cloned().unwrap_or(Value::Null),
            seen,
            since_ms: v["since_ms"].as_i64().unwrap_or(0),
        })
    }
}

/// The key of a pin.
pub fn pin_key(server: &str, kind: &str, name: &str) -> String {
    json!([server, kind, name]).to_string()
}

/// The JSON pointers (top level, and one level under `inputSchema/properties`) where two
/// versions of an item differ: what the audit record and `flowguard pins` show.
pub fn changed_fields(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if o.get(k) == n.get(k) {
            continue;
        }
        if k == "inputSchema" {
            let props = |v: Option<&Value>| v.and_then(|s| s.get("properties")).cloned();
            let (po, pn) = (props(o.get(k)), props(n.get(k)));
            let mut inner = changed_fields(&po.unwrap_or(Value::Null), &pn.unwrap_or(Value::Null));
            if inner.is_empty() {
                out.push(format!("/{k}"));
            } else {
                out.extend(
                    inner
                        .drain(..)
                        .map(|p| format!("/inputSchema/properties{p}")),
                );
            }
        } else {
            out.push(format!("/{k}"));
        }
    }
    out
}

/// A server definition as pinned: how it is reached, not its secrets (environment variables
/// and headers by name only).
fn definition(s: &ServerConfig) -> Value {
    let names = |env: &[(String, flowguard_config::EnvValue)]| -> Vec<String> {
        env.iter().map(|(k, _)| k.clone()).collect()
    };
    match &s.transport {
        Transport::Stdio(p) => {
            json!({"type": "stdio", "command": p.command, "args": p.args, "env": names(&p.env)})
        }
        Transport::Container(c) => {
            json!({"type": "container", "image": c.image, "entrypoint": c.entrypoint, "args": c.entrypoint_args, "env": names(&c.env)})
        }
        Transport::Http(h) => json!({"type": "http", "url": h.url}),
        Transport::Sse(h) => json!({"type": "sse", "url": h.url}),
    }
}

impl Inspector {
    pub fn new(
        settings: InspectSettings,
        servers: &[ServerConfig],
        store: Option<Arc<flowguard_store::Store>>,
        audit: Option<Arc<crate::audit::Auditor>>,
    ) -> Result<Inspector, String> {
        let make = |s: &InspectSettings| -> Result<Option<Arc<crate::scan::Scanner>>, String> {
            let sc = crate::scan::Scanner::new(s)?;
            Ok(
                (sc.active(crate::scan::Direction::In) || sc.active(crate::scan::Direction::Out))
                    .then(|| Arc::new(sc)),
            )
        };
        let scanner = make(&settings)?;
        let scanners = settings
            .per_server
            .iter()
            .map(|(id, s)| Ok((id.clone(), make(s)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let settings_risk = (
            settings.high_risk_tools.clone(),
            settings.medium_risk_tools.clone(),
        );
        Ok(Inspector {
            scanner,
            scanners,
            settings,
            scan: poison::PoisonScan::new(),
            store,
            audit,
            definitions: servers
                .iter()
                .map(|s| (s.id.clone(), definition(s)))
                .collect(),
            told: Mutex::new(HashSet::new()),
            schemas: Mutex::new(HashMap::new()),
            risk: {
                let mut r = risk::Rules::default();
                if let Some(h) = &settings_risk.0 {
                    r.high = h.clone();
                }
                if let Some(m) = &settings_risk.1 {
                    r.medium = m.clone();
                }
                r
            },
        })
    }

    pub fn settings(&self) -> &InspectSettings {
        &self.settings
    }

    /// The scanner of arguments and results for `server` (its own settings, or the global).
    pub fn scanner_for(&self, server: &str) -> Option<Arc<crate::scan::Scanner>> {
        match self.scanners.iter().find(|(s, _)| s == server) {
            Some((_, sc)) => sc.clone(),
            None => self.scanner.clone(),
        }
    }

    /// The auditor records go to.
    pub fn auditor(&self) -> Option<&Arc<crate::audit::Auditor>> {
        self.audit.as_ref()
    }

    /// The items of one server's list that clients may see, and whether any was held back
    /// (the catalog then builds the view again on next use, so an approval shows at once).
    /// `instructions` is the server's, from its `initialize` result; `other_tools` are the tool
    /// names of the other servers.
    pub fn screen(
        &self,
        server: &str,
        kind: ListKind,
        items: Vec<Box<RawValue>>,
        instructions: Option<&str>,
        other_tools: &[&str],
    ) -> (Vec<Box<RawValue>>, bool) {
        if !self.server_ok(server, instructions, other_tools) {
            return (Vec::new(), !items.is_empty());
        }
        let mut kept = Vec::with_capacity(items.len());
        let mut held = false;
        if kind == ListKind::Tools && self.settings.for_server(server).risk != InspectMode::Off {
            let names: Vec<String> = items
                .iter()
                .filter_map(|i| serde_json::from_str::<Value>(i.get()).ok())
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            if !self.risk_ok(server, &names) {
                return (Vec::new(), !items.is_empty());
            }
        }
        for raw in items {
            let Ok(item) = serde_json::from_str::<Value>(raw.get()) else {
                // Not an object a client could use either: passed on as the server sent it.
                kept.push(raw);
                continue;
            };
            let name = match kind {
                ListKind::Tools | ListKind::Prompts => item.get("name"),
                ListKind::Resources => item.get("uri"),
                ListKind::Templates => item.get("uriTemplate"),
            }
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
            let pin_ok = self.pin_ok(server, kind.field(), &name, &item);
            let scan_ok = self.scan_ok(server, kind, &name, &item, other_tools);
            if pin_ok && scan_ok {
                if kind == ListKind::Tools {
                    if let Some(s) = item.get("inputSchema") {
                        self.schemas
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert((server.to_string(), name.clone()), Arc::new(s.clone()));
                    }
                }
                kept.push(raw);
            } else {
                held = true;
            }
        }
        (kept, held)
    }

    /// A call's arguments against the tool's `inputSchema` (`[inspect] schema`): the verdict
    /// when they do not fit (blocking unless in `warn`).
    pub fn check_arguments(
        &self,
        server: &str,
        tool: &str,
        args: Option<&Value>,
    ) -> Option<Verdict> {
        if self.settings.for_server(server).schema == InspectMode::Off {
            return None;
        }
        let schema = self
            .schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(server.to_string(), tool.to_string()))
            .cloned()?;
        let empty = Value::Object(Default::default());
        let errors = flowguard_inspect::schema::validate(
            &schema,
            args.unwrap_or(&empty),
            self.settings.for_server(server).schema_strict,
        );
        let first = errors.first()?;
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let v = Verdict::deny(
            Stage::Inspect,
            format!("schema.{}", first.keyword),
            format!("invalid arguments for tool `{tool}`: {}", list.join("; ")),
        );
        Some(
            if self.settings.for_server(server).schema == InspectMode::Warn {
                v.audited(flowguard_guard::Enforcement::Audit)
            } else {
                v
            },
        )
    }

    /// Whether the server's status lets its tools be shown (`[inspect] risk`).
    fn risk_ok(&self, server: &str, tools: &[String]) -> bool {
        let a = self.risk.assess(tools.iter().map(String::as_str));
        let enforce = self.settings.for_server(server).risk == InspectMode::Enforce;
        let Some(store) = &self.store else {
            return !enforce;
        };
        let stored: Option<Value> = match store.get(SERVERS, server) {
            Ok(s) => s.and_then(|s| serde_json::from_str(&s).ok()),
            Err(e) => {
                self.tell_once(&format!("{server}|risk-store"), || {
                    tracing::error!(server, "inspect: cannot read the server's status: {e}");
                });
                return !enforce;
            }
        };
        let status = stored
            .as_ref()
            .and_then(|s| s["status"].as_str())
            .unwrap_or("");
        let stored_level = stored
            .as_ref()
            .and_then(|s| s["level"].as_str())
            .and_then(risk::Level::parse)
            .unwrap_or(risk::Level::Low);
        if status == "approved" && stored_level >= a.level {
            return true;
        }
        let auto = self
            .settings
            .auto_approve
            .iter()
            .any(|l| l == a.level.as_str());
        let (new_status, ok) = match status {
            "denied" => ("denied", false),
            _ if auto => ("approved", true),
            _ => ("pending", false),
        };
        let record = serde_json::json!({
            "status": new_status,
            "level": a.level.as_str(),
            "score": a.score,
            "because": a.because,
            "by": if new_status == "approved" { "auto" } else { "" },
            "since_ms": flowguard_store::now_ms(),
        });
        if status != new_status || stored_level != a.level {
            let _ = store.put(SERVERS, server, &record.to_string());
        }
        if ok {
            return true;
        }
        let reason = format!(
            "server `{server}` is {new_status} (risk {}, because of {}){}",
            a.level.as_str(),
            if a.because.is_empty() {
                "its tools".to_string()
            } else {
                a.because.join(", ")
            },
            if enforce {
                "; its tools are held back until `flowguard servers approve`"
            } else {
                ""
            }
        );
        self.tell_once(
            &format!("{server}|risk|{new_status}|{}", a.level.as_str()),
            || {
                tracing::warn!(server, "inspect: {reason}");
                self.record(
                    server,
                    "server",
                    "risk",
                    &format!("risk.{new_status}"),
                    &reason,
                    enforce,
                );
            },
        );
        !enforce
    }

    /// The server's definition and `instructions`: pinned, and the instructions scanned.
    fn server_ok(&self, server: &str, instructions: Option<&str>, other_tools: &[&str]) -> bool {
        let mut ok = true;
        if let Some((_, def)) = self.definitions.iter().find(|(id, _)| id == server) {
            ok &= self.pin_ok(server, "server", "definition", def);
        }
        if let Some(text) = instructions {
            ok &= self.pin_ok(server, "server", "instructions", &Value::from(text));
            if self.settings.for_server(server).poison != InspectMode::Off {
                let r = self.scan.instructions(text, other_tools);
                if r.flagged() {
                    ok &= self.flag(server, "server", "instructions", &r);
                }
            }
        }
        ok
    }

    /// Whether the item matches its pin (a new item is pinned as first seen).
    fn pin_ok(&self, server: &str, kind: &str, name: &str, item: &Value) -> bool {
        if self.settings.for_server(server).pins == InspectMode::Off {
            return true;
        }
        let Some(store) = &self.store else {
            return true;
        };
        let key = pin_key(server, kind, name);
        let hash = canon::hash(item);
        let stored = match store.get(PINS, &key) {
            Ok(s) => s.and_then(|s| Pin::from_json(&s)),
            Err(e) => {
                // Fails closed: in enforce, an item whose pin cannot be read is held back.
                self.tell_once(&format!("{key}|store"), || {
                    tracing::error!(
                        server,
                        "inspect: cannot read the pin of {kind} `{name}`: {e}"
                    );
                });
                return self.settings.for_server(server).pins != InspectMode::Enforce;
            }
        };
        let Some(mut pin) = stored else {
            let pin = Pin {
                approved: hash,
                approved_item: item.clone(),
                seen: None,
                since_ms: flowguard_store::now_ms(),
            };
            if let Err(e) = store.put(PINS, &key, &pin.to_json()) {
                tracing::error!(
                    server,
                    "inspect: cannot store the pin of {kind} `{name}`: {e}"
                );
                return self.settings.for_server(server).pins != InspectMode::Enforce;
            }
            return true;
        };
        if pin.approved == hash {
            return true;
        }
        let fields = changed_fields(&pin.approved_item, item);
        if pin.seen.as_ref().map(|s| &s.0) != Some(&hash) {
            pin.seen = Some((hash.clone(), item.clone()));
            pin.since_ms = flowguard_store::now_ms();
            let _ = store.put(PINS, &key, &pin.to_json());
        }
        let enforce = self.settings.for_server(server).pins == InspectMode::Enforce;
        let what = format!("{kind} `{name}`");
        let reason = format!(
            "{what} of server `{server}` changed since it was approved ({}){}",
            fields.join(", "),
            if enforce {
                "; held back until `flowguard pins approve`"
            } else {
                ""
            }
        );
        self.tell_once(&format!("{key}|{hash}|pin"), || {
            tracing::warn!(server, "inspect: {reason}");
            self.record(server, kind, name, "pin.changed", &reason, enforce);
        });
        !enforce
    }

    fn scan_ok(
        &self,
        server: &str,
        kind: ListKind,
        name: &str,
        item: &Value,
        other: &[&str],
    ) -> bool {
        if self.settings.for_server(server).poison == InspectMode::Off {
            return true;
        }
        let k = match kind {
            ListKind::Tools => poison::Item::Tool,
            ListKind::Prompts => poison::Item::Prompt,
            ListKind::Resources => poison::Item::Resource,
            ListKind::Templates => poison::Item::ResourceTemplate,
        };
        let r = self.scan.item(k, item, other);
        if !r.flagged() {
            return true;
        }
        self.flag(server, kind.field(), name, &r)
    }

    /// Logs and audits a poisoning finding once; whether the item may still be shown.
    fn flag(&self, server: &str, kind: &str, name: &str, r: &poison::Report) -> bool {
        let enforce = self.settings.for_server(server).poison == InspectMode::Enforce;
        let what = format!("{kind} `{name}`");
        let rules = r.rules();
        let at: Vec<&str> = r.findings.iter().map(|f| f.at.as_str()).collect();
        let reason = format!(
            "{what} of server `{server}` looks poisoned ({} at {}){}",
            rules.join(", "),
            at.join(", "),
            if enforce { "; quarantined" } else { "" }
        );
        let key = format!("{}|{}", pin_key(server, kind, name), rules.join(","));
        self.tell_once(&key, || {
            tracing::warn!(server, "inspect: {reason}");
            self.record(server, kind, name, rules[0], &reason, enforce);
        });
        !enforce
    }

    fn tell_once(&self, key: &str, f: impl FnOnce()) {
        let new = self
            .told
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        if new {
            f();
        }
    }

    /// An audit record of an inspection verdict (no request carries it: the gateway's own).
    fn record(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        rule: &str,
        reason: &str,
        enforce: bool,
    ) {
        let Some(a) = &self.audit else {
            return;
        };
        let mut v = Verdict::deny(Stage::Inspect, rule.to_string(), reason);
        if !enforce {
            v = v.audited(flowguard_guard::Enforcement::Audit);
        }
        let line = crate::audit::record(&crate::audit::Event {
            method: "inspect",
            id: "null",
            server: Some(server),
            tool: Some(&format!("{kind}:{name}")),
            arguments: crate::audit::Arguments::None,
            who: &Principal::anonymous(),
            session: "",
            verdict: &v,
            latency_us: 0,
            label_claims: &[],
        });
        let a = a.clone();
        tokio::spawn(async move {
            let _ = a.submit(line).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_name_what_changed() {
        let a = json!({"name": "t", "description": "x", "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}}}});
        let b = json!({"name": "t", "description": "y", "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {}}}});
        assert_eq!(
            changed_fields(&a, &b),
            ["/description", "/inputSchema/properties/b"]
        );
        let p = Pin {
            approved: "h".into(),
            approved_item: a.clone(),
            seen: Some(("g".into(), b.clone())),
            since_ms: 5,
        };
        assert_eq!(Pin::from_json(&p.to_json()), Some(p));
    }
}
