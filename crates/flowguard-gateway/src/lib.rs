//! The gateway: client sessions, the router that sends each message to the right server (or
//! answers it here), the catalog that aggregates lists, the downstream Streamable HTTP server,
//! health and lifecycle. Upstream connections live in `flowguard-upstream`; this crate decides
//! what goes where.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
mod audit_store;
pub mod catalog;
mod checkpoint_push;
pub mod downstream;
pub mod error;
mod events;
mod gateway;
pub mod guard;
pub mod health;
pub mod identity;
pub mod inspect;
mod isolated;
pub mod lifecycle;
pub mod metrics;
mod replay;
pub mod request_id;
mod router;
pub mod scan;
pub mod session;
pub mod trace;
mod uri_template;

pub use gateway::Gateway;
