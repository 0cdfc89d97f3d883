//! [`Gateway`]: the configured servers, the sessions, and the table of server-to-client
//! requests waiting for a client's answer. Built once from the validated config.

use crate::catalog::{Catalog, ScopeKey};
use crate::downstream::guard::HostGuard;
use crate::downstream::modern::ParkedCalls;
use crate::events::EventRouter;
use crate::lifecycle::Lifecycle;
use crate::session::{MemorySessions, Scope, Session, SessionStore};
use flowguard_config::{Config, GatewaySettings, Mode};
use flowguard_protocol::RawId;
use flowguard_upstream::{Upstream, UpstreamSettings};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

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
        let catalog = Catalog::new(servers, s.tool_prefix, s.separator.clone());
        Arc::new(Gateway {
            settings: config.gateway.clone(),
            mode,
            catalog,
            sessions: Box::new(MemorySessions::default()),
            stateless: MemorySessions::default(),
            parked: ParkedCalls::default(),
            lifecycle: Lifecycle::default(),
            started: Instant::now(),
            outstanding: Mutex::new(HashMap::new()),
            next_outgoing: AtomicU64::new(1),
            host_guard: OnceLock::new(),
        })
    }

    pub fn servers(&self) -> &[Upstream] {
        self.catalog.servers()
    }

    pub fn server(&self, id: &str) -> Option<&Upstream> {
        self.servers().iter().find(|s| s.id() == id)
    }

    /// Starts every server's supervisor.
    pub fn start(self: &Arc<Self>) {
        let events = Arc::new(EventRouter::new(Arc::downgrade(self)));
        for s in self.servers() {
            s.start(events.clone());
        }
    }

    /// Stops every server, in parallel.
    pub async fn stop_servers(&self) {
        futures_util::future::join_all(self.servers().iter().map(|s| s.shutdown())).await;
    }

    pub(crate) fn scope_key(&self, scope: &Scope) -> ScopeKey {
        match scope {
            Scope::Unified => None,
            Scope::Routed(id) => self.catalog.index_of(id),
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
        for s in self.servers_in(&session.scope) {
            s.forget_session(&session.id);
        }
        self.lock_outstanding()
            .retain(|_, o| o.session != session.id);
        session.close_stream();
    }

    /// Ends every server-to-client stream (GET streams, `subscriptions/listen` streams): at
    /// shutdown, after the drain, so that no client holds the exit.
    pub fn close_streams(&self) {
        for s in self.sessions.all().into_iter().chain(self.stateless.all()) {
            s.close_stream();
        }
    }

    /// Removes sessions idle for longer than the configured timeout.
    pub fn expire_idle_sessions(&self) -> usize {
        let limit = self.settings.session_idle_timeout;
        let idle: Vec<_> = self
            .sessions
            .all()
            .into_iter()
            .filter(|s| s.idle_for() > limit)
            .collect();
        for s in &idle {
            self.end_session(s);
        }
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

    /// The gateway id of a server's request, found by server and the server's own id.
    pub(crate) fn find_outstanding(
        &self,
        server: &str,
        server_id: &str,
    ) -> Option<(u64, Arc<str>)> {
        self.lock_outstanding()
            .iter()
            .find(|(_, o)| o.upstream.id() == server && o.server_id.get() == server_id)
            .map(|(id, o)| (*id, o.session.clone()))
    }

    fn lock_outstanding(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Outstanding>> {
        self.outstanding.lock().unwrap_or_else(|e| e.into_inner())
    }
}
