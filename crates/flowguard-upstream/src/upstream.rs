//! [`Upstream`]: one MCP server as the gateway sees it. It keeps the connection (a child process
//! or a remote HTTP session), initializes it once and caches the result, rewrites ids, routes
//! replies back to the request that is waiting, and restarts a dead server with backoff.

use crate::link::Link;
use crate::pending::{Pending, PendingRequests, RawReply};
use crate::stderr_ring::StderrRing;
use crate::{retry, ClientCall, Forwarded, Frame, SessionKey, UpstreamError, UpstreamEvents};
use flowguard_config::{ContainerRuntime, Secret, ServerConfig};
use flowguard_protocol::{encode, methods, versions};
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// Gateway-wide settings every upstream needs.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub request_timeout: Duration,
    pub startup_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_line_bytes: usize,
    pub stderr_lines: usize,
    pub container_runtime: Option<ContainerRuntime>,
    /// Marks children and containers as this gateway's, so a later start can find orphans.
    pub owner_tag: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Starting,
    Ready,
    Failed,
    Stopped,
}

impl StateKind {
    /// The state as `/health` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Ready => "running",
            StateKind::Starting => "starting",
            StateKind::Failed => "error",
            StateKind::Stopped => "stopped",
        }
    }
}

/// Where a server is in its life, for `/health` and start-up output.
#[derive(Debug, Clone)]
pub struct ServerState {
    pub kind: StateKind,
    pub since: Instant,
    /// Why it failed, with the last lines of its stderr.
    pub detail: Option<String>,
    /// Failed attempts in a row; requests wait through one restart, not through a crash loop.
    pub failures: u32,
    pub restarts: u32,
}

/// A cheap handle; clones share one server.
#[derive(Clone)]
pub struct Upstream {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) id: Arc<str>,
    pub(crate) config: ServerConfig,
    /// The client session this instance belongs to (`isolation = "session"`), else `None`.
    pub(crate) session: Option<SessionKey>,
    /// Variables that session set from its `ENV_*` headers; added to the child's environment.
    pub(crate) session_env: Vec<(String, Secret<String>)>,
    pub(crate) settings: UpstreamSettings,
    pub(crate) events: OnceLock<Arc<dyn UpstreamEvents>>,
    pub(crate) pending: PendingRequests,
    next_id: AtomicU64,
    pub(crate) link: RwLock<Option<Link>>,
    pub(crate) state: watch::Sender<ServerState>,
    init: RwLock<Option<Initialized>>,
    pub(crate) stderr: Mutex<StderrRing>,
    pub(crate) shutdown: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The server's `InitializeResult`, with its `protocolVersion` taken out once for the header
/// every remote request carries; one value, so the two never disagree.
struct Initialized {
    result: Arc<serde_json::Value>,
    version: Option<Arc<str>>,
}

/// How many stderr lines a failure message quotes.
const STDERR_TAIL: usize = 10;

impl Upstream {
    pub fn new(config: ServerConfig, settings: UpstreamSettings) -> Self {
        Self::build(config, settings, None, Vec::new())
    }

    /// An instance of an isolated server for one client session, with the variables that
    /// session set. Messages it cannot answer carry the session (see [`Upstream::session`]).
    pub fn for_session(
        config: ServerConfig,
        settings: UpstreamSettings,
        session: SessionKey,
        env: Vec<(String, Secret<String>)>,
    ) -> Self {
        Self::build(config, settings, Some(session), env)
    }

