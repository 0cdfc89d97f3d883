//! What the two background senders share: a shutdown deadline that cuts retry pauses short,
//! and a join that gives up at that deadline instead of hanging the gateway's exit.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(crate) struct Stop {
    deadline: Mutex<Option<Instant>>,
    wake: Condvar,
}

impl Stop {
    /// Shutdown has begun: finish by `deadline`.
    pub fn begin(&self, deadline: Instant) {
        *self.lock() = Some(deadline);
        self.wake.notify_all();
    }

    /// Sleeps `d`, or less when shutdown begins or [`Stop::wake`] is called.
    pub fn nap(&self, d: Duration) {
        let g = self.lock();
        if g.is_none() {
            let _ = self.wake.wait_timeout(g, d);
        }
    }

    /// Cuts a [`Stop::nap`] short.
    pub fn wake(&self) {
        self.wake.notify_all();
    }

    /// Time for one request: `timeout`, or what is left before the shutdown deadline; `None`
    /// once that has passed.
    pub fn budget(&self, timeout: Duration) -> Option<Duration> {
        match *self.lock() {
            None => Some(timeout),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                (!left.is_zero()).then(|| left.min(timeout))
            }
        }
    }

    /// Waits `d` before a retry. `false` (at once) when shutdown has begun and its deadline
    /// comes before the wait would end: there is no time for another try.
    pub fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut g = self.lock();
        loop {
            if g.is_some_and(|deadline| deadline <= until) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            g = match self.wake.wait_timeout(g, until - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Joins `h` if it ends by `deadline` (plus a little for the last request to return);
/// otherwise leaves it to end on its own. `true` if it was joined.
pub fn join_by(h: JoinHandle<()>, deadline: Instant) -> bool {
    let limit = deadline + Duration::from_millis(200);
    while !h.is_finished() && Instant::now() < limit {
        std::thread::sleep(Duration::from_millis(2));
    }
    h.is_finished() && h.join().is_ok()
}

/// A slot for the last delivery error, read through the stats.
#[derive(Default)]
pub(crate) struct LastError(Mutex<Option<String>>);

impl LastError {
    pub fn set(&self, e: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_is_cut_short_by_a_near_deadline() {
        let stop = std::sync::Arc::new(Stop::default());
        assert!(stop.pause(Duration::from_millis(5)));
        assert_eq!(
            stop.budget(Duration::from_secs(5)),
            Some(Duration::from_secs(5))
        );
        let s = stop.clone();
        let t = Instant::now();
        let waiter = std::thread::spawn(move || s.pause(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        stop.begin(Instant::now() + Duration::from_millis(100));
        assert!(!waiter.join().unwrap());
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(stop.budget(Duration::from_secs(5)).unwrap() <= Duration::from_millis(100));
        // A short pause that ends before the deadline still happens.
        assert!(stop.pause(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(stop.budget(Duration::from_secs(5)), None);
    }
}
