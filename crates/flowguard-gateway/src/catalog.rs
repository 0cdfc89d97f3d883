//! The catalog: tools, prompts, resources and resource templates of every server, fetched
//! (all pages), filtered by each server's `tools` allow-list, named for the endpoint (unified
//! names are `id___name` by default), and cached until a server says its list changed or
//! restarts. Lists are served from here, and names and URIs are resolved to their server.
//! A virtual server's view holds only its configured tools, renamed where the config says so.
//!
//! A server with `isolation = "session"` has no shared instance: each session's views are built
//! from that session's own instances (a server may offer different tools per environment), and
//! cached under the session, so one session's lists never show another's.

use crate::uri_template::UriTemplate;
use flowguard_config::{PrefixMode, VirtualServer};
use flowguard_protocol::encode;
use flowguard_upstream::{SessionKey, StateKind, Upstream};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The four lists MCP servers offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl ListKind {
    pub fn from_method(method: &str) -> Option<Self> {
        Some(match method {
            "tools/list" => ListKind::Tools,
            "prompts/list" => ListKind::Prompts,
            "resources/list" => ListKind::Resources,
            "resources/templates/list" => ListKind::Templates,
            _ => return None,
        })
    }

    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
        }
    }

    /// The result field holding the items.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The server capability that says the list exists.
    fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
        }
    }

    /// Tools and prompts are called by name, so their names are prefixed in unified mode.
    fn named(self) -> bool {
        matches!(self, ListKind::Tools | ListKind::Prompts)
    }
}

/// One endpoint's view of one list.
#[derive(Default)]
pub struct View {
    pub items: Vec<Box<RawValue>>,
    /// Public name → (server index, the server's own name).
    names: HashMap<String, (usize, String)>,
    uris: HashMap<String, usize>,
    templates: Vec<(UriTemplate, usize)>,
    /// The instances asked, by server index, with their restart counts then: a restart, or a
    /// session's instance replaced by a fresh one, makes the view stale.
    stamps: Vec<(usize, Upstream, u32)>,
    /// False when a server could not be asked: rebuilt on next use.
    complete: bool,
}

impl View {
    /// The items `keep` accepts, given the server index and the server's own name (tools,
    /// prompts) or URI / URI template (resources, templates). Names and URIs of the items left
    /// out are gone from the result too, so they resolve no more than unknown ones.
    pub fn filtered(&self, kind: ListKind, keep: impl Fn(usize, &str) -> bool) -> View {
        let mut out = View {
            stamps: self.stamps.clone(),
            complete: self.complete,
            ..View::default()
        };
        let mut templates = self.templates.iter();
        for item in &self.items {
            let Ok(keys) = serde_json::from_str::<ItemKeys>(item.get()) else {
                continue;
            };
            let kept = match kind {
                ListKind::Tools | ListKind::Prompts => {
                    let Some(public) = keys.name.as_deref() else {
                        continue;
                    };
                    let Some((i, own)) = self.names.get(public) else {
                        continue;
                    };
                    keep(*i, own).then(|| {
                        out.names.insert(public.to_string(), (*i, own.clone()));
                    })
                }
                ListKind::Resources => {
                    let Some(uri) = keys.uri.as_deref() else {
                        continue;
                    };
                    let Some(i) = self.uris.get(uri) else {
                        continue;
                    };
                    keep(*i, uri).then(|| {
                        out.uris.insert(uri.to_string(), *i);
                    })
                }
                ListKind::Templates => {
                    let Some(t) = keys.uri_template.as_deref() else {
                        continue;
                    };
                    let Some((tpl, i)) = templates.next() else {
                        continue;
                    };
                    keep(*i, t).then(|| out.templates.push((tpl.clone(), *i)))
                }
            };
            if kept.is_some() {
                out.items.push(item.clone());
            }
        }
        out
    }

    fn upstream(&self, idx: usize) -> Option<Upstream> {
        self.stamps
            .iter()
            .find(|(i, _, _)| *i == idx)
            .map(|(_, u, _)| u.clone())
    }
}

