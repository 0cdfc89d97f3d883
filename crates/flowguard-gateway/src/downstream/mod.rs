//! How clients reach the gateway: Streamable HTTP (revisions 2025-03-26, 2025-06-18 and
//! 2025-11-25 with sessions, and the stateless 2026-07-28 beside them), the old HTTP+SSE transport (2024-11-05: `/sse` and `/messages`), and stdio
//! (`flowguard wrap`, `flowguard stdio`). All of them call the same router.

mod body;
mod env_headers;
pub mod guard;
pub mod http;
mod in_flight;
mod legacy_sse;
pub(crate) mod modern;
mod reply;
pub mod serve;
pub mod stdio;

pub use http::app;
