//! Remote MCP servers over Streamable HTTP, as a client: one session per server shared by all
//! clients, each message a POST whose JSON or SSE reply is fed back as incoming messages, the
//! session id adopted from `initialize`, and a transparent re-initialize when the server forgets
//! the session (404). TLS and the rest of the remote transport come later (ROADMAP B4).

use crate::http_client::{Client, Target};
use crate::link::Link;
use crate::upstream::Inner;
use crate::{Driver, UpstreamError};
use flowguard_config::HttpSpec;
use flowguard_protocol::sse;
use std::sync::{Arc, RwLock, Weak};

const SESSION_HEADER: &str = "Mcp-Session-Id";
const VERSION_HEADER: &str = "MCP-Protocol-Version";

pub(crate) struct HttpLink {
    client: Client,
    /// Configured headers (credentials among them), checked for header syntax at start.
    headers: Vec<(String, String)>,
    session: RwLock<Option<String>>,
    /// The upstream, weakly: the link lives inside it.
    owner: Weak<Inner>,
}

/// Header names are tokens; values are visible ASCII, spaces and tabs (no CR or LF, which would
/// let a config value inject headers).
fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

impl HttpLink {
    pub(crate) fn new(inner: &Arc<Inner>, spec: &HttpSpec) -> Result<Arc<Self>, String> {
        let target = Target::parse(&spec.url)?;
        let mut headers = Vec::new();
        for (k, v) in &spec.headers {
            if !valid_header(k, v.expose()) {
                return Err(format!(
                    "header {k}: invalid name or value (control characters are not allowed)"
                ));
            }
            headers.push((k.clone(), v.expose().clone()));
        }
        Ok(Arc::new(HttpLink {
            client: Client::new(target),
            headers,
            session: RwLock::new(None),
            owner: Arc::downgrade(inner),
        }))
    }

    /// Sends one message on its own POST, in a task of its own; replies are handled as they
    /// arrive.
    pub(crate) fn send(&self, inner: &Inner, msg: Vec<u8>, id: Option<u64>) {
        if let Some(exchange) = self.exchange(inner, msg, id, Vec::new()) {
            tokio::spawn(exchange);
        }
    }

    /// The POST of one message (with `extra` headers from the client) as a future; a failure
    /// fails the request `id` at once.
    pub(crate) fn exchange(
        &self,
        inner: &Inner,
        msg: Vec<u8>,
        id: Option<u64>,
        extra: Vec<(String, String)>,
    ) -> Option<Driver> {
        let owner = self.owner.upgrade()?;
        let this = match &*inner.link.read().unwrap_or_else(|e| e.into_inner()) {
            Some(Link::Http(l)) => l.clone(),
            _ => return None,
        };
        Some(Box::pin(async move {
            if let Err(reason) = this.deliver(&owner, &msg, &extra, true).await {
                tracing::warn!(server = %owner.id, "{reason}");
                if let Some(id) = id {
                    owner.fail_pending(
                        id,
                        UpstreamError::Unavailable {
                            server: owner.id.clone(),
                            reason,
                        },
                    );
                }
            }
        }))
    }

    fn session(&self) -> Option<String> {
        self.session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_session(&self, id: Option<String>) {
        *self.session.write().unwrap_or_else(|e| e.into_inner()) = id;
    }

    async fn deliver(
        &self,
        owner: &Arc<Inner>,
        msg: &[u8],
        extra: &[(String, String)],
        retry: bool,
    ) -> Result<(), String> {
        let sent_session = self.session();
        let version = owner.negotiated_version();
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(s) = &sent_session {
            headers.push((SESSION_HEADER, s));
        }
        if let Some(v) = &version {
            headers.push((VERSION_HEADER, v));
        }
        headers.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let url = || {
            format!(
                "http://{}{}",
                self.client.target().host,
                self.client.target().path
            )
        };
        let mut resp = self
            .client
            .post(&headers, msg)
            .await
            .map_err(|e| format!("could not reach {}: {e}", url()))?;
        if let Some(sid) = resp.session_id.take() {
            self.set_session(Some(sid));
        }
        if resp.status == 404 && sent_session.is_some() && retry {
            // The server forgot our session: initialize again, then resend once.
            let _ = resp.bytes().await;
            tracing::info!(server = %owner.id, "remote session expired; initializing again");
            self.set_session(None);
            let link = Link::Http(self.owner_link(owner).ok_or("link replaced")?);
            Box::pin(owner.initialize(&link)).await?;
            return Box::pin(self.deliver(owner, msg, extra, false)).await;
        }
        let is_sse = resp
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("reading the reply from {}: {e}", url()))?;
            let ok = (200..300).contains(&resp.status);
            // A JSON-RPC error body still answers the request; anything else is a failure.
            if body.starts_with(b"{") {
                owner.handle_message(&body);
            } else if !ok {
                return Err(format!("HTTP {} from {}", resp.status, url()));
            }
            return Ok(());
        }
        let mut parser = sse::Parser::default();
        let mut events = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading the reply stream from {}: {e}", url()))?
        {
            parser.feed(&chunk, &mut events);
            for ev in events.drain(..) {
                owner.handle_message(ev.data.as_bytes());
            }
        }
        Ok(())
    }

    fn owner_link(&self, owner: &Inner) -> Option<Arc<HttpLink>> {
        match &*owner.link.read().unwrap_or_else(|e| e.into_inner()) {
            Some(Link::Http(l)) => Some(l.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_header;

    #[test]
    fn header_injection_is_refused() {
        assert!(valid_header("Authorization", "Bearer abc"));
        assert!(!valid_header("X", "a\r\nEvil: 1"));
        assert!(!valid_header("Bad Name", "v"));
    }
}
