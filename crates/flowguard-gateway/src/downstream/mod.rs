//! How clients reach the gateway: Streamable HTTP (revisions 2025-03-26, 2025-06-18 and
//! 2025-11-25) and stdio (`flowguard wrap`, `flowguard stdio`). Both call the same router; the
//! old HTTP+SSE transport (ROADMAP C3) will too.

pub mod guard;
pub mod http;
mod in_flight;
mod reply;
pub mod stdio;

pub use http::app;
