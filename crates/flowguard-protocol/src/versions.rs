//! Protocol revisions FlowGuard speaks: the handshake (session) era, negotiated by
//! `initialize`, and the stateless 2026-07-28 revision, chosen per request.

/// The handshake revisions, newest first: what `initialize` can negotiate.
pub const HANDSHAKE: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The stateless revision: no `initialize`, every request names its version in `_meta`.
pub const STATELESS: &str = "2026-07-28";

/// Every revision the gateway speaks, newest first (`server/discover`'s `supportedVersions`).
pub const SUPPORTED: &[&str] = &[
    STATELESS,
    "2025-11-25",
    "2025-06-18",
    "2025-03-26",
    "2024-11-05",
];

/// What the gateway offers when a client asks for a revision it does not know, and what it asks
/// for when it initializes an upstream server.
pub const LATEST: &str = "2025-11-25";

/// Spec rule: without an `MCP-Protocol-Version` header and no other way to know, assume this.
pub const ASSUMED_WITHOUT_HEADER: &str = "2025-03-26";

pub fn is_supported(version: &str) -> bool {
    SUPPORTED.contains(&version)
}

/// The revision answered to a client's `initialize`: its own when supported, else the latest.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| HANDSHAKE.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(LATEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_echoes_known_and_falls_back_to_latest() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("1.0.0")), LATEST);
        assert_eq!(negotiate(None), LATEST);
        assert!(!is_supported("1999-01-01"));
        // The stateless revision is spoken, but never negotiated by a handshake.
        assert!(is_supported(STATELESS));
        assert_eq!(negotiate(Some(STATELESS)), LATEST);
    }
}
