//! Per-session instances of servers configured with `isolation = "session"`: one `Upstream` per
//! (client session, server), started on the session's first need of it, stopped when the
//! session ends or (with the server's `idle_timeout`) when unused that long, and capped per
//! server by `max_sessions_per_server` so that sessions opened in a loop cannot fork-bomb the
//! host. The configured server itself (in the catalog) is only a template and never starts.

use crate::session::Session;
use flowguard_config::Secret;
use flowguard_upstream::{SessionKey, Upstream, UpstreamEvents, UpstreamSettings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct Instance {
    upstream: Upstream,
    last_used: Instant,
}

/// Why a session could not get its own instance.
#[derive(Debug, Clone)]
pub(crate) struct CapReached {
    pub server: String,
    pub limit: usize,
}

impl std::fmt::Display for CapReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server '{}' already runs {} per-session instances (max_sessions_per_server); \
             end an idle session (DELETE) or raise the limit",
            self.server, self.limit
        )
    }
}

pub(crate) struct Instances {
    map: Mutex<HashMap<(SessionKey, usize), Instance>>,
    settings: UpstreamSettings,
    limit: usize,
}

impl Instances {
    pub(crate) fn new(settings: UpstreamSettings, limit: usize) -> Self {
        Instances {
            map: Mutex::new(HashMap::new()),
            settings,
            limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SessionKey, usize), Instance>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session's instance of the server `template` (index `idx`), started if it has none.
    pub(crate) fn get_or_start(
        &self,
        session: &Session,
        idx: usize,
        template: &Upstream,
        events: Option<Arc<dyn UpstreamEvents>>,
    ) -> Result<Upstream, CapReached> {
        let upstream = {
            let mut map = self.lock();
            let key = (session.id.clone(), idx);
            if let Some(i) = map.get_mut(&key) {
                i.last_used = Instant::now();
                return Ok(i.upstream.clone());
            }
            let running = map.keys().filter(|(_, i)| *i == idx).count();
            if running >= self.limit {
                return Err(CapReached {
                    server: template.id().to_string(),
                    limit: self.limit,
                });
            }
            let env = session_env(session, template);
            let upstream = Upstream::for_session(
                template.config().clone(),
                self.settings.clone(),
                session.id.clone(),
                env,
            );
            map.insert(
                key,
                Instance {
                    upstream: upstream.clone(),
                    last_used: Instant::now(),
                },
            );
            upstream
        };
        tracing::info!(server = template.id(), session = %session.id, "starting a per-session instance");
        if let Some(events) = events {
            upstream.start(events);
        }
        Ok(upstream)
    }

    /// The session's instance of server `idx`, if it has one running.
    pub(crate) fn existing(&self, session: &str, idx: usize) -> Option<Upstream> {
        self.lock()
            .get(&(Arc::from(session), idx))
            .map(|i| i.upstream.clone())
    }

    /// Takes every instance of a session out (the caller stops them).
    pub(crate) fn remove_session(&self, session: &str) -> Vec<Upstream> {
        let mut map = self.lock();
        let keys: Vec<_> = map
            .keys()
            .filter(|(s, _)| &**s == session)
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|k| map.remove(k))
            .map(|i| i.upstream)
            .collect()
    }

    /// Takes out the instances unused for longer than their server's `idle_timeout` and with
    /// nothing in flight (the caller stops them).
    pub(crate) fn remove_idle(&self) -> Vec<Upstream> {
        let mut map = self.lock();
        let idle: Vec<_> = map
            .iter()
            .filter(|(_, i)| {
                let limit = i
                    .upstream
                    .config()
                    .isolation
                    .session()
                    .and_then(|s| s.idle_timeout);
                limit.is_some_and(|l| i.last_used.elapsed() > l) && i.upstream.pending_count() == 0
            })
            .map(|(k, _)| k.clone())
            .collect();
        idle.iter()
            .filter_map(|k| map.remove(k))
            .map(|i| i.upstream)
            .collect()
    }

    pub(crate) fn remove_all(&self) -> Vec<Upstream> {
        self.lock().drain().map(|(_, i)| i.upstream).collect()
    }

    pub(crate) fn count(&self, idx: usize) -> usize {
        self.lock().keys().filter(|(_, i)| *i == idx).count()
    }
}

/// The variables the session set (from `ENV_*` headers) that this server allow-lists, named
/// as the allow-list spells them.
fn session_env(session: &Session, template: &Upstream) -> Vec<(String, Secret<String>)> {
    let Some(iso) = template.config().isolation.session() else {
        return Vec::new();
    };
    session
        .header_env()
        .iter()
        .filter_map(|(name, value)| {
            iso.env_from_headers
                .iter()
                .find(|allowed| allowed.eq_ignore_ascii_case(name))
                .map(|allowed| (allowed.clone(), value.clone()))
        })
        .collect()
}
