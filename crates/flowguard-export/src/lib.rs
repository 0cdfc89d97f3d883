//! What FlowGuard sends off the machine, and nothing else: OpenTelemetry spans to an OTLP/HTTP
//! collector, and alerts to a chat webhook.
//!
//! - [`traceparent`] reads and writes W3C `traceparent` headers and makes trace and span ids.
//! - [`Span`] is a finished span; [`SpanExporter`] batches spans on a thread of its own and
//!   POSTs them as OTLP protobuf ([`otlp::encode`], encoded by hand).
//! - [`Alerter`] filters alerts, folds repeats within a window, and POSTs Slack-compatible JSON.
//! - Both send through a [`Transport`]: [`PlainHttp`] speaks `http://` on `std::net`; the
//!   gateway supplies one with TLS for `https://`.
//!
//! Neither ever blocks the request path: each has a bounded queue, and what does not fit is
//! dropped and counted in its stats. Both retry what may pass (no answer, 429, 5xx), give up
//! after a few tries, and finish within their timeout at shutdown.

pub mod alert;
pub mod exporter;
pub mod http;
mod json;
pub mod otlp;
pub mod span;
#[cfg(test)]
mod testserver;
pub mod traceparent;
mod worker;

pub use alert::{Alert, Alerter, Severity};
pub use exporter::SpanExporter;
pub use http::{PlainHttp, Transport};
pub use span::{Kind, Span, Status, Value};
pub use traceparent::{Context, SpanId, TraceId};
pub use worker::join_by;
