//! Jittered exponential backoff for restarting a server: 250 ms doubling to 30 s, each delay
//! drawn between half and all of the current step so that many servers failing together do not
//! restart in lockstep.

use std::time::Duration;

const FIRST: Duration = Duration::from_millis(250);
const MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Backoff {
    step: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff { step: FIRST }
    }

    pub fn reset(&mut self) {
        self.step = FIRST;
    }

    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(MAX);
        let mut b = [0u8; 2];
        let _ = getrandom::fill(&mut b);
        let frac = u16::from_le_bytes(b) as f64 / u16::MAX as f64; // 0..=1
        step.mul_f64(0.5 + frac / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first >= FIRST / 2 && first <= FIRST);
        for _ in 0..20 {
            assert!(b.next_delay() <= MAX);
        }
        b.reset();
        assert!(b.next_delay() <= FIRST);
    }
}
