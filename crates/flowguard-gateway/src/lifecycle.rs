//! Shutdown with drain, shared by `POST /close`, SIGTERM and Ctrl-C: once closing, new requests
//! get 503, requests in flight may finish within the grace period, then servers are stopped.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{watch, Notify};

#[derive(Default)]
pub struct Lifecycle {
    closing: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
    signal: watch::Sender<bool>,
}

/// Counts one request in flight for as long as it lives.
pub struct InFlight<'a>(&'a Lifecycle);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// Starts shutting down; true only for the first caller.
    pub fn begin_shutdown(&self) -> bool {
        let first = !self.closing.swap(true, Ordering::AcqRel);
        if first {
            self.signal.send_replace(true);
        }
        first
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Resolves once shutdown has begun.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.signal.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Waits until no request is in flight, or the grace period ends. Returns how many were
    /// still running when it gave up.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_requests_in_flight() {
        let life = std::sync::Arc::new(Lifecycle::default());
        assert!(life.begin_shutdown());
        assert!(!life.begin_shutdown());
        let l2 = life.clone();
        let t = tokio::spawn(async move {
            let _g = l2.enter();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(life.drain(Duration::from_secs(5)).await, 0);
        t.await.unwrap();
    }
}
