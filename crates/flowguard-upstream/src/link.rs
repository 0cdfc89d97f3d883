//! The connection under an upstream: a child's stdin/stdout or a remote HTTP session. `Link` is
//! the sending half (cheap to clone); `Running` is what must be watched and stopped.

use crate::http::HttpLink;
use crate::stdio::{self, Process};
use crate::upstream::Inner;
use crate::Driver;
use crate::{container, http};
use bytes::Bytes;
use flowguard_config::{EnvValue, Transport};
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Clone)]
pub(crate) enum Link {
    /// Lines for the writer task that owns the child's stdin.
    Stdio(mpsc::UnboundedSender<Bytes>),
    Http(Arc<HttpLink>),
}

impl Link {
    /// Sends one message. `id` is the upstream id of a request, so a failed delivery can fail it.
    /// Sends a client request: over stdio at once; to a remote server, the returned driver
    /// performs the exchange when polled.
    /// `headers` go with the request's POST to a remote server.
    pub(crate) fn send_request(
        &self,
        inner: &Inner,
        msg: Vec<u8>,
        id: u64,
        headers: &[(String, String)],
    ) -> Option<Driver> {
        match self {
            Link::Stdio(tx) => {
                let _ = tx.send(Bytes::from(msg));
                None
            }
            Link::Http(h) => h.exchange(inner, msg, Some(id), headers.to_vec()),
        }
    }

    pub(crate) fn send(&self, inner: &Inner, msg: Vec<u8>, id: Option<u64>) {
        match self {
            Link::Stdio(tx) => {
                let _ = tx.send(Bytes::from(msg));
            }
            Link::Http(h) => h.send(inner, msg, id),
        }
    }
}

pub(crate) enum Running {
    Process(Box<Process>),
    /// A remote server has no process; it lives until shutdown.
    Remote,
}

impl Running {
    /// Resolves when the connection is gone, with the reason.
    pub(crate) async fn exited(&mut self) -> String {
        match self {
            Running::Process(p) => p.exited().await,
            Running::Remote => std::future::pending().await,
        }
    }

    pub(crate) async fn stop(&mut self, inner: &Inner) {
        inner.set_link(None);
        if let Running::Process(p) = self {
            p.stop(inner.settings.shutdown_grace).await;
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
            Ok(Running::Process(Box::new(stdio::launch(inner, cmd).await?)))
        }
        Transport::Http(spec) => {
            let link = http::HttpLink::new(inner, spec)?;
            inner.set_link(Some(Link::Http(link)));
            Ok(Running::Remote)
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
        Transport::Http(_) => {}
    }
    transport
}
