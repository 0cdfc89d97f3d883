//! Protocol revisions FlowGuard speaks on the handshake (session) era of Streamable HTTP.

/// Newest first. 2026-07-28 (stateless) is not served yet: its probes get an error that makes
/// dual-era clients fall back to `initialize`.
pub const SUPPORTED: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

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
        .and_then(|r| SUPPORTED.iter().find(|v| **v == r))
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
    }
}
