//! Turning a routed request into an HTTP reply. The reply waits for the first frame: when it
//! is the final reply the whole answer is sent at once; when the server first sends progress,
//! logging or a request of its own, the reply becomes an SSE stream that carries those and ends
//! with the final reply. A client that reads only JSON gets those related messages on its GET
//! stream instead.

use super::in_flight::{InFlight, Next};
use crate::error::Rejection;
use crate::router::Outcome;
use crate::session::Session;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flowguard_protocol::envelope::EnvelopeError;
use flowguard_protocol::sse;
use flowguard_protocol::Envelope;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the client said it can read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accept {
    pub json: bool,
    pub sse: bool,
}

impl Accept {
    /// A missing header accepts anything; clients are required to list both, but a plain curl
    /// deserves an answer.
    pub(crate) fn parse(value: Option<&str>) -> Self {
        let Some(v) = value else {
            return Accept {
                json: true,
                sse: true,
            };
        };
        let has = |t: &str| {
            v.split(',')
                .any(|p| p.trim().split(';').next().unwrap_or("").trim() == t)
        };
        let any = has("*/*");
        Accept {
            json: any || has("application/json") || has("application/*"),
            sse: any || has("text/event-stream") || has("text/*"),
        }
    }
}

/// The POST body's media type must be JSON.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), Rejection> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_json = content_type
        .trim_start()
        .get(..16)
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(Rejection::ContentType)
    }
}

/// One JSON-RPC message from a POST body.
pub(crate) fn parse_body(body: &[u8]) -> Result<Envelope<'_>, Rejection> {
    Envelope::parse(body).map_err(|e| match e {
        EnvelopeError::Parse(e) => Rejection::Parse(e),
        e => Rejection::Invalid(e.to_string()),
    })
}

/// A complete reply. Clients that accept SSE get it as a one-event stream, as the reference SDK
/// servers do (and as the conformance suite's multiple-streams check looks for); others get JSON.
pub(crate) fn json(bytes: impl Into<Bytes>, accept: Accept) -> Response {
    let bytes = bytes.into();
    if accept.sse {
        return sse_once(bytes);
    }
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn sse_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

/// An SSE response around a stream of already encoded events.
pub(crate) fn sse_response(body: Body) -> Response {
    let mut r = Response::new(body);
    sse_headers(&mut r);
    r
}

fn sse_once(bytes: Bytes) -> Response {
    let mut r = Response::new(Body::from(sse::message_event(None, &bytes)));
    sse_headers(&mut r);
    r
}

pub(crate) async fn respond(
    outcome: Outcome,
    client_id: &str,
    accept: Accept,
    session: Arc<Session>,
) -> Response {
    let (upstream, upstream_id, rx, driver) = match outcome {
        Outcome::Reply(bytes) => return json(bytes, accept),
        Outcome::Forwarded {
            upstream,
            upstream_id,
            rx,
            driver,
        } => (upstream, upstream_id, rx, driver),
    };
    let mut req = InFlight::new(upstream, upstream_id, rx, driver, client_id);
    loop {
        match req.next().await {
            Next::Final(bytes) => return json(bytes, accept),
            Next::Message(msg) if accept.sse => return stream(msg, req),
            // A client that reads only JSON gets related messages on its GET stream, if any.
            Next::Message(msg) => drop(session.push(msg)),
        }
    }
}

/// The reply as an SSE stream: the first related message, then the rest, ending with the final
/// reply.
fn stream(first: Bytes, req: InFlight) -> Response {
    let state = (Some(first), req, false);
    let events = futures_util::stream::unfold(state, |(first, mut req, ended)| async move {
        if ended {
            return None;
        }
        if let Some(first) = first {
            return Some((
                Ok::<_, Infallible>(sse::message_event(None, &first)),
                (None, req, false),
            ));
        }
        let (bytes, ended) = match req.next().await {
            Next::Message(m) => (m, false),
            Next::Final(b) => (b, true),
        };
        Some((Ok(sse::message_event(None, &bytes)), (None, req, ended)))
    });
    let mut r = Response::new(Body::from_stream(events));
    sse_headers(&mut r);
    r
}

/// A session's standalone stream of server-initiated messages, with keepalive comments so
/// idle proxies do not cut it. `preamble` is sent first (the old transport's `endpoint` event);
/// `guard` lives as long as the stream (the old transport ends the session when it drops).
pub(crate) fn session_stream<G: Send + 'static>(
    preamble: Option<Bytes>,
    rx: mpsc::UnboundedReceiver<Bytes>,
    guard: G,
) -> Response {
    const KEEPALIVE: Duration = Duration::from_secs(25);
    let events =
        futures_util::stream::unfold((preamble, rx, guard), |(first, mut rx, guard)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, Infallible>(first), (None, rx, guard)));
            }
            let event = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                Ok(Some(msg)) => sse::message_event(None, &msg),
                Ok(None) => return None,
                Err(_) => Bytes::from_static(sse::KEEPALIVE),
            };
            Some((Ok(event), (None, rx, guard)))
        });
    let mut r = Response::new(Body::from_stream(events));
    sse_headers(&mut r);
    r
}

pub(crate) fn accepted() -> Response {
    // Exactly 202, no body, no Content-Type: some clients (rmcp, Zed) accept nothing else.
    StatusCode::ACCEPTED.into_response()
}
