//! Remote MCP servers over Streamable HTTP, as a client: one session per server shared by all
//! clients, each message a POST whose JSON or SSE reply is fed back as incoming messages, the
//! session id adopted from `initialize` (with a temporary one for servers that insist on an id
//! even there), a transparent re-initialize when the server forgets the session (404), bounded
//! retries of idempotent requests, and the session's GET stream for server-initiated messages
//! (`get_stream.rs`).

use crate::get_stream;
use crate::http_client::{Client, Response};
use crate::link::Link;
use crate::upstream::Inner;
use crate::{retry, Driver};
use flowguard_config::HttpSpec;
use flowguard_protocol::sse;
use std::sync::{Arc, Mutex, RwLock, Weak};
use tokio::task::JoinHandle;

pub(crate) const SESSION_HEADER: &str = "Mcp-Session-Id";
pub(crate) const VERSION_HEADER: &str = "MCP-Protocol-Version";

pub(crate) struct HttpLink {
    pub(crate) client: Client,
    /// Configured headers (credentials among them), checked for header syntax at start.
    pub(crate) headers: Vec<(String, String)>,
    session: RwLock<Option<Arc<str>>>,
    /// How many times an idempotent request is sent again after a transient failure.
    retries: u32,
    /// The GET stream's task, stopped with the link.
    listener: Mutex<Option<JoinHandle<()>>>,
    /// The upstream, weakly: the link lives inside it.
    owner: Weak<Inner>,
}

/// Header names are tokens; values are visible ASCII, spaces and tabs (no CR or LF, which would
/// let a config value inject headers).
pub(crate) fn valid_header(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The configured headers, checked; these are the only credentials a remote server ever sees
/// (a client's own `Authorization` never travels upstream).
pub(crate) fn configured_headers(spec: &HttpSpec) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (k, v) in &spec.headers {
        if !valid_header(k, v.expose()) {
            return Err(format!(
                "header {k}: invalid name or value (control characters are not allowed)"
            ));
        }
        headers.push((k.clone(), v.expose().clone()));
    }
    Ok(headers)
}

/// A random temporary session id, for servers that refuse an `initialize` without one.
fn temporary_session_id() -> String {
    crate::random_hex(16)
}

impl HttpLink {
    pub(crate) fn new(inner: &Arc<Inner>, spec: &HttpSpec) -> Result<Arc<Self>, String> {
        Ok(Arc::new(HttpLink {
            client: Client::for_url(&spec.url, spec.ca_file.as_deref())?,
            headers: configured_headers(spec)?,
            session: RwLock::new(None),
            retries: inner.config.retries,
            listener: Mutex::new(None),
            owner: Arc::downgrade(inner),
        }))
    }

    /// Sends one message on its own POST, in a task of its own; replies are handled as they
    /// arrive.
    pub(crate) fn send(self: &Arc<Self>, msg: Vec<u8>, id: Option<u64>, idempotent: bool) {
        if let Some(exchange) = self.exchange(msg, id, idempotent, Vec::new()) {
            tokio::spawn(exchange);
        }
    }

    /// The POST of one message (with `extra` headers from the client) as a future; a failure
    /// fails the request `id` at once.
    pub(crate) fn exchange(
        self: &Arc<Self>,
        msg: Vec<u8>,
        id: Option<u64>,
        idempotent: bool,
        extra: Vec<(String, String)>,
    ) -> Option<Driver> {
        let owner = self.owner.upgrade()?;
        let this = self.clone();
        Some(Box::pin(async move {
            if let Err(reason) = this.deliver(&owner, &msg, &extra, idempotent, true).await {
                owner.undelivered(id, reason);
            }
        }))
    }

