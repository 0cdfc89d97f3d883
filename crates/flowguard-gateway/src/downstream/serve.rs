//! The HTTP server loop. Connections are served by hyper directly; `POST /mcp` and
//! `POST /mcp/{server}` (every tool call's path) go straight to their handlers, and everything
//! else through the axum router of `http::app`. The router's dispatch and extractors cost about
//! an eighth of a forwarded request's instructions (docs/benchmarks.md), which matters on the
//! path every message takes and nowhere else.

use super::http::{post_routed_parts, post_unified_parts};
use crate::error::Rejection;
use crate::gateway::Gateway;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The largest POST body accepted (the same as axum's default limit).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Serves `listener` until `shutdown` completes, then lets open connections finish their
/// current exchange (at most `linger`) and returns.
pub async fn serve(
    listener: TcpListener,
    gw: Arc<Gateway>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    linger: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new());
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
        let (gw, router) = (gw.clone(), router.clone());
        let service = hyper::service::service_fn(move |req| {
            let (gw, router) = (gw.clone(), router.clone());
            async move { Ok::<_, Infallible>(dispatch(gw, router, req).await) }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(linger, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period; closing them");
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
        let Some(target) = endpoint(parts.uri.path()) else {
            let req = Request::from_parts(parts, Body::new(body));
            return router.oneshot(req).await.unwrap_or_else(|e| match e {});
        };
        let body = match read_body(body).await {
            Ok(b) => b,
            Err(r) => return r,
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

async fn read_body(body: Incoming) -> Result<Bytes, Response> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Rejection::TooLarge(MAX_BODY_BYTES).into_response())
        }
        Err(e) => Err(Rejection::Invalid(format!("reading the request body: {e}")).into_response()),
    }
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
