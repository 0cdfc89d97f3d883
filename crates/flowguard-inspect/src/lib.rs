//! Inspection of MCP traffic (ROADMAP G1-G7): pure functions over JSON values and text.
//!
//! - [`canon`]: canonical JSON and the hashes pins are made of (G1)
//! - [`corpus`]: precision and recall on the labelled corpus (`flowguard inspect corpus`)
//! - [`finding`]: what every detector reports (rule id, family, where, score)
//! - [`inject`]: injection heuristics on arguments and results (G3)
//! - [`poison`]: the poisoning scan of tool, prompt and resource metadata (G2)
//! - [`risk`]: server risk levels from tool names (G6)
//! - [`schema`]: tool arguments against the tool's `inputSchema` (G5)
//! - [`secrets`]: secrets and personal data, detection and typed redaction (G4)

pub mod canon;
pub mod corpus;
pub mod finding;
pub mod inject;
pub mod poison;
pub mod risk;
pub mod schema;
pub mod secrets;
pub mod text;
