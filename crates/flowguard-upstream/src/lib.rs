//! How FlowGuard reaches MCP servers: stdio children, containers and remote servers (Streamable
//! HTTP, and the 2024-11-05 HTTP+SSE transport), all behind one handle, [`Upstream`]. An upstream owns its connection, rewrites
//! JSON-RPC ids (each upstream has its own `u64` counter), restores them on replies, supervises
//! and restarts its process, and hands every message it cannot answer itself to the gateway
//! through [`UpstreamEvents`].
#![deny(unsafe_code)]

mod backoff;
pub mod container;
mod error;
mod fetch;
mod get_stream;
mod http;
mod http_client;
mod incoming;
mod keepalive;
mod link;
pub mod orphans;
mod pending;
mod reply;
mod retry;
mod sse_link;
mod stderr_ring;
mod stdio;
mod supervisor;
mod tls;
mod upstream;

pub use error::UpstreamError;
pub use fetch::fetch;
pub use reply::{reply_channel, ReplySink, ReplyStream};
/// One line of at most N bytes from a buffered reader (the downstream stdio transport reads
/// its client with it, as each stdio server is read).
pub use stdio::read_capped;
pub use upstream::{ServerState, StateKind, Upstream, UpstreamSettings};

use bytes::Bytes;
use flowguard_protocol::RawId;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Identifies a client session inside the gateway.
pub type SessionKey = Arc<str>;

/// What travels to a client on the stream of one of its requests.
#[derive(Debug)]
pub enum Frame {
    /// A notification or a server-to-client request related to the request.
    Message(Bytes),
    /// The reply to the request: the last frame of the stream.
    Final(Bytes),
}

/// The client request a server-initiated message is attributed to: the one in flight (on this
/// upstream) that started most recently, since stdio carries no other hint of relation.
#[derive(Debug, Clone)]
pub struct Related {
    pub session: SessionKey,
    pub sink: ReplySink,
}

/// A client request to forward.
pub struct ClientCall<'a> {
    pub method: &'a str,
    pub params: Option<&'a RawValue>,
    /// The id the client used, restored on the reply.
    pub client_id: RawId,
    pub session: SessionKey,
    pub sink: ReplySink,
    /// HTTP headers to pass on to a remote server unchanged (a 2026-07-28 client's
    /// `Mcp-Param-*` headers, which intermediaries must forward); ignored over stdio.
    pub headers: &'a [(String, String)],
}

/// Work a forwarded request still needs done by the caller: for a remote server, the HTTP
/// exchange itself. The caller polls it beside the reply stream, so the exchange runs in the
/// client's own task instead of a task of its own; if the reply arrives first, the caller lets
/// it finish in the background (so the connection goes back to the pool).
pub type Driver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A request on its way: its upstream id (for [`Upstream::abandon`]) and its driver, if any.
pub struct Forwarded {
    pub id: u64,
    pub driver: Option<Driver>,
}

/// The gateway's side of an upstream: where messages go that are not replies to a pending
/// request.
pub trait UpstreamEvents: Send + Sync + 'static {
    /// A request from the server to a client (sampling, elicitation, roots). `ping` never gets
    /// here: the upstream answers it itself.
    fn server_request(
        &self,
        upstream: &Upstream,
        server_id: RawId,
        method: &str,
        params: Option<&RawValue>,
        related: Option<Related>,
    );

    /// A notification other than progress for a pending request (logging, list_changed,
    /// resources/updated, cancelled). `message` is the whole message as the server sent it.
    fn server_notification(
        &self,
        upstream: &Upstream,
        method: &str,
        params: Option<&RawValue>,
        message: &[u8],
        related: Option<Related>,
    );
}

/// `bytes` random bytes as lower-case hex: session ids, temporary ids, container name suffixes.
/// Panics only if the OS has no random source, which nothing here can work without.
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