/// Which servers an endpoint shows, and how: all (unified), one (routed, by server index), or
/// a virtual server's chosen tools (by its index in the catalog's virtual servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeKey {
    Unified,
    Routed(usize),
    Virtual(usize),
}

/// A virtual server's tools, resolved to server indexes.
struct VirtualTools {
    name: String,
    /// (server index, the server's own tool name, the exposed name), in configuration order.
    entries: Vec<(usize, String, String)>,
}

/// The servers one session reaches, by index: the shared instance, the session's own instance
/// of an isolated server, or why it has none (the per-server cap).
pub type Members = Vec<(usize, Result<Upstream, String>)>;

/// A cached view: the session for views that include a per-session instance (their lists are
/// that instance's and no one else's), else `None` (shared by every session of the endpoint).
type ViewKey = (Option<SessionKey>, ScopeKey, ListKind);

pub struct Catalog {
    servers: Vec<Upstream>,
    virtuals: Vec<VirtualTools>,
    prefix: PrefixMode,
    separator: String,
    views: Mutex<HashMap<ViewKey, Arc<View>>>,
    /// Servers left out of a view because they were not ready: when one becomes ready, the
    /// sessions that may have seen that view are told their lists changed (`Gateway::start`).
    missed: Mutex<HashSet<usize>>,
    /// [`LIST_WAIT`], or `startup_timeout` when that is shorter.
    list_wait: Duration,
    /// The inspection stage (`[inspect]`): pins and the poisoning scan, applied to each
    /// server's list before it joins a view.
    pub inspector: std::sync::OnceLock<Arc<crate::inspect::Inspector>>,
}

/// How long a list that aggregates several servers waits for one still starting for the first
/// time (at most `startup_timeout`): a server that hangs holds up no list for longer, and one
/// that is ready later is announced with `list_changed`.
const LIST_WAIT: Duration = Duration::from_secs(10);

/// How many pages of one server's list are read before giving up on a runaway cursor.
const MAX_PAGES: usize = 100;

#[derive(Deserialize)]
struct ItemKeys<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "uriTemplate")]
    uri_template: Option<Cow<'a, str>>,
}

impl Catalog {
    pub fn new(
        servers: Vec<Upstream>,
        virtuals: &[VirtualServer],
        prefix: PrefixMode,
        separator: String,
        startup_timeout: Duration,
    ) -> Self {
        let index_of = |id: &str| servers.iter().position(|s| s.id() == id);
        // The config names only configured servers (validated), so nothing is dropped here.
        let virtuals = virtuals
            .iter()
            .map(|v| VirtualTools {
                name: v.name.clone(),
                entries: v
                    .tools
                    .iter()
                    .filter_map(|t| Some((index_of(&t.server)?, t.tool.clone(), t.name.clone())))
                    .collect(),
            })
            .collect();
        Catalog {
            servers,
            virtuals,
            prefix,
            separator,
            views: Mutex::new(HashMap::new()),
            missed: Mutex::new(HashSet::new()),
            list_wait: LIST_WAIT.min(startup_timeout),
            inspector: std::sync::OnceLock::new(),
        }
    }

