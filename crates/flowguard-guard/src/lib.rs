//! FlowGuard's guard: pure decisions beneath the gateway (DESIGN-NOTES §9).
//!
//! Every stage answers with a [`Verdict`]: allow, deny or modify, naming its stage and rule, and
//! whether it was enforced or only audited. Nothing here does I/O: keys arrive already fetched,
//! the time arrives as an argument.

#![forbid(unsafe_code)]

pub mod args;
pub mod b64;
pub mod glob;
pub mod hash;
pub mod jwks;
pub mod jwt;
pub mod policy;
pub mod principal;
pub mod verdict;

pub use principal::{AuthMethod, Principal};
pub use verdict::{Decision, Enforcement, Stage, Verdict};
pub mod apikey;
pub mod limit;
pub mod setup;
