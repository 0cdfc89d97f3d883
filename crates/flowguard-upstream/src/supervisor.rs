//! The supervisor of one upstream: connect, initialize, watch the connection (and its keepalive
//! pings), and restart with backoff until shutdown.

use crate::backoff::Backoff;
use crate::keepalive;
use crate::link;
use crate::upstream::{Inner, StateKind};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Resolves when shutdown is requested (the watch guard is dropped before returning, so the
/// future stays `Send`).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The supervisor: connect, initialize, watch, and restart with backoff until shutdown.
pub(crate) async fn supervise(inner: Arc<Inner>) {
    let mut backoff = Backoff::new();
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            break;
        }
        inner.set_state(StateKind::Starting, None);
        let started = Instant::now();
        let outcome = run_once(&inner, &mut shutdown).await;
        inner.set_link(None);
        let stopping = *shutdown.borrow();
        match outcome {
            Ok(()) if stopping => break,
            Ok(()) => {}
            Err(reason) => {
                inner.fail_all_pending(&reason);
                if stopping {
                    break;
                }
                let detail = inner.failure_detail(&reason);
                tracing::error!(server = %inner.id, "{detail}");
                inner.set_state(StateKind::Failed, Some(detail));
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut shutdown) => break,
        }
    }
    inner.fail_all_pending("the gateway is shutting down");
    inner.set_state(StateKind::Stopped, None);
}

/// One life of the connection. `Ok` when it ended because of shutdown.
async fn run_once(inner: &Arc<Inner>, shutdown: &mut watch::Receiver<bool>) -> Result<(), String> {
    let mut running = link::connect(inner).await?;
    let init = {
        // Scoped: a clone of the link kept alive here would hold the child's stdin open, and
        // `stop` begins by closing stdin so that the server can exit by itself.
        let link = inner
            .current_link()
            .ok_or("the connection closed at once")?;
        tokio::select! {
            r = inner.initialize(&link) => r,
            reason = running.exited() => Err(reason),
            _ = stopped(shutdown) => Err("shutting down".into()),
        }
    };
    if let Err(reason) = init {
        running.stop(inner).await;
        return Err(format!("could not initialize: {reason}"));
    }
    let version = inner.negotiated_version().unwrap_or_default();
    tracing::info!(server = %inner.id, version = &*version, "ready");
    if let Some(link) = inner.current_link() {
        link.initialized();
    }
    inner.set_state(StateKind::Ready, None);
    tokio::select! {
        reason = running.exited() => {
            running.stop(inner).await;
            Err(reason)
        }
        reason = keepalive::run(inner) => {
            running.stop(inner).await;
            Err(reason)
        }
        _ = stopped(shutdown) => {
            running.stop(inner).await;
            Ok(())
        }
    }
}
