//! Remote MCP servers on the 2024-11-05 HTTP+SSE transport, as a client. The connection is one
//! `GET url` event stream: its first `endpoint` event names where to POST messages (resolved
//! against `url`, and refused unless it stays on the same origin); every reply, notification
//! and server request then arrives on the stream. The stream's end is the connection's end: the
//! supervisor reconnects with backoff and initializes again.

use crate::http::configured_headers;
use crate::http_client::Client;
use crate::upstream::Inner;
use crate::{retry, Driver};
use flowguard_config::HttpSpec;
use flowguard_protocol::sse;
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) struct SseLink {
    client: Arc<Client>,
    headers: Vec<(String, String)>,
    /// The path messages are POSTed to, from the `endpoint` event.
    endpoint: String,
    retries: u32,
    owner: Weak<Inner>,
}

/// Opens the event stream and waits for the `endpoint` event. Returns the link and the task
/// reading the stream, which ends (with the reason) when the stream does.
pub(crate) async fn connect(
    inner: &Arc<Inner>,
    spec: &HttpSpec,
) -> Result<(Arc<SseLink>, JoinHandle<String>), String> {
    let client = Arc::new(Client::for_url(&spec.url, spec.ca_file.as_deref())?);
    let headers = configured_headers(spec)?;
    let (endpoint_tx, endpoint_rx) = oneshot::channel();
    let mut reader = tokio::spawn(read_stream(
        client.clone(),
        headers.clone(),
        Arc::downgrade(inner),
        endpoint_tx,
    ));
    let wait = inner.settings.startup_timeout;
    let endpoint = match tokio::time::timeout(wait, endpoint_rx).await {
        Ok(Ok(Ok(path))) => path,
        Ok(Ok(Err(reason))) => {
            reader.abort();
            return Err(reason);
        }
        Ok(Err(_)) => return Err((&mut reader).await.unwrap_or_else(|e| e.to_string())),
        Err(_) => {
            reader.abort();
            return Err(format!(
                "{} sent no `endpoint` event within {} s; is it an HTTP+SSE (2024-11-05) \
                 server? For Streamable HTTP use type \"http\"",
                spec.url,
                wait.as_secs()
            ));
        }
    };
    tracing::debug!(server = %inner.id, endpoint, "HTTP+SSE message endpoint");
    let link = Arc::new(SseLink {
        client,
        headers,
        endpoint,
        retries: inner.config.retries,
        owner: Arc::downgrade(inner),
    });
    Ok((link, reader))
}

/// Reads the stream: the `endpoint` event first, then messages. Returns why it ended.
async fn read_stream(
    client: Arc<Client>,
    headers: Vec<(String, String)>,
    owner: Weak<Inner>,
    endpoint_tx: oneshot::Sender<Result<String, String>>,
) -> String {
    let url = client.target().url();
    let mut request: Vec<(&str, &str)> = vec![("Accept", "text/event-stream")];
    request.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut resp = match client
        .send("GET", &client.target().path, &request, None)
        .await
    {
        Ok(r) => r,
        Err(e) => return format!("could not reach {url}: {e}"),
    };
    let is_sse = resp
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if resp.status != 200 || !is_sse {
        let body = resp.bytes().await.unwrap_or_default();
        return format!(
            "GET {url} answered HTTP {} ({}) instead of an event stream: {}",
            resp.status,
            resp.content_type.as_deref().unwrap_or("no content type"),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        );
    }
    let mut endpoint_tx = Some(endpoint_tx);
    let mut parser = sse::Parser::default();
    let mut events = Vec::new();
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return format!("the event stream of {url} ended"),
            Err(e) => return format!("the event stream of {url} broke: {e}"),
        };
        parser.feed(&chunk, &mut events);
        for ev in events.drain(..) {
            if ev.event.as_deref() == Some("endpoint") {
                if let Some(tx) = endpoint_tx.take() {
                    let _ = tx.send(client.target().same_origin_path(&ev.data));
                }
                continue;
            }
            let Some(owner) = owner.upgrade() else {
                return "the server was removed".into();
            };
            owner.handle_message(ev.data.as_bytes());
        }
    }
}

impl SseLink {
    /// The POST of one message as a future; a failure fails the request `id` at once.
    pub(crate) fn exchange(
        self: &Arc<Self>,
        msg: Vec<u8>,
        id: Option<u64>,
        idempotent: bool,
    ) -> Option<Driver> {
        let owner = self.owner.upgrade()?;
        let this = self.clone();
        Some(Box::pin(async move {
            if let Err(reason) = this.post(&msg, idempotent).await {
                owner.undelivered(id, reason);
            }
        }))
    }

    pub(crate) fn send(self: &Arc<Self>, msg: Vec<u8>, id: Option<u64>, idempotent: bool) {
        if let Some(exchange) = self.exchange(msg, id, idempotent) {
            tokio::spawn(exchange);
        }
    }

    /// POSTs to the message endpoint; the reply comes on the stream, so only the status counts.
    async fn post(&self, msg: &[u8], idempotent: bool) -> Result<(), String> {
        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
        headers.extend(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let retries = if idempotent { self.retries } else { 0 };
        let mut resp = retry::post(&self.client, &self.endpoint, &headers, msg, retries).await?;
        let body = resp.bytes().await.unwrap_or_default();
        if (200..300).contains(&resp.status) {
            Ok(())
        } else {
            Err(format!(
                "HTTP {} from {}{}: {}",
                resp.status,
                self.client.target().origin(),
                self.endpoint,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        }
    }
}