    fn build(
        config: ServerConfig,
        settings: UpstreamSettings,
        session: Option<SessionKey>,
        session_env: Vec<(String, Secret<String>)>,
    ) -> Self {
        let now = Instant::now();
        let state = ServerState {
            kind: StateKind::Starting,
            since: now,
            detail: None,
            failures: 0,
            restarts: 0,
        };
        let stderr = StderrRing::new(settings.stderr_lines);
        Upstream {
            inner: Arc::new(Inner {
                id: Arc::from(config.id.as_str()),
                config,
                session,
                session_env,
                settings,
                events: OnceLock::new(),
                pending: PendingRequests::default(),
                next_id: AtomicU64::new(1),
                link: RwLock::new(None),
                state: watch::Sender::new(state),
                init: RwLock::new(None),
                stderr: Mutex::new(stderr),
                shutdown: watch::Sender::new(false),
                task: Mutex::new(None),
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The id as a shared string, for keys that outlive a borrow (no copy per request).
    pub fn shared_id(&self) -> Arc<str> {
        self.inner.id.clone()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The client session this instance serves alone, for an isolated server.
    pub fn session(&self) -> Option<&SessionKey> {
        self.inner.session.as_ref()
    }

    /// Whether two handles are the same instance.
    pub fn same(&self, other: &Upstream) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Starts the supervisor: connect, initialize, and restart on failure until shutdown.
    pub fn start(&self, events: Arc<dyn UpstreamEvents>) {
        let _ = self.inner.events.set(events);
        let task = tokio::spawn(crate::supervisor::supervise(self.inner.clone()));
        *self.inner.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Stops the server (stdin closed, then SIGTERM, then SIGKILL) and waits for it.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    pub fn state(&self) -> ServerState {
        self.inner.state.borrow().clone()
    }

    pub fn watch_state(&self) -> watch::Receiver<ServerState> {
        self.inner.state.subscribe()
    }

    /// The server's cached `InitializeResult`, once it has been initialized.
    pub fn init_result(&self) -> Option<Arc<serde_json::Value>> {
        let init = self.inner.init.read().unwrap_or_else(|e| e.into_inner());
        init.as_ref().map(|i| i.result.clone())
    }

    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        self.inner
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tail(n)
    }

    /// Waits until the server is ready (through at most one restart), bounded by the request
    /// timeout.
    pub async fn ready(&self) -> Result<(), UpstreamError> {
        self.ready_link().await.map(|_| ())
    }

    /// Forwards a client request; the reply (and related notifications) go to `call.sink`.
    /// Returns the upstream-side id, for [`Upstream::abandon`].
    pub async fn forward(&self, call: ClientCall<'_>) -> Result<Forwarded, UpstreamError> {
        let link = self.ready_link().await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (params, progress_token) = swap_progress_token(call.params, id);
        let params = params.as_deref().or(call.params);
        self.inner.pending.insert(
            id,
            Pending::Client {
                client_id: call.client_id,
                session: call.session,
                sink: call.sink,
                progress_token,
            },
        );
        let msg = encode::request(&id.to_string(), call.method, params);
        let driver = link.send_request(msg, id, retry::idempotent(call.method), call.headers);
        Ok(Forwarded { id, driver })
    }

    /// The gateway's own request (aggregation, subscriptions): waits for the raw reply.
    pub async fn request(
        &self,
        method: &str,
        params: Option<&RawValue>,
    ) -> Result<RawReply, UpstreamError> {
        let link = self.ready_link().await?;
        self.inner
            .request_on(&link, method, params, self.request_timeout())
            .await
    }

    /// Sends a notification to the server (cancellations, roots/list_changed, ...).
    pub fn notify(&self, method: &str, params: Option<&RawValue>) {
        if let Some(link) = self.inner.current_link() {
            link.send(encode::notification(method, params), None, false);
        }
    }

    /// Answers a request the server sent (sampling, elicitation, roots), with its own id.
    pub fn respond(
        &self,
        server_id: &RawValue,
        result: Option<&RawValue>,
        error: Option<&RawValue>,
    ) {
        if let Some(link) = self.inner.current_link() {
            link.send(
                encode::response(server_id.get(), result, error),
                None,
                false,
            );
        }
    }

    /// Gives up on a request (timeout, client gone): forgets it and tells the server.
    pub fn abandon(&self, upstream_id: u64, reason: &str) {
        if self.inner.pending.remove(upstream_id).is_some() {
            self.inner.send_cancel(upstream_id, reason);
        }
    }

    /// A client cancelled one of its requests: find it by the client's id and cancel it here.
    pub fn cancel_client_request(&self, session: &str, client_id: &str, reason: Option<&str>) {
        if let Some(id) = self.inner.pending.find_client(session, client_id) {
            self.inner.pending.remove(id);
            self.inner
                .send_cancel(id, reason.unwrap_or("cancelled by the client"));
        }
    }

    /// A client session ended: cancel whatever it still had in flight here.
    pub fn forget_session(&self, session: &str) {
        for id in self.inner.pending.drain_session(session) {
            self.inner.send_cancel(id, "the client session ended");
        }
    }

    pub fn request_timeout(&self) -> Duration {
        self.inner
            .config
            .request_timeout
            .unwrap_or(self.inner.settings.request_timeout)
    }

    /// Whether a request of this client session is waiting for this server.
    pub fn has_pending_for(&self, session: &str) -> bool {
        self.inner.pending.any_for(session)
    }

    pub fn pending_count(&self) -> usize {
        self.inner.pending.len()
    }

    async fn ready_link(&self) -> Result<Link, UpstreamError> {
        // The common case, a running server, costs one read lock and no watch subscription.
        if self.inner.state.borrow().kind == StateKind::Ready {
            if let Some(link) = self.inner.current_link() {
                return Ok(link);
            }
        }
        let mut rx = self.inner.state.subscribe();
        let deadline = tokio::time::Instant::now() + self.request_timeout();
        loop {
            {
                let s = rx.borrow_and_update();
                match s.kind {
                    StateKind::Ready => {
                        if let Some(link) = self.inner.current_link() {
                            return Ok(link);
                        }
                    }
                    StateKind::Stopped => return Err(self.inner.err_shutting_down()),
                    // A crash loop (failed twice or more in a row, now failed or trying
                    // again) fails calls at once instead of making each wait for it.
                    StateKind::Failed | StateKind::Starting if s.failures > 1 => {
                        return Err(UpstreamError::Unavailable {
                            server: self.inner.id.to_string(),
                            reason: s.detail.clone().unwrap_or_default(),
                        })
                    }
                    _ => {}
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(self.inner.err_shutting_down()),
                Err(_) => {
                    return Err(UpstreamError::Unavailable {
                        server: self.inner.id.to_string(),
                        reason: "it did not become ready in time".into(),
                    })
                }
            }
        }
    }
}

/// Replaces `_meta.progressToken` with the upstream id, so that tokens of different clients
/// cannot collide on a shared server. Returns the new params and the client's own token.
fn swap_progress_token(
    params: Option<&RawValue>,
    id: u64,
) -> (Option<Box<RawValue>>, Option<Box<RawValue>>) {
    let Some(p) = params.filter(|p| p.get().contains("\"progressToken\"")) else {
        return (None, None);
    };
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(p.get()) else {
        return (None, None);
    };
    let Some(slot) = v.pointer_mut("/_meta/progressToken") else {
        return (None, None);
    };
    let original = std::mem::replace(slot, id.into());
    let original = serde_json::value::to_raw_value(&original).ok();
    (serde_json::value::to_raw_value(&v).ok(), original)
}

impl Inner {
    pub(crate) fn current_link(&self) -> Option<Link> {
        self.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_link(&self, link: Option<Link>) {
        *self.link.write().unwrap_or_else(|e| e.into_inner()) = link;
    }

    fn err_shutting_down(&self) -> UpstreamError {
        UpstreamError::ShuttingDown {
            server: self.id.to_string(),
        }
    }

    fn send_cancel(&self, id: u64, reason: &str) {
        let params = serde_json::json!({ "requestId": id, "reason": reason });
        let raw = serde_json::value::to_raw_value(&params).expect("a Value serializes");
        if let Some(link) = self.current_link() {
            link.send(
                encode::notification(methods::CANCELLED, Some(&raw)),
                None,
                false,
            );
        }
    }

    pub(crate) async fn request_on(
        &self,
        link: &Link,
        method: &str,
        params: Option<&RawValue>,
        timeout: Duration,
    ) -> Result<RawReply, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.insert(id, Pending::Internal(tx));
        link.send(
            encode::request(&id.to_string(), method, params),
            Some(id),
            retry::idempotent(method),
        );
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(UpstreamError::Closed {
                server: self.id.to_string(),
                reason: "the connection was lost".into(),
            }),
            Err(_) => {
                self.pending.remove(id);
                self.send_cancel(id, "timed out");
                Err(UpstreamError::Timeout {
                    server: self.id.to_string(),
                    secs: timeout.as_secs(),
                })
            }
        }
    }

    /// The gateway's `initialize` toward the server: it announces the client capabilities the
    /// gateway can forward (sampling, elicitation, roots), so servers that register tools only
    /// for capable clients show them all.
    pub(crate) async fn initialize(&self, link: &Link) -> Result<(), String> {
        let params = serde_json::json!({
            "protocolVersion": versions::LATEST,
            "capabilities": { "sampling": {}, "elicitation": {}, "roots": { "listChanged": true } },
            "clientInfo": { "name": "flowguard", "version": env!("CARGO_PKG_VERSION") },
        });
        let raw = serde_json::value::to_raw_value(&params).expect("a Value serializes");
        let reply = self
            .request_on(
                link,
                methods::INITIALIZE,
                Some(&raw),
                self.settings.startup_timeout,
            )
            .await
            .map_err(|e| e.to_string())?;
        let result = reply.map_err(|e| format!("initialize was refused: {}", e.get()))?;
        let value: serde_json::Value = serde_json::from_str(result.get())
            .map_err(|e| format!("initialize result is not JSON: {e}"))?;
        if !value.is_object() {
            return Err(format!(
                "initialize result is not an object: {}",
                result.get()
            ));
        }
        let version = value
            .get("protocolVersion")
            .and_then(serde_json::Value::as_str)
            .map(Arc::from);
        *self.init.write().unwrap_or_else(|e| e.into_inner()) = Some(Initialized {
            result: Arc::new(value),
            version,
        });
        link.send(
            encode::notification(methods::INITIALIZED, None),
            None,
            false,
        );
        Ok(())
    }

    pub(crate) fn negotiated_version(&self) -> Option<Arc<str>> {
        let init = self.init.read().unwrap_or_else(|e| e.into_inner());
        init.as_ref()?.version.clone()
    }

    pub(crate) fn set_state(&self, kind: StateKind, detail: Option<String>) {
        self.state.send_modify(|s| {
            if kind == StateKind::Failed {
                s.failures += 1;
            } else if kind == StateKind::Ready {
                s.failures = 0;
            }
            if kind == StateKind::Starting && s.kind == StateKind::Failed {
                s.restarts += 1;
            }
            // A server starting again after failures keeps saying why it failed last.
            let keep = kind == StateKind::Starting && s.failures > 0 && detail.is_none();
            s.kind = kind;
            if !keep {
                s.detail = detail;
            }
            s.since = Instant::now();
        });
    }

    /// Fails every pending request at once: the connection they were waiting on is gone.
    pub(crate) fn fail_all_pending(&self, reason: &str) {
        for (_, p) in self.pending.drain() {
            if let Pending::Client {
                client_id, sink, ..
            } = p
            {
                let err = UpstreamError::Closed {
                    server: self.id.to_string(),
                    reason: reason.into(),
                };
                let bytes = encode::error(Some(client_id.get()), err.code(), &err.to_string());
                let _ = sink.send(Frame::Final(bytes.into()));
            }
        }
    }

    /// A message to a remote server could not be delivered: logs why and fails its request
    /// (`id`), if it was one.
    pub(crate) fn undelivered(&self, id: Option<u64>, reason: String) {
        tracing::warn!(server = %self.id, "{reason}");
        if let Some(id) = id {
            let server = self.id.to_string();
            self.fail_pending(id, UpstreamError::Unavailable { server, reason });
        }
    }

    /// Fails one pending request (an HTTP send that could not be delivered, an oversized reply).
    pub(crate) fn fail_pending(&self, id: u64, err: UpstreamError) {
        match self.pending.remove(id) {
            Some(Pending::Client {
                client_id, sink, ..
            }) => {
                let bytes = encode::error(Some(client_id.get()), err.code(), &err.to_string());
                let _ = sink.send(Frame::Final(bytes.into()));
            }
            Some(Pending::Internal(tx)) => {
                let _ = tx.send(Err(err));
            }
            None => {}
        }
    }

    pub(crate) fn failure_detail(&self, reason: &str) -> String {
        let tail = self
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tail(STDERR_TAIL);
        if tail.is_empty() {
            reason.to_string()
        } else {
            format!("{reason}; last stderr lines:\n    {}", tail.join("\n    "))
        }
    }
}
