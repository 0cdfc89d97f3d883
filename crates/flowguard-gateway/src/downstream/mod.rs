//! How clients reach the gateway. Streamable HTTP today (revisions 2025-03-26, 2025-06-18 and
//! 2025-11-25); the old HTTP+SSE transport and stdio arrive with ROADMAP C3–C4 and will call the
//! same router.

pub mod guard;
pub mod http;
mod reply;

pub use http::app;
