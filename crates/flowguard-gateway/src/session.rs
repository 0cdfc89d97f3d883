//! Client sessions: who the client is, what it negotiated, where server-initiated messages for
//! it go. Sessions live behind [`SessionStore`] so that a shared or self-contained store can
//! replace the in-memory one without touching the router (ROADMAP J1).

use crate::replay::{Replay, GET_STREAM};
use bytes::Bytes;
use flowguard_config::Secret;
use flowguard_upstream::SessionKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;
use tokio::sync::mpsc;

/// Which endpoint a session belongs to: the unified `/mcp`, one server's `/mcp/{id}`, or a
/// virtual server's `/mcp/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Unified,
    Routed(Arc<str>),
    Virtual(Arc<VirtualEndpoint>),
}

impl Scope {
    /// Whether messages of `server` concern this session's endpoint.
    pub fn includes(&self, server: &str) -> bool {
        match self {
            Scope::Unified => true,
            Scope::Routed(id) => &**id == server,
            Scope::Virtual(v) => v.servers.iter().any(|s| &**s == server),
        }
    }
}

/// A virtual server's endpoint: its name and the servers its tools come from. Which tools, and
/// under which names, is the catalog's business; a session needs only to know whom it reaches.
#[derive(Debug)]
pub struct VirtualEndpoint {
    pub name: Arc<str>,
    /// Ids of the servers with a tool in it, each once.
    pub servers: Vec<Arc<str>>,
}

impl VirtualEndpoint {
    pub fn new(config: &flowguard_config::VirtualServer) -> Self {
        let mut servers: Vec<Arc<str>> = Vec::new();
        for t in &config.tools {
            if !servers.iter().any(|s| **s == *t.server) {
                servers.push(Arc::from(t.server.as_str()));
            }
        }
        VirtualEndpoint {
            name: Arc::from(config.name.as_str()),
            servers,
        }
    }
}

// Names are unique among endpoints, so a virtual endpoint is its name.
impl PartialEq for VirtualEndpoint {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for VirtualEndpoint {}

impl std::hash::Hash for VirtualEndpoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

/// What the client said in `initialize`.
#[derive(Debug, Clone, Default)]
pub struct ClientHello {
    pub protocol_version: String,
    pub capabilities: serde_json::Value,
    pub client_info: serde_json::Value,
}

impl ClientHello {
    /// The client's `initialize` params, with the revision the gateway negotiated.
    pub fn from_initialize(params: &serde_json::Value, version: &str) -> Self {
        ClientHello {
            protocol_version: version.to_string(),
            capabilities: params.get("capabilities").cloned().unwrap_or_default(),
            client_info: params.get("clientInfo").cloned().unwrap_or_default(),
        }
    }

    /// Whether the client declared the capability a server-to-client request needs.
    pub fn supports(&self, method: &str) -> bool {
        let cap = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => return true,
        };
        self.capabilities.get(cap).is_some_and(|c| !c.is_null())
    }
}

/// A message of the GET stream with its sequence number there (its event id is `0.<seq>`).
pub type Sequenced = (u64, Bytes);

pub struct Session {
    pub id: SessionKey,
    pub scope: Scope,
    /// The agent identity the client presented (authentication comes later: ROADMAP E1–E3).
    pub agent: Option<String>,
    /// What the client said in `initialize`; on the old HTTP+SSE transport the session exists
    /// (from `GET /sse`) before that, so it is set once, later.
    hello: OnceLock<ClientHello>,
    pub created: Instant,
    last_seen_ms: AtomicU64,
    /// The standalone GET stream, when the client opened one.
    get_stream: Mutex<Option<mpsc::UnboundedSender<Sequenced>>>,
    /// The last events of this session's streams, for clients that reconnect.
    pub replay: Replay,
    /// Resource URIs the client subscribed to, with the server that holds each subscription
    /// (told to unsubscribe when the session ends and no other session wants the URI).
    pub subscriptions: Mutex<HashMap<String, flowguard_upstream::Upstream>>,
    /// Variables from the `ENV_<NAME>` headers of the request that created the session, for
    /// its per-session instances (`isolated.rs` keeps only the names each server allows).
    header_env: OnceLock<Vec<(String, Secret<String>)>>,
    /// A 2026-07-28 request's or `subscriptions/listen` stream's own short-lived session: never
    /// named to the client, kept in `Gateway::stateless`, gone when its request ends.
    pub stateless: bool,
    /// HTTP headers of the client's request to pass on to a remote server (`Mcp-Param-*` of a
    /// 2026-07-28 request); empty for handshake sessions.
    pub forward_headers: Vec<(String, String)>,
    /// Made for a `tools/call` sent without `initialize`: it lives `auto_session_idle_timeout`
    /// and is the first to go when the gateway holds `max_sessions`.
    pub auto: std::sync::atomic::AtomicBool,
    /// Who made the session: only the same principal may use it (others get 404).
    principal: OnceLock<Arc<flowguard_guard::Principal>>,
    /// `tools/call` requests made in this session (for `limits.calls_per_session`).
    pub calls: AtomicU64,
    /// The session as the audit names it (a hash of its id), made on first use.
    pub audit_id: OnceLock<String>,
}

