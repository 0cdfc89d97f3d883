//! The supervisor of one upstream: connect, initialize, watch the connection (and its keepalive
//! pings), and restart with backoff until shutdown.

use crate::backoff::Backoff;
use crate::keepalive;
use crate::link;
use crate::upstream::{Inner, StateKind};
use std::sync::Arc;
use std::time::Duration;
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
        // The stderr tail that explains a failure belongs to this run only.
        inner
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        inner.set_state(StateKind::Starting, None);
        let outcome = run_once(&inner, &mut shutdown).await;
        inner.set_link(None);
        let stopping = *shutdown.borrow();
        // A server that ran for a while starts over with short delays; one that fails at
        // start every time is retried with growing ones.
        let ran = inner.state.borrow().kind == StateKind::Ready
            && inner.state.borrow().since.elapsed() > Duration::from_secs(30);
        if ran {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        match outcome {
            Ok(()) if stopping => break,
            Ok(()) => {}
            Err(reason) => {
                inner.fail_all_pending(&reason);
                if stopping {
                    break;
                }
                let detail = inner.failure_detail(&reason);
                report_failure(&inner.id, inner.state.borrow().failures + 1, &detail, delay);
                inner.set_state(StateKind::Failed, Some(detail));
            }
        }
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
    match inner.state.borrow().failures {
        0 => tracing::info!(server = %inner.id, version = &*version, "ready"),
        n => {
            tracing::info!(server = %inner.id, version = &*version, "ready after {n} failed attempt(s)")
        }
    }
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

/// A failure is logged in full the first time; the second in a row is reported once as a
/// crash loop; later ones only at debug level (`/health` shows the count and the last reason).
fn report_failure(server: &str, failures: u32, detail: &str, next: Duration) {
    match failures {
        1 => tracing::error!(server, "{detail}"),
        2 => tracing::warn!(
            server,
            "failed to start twice in a row: retrying with growing delays (next in {:.1}s, at most 30 s apart) without logging each attempt; calls to it fail at once until it is ready; /health shows its state and last error",
            next.as_secs_f64()
        ),
        n => tracing::debug!(server, failures = n, "failed again: {detail}"),
    }
}
