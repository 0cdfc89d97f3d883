//! FlowGuard's audit log (ROADMAP H1), provable after the fact.
//!
//! - Every line is a JSON object ending with four chain fields in a fixed order:
//!   `"seq"` (global, never reset), `"epoch"`, `"prev"` (SHA-256 of the previous line as
//!   written) and `"tag"`: HMAC-SHA256 under the epoch's key over everything before `,"tag"`.
//! - The key evolves one way after every checkpoint (`k[e+1] = SHA-256(label ‖ k[e])`) and the
//!   old one is overwritten, so a key taken today cannot tag yesterday's records. The epoch is
//!   inside the tagged text, and the verifier rejects a tag made with a later epoch's key.
//! - Checkpoints (every N records or T seconds, at rotation, pruning and shutdown) go to a
//!   separate file, each signed with Ed25519 and linked to the one before.
//! - A rotated file starts with a header line that is itself a link of the chain; pruning
//!   leaves a signed checkpoint saying what went.
//!
//! [`Log`] writes, [`verify::verify`] checks. The verification key (the first epoch's key and
//! the checkpoint public key) is written once, at first use, and belongs off the machine.

mod hex;
pub mod keys;
pub mod log;
pub mod seal;
pub mod time;
pub mod verify;

pub use keys::{SealState, VerifyKey};
pub use log::{Log, Options};
