//! The MCP wire format as FlowGuard sees it: JSON-RPC envelopes parsed only as far as the gateway
//! acts on them, protocol revisions, and the line and SSE framings. No I/O lives here.
#![forbid(unsafe_code)]

pub mod door;
pub mod envelope;
pub mod era;
pub mod lines;
pub mod methods;
pub mod modern;
pub mod sse;
pub mod versions;

pub use envelope::{encode, Envelope, ErrorCode, Kind, RawId};
