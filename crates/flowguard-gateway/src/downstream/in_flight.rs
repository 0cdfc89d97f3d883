//! A request forwarded to a server and not yet answered, independent of the transport the
//! client uses: its frames, its driver (the exchange with a remote server, polled here), the
//! per-request deadline, and the guard that cancels it upstream if the client goes away.

use crate::guard::Watch;
use crate::router::Outcome;
use bytes::Bytes;
use flowguard_protocol::{encode, ErrorCode};
use flowguard_upstream::{Driver, Frame, ReplyStream, Upstream};
use std::time::Duration;
use tokio::time::Instant;

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
pub(crate) struct InFlight {
    rx: ReplyStream,
    driver: Option<Driver>,
    guard: Abandon,
    deadline: Instant,
    timeout: Duration,
    client_id: String,
    /// The server's breaker and reply cap.
    watch: Watch,
    /// Whether the breaker was told how the request ended.
    reported: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.reported {
            self.watch.release();
        }
    }
}

/// What came next for a request in flight.
pub(crate) enum Next {
    Message(Bytes),
    /// The final reply, or the error that replaces it (cancelled, timed out).
    Final(Bytes),
}

impl InFlight {
    pub(crate) fn new(
        upstream: Upstream,
        upstream_id: u64,
        rx: ReplyStream,
        driver: Option<Driver>,
        client_id: String,
        watch: Watch,
    ) -> Self {
        let timeout = upstream.request_timeout();
        InFlight {
            rx,
            driver,
            guard: Abandon {
                upstream,
                upstream_id,
                done: false,
            },
            deadline: Instant::now() + timeout,
            timeout,
            client_id,
            watch,
            reported: false,
        }
    }

    /// A reply or message over the server's cap is not passed on.
    fn too_big(&self, len: usize) -> bool {
        self.watch.max_reply.is_some_and(|cap| len > cap)
    }

    fn oversized(&self, len: usize) -> Bytes {
        let cap = self.watch.max_reply.unwrap_or_default();
        let msg = format!(
            "server '{}' sent a reply of {len} bytes, over its limit of {cap} (limits.max_reply_bytes)",
            self.guard.upstream.id()
        );
        tracing::warn!(
            server = self.guard.upstream.id(),
            len,
            cap,
            "a reply over the size limit was dropped"
        );
        encode::error(Some(&self.client_id), ErrorCode::Unavailable, &msg).into()
    }

    pub(crate) async fn next(&mut self) -> Next {
        loop {
            match self.next_frame().await {
                // A message over the cap, dropped: wait for the next.
                Next::Message(m) if m.is_empty() => continue,
                next => return next,
            }
        }
    }

    async fn next_frame(&mut self) -> Next {
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
            Ok(Some(Frame::Message(m))) if self.too_big(m.len()) => {
                tracing::warn!(
                    server = self.guard.upstream.id(),
                    len = m.len(),
                    "a message over the size limit was dropped"
                );
                Next::Message(Bytes::new())
            }
            Ok(Some(Frame::Message(m))) => Next::Message(m),
            Ok(Some(Frame::Final(b))) => {
                self.guard.finish();
                // The server answered (whatever it said): it is alive.
                self.watch.success();
                self.reported = true;
                let b = if self.too_big(b.len()) {
                    self.oversized(b.len())
                } else if let Some(check) = self.watch.result.take() {
                    check.finish(&self.client_id, b)
                } else {
                    b
                };
                if let Some(t) = self.watch.track.as_mut() {
                    t.finish(crate::metrics::status_of(&b));
                }
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
                self.watch.failure();
                self.reported = true;
                let e = timeout_error(&self.guard, &self.client_id, self.timeout);
                if let Some(t) = self.watch.track.as_mut() {
                    t.finish("timeout");
                }
                self.guard.finish(); // abandoned already
                Next::Final(e.into())
            }
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

/// Hands every frame of a routed request to `out`, ending with its final reply: for transports
/// where all replies share one stream (stdio, the old HTTP+SSE transport).
pub(crate) async fn forward_all(outcome: Outcome, client_id: String, mut out: impl FnMut(Bytes)) {
    let (upstream, upstream_id, rx, driver, watch) = match outcome {
        Outcome::Reply(bytes) | Outcome::Limited { reply: bytes, .. } => return out(bytes.into()),
        Outcome::Forwarded {
            upstream,
            upstream_id,
            rx,
            driver,
            watch,
        } => (upstream, upstream_id, rx, driver, watch),
    };
    let mut req = InFlight::new(upstream, upstream_id, rx, driver, client_id, watch);
    loop {
        match req.next().await {
            Next::Message(m) => out(m),
            Next::Final(b) => return out(b),
        }
    }
}
