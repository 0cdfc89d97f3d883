//! A request forwarded to a server and not yet answered, independent of the transport the
//! client uses: its frames, its driver (the exchange with a remote server, polled here), the
//! per-request deadline, and the guard that cancels it upstream if the client goes away.

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
        }
    }

    pub(crate) async fn next(&mut self) -> Next {
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
    let (upstream, upstream_id, rx, driver) = match outcome {
        Outcome::Reply(bytes) | Outcome::Limited { reply: bytes, .. } => return out(bytes.into()),
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
            Next::Message(m) => out(m),
            Next::Final(b) => return out(b),
        }
    }
}
