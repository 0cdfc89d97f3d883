//! [`Gateway`]: the configured servers, the sessions, and the table of server-to-client
//! requests waiting for a client's answer. Built once from the validated config.

use crate::catalog::{Catalog, Members, ScopeKey};
use crate::downstream::guard::HostGuard;
use crate::downstream::modern::ParkedCalls;
use crate::events::EventRouter;
use crate::isolated::Instances;
use crate::lifecycle::Lifecycle;
use crate::session::{MemorySessions, Scope, Session, SessionStore, VirtualEndpoint};
use flowguard_config::{Config, GatewaySettings, Mode};
use flowguard_protocol::RawId;
use flowguard_upstream::{SessionKey, Upstream, UpstreamSettings};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A request a server sent to a client, waiting for the client's answer.
pub(crate) struct Outstanding {
    pub session: Arc<str>,
    pub upstream: Upstream,
    pub server_id: RawId,
}

pub struct Gateway {
    pub settings: GatewaySettings,
    pub mode: Mode,
    pub catalog: Catalog,
    /// The virtual servers' endpoints, sorted by name.
    virtuals: Vec<Arc<VirtualEndpoint>>,
    pub sessions: Box<dyn SessionStore>,
    /// Sessions of 2026-07-28 requests and listen streams while they last; apart from
    /// `sessions` so that no client can name one in `Mcp-Session-Id`.
    pub(crate) stateless: MemorySessions,
    /// 2026-07-28 calls waiting for the client's `inputResponses`.
    pub(crate) parked: ParkedCalls,
    pub lifecycle: Lifecycle,
    pub started: Instant,
    outstanding: Mutex<HashMap<u64, Outstanding>>,
    next_outgoing: AtomicU64,
    /// Set once the listen address is known (`downstream::app`).
    pub(crate) host_guard: OnceLock<HostGuard>,
    /// Per-session instances of `isolation = "session"` servers.
    instances: Instances,
    /// Where upstreams hand server-initiated messages; set by [`Gateway::start`].
    events: OnceLock<Arc<EventRouter>>,
    /// Instances being stopped after their session ended; awaited by `stop_servers`.
    stopping: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Shared servers that asked for roots when no client could answer (they got none): told
    /// `roots/list_changed` when a client that has roots arrives.
    roots_asked: Mutex<std::collections::HashSet<String>>,
    /// Transparent sessions in creation order: the first to go at `max_sessions`.
    auto_sessions: Mutex<std::collections::VecDeque<SessionKey>>,
    /// Sessions admitted and being set up, not yet in `sessions` (they count against the cap).
    starting_sessions: AtomicUsize,
    /// Authentication, roles, policy and limits (`guard`).
    pub guard: crate::guard::Guard,
    /// The audit writer, when the audit is on (set once at start-up).
    pub audit: OnceLock<Arc<crate::audit::Auditor>>,
    /// Storage, when something needs it or `[storage]` is set (set once at start-up).
    pub store: OnceLock<Arc<flowguard_store::Store>>,
    /// Prometheus metrics (`[metrics]`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `[metrics] listen` is set: `/metrics` is served there, not on the main listener.
    pub metrics_elsewhere: bool,
    /// OpenTelemetry traces, when `[tracing]` is set.
    pub tracer: Option<Arc<crate::trace::Tracer>>,
    /// Webhook alerts, when `[alerts]` is set.
    pub alerts: Option<Arc<crate::alerts::Alerts>>,
    /// mcpgw policy files' `response_patterns`, applied to tool results (without `[inspect]`).
    pub policy_patterns: Option<Arc<crate::scan::Scanner>>,
}

