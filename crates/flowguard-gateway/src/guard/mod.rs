//! The guard pipeline as the gateway runs it (DESIGN-NOTES §1, §9). The decisions are
//! `flowguard-guard`'s pure functions; this module owns their I/O: key fetches, clocks, caches,
//! and turning verdicts into HTTP and JSON-RPC answers.
//!
//! Order, for every request (and why):
//! 1. size: the body cap, before anything is parsed (`downstream/body.rs`);
//! 2. authenticate: who is calling, before anything that is kept per caller;
//! 3. session ownership: a session answers only the principal that made it (404 otherwise);
//! 4. roles, then policy rules, then per-server lists: what the caller may do, once the
//!    request names its server and tool (after routing resolves a public name);
//! 5. rate limits and per-session call limits: only requests that would be served count,
//!    per the authenticated caller;
//! 6. the server's circuit breaker, last before the server is asked.
//!
//! Lists pass through the same roles, rules and per-server lists, item by item, with the
//! arguments unknown; the filtered list is cached per caller and list.

mod authn;
mod limits;
mod oauth;

pub use authn::AuthError;
pub use oauth::{metadata_routes, refuse};

use crate::catalog::{ListKind, View};
use flowguard_guard::hash::Keyed;
use flowguard_guard::limit::Breaker;
use flowguard_guard::policy::Args;
use flowguard_guard::setup::{Item, Setup};
use flowguard_guard::{Decision, Principal, Verdict};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

pub struct Guard {
    pub setup: Arc<Setup>,
    breakers: Mutex<HashMap<String, Arc<Mutex<Breaker>>>>,
    stdio: Arc<Principal>,
    /// Candidate rules by a keyed hash of (principal, method, item), with the principal.
    decisions: Mutex<HashMap<u64, Decided, Keyed>>,
    hasher: Keyed,
    keys: Option<authn::Keys>,
    key_principals: Vec<Arc<Principal>>,
    tokens: Mutex<HashMap<[u8; 32], Arc<Principal>, Keyed>>,
    limits: limits::Limits,
    /// Filtered views by (view, principal, kind). The entry holds the view and the principal
    /// it was made for, so neither address can be reused while the entry lives.
    lists: Mutex<HashMap<(usize, usize, ListKind), ListEntry, Keyed>>,
    /// Whether anything decides per request beyond authentication.
    pub active: bool,
    /// This guard among every guard the process made (a reload makes a new one): what
    /// per-thread memories are kept for.
    id: u64,
}

impl Guard {
    pub fn new(setup: Arc<Setup>) -> Self {
        let keys = setup.auth.jwt.clone().map(authn::Keys::new);
        let active = setup.has_policy()
            || !setup.limits.rates.is_empty()
            || setup.limits.calls_per_session.is_some();
        Guard {
            key_principals: authn::key_principals(&setup),
            breakers: Mutex::new(HashMap::new()),
            stdio: Arc::new(stdio_principal(&setup)),
            decisions: Mutex::new(HashMap::default()),
            hasher: Default::default(),
            limits: limits::Limits::new(&setup.limits),
            keys,
            tokens: Mutex::new(HashMap::default()),
            lists: Mutex::new(HashMap::default()),
            active,
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            setup,
        }
    }

    /// Whether sessions are bound to the principal that made them: whenever identities are
    /// checked or agent ids are configured. With nothing configured every identity is only
    /// asserted, and a client may send a different agent id on each request, as before.
    pub fn binds_sessions(&self) -> bool {
        let a = &self.setup.auth;
        a.verifies() || a.agent_id.is_some()
    }

    /// The stdio front ends' principal: `auth.stdio_subject` (or `--subject`), else anonymous.
    pub fn stdio_principal(&self) -> Arc<Principal> {
        self.stdio.clone()
    }

    /// The verdict on a request; `item` is what it names (kind, server, the server's own name
    /// or URI), when routing has resolved it. An audited deny is logged here and passes.
    pub fn decide(
        &self,
        who: &Arc<Principal>,
        method: &str,
        item: Option<(ListKind, &str, &str)>,
        arguments: Args<'_>,
    ) -> Verdict {
        let item = item.map(to_item);
        let candidates = self.candidates(who, method, item);
        let v = self
            .setup
            .decide_with(who, method, item, arguments, Some(&candidates));
        if v.decision == Decision::Deny && !v.blocks() {
            tracing::warn!(stage = %v.stage, rule = %v.rule, subject = who.subject.as_deref().map(crate::identity::loggable).unwrap_or_default(), method, "audit: the policy would deny this request");
        }
        v
    }

