//! The GET stream of a remote Streamable HTTP session: where the server sends messages that
//! belong to no request (list changes, `resources/updated`, `roots/list`, logging). They go
//! into the same path as every other incoming message. A server without one answers 405 (or,
//! against the spec, a 2xx that is not an event stream, as some do with 202) and is not asked
//! again; a stream that ends or fails is reopened with backoff, with `Last-Event-ID`
//! when its events had ids, so a server that keeps history can replay what was missed.

use crate::backoff::Backoff;
use crate::http::{HttpLink, SESSION_HEADER, VERSION_HEADER};
use crate::upstream::Inner;
use flowguard_protocol::sse;
use std::sync::{Arc, Weak};

/// How one opening of the stream ended.
enum Outcome {
    /// The server offers no GET stream: 405, or a 2xx answer that is not an event stream.
    Unsupported(String),
    /// The stream ended after `events` events.
    Ended { events: usize },
}

/// Keeps the GET stream open until the link is stopped (its task is aborted) or dropped.
pub(crate) async fn listen(link: Weak<HttpLink>, owner: Weak<Inner>) {
    let mut backoff = Backoff::new();
    let mut last_event_id: Option<String> = None;
    loop {
        let (Some(link), Some(owner)) = (link.upgrade(), owner.upgrade()) else {
            return;
        };
        match open_once(&link, &owner, &mut last_event_id).await {
            Ok(Outcome::Unsupported(why)) => {
                tracing::debug!(server = %owner.id, "the server has no GET stream ({why})");
                return;
            }
            Ok(Outcome::Ended { events }) => {
                if events > 0 {
                    backoff.reset();
                }
                tracing::debug!(server = %owner.id, events, "GET stream ended; reopening");
            }
            Err(reason) => tracing::info!(server = %owner.id, "GET stream: {reason}; reopening"),
        }
        drop((link, owner));
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

async fn open_once(
    link: &HttpLink,
    owner: &Arc<Inner>,
    last_event_id: &mut Option<String>,
) -> Result<Outcome, String> {
    let Some(session) = link.session() else {
        return Err("no session yet".into());
    };
    let version = owner.negotiated_version();
    let mut headers: Vec<(&str, &str)> =
        vec![("Accept", "text/event-stream"), (SESSION_HEADER, &session)];
    if let Some(v) = &version {
        headers.push((VERSION_HEADER, v));
    }
    if let Some(id) = last_event_id.as_deref() {
        headers.push(("Last-Event-ID", id));
    }
    headers.extend(link.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let target = link.client.target();
    let mut resp = link
        .client
        .send("GET", &target.path, &headers, None)
        .await
        .map_err(|e| format!("could not reach {}: {e}", target.url()))?;
    let is_sse = resp
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("text/event-stream"));
    match resp.status {
        405 => return Ok(Outcome::Unsupported("405".into())),
        200 if is_sse => {}
        status @ 200..=299 => {
            // Asking again would get the same answer, forever.
            let _ = resp.bytes().await;
            let what = resp.content_type.as_deref().unwrap_or("no content type");
            return Ok(Outcome::Unsupported(format!(
                "HTTP {status} with {what}, not an event stream"
            )));
        }
        status => {
            // 404 means the session expired; the next request re-initializes, and the next
            // opening uses the new session.
            let _ = resp.bytes().await;
            return Err(format!("HTTP {status} from {}", target.url()));
        }
    }
    let mut parser = sse::Parser::default();
    let mut events = Vec::new();
    let mut count = 0;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading {}: {e}", target.url()))?
    {
        parser.feed(&chunk, &mut events);
        for ev in events.drain(..) {
            count += 1;
            if ev.id.is_some() {
                *last_event_id = ev.id.clone();
            }
            owner.handle_message(ev.data.as_bytes());
        }
    }
    Ok(Outcome::Ended { events: count })
}
