//! Remote MCP servers over Streamable HTTP, as a client: one session per server shared by all
//! clients, each message a POST whose JSON or SSE reply is fed back as incoming messages, the
//! session id adopted from `initialize`, and a transparent re-initialize when the server forgets
//! the session (404). TLS and the rest of the remote transport come later (ROADMAP B4).

use crate::link::Link;
use crate::upstream::Inner;
use crate::UpstreamError;
use bytes::Bytes;
use flowguard_config::HttpSpec;
use flowguard_protocol::sse;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::sync::{Arc, RwLock, Weak};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

pub(crate) struct HttpLink {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    session: RwLock<Option<String>>,
    /// The upstream, weakly: the link lives inside it.
    owner: Weak<Inner>,
}

impl HttpLink {
    pub(crate) fn new(inner: &Arc<Inner>, spec: &HttpSpec) -> Result<Arc<Self>, String> {
        let uri: Uri = spec
            .url
            .parse()
            .map_err(|e| format!("invalid url {}: {e}", spec.url))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "{} uses {}: only http:// remote servers are supported in this version",
                spec.url,
                uri.scheme_str().unwrap_or("no scheme")
            ));
        }
        let mut headers = Vec::new();
        for (k, v) in &spec.headers {
            let name = HeaderName::try_from(k.as_str()).map_err(|e| format!("header {k}: {e}"))?;
            let mut value = HeaderValue::try_from(v.expose().as_str())
                .map_err(|e| format!("header {k}: {e}"))?;
            value.set_sensitive(true);
            headers.push((name, value));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Arc::new(HttpLink {
            client,
            uri,
            headers,
            session: RwLock::new(None),
            owner: Arc::downgrade(inner),
        }))
    }

    /// Sends one message on its own POST; replies are handled as they arrive.
    pub(crate) fn send(&self, inner: &Inner, msg: Vec<u8>, id: Option<u64>) {
        let Some(owner) = self.owner.upgrade() else {
            return;
        };
        let this = match &*inner.link.read().unwrap_or_else(|e| e.into_inner()) {
            Some(Link::Http(l)) => l.clone(),
            _ => return,
        };
        let msg = Bytes::from(msg);
        tokio::spawn(async move {
            if let Err(reason) = this.deliver(&owner, msg, true).await {
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
        });
    }

    async fn deliver(&self, owner: &Arc<Inner>, msg: Bytes, retry: bool) -> Result<(), String> {
        let sent_session = self
            .session
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let resp = self
            .post(owner, msg.clone(), sent_session.as_deref())
            .await?;
        let status = resp.status();
        if let Some(sid) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            *self.session.write().unwrap_or_else(|e| e.into_inner()) = Some(sid.to_string());
        }
        if status == StatusCode::NOT_FOUND && sent_session.is_some() && retry {
            // The server forgot our session: initialize again, then resend once.
            tracing::info!(server = %owner.id, "remote session expired; initializing again");
            *self.session.write().unwrap_or_else(|e| e.into_inner()) = None;
            let link = Link::Http(self.owner_link(owner).ok_or("link replaced")?);
            Box::pin(owner.initialize(&link)).await?;
            return Box::pin(self.deliver(owner, msg, false)).await;
        }
        if status == StatusCode::ACCEPTED {
            return Ok(());
        }
        if !status.is_success() {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            // A JSON-RPC error body still answers the request; anything else is a failure.
            if body.starts_with(b"{") {
                owner.handle_message(&body);
                return Ok(());
            }
            return Err(format!("HTTP {status} from {}", self.uri));
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = resp.into_body();
        if !is_sse {
            let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            if !bytes.is_empty() {
                owner.handle_message(&bytes);
            }
            return Ok(());
        }
        let mut parser = sse::Parser::default();
        let mut events = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the reply stream: {e}"))?;
            if let Some(chunk) = frame.data_ref() {
                parser.feed(chunk, &mut events);
                for ev in events.drain(..) {
                    if !ev.data.is_empty() {
                        owner.handle_message(ev.data.as_bytes());
                    }
                }
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

    async fn post(
        &self,
        owner: &Inner,
        msg: Bytes,
        session: Option<&str>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        if let Some(s) = session {
            req = req.header(SESSION_HEADER, s);
        }
        if let Some(v) = owner.negotiated_version() {
            req = req.header(VERSION_HEADER, v);
        }
        let mut req = req.body(Full::new(msg)).map_err(|e| e.to_string())?;
        for (k, v) in &self.headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        self.client
            .request(req)
            .await
            .map_err(|e| format!("could not reach {}: {e}", self.uri))
    }
}
