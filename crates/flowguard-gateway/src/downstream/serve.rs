//! The HTTP server loop, with connections dealt to worker threads (one single-threaded runtime
//! each). Connections are served by hyper directly; `POST /mcp` and
//! `POST /mcp/{server}` (every tool call's path) go straight to their handlers, and everything
//! else through the axum router of `http::app`. The router's dispatch and extractors cost about
//! an eighth of a forwarded request's instructions (docs/benchmarks.md), which matters on the
//! path every message takes and nowhere else.

use super::http::{post_routed_parts, post_unified_parts};
use crate::gateway::Gateway;
use axum::body::Body;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tower::ServiceExt;

pub use super::body::MAX_BODY_BYTES;

/// Serves `listener` until `shutdown` completes, then lets open connections finish their
/// current exchange (at most `linger`) and returns the worker threads, which keep running what
/// their connections started until [`Workers::stop`].
///
/// With `workers` > 1, connections are dealt round-robin to `workers - 1` worker threads, each
/// with a single-threaded runtime of its own, and to this runtime. A connection stays on its
/// thread for its life, so one request's work never crosses threads.
pub async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    linger: Duration,
    workers: usize,
) -> Workers {
    let here = Connections::new(gw.clone(), router.clone());
    let mut shards: Vec<Worker> = Vec::new();
    for i in 1..workers {
        match Worker::start(i, gw.clone(), router.clone(), linger) {
            Ok(w) => shards.push(w),
            Err(e) => {
                tracing::warn!("starting worker thread {i}: {e}; serving with fewer threads");
                break;
            }
        }
    }
    let mut next = 0usize;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Streams send one event per write; without TCP_NODELAY a progress event written while
        // the previous one is unacknowledged could wait for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        next = (next + 1) % (shards.len() + 1);
        match next.checked_sub(1).map(|i| &shards[i]) {
            Some(worker) => {
                if let Some(stream) = worker.hand(stream) {
                    here.serve(stream);
                }
            }
            None => here.serve(stream),
        }
    }
    drop(listener);
    let drained: Vec<_> = shards.iter_mut().filter_map(Worker::close).collect();
    tokio::join!(here.shutdown(linger), async {
        for d in drained {
            let _ = tokio::time::timeout(linger + Duration::from_secs(1), d).await;
        }
    });
    Workers { shards }
}

/// What each serving thread runs every [`HOUSEKEEPING_EVERY`] (set by the binary: giving
/// memory freed after a burst of large messages back to the system).
static HOUSEKEEPING: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(5);

/// The most a connection's read buffer may grow to (hyper's minimum is 8 kB).
const READ_BUFFER_MAX: usize = 64 * 1024;

/// Sets the housekeeping of every serving thread (once, before [`serve`]).
pub fn set_housekeeping(f: fn()) {
    let _ = HOUSEKEEPING.set(f);
}

/// The connections served on one runtime, stopped together.
struct Connections {
    gw: Arc<Gateway>,
    router: Router,
    http: hyper::server::conn::http1::Builder,
    graceful: GracefulShutdown,
}

impl Connections {
    fn new(gw: Arc<Gateway>, router: Router) -> Self {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new());
        // A connection's read buffer grows with what arrives, up to this (hyper's default is
        // about 400 kB): MCP messages are small, and 200 slow uploads must not hold 80 MB.
        http.max_buf_size(READ_BUFFER_MAX);
        if let Some(f) = HOUSEKEEPING.get().copied() {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    f();
                }
            });
        }
        Connections {
            gw,
            router,
            http,
            graceful: GracefulShutdown::new(),
        }
    }

    /// Serves one connection in a task on the current runtime.
    fn serve(&self, stream: TcpStream) {
        let (gw, router) = (self.gw.clone(), self.router.clone());
        let service = hyper::service::service_fn(move |req| {
            let (gw, router) = (gw.clone(), router.clone());
            async move { Ok::<_, Infallible>(dispatch(gw, router, req).await) }
        });
        let conn = self
            .graceful
            .watch(self.http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }

    /// Lets every connection finish its current exchange, for at most `linger`.
    async fn shutdown(self, linger: Duration) {
        if tokio::time::timeout(linger, self.graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the grace period; closing them");
        }
    }
}

