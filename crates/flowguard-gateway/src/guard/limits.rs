//! Rate-limit buckets by caller and tool, on the pure token bucket of `flowguard-guard`.

use flowguard_guard::hash::{Fast, Keyed};
use flowguard_guard::limit::Bucket;
use flowguard_guard::setup::{Limits as Setup, Rate, RawRatePer};
use flowguard_guard::Principal;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Instant;

pub(super) struct Limits {
    rates: Vec<Rate>,
    start: Instant,
    /// Buckets by (rate, a keyed hash of what the bucket is kept for). The hash is keyed by
    /// random seeds, so no caller can aim at another's bucket; no string is built per request.
    buckets: Mutex<HashMap<(usize, u64), Bucket, Keyed>>,
    hasher: Keyed,
}

impl Limits {
    pub fn new(s: &Setup) -> Self {
        Limits {
            rates: s.rates.clone(),
            start: Instant::now(),
            buckets: Mutex::new(HashMap::default()),
            hasher: Keyed::default(),
        }
    }

    pub fn take(&self, who: &Principal, tool: Option<(&str, &str)>) -> Result<(), (u64, String)> {
        if self.rates.is_empty() {
            return Ok(());
        }
        let now = self.start.elapsed().as_millis() as u64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for (i, r) in self.rates.iter().enumerate() {
            if !r.tools.is_empty() {
                match tool {
                    Some((_, t)) if flowguard_guard::glob::any(&r.tools, t) => {}
                    _ => continue,
                }
            }
            let mut h = self.hasher.build_hasher();
            let client = |h: &mut Fast| {
                who.method.as_str().hash(h);
                who.subject.as_deref().hash(h);
            };
            match (r.per, tool) {
                (RawRatePer::Global, _) => {}
                (RawRatePer::Client, _) => client(&mut h),
                (RawRatePer::Tool, Some((s, t))) => (s, t).hash(&mut h),
                (RawRatePer::ClientTool, Some((s, t))) => {
                    client(&mut h);
                    (s, t).hash(&mut h);
                }
                // Per-tool buckets count tool calls only.
                (RawRatePer::Tool | RawRatePer::ClientTool, None) => continue,
            }
            let b = buckets
                .entry((i, h.finish()))
                .or_insert_with(|| Bucket::full(r.burst, now));
            if let Err(wait_ms) = b.take(r.rps, r.burst, now) {
                let per = match r.per {
                    RawRatePer::Global => "global",
                    RawRatePer::Client => "client",
                    RawRatePer::Tool => "tool",
                    RawRatePer::ClientTool => "client_tool",
                };
                return Err((
                    wait_ms.div_ceil(1000).max(1),
                    format!("limits.rate[{i}] ({per})"),
                ));
            }
        }
        if buckets.len() > 100_000 {
            let rates = &self.rates;
            buckets.retain(|(i, _), b| !b.is_idle(rates[*i].rps, rates[*i].burst, now));
        }
        Ok(())
    }
}