    /// The configured servers; for an isolated one, the template its instances are made from.
    pub fn servers(&self) -> &[Upstream] {
        &self.servers
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.id() == id)
    }

    /// The catalog's index of a virtual server, by name.
    pub fn virtual_index(&self, name: &str) -> Option<usize> {
        self.virtuals.iter().position(|v| v.name == name)
    }

    /// Forgets cached lists of one server (it announced a change). A shared server's change
    /// reaches every view; an isolated instance's only its session's views.
    pub fn invalidate(&self, server: &str, kind: Option<ListKind>, session: Option<&str>) {
        let Some(idx) = self.index_of(server) else {
            return;
        };
        let mut views = self.lock();
        views.retain(|(owner, scope, k), _| {
            let shows = match *scope {
                ScopeKey::Unified => true,
                ScopeKey::Routed(s) => s == idx,
                ScopeKey::Virtual(v) => self
                    .virtuals
                    .get(v)
                    .is_some_and(|v| v.entries.iter().any(|e| e.0 == idx)),
            };
            let hit = shows
                && kind.is_none_or(|want| want == *k)
                && session.is_none_or(|s| owner.as_deref() == Some(s));
            !hit
        });
    }

    /// Forgets the views of a session (it ended, or one of its instances was replaced).
    pub fn forget_session(&self, session: &str) {
        self.lock()
            .retain(|(owner, _, _), _| owner.as_deref() != Some(session));
    }

    /// The current view for `members`, built (by asking the servers) when missing or stale.
    pub async fn view(&self, scope: ScopeKey, members: &Members, kind: ListKind) -> Arc<View> {
        let owner = members
            .iter()
            .find_map(|(_, m)| m.as_ref().ok().and_then(|u| u.session().cloned()));
        if matches!(scope, ScopeKey::Virtual(_)) && kind != ListKind::Tools {
            // A virtual server offers tools only: nothing to ask anyone.
            return Arc::new(View {
                complete: true,
                ..View::default()
            });
        }
        let key = (owner, scope, kind);
        if let Some(v) = self.lock().get(&key) {
            if v.complete && fresh(v, members) {
                return v.clone();
            }
        }
        let view = Arc::new(self.build(members, kind, scope).await);
        self.lock().insert(key, view.clone());
        view
    }

    fn lock_missed(&self) -> std::sync::MutexGuard<'_, HashSet<usize>> {
        self.missed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long an aggregated list or `initialize` waits for a server starting for the first time.
    pub fn list_wait(&self) -> Duration {
        self.list_wait
    }

    /// Notes that an answer was built without server `idx` (it was not ready).
    pub fn missed(&self, idx: usize) {
        self.lock_missed().insert(idx);
    }

    /// Whether a view was built without server `idx` since the last call (and forgets it).
    pub fn take_missed(&self, idx: usize) -> bool {
        self.lock_missed().remove(&idx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ViewKey, Arc<View>>> {
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn build(&self, members: &Members, kind: ListKind, scope: ScopeKey) -> View {
        // A routed view (one server) waits for its server as a call would; an aggregated one
        // does not wait long for any single server.
        let wait = (members.len() > 1).then_some(self.list_wait);
        let fetches = members.iter().map(|(_, m)| async move {
            match m {
                Ok(u) => fetch(u, kind, wait).await,
                Err(e) => Err(e.clone()),
            }
        });
        let results = futures_util::future::join_all(fetches).await;
        let mut view = View {
            complete: true,
            ..View::default()
        };
        let mut lists = Vec::new();
        for ((i, member), result) in members.iter().zip(results) {
            if let Ok(u) = member {
                view.stamps.push((*i, u.clone(), u.state().restarts));
            }
            match result {
                Ok(items) => lists.push((*i, items)),
                Err(reason) => {
                    let server = self.servers[*i].id();
                    // A server that is not running is left out (and announced once ready); a
                    // running one that failed to list is worth a warning.
                    match member {
                        Ok(u) if u.state().kind != StateKind::Ready => {
                            self.missed(*i);
                            tracing::debug!(server, "{} left out: {reason}", kind.method());
                        }
                        Ok(_) => {
                            self.missed(*i);
                            tracing::warn!(server, "{} failed: {reason}", kind.method());
                        }
                        Err(_) => tracing::warn!(server, "{} failed: {reason}", kind.method()),
                    }
                    view.complete = false;
                }
            }
        }
        if let Some(ins) = self.inspector.get() {
            lists = self.screen(ins, members, kind, lists, &mut view);
        }
        match scope {
            ScopeKey::Virtual(v) => self.assemble_virtual(&mut view, v, lists),
            _ => self.assemble(&mut view, kind, lists, scope == ScopeKey::Unified),
        }
        view
    }

    /// Each server's list as the inspection stage lets clients see it. A view that held
    /// something back is built again on next use, so an approval shows at once.
    fn screen(
        &self,
        ins: &crate::inspect::Inspector,
        members: &Members,
        kind: ListKind,
        lists: Vec<(usize, Vec<Box<RawValue>>)>,
        view: &mut View,
    ) -> Vec<(usize, Vec<Box<RawValue>>)> {
        let names: Vec<(usize, Vec<String>)> = lists
            .iter()
            .map(|(i, items)| {
                let names = items
                    .iter()
                    .filter_map(|it| {
                        serde_json::from_str::<ItemKeys>(it.get())
                            .ok()?
                            .name
                            .map(|n| n.into_owned())
                    })
                    .collect();
                (*i, names)
            })
            .collect();
        lists
            .into_iter()
            .map(|(i, items)| {
                let other: Vec<&str> = names
                    .iter()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, n)| n.iter().map(String::as_str))
                    .collect();
                let instructions = members
                    .iter()
                    .find(|(j, _)| *j == i)
                    .and_then(|(_, m)| m.as_ref().ok())
                    .and_then(|u| u.init_result())
                    .and_then(|r| {
                        r.get("instructions")
                            .and_then(|s| s.as_str())
                            .map(str::to_string)
                    });
                let (kept, held) = ins.screen(
                    self.servers[i].id(),
                    kind,
                    items,
                    instructions.as_deref(),
                    &other,
                );
                if held {
                    view.complete = false;
                }
                (i, kept)
            })
            .collect()
    }

    fn assemble(
        &self,
        view: &mut View,
        kind: ListKind,
        lists: Vec<(usize, Vec<Box<RawValue>>)>,
        unified: bool,
    ) {
        let mut counts: HashMap<String, usize> = HashMap::new();
        let mut keyed = Vec::new();
        for (i, items) in lists {
            for item in items {
                let Ok(keys) = serde_json::from_str::<ItemKeys>(item.get()) else {
                    continue;
                };
                let name = keys.name.as_deref().unwrap_or_default().to_string();
                if kind == ListKind::Tools && !self.allowed(i, &name) {
                    continue;
                }
                if let Some(uri) = keys.uri.as_deref() {
                    view.uris.entry(uri.to_string()).or_insert(i);
                }
                if let Some(t) = keys.uri_template.as_deref() {
                    view.templates.push((UriTemplate::new(t), i));
                }
                *counts.entry(name.clone()).or_default() += 1;
                keyed.push((i, name, item));
            }
        }
        for (i, name, item) in keyed {
            if !kind.named() {
                view.items.push(item);
                continue;
            }
            let prefixed = unified
                && match self.prefix {
                    PrefixMode::Always => true,
                    PrefixMode::Conditional => counts[&name] > 1,
                    PrefixMode::Never => false,
                };
            let public = if prefixed {
                format!("{}{}{}", self.servers[i].id(), self.separator, name)
            } else {
                name.clone()
            };
            if view.names.contains_key(&public) {
                tracing::warn!(server = self.servers[i].id(), "{} `{public}` is hidden: an earlier server has the same name (tool_prefix = \"never\")", kind.field());
                continue;
            }
            let item = if prefixed {
                self.rename(&item, &public, self.servers[i].id())
            } else {
                item
            };
            view.names.insert(public, (i, name));
            view.items.push(item);
        }
    }

    /// A virtual server's tool list: its entries in configuration order, each the server's
    /// own item under the exposed name. The server's allow-list still applies.
    fn assemble_virtual(&self, view: &mut View, v: usize, lists: Vec<(usize, Vec<Box<RawValue>>)>) {
        let mut offered: HashMap<(usize, String), Box<RawValue>> = HashMap::new();
        for (i, items) in lists {
            for item in items {
                let Ok(keys) = serde_json::from_str::<ItemKeys>(item.get()) else {
                    continue;
                };
                let name = keys.name.as_deref().unwrap_or_default().to_string();
                if self.allowed(i, &name) {
                    offered.insert((i, name), item);
                }
            }
        }
        let Some(virt) = self.virtuals.get(v) else {
            return;
        };
        for (i, own, public) in &virt.entries {
            let Some(item) = offered.remove(&(*i, own.clone())) else {
                // A server that could not be asked is already reported (and the view rebuilt).
                if view.complete {
                    tracing::warn!(
                        server = self.servers[*i].id(),
                        "virtual server `{}`: the server offers no tool `{own}`; it is left out",
                        virt.name
                    );
                }
                continue;
            };
            let item = if own == public {
                item
            } else {
                renamed(&item, public)
            };
            view.names.insert(public.clone(), (*i, own.clone()));
            view.items.push(item);
        }
    }

    fn allowed(&self, idx: usize, tool: &str) -> bool {
        match &self.servers[idx].config().tools {
            None => true,
            Some(list) => list.iter().any(|t| t == "*" || t == tool),
        }
    }

    fn rename(&self, item: &RawValue, public: &str, server: &str) -> Box<RawValue> {
        let Ok(mut v) =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(item.get())
        else {
            return item.to_owned();
        };
        v.insert("name".into(), public.into());
        let desc = v.get("description").and_then(|d| d.as_str()).unwrap_or("");
        v.insert(
            "description".into(),
            format!("[{server}] {desc}").trim_end().into(),
        );
        serde_json::value::to_raw_value(&v).expect("a Map serializes")
    }

    /// The instance and its own name for a public tool or prompt name.
    pub async fn resolve_name(
        &self,
        scope: ScopeKey,
        members: &Members,
        kind: ListKind,
        name: &str,
    ) -> Option<(Upstream, String)> {
        let view = self.view(scope, members, kind).await;
        let (i, own) = view.names.get(name)?;
        Some((view.upstream(*i)?, own.clone()))
    }

    /// The instance that owns a resource URI: a listed resource, else a matching template.
    pub async fn resolve_uri(
        &self,
        scope: ScopeKey,
        members: &Members,
        uri: &str,
    ) -> Option<Upstream> {
        let resources = self.view(scope, members, ListKind::Resources).await;
        if let Some(i) = resources.uris.get(uri) {
            return resources.upstream(*i);
        }
        let templates = self.view(scope, members, ListKind::Templates).await;
        let (_, i) = templates.templates.iter().find(|(t, _)| t.matches(uri))?;
        templates.upstream(*i)
    }
}

