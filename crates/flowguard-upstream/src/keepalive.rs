//! Keepalive pings: a server that stops answering (a hung process, a remote peer gone behind a
//! proxy that keeps the TCP connection up) is treated as a lost connection, so the supervisor
//! reconnects and initializes again instead of letting every request time out.

use crate::upstream::Inner;
use crate::UpstreamError;
use flowguard_protocol::methods;
use std::sync::Arc;

/// Failed pings in a row that count as a lost connection: one lost ping can be a busy server,
/// three are not.
const FAILURES_ALLOWED: u32 = 3;

/// Pings the server every `ping_interval` (never, when it is off). Resolves with the reason
/// once [`FAILURES_ALLOWED`] pings in a row failed or went unanswered.
pub(crate) async fn run(inner: &Arc<Inner>) -> String {
    let Some(interval) = inner.config.ping_interval else {
        return std::future::pending().await;
    };
    // A ping waits at most one interval (and never longer than a request may).
    let wait = interval.min(
        inner
            .config
            .request_timeout
            .unwrap_or(inner.settings.request_timeout),
    );
    let mut failures = 0;
    let mut last = String::new();
    loop {
        tokio::time::sleep(interval).await;
        let Some(link) = inner.current_link() else {
            return "the connection closed".into();
        };
        match inner.request_on(&link, methods::PING, None, wait).await {
            // Any answer, even an error (a server without `ping`), shows the server is there.
            Ok(_) => failures = 0,
            Err(e) => {
                failures += 1;
                last = match e {
                    UpstreamError::Timeout { .. } => {
                        format!("no answer within {} ms", wait.as_millis())
                    }
                    other => other.to_string(),
                };
                tracing::warn!(server = %inner.id, failures, "ping failed: {last}");
            }
        }
        if failures >= FAILURES_ALLOWED {
            return format!("{FAILURES_ALLOWED} pings in a row failed (last: {last})");
        }
    }
}
