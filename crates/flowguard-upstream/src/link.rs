//! The connection under an upstream: a child's stdin/stdout, a remote Streamable HTTP session or
//! a remote HTTP+SSE stream. `Link` is the sending half (cheap to clone); `Running` is what must
//! be watched and stopped.

use crate::http::HttpLink;
use crate::sse_link::{self, SseLink};
use crate::stdio::{self, Process};
use crate::upstream::Inner;
use crate::Driver;
use crate::{container, http};
use bytes::Bytes;
use flowguard_config::{EnvValue, Transport};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Clone)]
pub(crate) enum Link {
    /// Lines for the writer task that owns the child's stdin.
    Stdio(mpsc::UnboundedSender<Bytes>),
    Http(Arc<HttpLink>),
    Sse(Arc<SseLink>),
}

impl Link {
    /// Sends a client request: over stdio at once; to a remote server, the returned driver
    /// performs the exchange when polled. `idempotent` requests may be retried (`retry.rs`);
    /// `headers` go with the request's POST to a remote Streamable HTTP server.
    pub(crate) fn send_request(
        &self,
        msg: Vec<u8>,
        id: u64,
        idempotent: bool,
        headers: &[(String, String)],
    ) -> Option<Driver> {
        match self {
            Link::Stdio(tx) => {
                let _ = tx.send(Bytes::from(msg));
                None
            }
            Link::Http(h) => h.exchange(msg, Some(id), idempotent, headers.to_vec()),
            Link::Sse(s) => s.exchange(msg, Some(id), idempotent),
        }
    }

    /// Sends one message. `id` is the upstream id of a request, so a failed delivery can fail it.
    pub(crate) fn send(&self, msg: Vec<u8>, id: Option<u64>, idempotent: bool) {
        match self {
            Link::Stdio(tx) => {
                let _ = tx.send(Bytes::from(msg));
            }
            Link::Http(h) => h.send(msg, id, idempotent),
            Link::Sse(s) => s.send(msg, id, idempotent),
        }
    }

    /// The server is initialized: start what needs a session (the GET stream).
    pub(crate) fn initialized(&self) {
        if let Link::Http(h) = self {
            h.initialized();
        }
    }
}

pub(crate) enum Running {
    Process(Box<Process>),
    /// A remote Streamable HTTP session: no process, it lives until shutdown (or until pings
    /// fail); its GET stream is stopped with it.
    Remote(Arc<HttpLink>),
    /// A remote HTTP+SSE server: the task reading its event stream, ending with the stream.
    Stream(JoinHandle<String>),
}

impl Running {
    /// Resolves when the connection is gone, with the reason.
    pub(crate) async fn exited(&mut self) -> String {
        match self {
            Running::Process(p) => p.exited().await,
            Running::Remote(_) => std::future::pending().await,
            Running::Stream(reader) => reader.await.unwrap_or_else(|e| e.to_string()),
        }
    }

    pub(crate) async fn stop(&mut self, inner: &Inner) {
        inner.set_link(None);
        match self {
            Running::Process(p) => p.stop(inner.settings.shutdown_grace).await,
            Running::Remote(link) => link.close(),
            Running::Stream(reader) => reader.abort(),
        }
    }
}

/// Opens the connection the server's transport calls for and installs its `Link`.
pub(crate) async fn connect(inner: &Arc<Inner>) -> Result<Running, String> {
    match &transport_with_session_env(inner) {
        Transport::Stdio(spec) => {
            let cmd = stdio::CommandSpec::from_process(spec);
            Ok(Running::Process(Box::new(stdio::launch(inner, cmd).await?)))
        }
        Transport::Container(spec) => {
            let cmd = container::command(
                &inner.id,
                spec,
                inner.settings.container_runtime,
                &inner.settings.owner_tag,
            )?;
            let runtime = cmd.program.clone();
            match stdio::launch(inner, cmd).await {
                Ok(p) => Ok(Running::Process(Box::new(p))),
                Err(_) if !container::on_path(&runtime) => Err(format!(
                    "no container runtime is installed: `{runtime}` is not on PATH; install podman or docker (or set container_runtime), or run the server as a command"
                )),
                Err(e) => Err(e),
            }
        }
        Transport::Http(spec) => {
            let link = http::HttpLink::new(inner, spec)?;
            inner.set_link(Some(Link::Http(link.clone())));
            Ok(Running::Remote(link))
        }
        Transport::Sse(spec) => {
            let (link, reader) = sse_link::connect(inner, spec).await?;
            inner.set_link(Some(Link::Sse(link)));
            Ok(Running::Stream(reader))
        }
    }
}

/// The transport with the session's variables added to `env`. Built just before a start and
/// dropped after it, so the values live only where they are needed (containers name them with
/// `-e NAME` and get the values in the runtime's environment: `container::command`).
fn transport_with_session_env(inner: &Inner) -> Transport {
    let mut transport = inner.config.transport.clone();
    let extra = inner
        .session_env
        .iter()
        .map(|(k, v)| (k.clone(), EnvValue::Set(v.expose().clone())));
    match &mut transport {
        Transport::Stdio(spec) => spec.env.extend(extra),
        Transport::Container(spec) => spec.env.extend(extra),
        Transport::Http(_) | Transport::Sse(_) => {}
    }
    transport
}
