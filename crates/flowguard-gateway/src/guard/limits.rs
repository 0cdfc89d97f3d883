//! Rate-limit buckets by caller and tool, on the pure token bucket of `flowguard-guard`.

use flowguard_guard::limit::Bucket;
use flowguard_guard::setup::{Limits as Setup, Rate, RawRatePer};
use flowguard_guard::Principal;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub(super) struct Limits {
    rates: Vec<Rate>,
    start: Instant,
    buckets: Mutex<HashMap<(usize, String), Bucket>>,
}

impl Limits {
    pub fn new(s: &Setup) -> Self {
        Limits {
            rates: s.rates.clone(),
            start: Instant::now(),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn take(&self, who: &Principal, tool: Option<(&str, &str)>) -> Result<(), (u64, String)> {
        if self.rates.is_empty() {
            return Ok(());
        }
        let now = self.start.elapsed().as_millis() as u64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        for (i, r) in self.rates.iter().enumerate() {
            let tool_name = tool.map(|(s, t)| format!("{s}/{t}"));
            if !r.tools.is_empty() {
                match tool {
                    Some((_, t)) if flowguard_guard::glob::any(&r.tools, t) => {}
                    _ => continue,
                }
            }
            let key = match r.per {
                RawRatePer::Global => String::new(),
                RawRatePer::Client => who.key(),
                RawRatePer::Tool => match &tool_name {
                    Some(t) => t.clone(),
                    None => continue,
                },
                RawRatePer::ClientTool => match &tool_name {
                    Some(t) => format!("{}\u{1f}{t}", who.key()),
                    None => continue,
                },
            };
            let b = buckets
                .entry((i, key))
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
