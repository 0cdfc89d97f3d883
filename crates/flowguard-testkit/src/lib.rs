//! The integration-test kit: a harness that starts the real `flowguard` binary on port 0
//! ([`GatewayProcess`]), a small MCP client that speaks Streamable HTTP to it ([`McpClient`]),
//! and helpers to write configs for the test servers built from this crate (`fake`, a
//! fault-injecting stdio server, and `fixture`, the conformance server).
//!
//! Tests find the binaries next to the test executable (`target/<profile>/`), so the workspace
//! must be built first: `cargo test --workspace` does that; `cargo test -p flowguard-testkit`
//! needs a `cargo build --workspace` before it. Everything here talks to 127.0.0.1 only, and
//! every wait is bounded, so a broken gateway fails a test instead of hanging it.
#![deny(unsafe_code)]

pub mod bins;
pub mod client;
pub mod config;
pub mod flaky;
pub mod gateway;
pub mod http;
pub mod procs;

pub use bins::{fake_bin, fixture_bin, flowguard_bin};
pub use client::McpClient;
pub use gateway::{CliOutput, GatewayOptions, GatewayProcess};
pub use http::{HttpReply, SseStream};
