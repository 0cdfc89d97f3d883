//! The OAuth 2.1 resource server's public face (MCP authorization, 2025-06-18 onward): RFC
//! 9728 metadata at the root and path-inserted well-known URLs, and the `WWW-Authenticate`
//! challenges of 401 and 403 answers.

use super::AuthError;
use crate::gateway::Gateway;
use crate::session::Scope;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use flowguard_protocol::encode;
use serde_json::json;
use std::sync::Arc;

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata routes (no authentication: a client reads them to find out how to get some).
pub fn metadata_routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route(WELL_KNOWN, get(metadata))
        .route(&format!("{WELL_KNOWN}/{{*path}}"), get(metadata))
}

async fn metadata(State(gw): State<Arc<Gateway>>) -> Response {
    let Some(o) = &gw.guard.setup.auth.oauth else {
        return (
            StatusCode::NOT_FOUND,
            "Not Found: OAuth is not configured (auth.oauth)",
        )
            .into_response();
    };
    let body = json!({
        "resource": o.resource,
        "authorization_servers": o.authorization_servers,
        "scopes_supported": o.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": "FlowGuard MCP gateway",
    });
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// The endpoint path of a scope, for the path-inserted metadata URL.
fn path_of(scope: &Scope) -> String {
    match scope {
        Scope::Unified => "/mcp".into(),
        Scope::Routed(id) => format!("/mcp/{id}"),
        Scope::Virtual(v) => format!("/mcp/{}", v.name),
    }
}

/// The 401 or 403 answer to a failed authentication.
pub fn refuse(gw: &Gateway, scope: &Scope, e: &AuthError) -> Response {
    let status = match e {
        AuthError::Scope(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let body = encode::error_with_data(None, -32001, &e.message(), None);
    let mut r = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    let challenge = match &gw.guard.setup.auth.oauth {
        Some(o) => {
            let origin = o.resource.split('/').take(3).collect::<Vec<_>>().join("/");
            let meta = format!("{origin}{WELL_KNOWN}{}", path_of(scope));
            match e {
                AuthError::Missing => {
                    let scope = if o.scopes.is_empty() { String::new() } else { format!(", scope=\"{}\"", o.scopes.join(" ")) };
                    format!("Bearer resource_metadata=\"{meta}\"{scope}")
                }
                AuthError::Invalid(why) => format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\", resource_metadata=\"{meta}\"",
                    why.replace('"', "'")
                ),
                AuthError::Scope(missing) => format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{meta}\"",
                    missing.join(" ")
                ),
            }
        }
        None => "Bearer".into(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}