    /// The rule sets' candidate rules for (caller, method, item), kept while the caller's
    /// principal lives: what depends on neither the arguments nor anything else per request
    /// is decided once (DESIGN-NOTES §9). The entry holds the principal, so its address is not
    /// reused while the entry lives, and the whole key, so a hash collision is a miss.
    fn candidates(
        &self,
        who: &Arc<Principal>,
        method: &str,
        item: Option<Item<'_>>,
    ) -> Arc<Vec<Vec<u32>>> {
        if self.setup.rule_sets.is_empty() {
            return Arc::default();
        }
        let mut h = self.hasher.build_hasher();
        (Arc::as_ptr(who) as usize, method).hash(&mut h);
        if let Some(it) = item {
            (it.kind, it.server, it.name).hash(&mut h);
        }
        let key = h.finish();
        if let Some(d) = self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            if d.is(who, method, item) {
                return d.candidates.clone();
            }
        }
        let c = Arc::new(self.setup.candidates(who, method, item));
        let mut map = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 65_536 {
            map.clear();
        }
        let decided = Decided {
            who: who.clone(),
            method: method.into(),
            item: item.map(|it| [it.kind.into(), it.server.into(), it.name.into()]),
            candidates: c.clone(),
        };
        map.insert(key, decided);
        c
    }

    /// Whether a list shows an item to the caller.
    pub fn visible(&self, who: &Arc<Principal>, kind: ListKind, server: &str, name: &str) -> bool {
        self.setup.visible(who, to_item((kind, server, name)))
    }

    /// The caller's view of a list, cached per caller while the underlying view lives.
    pub fn filter(
        &self,
        who: &Arc<Principal>,
        view: Arc<View>,
        kind: ListKind,
        server_id: impl Fn(usize) -> Option<Arc<str>>,
    ) -> Arc<View> {
        if !self.setup.has_policy() {
            return view;
        }
        let key = (Arc::as_ptr(&view) as usize, Arc::as_ptr(who) as usize, kind);
        if let Some(e) = self
            .lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return e.filtered.clone();
        }
        let filtered = Arc::new(view.filtered(kind, |idx, name| {
            server_id(idx).is_some_and(|s| self.visible(who, kind, &s, name))
        }));
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        if lists.len() >= 4096 {
            // Views are replaced as servers change; old entries simply go.
            lists.clear();
        }
        lists.insert(
            key,
            ListEntry {
                _view: view,
                _who: who.clone(),
                filtered: filtered.clone(),
            },
        );
        filtered
    }

    /// What watches a request forwarded to `server`: its breaker and its reply cap. `Err`
    /// holds the seconds until the open breaker lets a probe through.
    pub fn watch(&self, server: &str) -> Result<Watch, u64> {
        let limits = &self.setup.limits;
        let breaker = limits.breaker.map(|(failures, cooldown, probes)| {
            let mut map = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(server) {
                Some(b) => b.clone(),
                None => map
                    .entry(server.to_string())
                    .or_insert_with(|| {
                        Arc::new(Mutex::new(Breaker::new(failures, cooldown, probes)))
                    })
                    .clone(),
            }
        });
        if let Some(b) = &breaker {
            let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
            b.admit(now_ms()).map_err(|ms| ms.div_ceil(1000).max(1))?;
        }
        Ok(Watch {
            breaker,
            max_reply: limits.reply_cap(server),
            track: None,
            result: None,
        })
    }

    /// Each server's breaker: (state, failures in a row), for `/health`.
    pub fn breaker_state(&self, server: &str) -> Option<(&'static str, u32)> {
        let map = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let b = map
            .get(server)?
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Some((b.state(now_ms()).as_str(), b.failures()))
    }

    /// Takes a token from every bucket the request counts against; `Err` holds the seconds
    /// to wait and the rule that refused it.
    pub fn limit(&self, who: &Principal, tool: Option<(&str, &str)>) -> Result<(), (u64, String)> {
        self.limits.take(who, tool)
    }
}

/// Each rule set's candidate rules for one (principal, method, item), with the key it was
/// computed for (the principal kept alive so that its address is not reused meanwhile).
struct Decided {
    who: Arc<Principal>,
    method: Box<str>,
    item: Option<[Box<str>; 3]>,
    candidates: Arc<Vec<Vec<u32>>>,
}

impl Decided {
    fn is(&self, who: &Arc<Principal>, method: &str, item: Option<Item<'_>>) -> bool {
        Arc::ptr_eq(&self.who, who)
            && *self.method == *method
            && match (&self.item, item) {
                (None, None) => true,
                (Some([k, s, n]), Some(it)) => {
                    **k == *it.kind && **s == *it.server && **n == *it.name
                }
                _ => false,
            }
    }
}

struct ListEntry {
    _view: Arc<View>,
    _who: Arc<Principal>,
    filtered: Arc<View>,
}

fn stdio_principal(setup: &Setup) -> Principal {
    let a = &setup.auth;
    match a.stdio_subject.as_deref() {
        Some(s) => {
            let mut p = Principal::agent(s);
            p.method = flowguard_guard::AuthMethod::Configured;
            p.set_roles(
                a.stdio_roles
                    .iter()
                    .map(|r| Arc::from(r.as_str()))
                    .collect(),
            );
            p
        }
        None => Principal::anonymous(),
    }
}

/// Milliseconds on the process's monotonic clock.
fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// What watches one forwarded request: the server's breaker (told how it ended) and the cap
/// on the size of what the server sends back.
#[derive(Default)]
pub struct Watch {
    breaker: Option<Arc<Mutex<Breaker>>>,
    pub max_reply: Option<usize>,
    /// Times the request for /metrics (and its trace span) until its final reply.
    pub track: Option<crate::metrics::Track>,
    /// The inspection of a tool call's result (`[inspect]`), applied to the final reply.
    pub result: Option<Box<crate::scan::ResultCheck>>,
}

impl Watch {
    pub fn success(&self) {
        if let Some(b) = &self.breaker {
            b.lock().unwrap_or_else(|e| e.into_inner()).success();
        }
    }

    pub fn failure(&self) {
        if let Some(b) = &self.breaker {
            b.lock()
                .unwrap_or_else(|e| e.into_inner())
                .failure(now_ms());
        }
    }

    /// The request ended without an answer or a failure (cancelled, abandoned).
    pub fn release(&self) {
        if let Some(b) = &self.breaker {
            b.lock().unwrap_or_else(|e| e.into_inner()).release();
        }
    }
}

fn to_item<'a>((kind, server, name): (ListKind, &'a str, &'a str)) -> Item<'a> {
    let kind = match kind {
        ListKind::Tools => "tools",
        ListKind::Prompts => "prompts",
        ListKind::Resources | ListKind::Templates => "resources",
    };
    Item { kind, server, name }
}
