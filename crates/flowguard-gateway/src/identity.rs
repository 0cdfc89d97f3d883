//! The agent identity a client presents: `X-Agent-ID`, else `Authorization: Bearer <id>`, else a
//! raw `Authorization` value (seed 000 and the MCP Gateway Specification). It is recorded, not
//! verified: authentication arrives with ROADMAP E2–E3.

use axum::http::HeaderMap;

pub fn agent_from_headers(headers: &HeaderMap) -> Option<String> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(id) = value("x-agent-id").filter(|v| !v.is_empty()) {
        return Some(id.to_string());
    }
    let auth = value("authorization").filter(|v| !v.is_empty())?;
    let id = auth
        .strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .unwrap_or(auth);
    Some(id.trim().to_string()).filter(|s| !s.is_empty())
}

/// How an agent id appears in logs. A client may put a real secret where an id is expected, so
/// only short plain identifiers are logged whole; anything else shows its first characters.
pub fn loggable(agent: &str) -> String {
    let plain = agent.len() <= 40
        && agent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b))
        && !["ghp_", "gho_", "github_pat_", "sk-", "xox", "AKIA", "eyJ"]
            .iter()
            .any(|p| agent.starts_with(p));
    if plain {
        agent.to_string()
    } else {
        let head: String = agent.chars().take(4).collect();
        format!("{head}…({} chars)", agent.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn identity_sources_in_order() {
        assert_eq!(
            agent_from_headers(&headers(&[("authorization", "Bearer demo-agent")])).as_deref(),
            Some("demo-agent")
        );
        assert_eq!(
            agent_from_headers(&headers(&[("authorization", "demo-agent")])).as_deref(),
            Some("demo-agent")
        );
        assert_eq!(
            agent_from_headers(&headers(&[
                ("authorization", "Bearer a"),
                ("x-agent-id", "b")
            ]))
            .as_deref(),
            Some("b")
        );
        assert_eq!(agent_from_headers(&headers(&[])), None);
    }

    #[test]
    fn secrets_are_not_logged_whole() {
        assert_eq!(loggable("demo-agent"), "demo-agent");
        assert_eq!(loggable("ghp_abcdefghijklmnop"), "ghp_…(20 chars)");
        assert!(!loggable(&"x".repeat(60)).contains(&"x".repeat(10)));
    }
}