    pub(crate) fn session(&self) -> Option<Arc<str>> {
        self.session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_session(&self, id: Option<&str>) {
        if self.session().as_deref() != id {
            *self.session.write().unwrap_or_else(|e| e.into_inner()) = id.map(Arc::from);
        }
    }

    /// After `initialize`: listen on the session's GET stream, if the server gave a session.
    pub(crate) fn initialized(self: &Arc<Self>) {
        if self.session().is_none() {
            return;
        }
        let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if listener.is_none() {
            let task = get_stream::listen(Arc::downgrade(self), self.owner.clone());
            *listener = Some(tokio::spawn(task));
        }
    }

    /// Stops the GET stream.
    pub(crate) fn close(&self) {
        if let Some(task) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }

    /// POSTs `msg`, sending it again (idempotent requests only) after transient failures.
    async fn post(
        &self,
        session: Option<&str>,
        version: Option<&str>,
        msg: &[u8],
        extra: &[(String, String)],
        idempotent: bool,
    ) -> Result<Response<'_>, String> {
        let mut headers: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(s) = session {
            headers.push((SESSION_HEADER, s));
        }
        if let Some(v) = version {
            headers.push((VERSION_HEADER, v));
        }
        headers.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let retries = if idempotent { self.retries } else { 0 };
        let path = &self.client.target().path;
        retry::post(&self.client, path, &headers, msg, retries).await
    }

    async fn deliver(
        &self,
        owner: &Arc<Inner>,
        msg: &[u8],
        extra: &[(String, String)],
        idempotent: bool,
        first_try: bool,
    ) -> Result<(), String> {
        let sent_session = self.session();
        let version = owner.negotiated_version();
        let url = || self.client.target().url();
        let mut resp = self
            .post(
                sent_session.as_deref(),
                version.as_deref(),
                msg,
                extra,
                idempotent,
            )
            .await?;
        if let Some(sid) = resp.session_id.take() {
            self.set_session(Some(&sid));
        }
        if resp.status == 404 && sent_session.is_some() && first_try {
            // The server forgot our session: initialize again, then resend once.
            let _ = resp.bytes().await;
            tracing::info!(server = %owner.id, "remote session expired; initializing again");
            self.set_session(None);
            let link = Link::Http(self.owner_link(owner).ok_or("link replaced")?);
            Box::pin(owner.initialize(&link)).await?;
            return Box::pin(self.deliver(owner, msg, extra, idempotent, false)).await;
        }
        if resp.status == 400 && sent_session.is_none() && first_try && is_initialize(msg) {
            // Some servers want a session id even on `initialize`: offer a temporary one and
            // adopt whatever the server answers with.
            let body = resp.bytes().await.unwrap_or_default();
            tracing::info!(
                server = %owner.id,
                "initialize refused without a session id ({}); retrying with a temporary one",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
            self.set_session(Some(&temporary_session_id()));
            return Box::pin(self.deliver(owner, msg, extra, idempotent, false)).await;
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
            // A JSON-RPC message with an id still answers the request; anything else that is
            // not a success (an HTML page, an error with `"id": null`) is a failure.
            if ok && body.starts_with(b"{") || answers_a_request(&body) {
                owner.handle_message(&body);
            } else if !ok {
                let preview = String::from_utf8_lossy(&body[..body.len().min(300)]);
                return Err(format!("HTTP {} from {}: {preview}", resp.status, url()));
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

/// Whether a body is a JSON-RPC message with a real id (a reply the pending table can match).
fn answers_a_request(body: &[u8]) -> bool {
    flowguard_protocol::Envelope::parse_lenient(body)
        .is_ok_and(|e| e.id.is_some_and(|id| id.get() != "null"))
}

/// Whether an outgoing message (one the gateway encoded itself) is `initialize`.
fn is_initialize(msg: &[u8]) -> bool {
    flowguard_protocol::Envelope::parse_lenient(msg)
        .is_ok_and(|e| e.method() == flowguard_protocol::methods::INITIALIZE)
}

#[cfg(test)]
mod tests {
    use super::{is_initialize, temporary_session_id, valid_header};

    #[test]
    fn header_injection_is_refused() {
        assert!(valid_header("Authorization", "Bearer abc"));
        assert!(!valid_header("X", "a\r\nEvil: 1"));
        assert!(!valid_header("Bad Name", "v"));
    }

    #[test]
    fn temporary_ids_are_random_and_initialize_is_recognized() {
        assert_ne!(temporary_session_id(), temporary_session_id());
        assert_eq!(temporary_session_id().len(), 32);
        assert!(is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#
        ));
        assert!(!is_initialize(
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#
        ));
    }
}
