//! Turning a routed request into an HTTP reply. The reply waits for the first frame: when it
//! is the final reply the whole answer is sent at once; when the server first sends progress,
//! logging or a request of its own, the reply becomes an SSE stream that carries those and ends
//! with the final reply. A client that reads only JSON gets those related messages on its GET
//! stream instead.

use crate::router::Outcome;
use crate::session::Session;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use flowguard_protocol::{encode, sse, ErrorCode};
use flowguard_upstream::{Driver, Frame, Upstream};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

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

fn sse_once(bytes: Bytes) -> Response {
    let mut r = Response::new(Body::from(sse::message_event(None, &bytes)));
    sse_headers(&mut r);
    r
}

/// Abandons the upstream request if the reply is dropped before its end (client went away).
struct Abandon {
    upstream: Upstream,
    upstream_id: u64,
    done: bool,
}

impl Abandon {
    /// Marks the request as finished, so dropping the guard does not cancel it.
    fn finish(&mut self) {
        self.done = true;
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.done {
            self.upstream
                .abandon(self.upstream_id, "the client went away");
        }
    }
}

/// A forwarded request whose reply is still coming: its frames, its driver (the HTTP exchange
/// with a remote server, polled here), the deadline, and the guard that cancels it upstream if
/// the client goes away first.
struct InFlight {
    rx: mpsc::UnboundedReceiver<Frame>,
    driver: Option<Driver>,
    guard: Abandon,
    deadline: Instant,
    timeout: Duration,
    client_id: String,
}

/// What came next for a request in flight.
enum Next {
    Message(Bytes),
    /// The final reply, or the error that replaces it (cancelled, timed out).
    Final(Bytes),
}

impl InFlight {
    async fn next(&mut self) -> Next {
        let frame = tokio::time::timeout_at(self.deadline, async {
            loop {
                match self.driver.as_mut() {
                    Some(driver) => tokio::select! {
                        biased;
                        frame = self.rx.recv() => return frame,
                        () = driver => self.driver = None,
                    },
                    None => return self.rx.recv().await,
                }
            }
        })
        .await;
        match frame {
            Ok(Some(Frame::Message(m))) => Next::Message(m),
            Ok(Some(Frame::Final(b))) => {
                self.guard.finish();
                // The exchange may still be reading the end of the upstream's body: let it
                // finish, so the connection goes back to the pool.
                if let Some(driver) = self.driver.take() {
                    tokio::spawn(driver);
                }
                Next::Final(b)
            }
            Ok(None) => {
                self.guard.finish();
                let msg = "the request was cancelled";
                Next::Final(
                    encode::error(Some(&self.client_id), ErrorCode::Unavailable, msg).into(),
                )
            }
            Err(_) => {
                let e = timeout_error(&self.guard, &self.client_id, self.timeout);
                self.guard.finish(); // abandoned already
                Next::Final(e.into())
            }
        }
    }
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
    let timeout = upstream.request_timeout();
    let mut req = InFlight {
        rx,
        driver,
        guard: Abandon {
            upstream,
            upstream_id,
            done: false,
        },
        deadline: Instant::now() + timeout,
        timeout,
        client_id: client_id.to_string(),
    };
    loop {
        match req.next().await {
            Next::Final(bytes) => return json(bytes, accept),
            Next::Message(msg) if accept.sse => return stream(msg, req),
            // A client that reads only JSON gets related messages on its GET stream, if any.
            Next::Message(msg) => drop(session.push(msg)),
        }
    }
}

fn timeout_error(guard: &Abandon, client_id: &str, timeout: Duration) -> Vec<u8> {
    guard.upstream.abandon(guard.upstream_id, "timed out");
    let msg = format!(
        "server '{}' did not answer within {} s (request_timeout)",
        guard.upstream.id(),
        timeout.as_secs()
    );
    encode::error(Some(client_id), ErrorCode::Timeout, &msg)
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

/// The standalone GET stream: server-initiated messages for the session, with keepalive
/// comments so idle proxies do not cut it.
pub(crate) fn get_stream(rx: mpsc::UnboundedReceiver<Bytes>) -> Response {
    const KEEPALIVE: Duration = Duration::from_secs(25);
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
            Ok(Some(msg)) => Some((Ok::<_, Infallible>(sse::message_event(None, &msg)), rx)),
            Ok(None) => None,
            Err(_) => Some((Ok(Bytes::from_static(sse::KEEPALIVE)), rx)),
        }
    });
    let mut r = Response::new(Body::from_stream(events));
    sse_headers(&mut r);
    r
}

pub(crate) fn accepted() -> Response {
    // Exactly 202, no body, no Content-Type: some clients (rmcp, Zed) accept nothing else.
    StatusCode::ACCEPTED.into_response()
}
