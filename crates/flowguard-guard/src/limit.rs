//! How often: token buckets and the circuit breaker, as pure state machines over a time given
//! by the caller (milliseconds on any monotonic clock).

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last_ms: u64,
}

impl Bucket {
    pub fn full(burst: u32, now_ms: u64) -> Self {
        Bucket {
            tokens: f64::from(burst),
            last_ms: now_ms,
        }
    }

    /// Takes one token, or says how many milliseconds until one is there.
    pub fn take(&mut self, rate: f64, burst: u32, now_ms: u64) -> Result<(), u64> {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst));
        self.last_ms = now_ms.max(self.last_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if rate <= 0.0 {
            Err(u64::MAX)
        } else {
            Err((((1.0 - self.tokens) / rate) * 1000.0).ceil() as u64)
        }
    }

    /// Whether the bucket is full again (its entry can be dropped).
    pub fn is_idle(&self, rate: f64, burst: u32, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens + elapsed * rate >= f64::from(burst)
    }
}

/// A circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Failing fast until the cooldown ends.
    Open,
    /// Letting a few probes through.
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// A server's breaker: `threshold` failures in a row open it; after `cooldown_ms` up to
/// `probes` requests go through; a probe's success closes it, its failure opens it again.
#[derive(Debug, Clone)]
pub struct Breaker {
    pub threshold: u32,
    pub cooldown_ms: u64,
    pub probes: u32,
    failures: u32,
    opened_ms: u64,
    in_flight_probes: u32,
    state: BreakerState,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown_ms: u64, probes: u32) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown_ms,
            probes: probes.max(1),
            failures: 0,
            opened_ms: 0,
            in_flight_probes: 0,
            state: BreakerState::Closed,
        }
    }

    pub fn state(&self, now_ms: u64) -> BreakerState {
        if self.state == BreakerState::Open && now_ms >= self.opened_ms + self.cooldown_ms {
            BreakerState::HalfOpen
        } else {
            self.state
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a request may go now; `Err` holds the milliseconds until the next probe.
    pub fn admit(&mut self, now_ms: u64) -> Result<(), u64> {
        match self.state(now_ms) {
            BreakerState::Closed => Ok(()),
            BreakerState::Open => Err(self.opened_ms + self.cooldown_ms - now_ms),
            BreakerState::HalfOpen => {
                self.state = BreakerState::HalfOpen;
                if self.in_flight_probes < self.probes {
                    self.in_flight_probes += 1;
                    Ok(())
                } else {
                    Err(1000)
                }
            }
        }
    }

    /// A request that was let through ended without telling how (cancelled): its probe slot
    /// is free again.
    pub fn release(&mut self) {
        self.in_flight_probes = self.in_flight_probes.saturating_sub(1);
    }

    pub fn success(&mut self) {
        self.failures = 0;
        self.in_flight_probes = 0;
        self.state = BreakerState::Closed;
    }

    pub fn failure(&mut self, now_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        if self.state == BreakerState::HalfOpen || self.failures >= self.threshold {
            self.state = BreakerState::Open;
            self.opened_ms = now_ms;
            self.in_flight_probes = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_its_rate() {
        let mut b = Bucket::full(2, 0);
        assert!(b.take(1.0, 2, 0).is_ok());
        assert!(b.take(1.0, 2, 0).is_ok());
        assert_eq!(b.take(1.0, 2, 0), Err(1000));
        assert_eq!(b.take(1.0, 2, 500), Err(500));
        assert!(b.take(1.0, 2, 1000).is_ok());
        assert!(b.is_idle(1.0, 2, 10_000));
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let mut br = Breaker::new(3, 1000, 1);
        for _ in 0..3 {
            assert!(br.admit(0).is_ok());
            br.failure(0);
        }
        assert_eq!(br.state(10), BreakerState::Open);
        assert_eq!(br.admit(10), Err(990));
        assert_eq!(br.state(1000), BreakerState::HalfOpen);
        assert!(br.admit(1000).is_ok());
        assert!(br.admit(1001).is_err(), "one probe at a time");
        br.release();
        assert!(br.admit(1001).is_ok(), "a cancelled probe frees its slot");
        br.failure(1002);
        assert_eq!(br.state(1003), BreakerState::Open);
        assert!(br.admit(2002).is_ok());
        br.success();
        assert_eq!(br.state(2003), BreakerState::Closed);
    }
}
