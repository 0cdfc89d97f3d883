//! The raw model: what serde reads, before any validation.
//!
//! Two document shapes share one set of server and gateway types: the mcpServers shape
//! converts into the servers shape's types. Every struct denies unknown fields, and the doc
//! comments are the source of the JSON Schema descriptions.

mod audit;
mod inspect;
mod mcp;
mod servers;
mod signals;
mod values;
mod virtual_servers;

pub(crate) use audit::{OnFull, RawAudit};
pub(crate) use inspect::{RawInspect, RawPlugin};
pub(crate) use mcp::{McpDocument, PortAndDomain};
pub(crate) use servers::{IsolationMode, RawGateway, RawServer, ServerType, ServersDocument};
pub(crate) use signals::{RawAlerts, RawMetrics, RawStorage, RawTracing};
pub use values::parse_duration;
pub(crate) use values::{Count, DurationValue};
pub(crate) use virtual_servers::{RawVirtualServer, RawVirtualTool};