/// An item with another `name`; everything else (description, schemas) as the server sent it.
fn renamed(item: &RawValue, public: &str) -> Box<RawValue> {
    let Ok(mut v) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(item.get())
    else {
        return item.to_owned();
    };
    v.insert("name".into(), public.into());
    serde_json::value::to_raw_value(&v).expect("a Map serializes")
}

/// Whether a view was built from the instances `members` name, none restarted since.
fn fresh(v: &View, members: &Members) -> bool {
    v.stamps.iter().all(|(i, u, restarts)| {
        u.state().restarts == *restarts
            && members
                .iter()
                .any(|(j, m)| j == i && m.as_ref().is_ok_and(|m| m.same(u)))
    })
}

/// Waits for a server starting for the first time, at most `wait` since it began; one that
/// has failed, or is restarting, is not waited for.
pub(crate) async fn first_start(server: &Upstream, wait: Duration) -> Result<(), String> {
    let state = server.state();
    if state.kind == StateKind::Ready {
        return Ok(());
    }
    let first = state.kind == StateKind::Starting && state.restarts == 0 && state.failures == 0;
    let left = wait.saturating_sub(state.since.elapsed());
    if !first || left.is_zero() {
        return Err(format!("it is not ready ({})", state.kind.as_str()));
    }
    match tokio::time::timeout(left, server.ready()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("it is still starting after {wait:?}")),
    }
}