/// A worker thread serving the connections it is handed on a runtime of its own.
struct Worker {
    intake: Option<mpsc::UnboundedSender<std::net::TcpStream>>,
    drained: Option<oneshot::Receiver<()>>,
    release: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn start(
        i: usize,
        gw: Arc<Gateway>,
        router: Router,
        linger: Duration,
    ) -> std::io::Result<Self> {
        let (intake, mut streams) = mpsc::unbounded_channel::<std::net::TcpStream>();
        let (drained_tx, drained) = oneshot::channel();
        let (release, released) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("flowguard-worker-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let conns = Connections::new(gw, router);
                    while let Some(stream) = streams.recv().await {
                        match TcpStream::from_std(stream) {
                            Ok(stream) => conns.serve(stream),
                            Err(e) => tracing::warn!("taking over a connection: {e}"),
                        }
                    }
                    conns.shutdown(linger).await;
                    let _ = drained_tx.send(());
                    // Tasks the connections started (a server's restart, a detached call) run
                    // here until the gateway has stopped its servers.
                    let _ = released.await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Worker {
            intake: Some(intake),
            drained: Some(drained),
            release: Some(release),
            thread: Some(thread),
        })
    }

    /// Hands a connection to this worker; gives it back if the worker cannot take it.
    fn hand(&self, stream: TcpStream) -> Option<TcpStream> {
        let std = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("handing over a connection: {e}");
                return None;
            }
        };
        let Some(intake) = &self.intake else {
            return TcpStream::from_std(std).ok();
        };
        match intake.send(std) {
            Ok(()) => None,
            Err(mpsc::error::SendError(std)) => TcpStream::from_std(std).ok(),
        }
    }

    /// Stops handing connections; the receiver completes once the worker's have finished.
    fn close(&mut self) -> Option<oneshot::Receiver<()>> {
        self.intake = None;
        self.drained.take()
    }
}

/// The worker threads of [`serve`], kept until the gateway has stopped its servers.
pub struct Workers {
    shards: Vec<Worker>,
}

impl Workers {
    /// Ends the worker threads and waits for them (about a second at most).
    pub fn stop(mut self) {
        self.end();
    }

    fn end(&mut self) {
        for w in &mut self.shards {
            w.intake = None;
            w.release.take();
        }
        for w in &mut self.shards {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.end();
    }
}

/// Which MCP endpoint a path names, for the POST fast path: `/mcp` or `/mcp/{server}` (with
/// an optional trailing slash). Paths with percent-escapes go through the router, which
/// decodes them.
enum Endpoint<'a> {
    Unified,
    Routed(&'a str),
}

fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    let rest = path.strip_prefix("/mcp")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Endpoint::Unified);
    }
    let server = rest.strip_prefix('/')?;
    let plain = !server.is_empty() && !server.contains(['/', '%']);
    plain.then_some(Endpoint::Routed(server))
}

async fn dispatch(gw: Arc<Gateway>, router: Router, req: Request<Incoming>) -> Response {
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        // Every POST body is read here, bounded in size and in time.
        let max = gw.guard.setup.limits.max_request_bytes;
        let body = match super::body::read(body, gw.settings.body_timeout, max).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(target) = endpoint(parts.uri.path()) else {
            let req = Request::from_parts(parts, Body::from(body));
            return router.oneshot(req).await.unwrap_or_else(|e| match e {});
        };
        return match target {
            Endpoint::Unified => post_unified_parts(gw, parts.headers, body).await,
            Endpoint::Routed(server) => post_routed_parts(gw, server, parts.headers, body).await,
        };
    }
    router
        .oneshot(req.map(Body::new))
        .await
        .unwrap_or_else(|e| match e {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_takes_only_plain_mcp_endpoints() {
        assert!(matches!(endpoint("/mcp"), Some(Endpoint::Unified)));
        assert!(matches!(endpoint("/mcp/"), Some(Endpoint::Unified)));
        assert!(matches!(endpoint("/mcp/fs"), Some(Endpoint::Routed("fs"))));
        assert!(matches!(endpoint("/mcp/fs/"), Some(Endpoint::Routed("fs"))));
        for other in [
            "/mcp/fs/sse",
            "/mcp/fs/messages",
            "/mcpx",
            "/mcp/a%2Fb",
            "/messages",
            "/health",
            "/mcp//",
        ] {
            assert!(endpoint(other).is_none(), "{other}");
        }
    }
}