/// A session admitted under `max_sessions`, being set up: dropped once it is stored (or given
/// up), which frees the place it held among the sessions being set up.
pub(crate) struct SessionSlot<'a>(&'a Gateway);

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        self.0.starting_sessions.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gateway {
    /// Builds the gateway; servers are not started until [`Gateway::start`].
    pub fn new(config: Config, mode: Mode, owner_tag: String) -> Arc<Self> {
        let s = &config.gateway;
        let upstream_settings = UpstreamSettings {
            request_timeout: s.request_timeout,
            startup_timeout: s.startup_timeout,
            shutdown_grace: s.shutdown_grace,
            max_line_bytes: s.max_line_bytes,
            stderr_lines: s.stderr_lines,
            container_runtime: s.container_runtime,
            owner_tag,
        };
        let servers: Vec<Upstream> = config
            .servers
            .iter()
            .map(|c| Upstream::new(c.clone(), upstream_settings.clone()))
            .collect();
        let instances = Instances::new(upstream_settings, s.max_sessions_per_server);
        let catalog = Catalog::new(
            servers,
            &config.virtual_servers,
            s.tool_prefix,
            s.separator.clone(),
            s.startup_timeout,
        );
        let virtuals = config
            .virtual_servers
            .iter()
            .map(|v| Arc::new(VirtualEndpoint::new(v)))
            .collect();
        Arc::new(Gateway {
            settings: config.gateway.clone(),
            mode,
            catalog,
            virtuals,
            sessions: Box::new(MemorySessions::default()),
            stateless: MemorySessions::default(),
            parked: ParkedCalls::default(),
            lifecycle: Lifecycle::default(),
            started: Instant::now(),
            outstanding: Mutex::new(HashMap::new()),
            next_outgoing: AtomicU64::new(1),
            host_guard: OnceLock::new(),
            instances,
            events: OnceLock::new(),
            stopping: Mutex::new(Vec::new()),
            roots_asked: Mutex::new(Default::default()),
            auto_sessions: Mutex::new(Default::default()),
            starting_sessions: AtomicUsize::new(0),
            guard: crate::guard::Guard::new(config.guard.0.clone()),
            audit: OnceLock::new(),
            store: OnceLock::new(),
            metrics: Arc::new(crate::metrics::Metrics::new(config.metrics.enabled)),
            metrics_elsewhere: config.metrics.listen.is_some(),
            tracer: config.tracing.as_ref().map(crate::trace::Tracer::start),
            alerts: config.alerts.as_ref().map(crate::alerts::Alerts::start),
            policy_patterns: policy_patterns(&config.guard.0),
        })
    }

    pub fn servers(&self) -> &[Upstream] {
        self.catalog.servers()
    }

    pub fn server(&self, id: &str) -> Option<&Upstream> {
        self.servers().iter().find(|s| s.id() == id)
    }

    /// The virtual servers' endpoints (`/mcp/<name>`), served in every mode.
    pub fn virtual_servers(&self) -> &[Arc<VirtualEndpoint>] {
        &self.virtuals
    }

    /// The endpoint of the virtual server `name`.
    pub fn virtual_server(&self, name: &str) -> Option<&Arc<VirtualEndpoint>> {
        self.virtuals.iter().find(|v| &*v.name == name)
    }

    /// Starts every shared server's supervisor; isolated servers start per session, on demand.
    pub fn start(self: &Arc<Self>) {
        let events = self
            .events
            .get_or_init(|| Arc::new(EventRouter::new(Arc::downgrade(self))));
        for s in self.servers().iter().filter(|s| !is_isolated(s)) {
            s.start(events.clone());
            tokio::spawn(announce_when_ready(
                Arc::downgrade(self),
                s.clone(),
                events.clone(),
            ));
        }
    }

    /// A server asked for roots with no client there to answer.
    pub(crate) fn roots_asked(&self, server: &Upstream) {
        if server.session().is_none() {
            let mut asked = self.roots_asked.lock().unwrap_or_else(|e| e.into_inner());
            asked.insert(server.id().to_string());
        }
    }

    /// A client that has roots arrived: servers that asked before are told to ask again.
    pub(crate) fn announce_roots(&self, session: &Session) {
        if !session
            .hello()
            .supports(flowguard_protocol::methods::ROOTS_LIST)
        {
            return;
        }
        let mut asked = self.roots_asked.lock().unwrap_or_else(|e| e.into_inner());
        if asked.is_empty() {
            return;
        }
        for s in self.servers() {
            if session.scope.includes(s.id()) && asked.remove(s.id()) {
                s.notify(flowguard_protocol::methods::ROOTS_LIST_CHANGED, None);
            }
        }
    }

    /// Stops every server and per-session instance, in parallel.
    pub async fn stop_servers(&self) {
        let instances = self.instances.remove_all();
        let shared = self.servers().iter().filter(|s| !is_isolated(s));
        futures_util::future::join_all(shared.chain(&instances).map(|s| s.shutdown())).await;
        let stopping = std::mem::take(&mut *self.lock_stopping());
        futures_util::future::join_all(stopping).await;
    }

    fn lock_stopping(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.stopping.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How often idle sessions and instances are looked for: a quarter of the shortest idle
    /// timeout, between 250 ms and 30 s, so that a timeout is kept within about a quarter.
    pub fn sweep_interval(&self) -> Duration {
        let shortest = self
            .servers()
            .iter()
            .filter_map(|s| s.config().isolation.session().and_then(|i| i.idle_timeout))
            .chain([
                self.settings.session_idle_timeout,
                self.settings.auto_session_idle_timeout,
            ])
            .min()
            .unwrap_or(Duration::from_secs(60));
        (shortest / 4).clamp(Duration::from_millis(250), Duration::from_secs(30))
    }

    /// How many per-session instances of a server are running (for `/health`).
    pub fn instance_count(&self, server: &str) -> usize {
        self.catalog
            .index_of(server)
            .map_or(0, |i| self.instances.count(i))
    }

    /// The instance of server `idx` this session reaches: the shared one, or (isolated) its
    /// own, started on this first need of it.
    pub(crate) fn instance(&self, session: &Session, idx: usize) -> Result<Upstream, String> {
        let template = &self.servers()[idx];
        if !is_isolated(template) {
            return Ok(template.clone());
        }
        let events = self
            .events
            .get()
            .map(|e| e.clone() as Arc<dyn flowguard_upstream::UpstreamEvents>);
        self.instances
            .get_or_start(session, idx, template, events)
            .map_err(|e| e.to_string())
    }

    /// Every server of the session's endpoint, as [`Gateway::instance`] gives it.
    pub(crate) fn members(&self, session: &Session) -> Members {
        (0..self.servers().len())
            .filter(|&i| session.scope.includes(self.servers()[i].id()))
            .map(|i| (i, self.instance(session, i)))
            .collect()
    }

    /// The instances a session reaches without starting any: shared servers of its endpoint
    /// and the per-session instances it already has (for notifications and cancellations).
    pub(crate) fn reachable(&self, session: &Session) -> Vec<Upstream> {
        self.servers()
            .iter()
            .enumerate()
            .filter(|(_, s)| session.scope.includes(s.id()))
            .filter_map(|(i, s)| {
                if is_isolated(s) {
                    self.instances.existing(&session.id, i)
                } else {
                    Some(s.clone())
                }
            })
            .collect()
    }

    /// Stops per-session instances in the background (close stdin, SIGTERM, SIGKILL, reap:
    /// bounded by `shutdown_grace`), so that ending a session never waits on a child.
    fn stop_instances(&self, instances: Vec<Upstream>) {
        if instances.is_empty() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let task = rt.spawn(async move {
                futures_util::future::join_all(instances.iter().map(|s| s.shutdown())).await;
            });
            let mut stopping = self.lock_stopping();
            stopping.retain(|t| !t.is_finished());
            stopping.push(task);
        }
    }

    /// Stops per-session instances idle longer than their server's `idle_timeout`; the
    /// session's next use starts a fresh one.
    pub fn expire_idle_instances(&self) -> usize {
        let idle = self.instances.remove_idle();
        for u in &idle {
            if let Some(s) = u.session() {
                self.catalog.forget_session(s);
                tracing::info!(server = u.id(), session = %s, "per-session instance idle: stopped");
            }
        }
        let n = idle.len();
        self.stop_instances(idle);
        n
    }

    pub(crate) fn scope_key(&self, scope: &Scope) -> ScopeKey {
        // Scopes are made from the configuration, so the lookups succeed; `usize::MAX` (no
        // such index) would give empty views rather than another endpoint's.
        match scope {
            Scope::Unified => ScopeKey::Unified,
            Scope::Routed(id) => ScopeKey::Routed(self.catalog.index_of(id).unwrap_or(usize::MAX)),
            Scope::Virtual(v) => {
                ScopeKey::Virtual(self.catalog.virtual_index(&v.name).unwrap_or(usize::MAX))
            }
        }
    }

    /// Servers an endpoint reaches.
    pub(crate) fn servers_in(&self, scope: &Scope) -> impl Iterator<Item = &Upstream> + '_ {
        let scope = scope.clone();
        self.servers()
            .iter()
            .filter(move |s| scope.includes(s.id()))
    }

    /// Ends a session: its requests are cancelled upstream and its streams closed.
    pub fn end_session(&self, session: &Session) {
        self.sessions.remove(&session.id);
        for s in self.reachable(session) {
            s.forget_session(&session.id);
        }
        let own = self.instances.remove_session(&session.id);
        if !own.is_empty() {
            tracing::info!(session = %session.id, "stopping {} per-session instance(s)", own.len());
        }
        self.stop_instances(own);
        self.catalog.forget_session(&session.id);
        self.lock_outstanding()
            .retain(|_, o| o.session != session.id);
        session.close_stream();
        self.release_subscriptions(session);
    }

    /// The resource subscriptions of a session that ended: each server is told to unsubscribe
    /// from a URI no other session still wants.
    fn release_subscriptions(&self, session: &Session) {
        let subs = std::mem::take(
            &mut *session
                .subscriptions
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        if subs.is_empty() {
            return;
        }
        let others = self.sessions.all().into_iter().chain(self.stateless.all());
        let wanted: std::collections::HashSet<String> = others
            .filter(|s| s.id != session.id)
            .flat_map(|s| {
                let subs = s.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
                subs.keys().cloned().collect::<Vec<_>>()
            })
            .collect();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for (uri, server) in subs.into_iter().filter(|(u, _)| !wanted.contains(u)) {
            rt.spawn(async move {
                let params = serde_json::json!({ "uri": uri });
                let raw = serde_json::value::to_raw_value(&params).expect("a Value serializes");
                let method = flowguard_protocol::methods::RESOURCES_UNSUBSCRIBE;
                if let Err(e) = server.request(method, Some(&raw)).await {
                    tracing::debug!(server = server.id(), uri, "resources/unsubscribe: {e}");
                }
            });
        }
    }

    /// Ends a 2026-07-28 request's own session (`Registration`): it leaves the stateless table,
    /// and any per-session instance it started stops (a stateless client has no session to
    /// keep one for).
    pub(crate) fn end_stateless(&self, session: &Session) {
        self.stateless.remove(&session.id);
        let own = self.instances.remove_session(&session.id);
        self.stop_instances(own);
        self.catalog.forget_session(&session.id);
        self.release_subscriptions(session);
    }

    /// Ends every server-to-client stream (GET streams, `subscriptions/listen` streams): at
    /// shutdown, after the drain, so that no client holds the exit.
    pub fn close_streams(&self) {
        for s in self.sessions.all().into_iter().chain(self.stateless.all()) {
            s.close_stream();
        }
    }

    /// A slot for one more session, held until the session is stored (sessions being set up
    /// count against the cap too). At `max_sessions`, a session made for a `tools/call` without
    /// `initialize` makes room: the oldest without a call in flight, from a queue in creation
    /// order (a flood of such calls costs no scan of every session). `None`: the cap is
    /// reached and no such session can go.
    pub(crate) fn admit_session(&self) -> Option<SessionSlot<'_>> {
        let max = self.settings.max_sessions;
        loop {
            let starting = self.starting_sessions.fetch_add(1, Ordering::AcqRel);
            if self.sessions.len() + starting < max {
                return Some(SessionSlot(self));
            }
            self.starting_sessions.fetch_sub(1, Ordering::AcqRel);
            if !self.end_a_transparent_session() {
                tracing::warn!("max_sessions ({max}) reached: a new session was refused");
                return None;
            }
        }
    }

    /// Ends the oldest transparent session that has no call in flight (looking at a few at
    /// most; busy ones go to the back of the queue). `false` when none could go.
    fn end_a_transparent_session(&self) -> bool {
        for _ in 0..16 {
            let next = self.lock_auto().pop_front();
            let Some(id) = next else { return false };
            // Ids of sessions that ended since are skipped.
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            if self.reachable(&s).iter().any(|u| u.has_pending_for(&s.id)) {
                self.lock_auto().push_back(id);
                continue;
            }
            tracing::debug!(session = %s.id, "max_sessions reached: ended the oldest idle transparent session");
            self.end_session(&s);
            return true;
        }
        false
    }

    /// Adds a session; a transparent one also joins the queue `admit_session` takes from.
    pub(crate) fn insert_session(&self, session: Arc<Session>) {
        if session.is_auto() {
            self.lock_auto().push_back(session.id.clone());
        }
        self.sessions.insert(session);
    }

    fn lock_auto(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<SessionKey>> {
        self.auto_sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes sessions idle for longer than the configured timeout (a transparent session's
    /// is `auto_session_idle_timeout`).
    pub fn expire_idle_sessions(&self) -> usize {
        let limit = self.settings.session_idle_timeout;
        let auto_limit = self.settings.auto_session_idle_timeout;
        let idle: Vec<_> = self
            .sessions
            .all()
            .into_iter()
            .filter(|s| s.idle_for() > if s.is_auto() { auto_limit } else { limit })
            .collect();
        for s in &idle {
            self.end_session(s);
        }
        // The queue forgets transparent sessions that ended.
        self.lock_auto()
            .retain(|id| self.sessions.get(id).is_some());
        idle.len()
    }

    pub(crate) fn remember_outstanding(&self, o: Outstanding) -> u64 {
        let id = self.next_outgoing.fetch_add(1, Ordering::Relaxed);
        self.lock_outstanding().insert(id, o);
        id
    }

    pub(crate) fn take_outstanding(&self, id: u64) -> Option<Outstanding> {
        self.lock_outstanding().remove(&id)
    }

    /// The gateway id of a server's request, found by instance and the server's own id.
    pub(crate) fn find_outstanding(
        &self,
        upstream: &Upstream,
        server_id: &str,
    ) -> Option<(u64, Arc<str>)> {
        self.lock_outstanding()
            .iter()
            .find(|(_, o)| o.upstream.same(upstream) && o.server_id.get() == server_id)
            .map(|(id, o)| (*id, o.session.clone()))
    }

    fn lock_outstanding(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Outstanding>> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a server runs one instance per client session.
pub(crate) fn is_isolated(s: &Upstream) -> bool {
    s.config().isolation.session().is_some()
}

/// Watches a shared server: each time it becomes ready after a list was built without it (it
/// was starting, restarting or failed), the lists it offers are announced as changed, as if
/// the server had said so, so clients that listed early fetch them again.
async fn announce_when_ready(
    gw: std::sync::Weak<Gateway>,
    server: Upstream,
    events: Arc<EventRouter>,
) {
    use flowguard_protocol::{encode, methods};
    use flowguard_upstream::{StateKind, UpstreamEvents};
    let mut rx = server.watch_state();
    while rx.changed().await.is_ok() {
        let kind = rx.borrow_and_update().kind;
        match kind {
            StateKind::Stopped => return,
            StateKind::Ready => {}
            _ => continue,
        }
        let Some(gw) = gw.upgrade() else { return };
        let Some(idx) = gw.catalog.index_of(server.id()) else {
            return;
        };
        if !gw.catalog.take_missed(idx) {
            continue;
        }
        let offers = server
            .init_result()
            .and_then(|r| r.get("capabilities").cloned());
        for (cap, method) in [
            ("tools", methods::TOOLS_LIST_CHANGED),
            ("prompts", methods::PROMPTS_LIST_CHANGED),
            ("resources", methods::RESOURCES_LIST_CHANGED),
        ] {
            if offers.as_ref().is_some_and(|c| c.get(cap).is_some()) {
                let msg = encode::notification(method, None);
                events.server_notification(&server, method, None, &msg, None);
            }
        }
    }
}

/// A scanner for the `response_patterns` of the policy files (mcpgw's), when any has them. Each
/// file's patterns are its own; several files' are joined (every file must allow).
fn policy_patterns(setup: &flowguard_guard::setup::Setup) -> Option<Arc<crate::scan::Scanner>> {
    let with: Vec<_> = setup
        .rule_sets
        .iter()
        .filter(|r| !r.response_patterns.is_empty())
        .collect();
    let first = with.first()?;
    let patterns: Vec<String> = with
        .iter()
        .flat_map(|r| r.response_patterns.iter().map(|p| p.as_str().to_string()))
        .collect();
    let audit = with
        .iter()
        .all(|r| r.mode == flowguard_guard::Enforcement::Audit);
    let source = if with.len() == 1 {
        first.source.to_string()
    } else {
        "policy".to_string()
    };
    match crate::scan::Scanner::patterns_only(&source, &patterns, audit) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::error!("policy response_patterns: {e}");
            None
        }
    }
}