/// Reads every page of one server's list; empty when the server does not offer it.
///
/// `wait`: for an aggregated list, how long a server starting for the first time is waited
/// for; one that has failed, or is restarting, is left out at once (its calls still wait).
async fn fetch(
    server: &Upstream,
    kind: ListKind,
    wait: Option<Duration>,
) -> Result<Vec<Box<RawValue>>, String> {
    if server.state().kind != StateKind::Ready {
        match wait {
            None => server.ready().await.map_err(|e| e.to_string())?,
            Some(wait) => first_start(server, wait).await?,
        }
    }
    let offers = server
        .init_result()
        .and_then(|r| {
            r.get("capabilities")
                .map(|c| c.get(kind.capability()).is_some())
        })
        .unwrap_or(false);
    if !offers {
        return Ok(vec![]);
    }
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => serde_json::json!({ "cursor": c }),
            None => serde_json::json!({}),
        };
        let raw = serde_json::value::to_raw_value(&params).expect("a Value serializes");
        let reply = server
            .request(kind.method(), Some(&raw))
            .await
            .map_err(|e| e.to_string())?;
        let result =
            reply.map_err(|e| format!("the server answered with an error: {}", e.get()))?;
        let page: HashMap<String, &RawValue> =
            serde_json::from_str(result.get()).map_err(|e| e.to_string())?;
        if let Some(list) = page.get(kind.field()) {
            let mut more: Vec<Box<RawValue>> =
                serde_json::from_str(list.get()).map_err(|e| e.to_string())?;
            items.append(&mut more);
        }
        let next = page
            .get("nextCursor")
            .and_then(|c| serde_json::from_str::<String>(c.get()).ok());
        match next {
            Some(next) if !next.is_empty() => cursor = Some(next),
            _ => return Ok(items),
        }
    }
    Err(format!("more than {MAX_PAGES} pages"))
}

