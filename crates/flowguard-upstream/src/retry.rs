//! Bounded retries of idempotent requests to remote servers. Only requests that change nothing
//! on the server are sent twice: a `tools/call` that failed in transit may have run, so it is
//! never repeated; the client decides.

use crate::http_client::{Client, Response};
use flowguard_protocol::methods;
use std::io;
use std::time::Duration;

/// The methods that are safe to send again.
const IDEMPOTENT: [&str; 9] = [
    methods::TOOLS_LIST,
    methods::PROMPTS_LIST,
    methods::RESOURCES_LIST,
    methods::RESOURCE_TEMPLATES_LIST,
    methods::RESOURCES_READ,
    methods::PROMPTS_GET,
    methods::COMPLETE,
    methods::PING,
    methods::INITIALIZE,
];

/// First pause before a retry; doubled each time. Short: a restarting proxy or a dropped idle
/// connection recovers in well under a second, and the client is waiting.
const FIRST_PAUSE: Duration = Duration::from_millis(100);

pub(crate) fn idempotent(method: &str) -> bool {
    IDEMPOTENT.contains(&method)
}

/// Whether an attempt failed in a way worth retrying: the connection could not be made or
/// dropped before any reply byte (`InvalidData` means part of a reply came), or a gateway in
/// front of the server said it is briefly unavailable (502, 503, 504).
pub(crate) fn transient(result: &io::Result<Response<'_>>) -> bool {
    match result {
        Err(e) => e.kind() != io::ErrorKind::InvalidData,
        Ok(r) => matches!(r.status, 502..=504),
    }
}

/// The pause before retry number `attempt` (1-based): 100 ms, 200 ms, 400 ms ... capped at 2 s,
/// each drawn between half and all of that, so that many requests do not retry in lockstep.
pub(crate) fn pause(attempt: u32) -> Duration {
    let step = FIRST_PAUSE
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(Duration::from_secs(2));
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    step.mul_f64(0.5 + frac / 2.0)
}

/// POSTs `body` to `path`, sending it again up to `retries` times after transient failures
/// (pass 0 for anything but an idempotent request).
pub(crate) async fn post<'c>(
    client: &'c Client,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    retries: u32,
) -> Result<Response<'c>, String> {
    let mut attempt = 0;
    loop {
        let result = client.send("POST", path, headers, Some(body)).await;
        if attempt < retries && transient(&result) {
            attempt += 1;
            // Boxed: the rare path's futures would otherwise enlarge every request's future.
            Box::pin(before_retry(client, result, attempt)).await;
            continue;
        }
        return result.map_err(|e| format!("could not reach {}: {e}", client.target().url()));
    }
}

/// Ends the failed attempt (reading away its body), says why, and waits out the pause.
async fn before_retry(client: &Client, result: io::Result<Response<'_>>, attempt: u32) {
    let why = match result {
        Ok(mut r) => {
            let _ = r.bytes().await;
            format!("HTTP {}", r.status)
        }
        Err(e) => e.to_string(),
    };
    tracing::info!(url = %client.target().url(), attempt, "retrying after {why}");
    tokio::time::sleep(pause(attempt)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reads_and_handshakes_are_retried() {
        assert!(idempotent("tools/list") && idempotent("initialize") && idempotent("ping"));
        assert!(!idempotent("tools/call"));
        assert!(!idempotent("resources/subscribe"));
        assert!(!idempotent("notifications/initialized"));
    }

    #[test]
    fn connection_failures_are_transient_and_partial_replies_are_not() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let closed = io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response");
        let partial = io::Error::new(io::ErrorKind::InvalidData, "closed in the head");
        assert!(transient(&Err(refused)) && transient(&Err(closed)));
        assert!(!transient(&Err(partial)));
    }

    #[test]
    fn pauses_grow_and_stay_short() {
        assert!(pause(1) <= FIRST_PAUSE && pause(1) >= FIRST_PAUSE / 2);
        assert!(pause(30) <= Duration::from_secs(2));
    }
}
