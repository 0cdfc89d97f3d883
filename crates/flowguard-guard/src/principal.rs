//! Who is calling: the identity every stage decides on, and the key of everything stateful
//! (sessions, rate limits, later labels and the audit subject).

use serde_json::{Map, Value};
use std::sync::Arc;

/// How the caller's identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Nothing was presented and nothing was required.
    Anonymous,
    /// An agent id the client asserted itself (seed 000); not verified.
    AgentId,
    /// A named client's API key, checked against its digest.
    ApiKey,
    /// A JWT (or OAuth access token) whose signature and claims were checked.
    Jwt,
    /// Given by the configuration or a flag (stdio front ends have no headers).
    Configured,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::AgentId => "agent-id",
            AuthMethod::ApiKey => "api-key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Configured => "configured",
        }
    }

    /// Whether the identity was checked (a key, a signature) rather than asserted.
    pub fn is_verified(self) -> bool {
        matches!(
            self,
            AuthMethod::ApiKey | AuthMethod::Jwt | AuthMethod::Configured
        )
    }
}

/// The caller, as every stage sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub method: AuthMethod,
    /// The subject: the identity claim of a token, the client name of an API key, or the agent
    /// id. `None` when anonymous.
    pub subject: Option<Arc<str>>,
    /// The API-key client's name, or the token's client (`client_id`/`azp`) when it has one.
    pub client: Option<Arc<str>>,
    /// Roles, sorted and without duplicates (from the key, the roles claim and role mappings).
    pub roles: Vec<Arc<str>>,
    /// OAuth scopes the token carries.
    pub scopes: Vec<Arc<str>>,
    /// The token's claims, for policy (`None` without a token).
    pub claims: Option<Arc<Map<String, Value>>>,
    /// When the credential stops being valid (seconds since the epoch), if it does.
    pub expires_at: Option<u64>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            method: AuthMethod::Anonymous,
            subject: None,
            client: None,
            roles: Vec::new(),
            scopes: Vec::new(),
            claims: None,
            expires_at: None,
        }
    }

    /// A self-asserted agent id (seed 000's `Authorization: Bearer <agent-id>` or `X-Agent-ID`).
    pub fn agent(id: &str) -> Self {
        Principal {
            method: AuthMethod::AgentId,
            subject: Some(Arc::from(id)),
            ..Principal::anonymous()
        }
    }

    /// A claim by dotted path (`realm_access.roles`), or a top-level claim whose name holds dots.
    pub fn claim(&self, path: &str) -> Option<&Value> {
        let claims = self.claims.as_deref()?;
        if let Some(v) = claims.get(path) {
            return Some(v);
        }
        let mut parts = path.split('.');
        let mut v = claims.get(parts.next()?)?;
        for p in parts {
            v = v.as_object()?.get(p)?;
        }
        Some(v)
    }

    /// Sets roles, sorted and deduplicated.
    pub fn set_roles(&mut self, mut roles: Vec<Arc<str>>) {
        roles.sort();
        roles.dedup();
        self.roles = roles;
    }
}

/// The values of a claim as strings: a string, each string of an array, a bool as
/// `true`/`false`, a number as its JSON text. Objects and nulls give nothing.
pub fn claim_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Bool(b) => Some(b.to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_by_path() {
        let mut p = Principal::anonymous();
        let claims = json!({"a": {"b": ["x", 1, true]}, "c.d": "lit"});
        p.claims = Some(Arc::new(claims.as_object().unwrap().clone()));
        assert_eq!(
            claim_strings(p.claim("a.b").unwrap()),
            vec!["x", "1", "true"]
        );
        assert_eq!(p.claim("c.d"), Some(&json!("lit")));
        assert_eq!(p.claim("a.z"), None);
    }
}