/// The reply to request `id` with one page of a view: `{"<field>":[...],"nextCursor":"..."}` as
/// its result, written in one buffer (a unified list can be hundreds of kilobytes). The cursor
/// is the offset of the next page; `page_size` 0 means everything at once.
pub fn page(
    id: &str,
    view: &View,
    kind: ListKind,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<Vec<u8>, String> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|s| *s <= view.items.len())
            .ok_or_else(|| format!("invalid cursor {c:?}"))?,
    };
    let end = if page_size == 0 {
        view.items.len()
    } else {
        (start + page_size).min(view.items.len())
    };
    let size: usize = view.items[start..end]
        .iter()
        .map(|i| i.get().len() + 1)
        .sum();
    let mut out = Vec::with_capacity(size + id.len() + 96);
    encode::result_opening(&mut out, id);
    out.extend_from_slice(format!("{{\"{}\":[", kind.field()).as_bytes());
    for (n, item) in view.items[start..end].iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.get().as_bytes());
    }
    out.push(b']');
    if end < view.items.len() {
        out.extend_from_slice(format!(",\"nextCursor\":\"{end}\"").as_bytes());
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_of(n: usize) -> View {
        let items = (0..n)
            .map(|i| RawValue::from_string(format!("{{\"name\":\"t{i}\"}}")).unwrap())
            .collect();
        View {
            items,
            complete: true,
            ..View::default()
        }
    }

    #[test]
    fn pages_walk_the_whole_list() {
        let v = view_of(5);
        let p1: serde_json::Value =
            serde_json::from_slice(&page("7", &v, ListKind::Tools, None, 2).unwrap()).unwrap();
        assert_eq!(p1["id"], 7);
        let p1 = &p1["result"];
        assert_eq!(p1["tools"].as_array().unwrap().len(), 2);
        assert_eq!(p1["nextCursor"], "2");
        let p3: serde_json::Value =
            serde_json::from_slice(&page("7", &v, ListKind::Tools, Some("4"), 2).unwrap()).unwrap();
        assert_eq!(p3["result"]["tools"][0]["name"], "t4");
        assert!(p3["result"].get("nextCursor").is_none());
        assert!(page("7", &v, ListKind::Tools, Some("x"), 2).is_err());
        let all: serde_json::Value =
            serde_json::from_slice(&page("7", &v, ListKind::Tools, None, 0).unwrap()).unwrap();
        assert_eq!(all["result"]["tools"].as_array().unwrap().len(), 5);
    }
}