impl Session {
    pub fn new(
        id: SessionKey,
        scope: Scope,
        agent: Option<String>,
        hello: Option<ClientHello>,
    ) -> Self {
        Session {
            id,
            scope,
            agent,
            hello: hello.map(OnceLock::from).unwrap_or_default(),
            created: Instant::now(),
            last_seen_ms: AtomicU64::new(0),
            get_stream: Mutex::new(None),
            replay: Replay::default(),
            subscriptions: Mutex::new(HashMap::new()),
            header_env: OnceLock::new(),
            stateless: false,
            forward_headers: Vec::new(),
            auto: std::sync::atomic::AtomicBool::new(false),
            principal: OnceLock::new(),
            calls: AtomicU64::new(0),
            audit_id: OnceLock::new(),
        }
    }

    /// Records who made the session (the first call counts).
    pub fn set_principal(&self, p: Arc<flowguard_guard::Principal>) {
        let _ = self.principal.set(p);
    }

    /// Who made the session; anonymous when nobody was recorded.
    pub fn principal(&self) -> Arc<flowguard_guard::Principal> {
        static NONE: OnceLock<Arc<flowguard_guard::Principal>> = OnceLock::new();
        self.principal
            .get()
            .unwrap_or_else(|| {
                NONE.get_or_init(|| Arc::new(flowguard_guard::Principal::anonymous()))
            })
            .clone()
    }

    /// Whether `who` may use this session: the principal that made it, and no other.
    pub fn owned_by(&self, who: &flowguard_guard::Principal) -> bool {
        let mine = self.principal();
        mine.method == who.method && mine.subject == who.subject
    }

    pub fn is_auto(&self) -> bool {
        self.auto.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The session of one 2026-07-28 request (or listen stream), which has no handshake: the
    /// client's capabilities come with the request's `_meta`.
    pub fn stateless(
        scope: Scope,
        agent: Option<String>,
        hello: ClientHello,
        forward_headers: Vec<(String, String)>,
    ) -> Self {
        Session {
            stateless: true,
            forward_headers,
            ..Session::new(new_session_id(), scope, agent, Some(hello))
        }
    }

    /// Records the variables from the session's `ENV_*` headers (the first call counts).
    pub fn set_header_env(&self, env: Vec<(String, Secret<String>)>) {
        let _ = self.header_env.set(env);
    }

    pub fn header_env(&self) -> &[(String, Secret<String>)] {
        self.header_env.get().map_or(&[], Vec::as_slice)
    }

    /// The client's `initialize`, or an empty one (no capabilities) before it arrived.
    pub fn hello(&self) -> &ClientHello {
        static NONE: OnceLock<ClientHello> = OnceLock::new();
        self.hello
            .get()
            .unwrap_or_else(|| NONE.get_or_init(ClientHello::default))
    }

    /// Records the client's `initialize` (the first one counts).
    pub fn set_hello(&self, hello: ClientHello) {
        let _ = self.hello.set(hello);
    }

    pub fn touch(&self) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_seen_ms.store(ms, Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// Opens (or replaces) the GET stream and returns its receiving end: each message with
    /// its sequence number on the stream (its event id is `0.<seq>`).
    pub fn open_stream(&self) -> mpsc::UnboundedReceiver<Sequenced> {
        self.resume_stream(u64::MAX).1
    }

    /// Reopens the GET stream after a broken connection: the messages sent on it after event
    /// `after` (as far as they are kept), and the receiving end for what follows. Both under
    /// one lock, so nothing falls between them.
    pub fn resume_stream(
        &self,
        after: u64,
    ) -> (Vec<Sequenced>, mpsc::UnboundedReceiver<Sequenced>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut guard = self.get_stream.lock().unwrap_or_else(|e| e.into_inner());
        let missed = match after {
            u64::MAX => vec![],
            n => self
                .replay
                .catch_up(GET_STREAM, n)
                .map(|c| c.events)
                .unwrap_or_default(),
        };
        *guard = Some(tx);
        (missed, rx)
    }

    pub fn has_stream(&self) -> bool {
        self.get_stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|s| !s.is_closed())
    }

    /// Sends a message on the GET stream (and keeps it for a reconnecting client); false when
    /// there is no stream to send on.
    pub fn push(&self, msg: Bytes) -> bool {
        let guard = self.get_stream.lock().unwrap_or_else(|e| e.into_inner());
        // Kept even when the stream's connection just broke: the client may reconnect with
        // `Last-Event-ID` and get it then.
        let Some(tx) = guard.as_ref() else {
            return false;
        };
        let seq = self.replay.record(GET_STREAM, &msg, false);
        tx.send((seq, msg)).is_ok()
    }

    pub fn close_stream(&self) {
        self.get_stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

/// Where sessions are kept. In memory today; the id format leaves room for self-contained
/// encrypted ids that any replica can open.
pub trait SessionStore: Send + Sync {
    fn insert(&self, session: Arc<Session>);
    fn get(&self, id: &str) -> Option<Arc<Session>>;
    fn remove(&self, id: &str) -> Option<Arc<Session>>;
    fn all(&self) -> Vec<Arc<Session>>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Default)]
pub struct MemorySessions {
    map: RwLock<HashMap<SessionKey, Arc<Session>>>,
}

impl SessionStore for MemorySessions {
    fn insert(&self, session: Arc<Session>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone(), session);
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
    }

    fn all(&self) -> Vec<Arc<Session>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A new session id: 128 random bits as 32 hex digits (visible ASCII, as the spec requires).
pub fn new_session_id() -> SessionKey {
    Arc::from(flowguard_upstream::random_hex(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn capabilities_gate_server_requests() {
        let hello = ClientHello {
            capabilities: serde_json::json!({"sampling": {}}),
            ..Default::default()
        };
        assert!(hello.supports("sampling/createMessage"));
        assert!(!hello.supports("elicitation/create"));
        assert!(hello.supports("ping"));
    }
}
