//! Reading a request body: at most [`MAX_BODY_BYTES`], within `body_timeout` of the headers,
//! and, beyond the first [`FREE_BYTES`] of each body, within one budget shared by all bodies
//! being read ([`BODY_BUDGET`]). MCP messages are small; a body larger than a few kilobytes is
//! rare, and many of them arriving slowly at once is an attack on memory: 200 connections each
//! stalling after 1.5 MB once held 300 MB. With the budget, such bodies are refused (503) once
//! 64 MiB of them are held, while ordinary messages are never held up.

use crate::error::Rejection;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The largest POST body accepted (the same as axum's default limit).
pub const MAX_BODY_BYTES: usize = flowguard_guard::setup::MAX_REQUEST_BYTES;
/// What every body may hold without drawing on the shared budget.
pub const FREE_BYTES: usize = 64 * 1024;
/// The bytes beyond [`FREE_BYTES`] that all bodies being read may hold together.
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;

static HELD: AtomicUsize = AtomicUsize::new(0);

/// Bytes drawn from the shared budget, given back when dropped.
struct Drawn(usize);

impl Drawn {
    /// Draws `n` more bytes; `false` (nothing drawn) when the budget cannot cover them.
    fn more(&mut self, n: usize) -> bool {
        let ok = HELD
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + n <= BODY_BUDGET).then_some(held + n)
            })
            .is_ok();
        if ok {
            self.0 += n;
        }
        ok
    }
}

impl Drop for Drawn {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// The whole body, or the response that refuses it. A refusal closes the connection: the rest
/// of the body is not read.
pub(crate) async fn read(body: Incoming, timeout: Duration, max: usize) -> Result<Bytes, Response> {
    match tokio::time::timeout(timeout, collect(body, max)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(rejection)) => Err(closing(rejection)),
        Err(_) => Err(closing(Rejection::BodyTimeout(timeout.as_secs()))),
    }
}

fn closing(r: Rejection) -> Response {
    let mut r = r.into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn collect(mut body: Incoming, max: usize) -> Result<Bytes, Rejection> {
    let mut drawn = Drawn(0);
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Rejection::Invalid(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let len = first.as_ref().map_or(0, Bytes::len) + buf.len() + data.len();
        if len > max {
            return Err(Rejection::TooLarge(max));
        }
        // The common case, a body in one frame, is kept as it came: no copy.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            Some(f) => {
                buf.reserve(f.len() + data.len());
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
            None => buf.extend_from_slice(&data),
        }
        // What is held counts, the buffer's spare room included.
        let held = first.as_ref().map_or(0, Bytes::len) + buf.capacity();
        let over = held.saturating_sub(FREE_BYTES);
        if over > drawn.0 && !drawn.more(over - drawn.0) {
            return Err(Rejection::BodiesOverBudget(BODY_BUDGET / (1024 * 1024)));
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        // One test touches the global counter, so nothing else races with it here.
        let mut a = Drawn(0);
        assert!(a.more(BODY_BUDGET - 10));
        let mut b = Drawn(0);
        assert!(!b.more(11), "beyond the budget");
        assert!(b.more(10));
        assert!(!a.more(1));
        drop(b);
        assert!(a.more(10), "what b held came back");
        drop(a);
        assert_eq!(HELD.load(Ordering::Acquire), 0);
    }
}
