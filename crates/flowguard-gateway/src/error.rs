//! Every error the gateway itself produces on its HTTP endpoints, and the one function that maps
//! each to an HTTP status and a JSON-RPC error (`docs/errors.md` lists them all).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use flowguard_protocol::{encode, versions, ErrorCode};

/// Why a message was refused before reaching any server.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(
        "Bad Request: missing Mcp-Session-Id header; send initialize first to start a session"
    )]
    MissingSession,
    #[error("Session not found: it ended or never existed; send initialize to start a new one")]
    UnknownSession,
    #[error("Bad Request: unsupported MCP-Protocol-Version {0:?}; supported: {1}")]
    UnsupportedVersion(String, String),
    #[error("Unsupported Media Type: Content-Type must be application/json")]
    ContentType,
    #[error("Not Acceptable: Accept must include {0}")]
    NotAcceptable(&'static str),
    #[error("Parse error: {0}")]
    Parse(String),
    #[error("Invalid Request: {0}")]
    Invalid(String),
    #[error("Service Unavailable: the gateway is shutting down")]
    ShuttingDown,
    #[error("Forbidden: {0}")]
    Forbidden(String),
    #[error("Not Found: no server '{0}' is configured (configured: {1})")]
    UnknownServer(String, String),
    #[error("Not Found: {0}")]
    NoEndpoint(String),
    #[error(
        "Not Found: Last-Event-ID {0:?} names no stream this session still keeps; \
         open a new GET stream without it (and resend requests whose replies were lost)"
    )]
    UnknownEvent(String),
    /// An `ENV_<NAME>` header whose name no server of the endpoint allow-lists. Only the name
    /// is quoted, never the value (it is a secret).
    #[error("Bad Request: header ENV_{0} sets a variable no server on this endpoint accepts; allowed: {1}")]
    EnvNotAllowed(String, String),
    #[error("Payload Too Large: a message may have at most {0} bytes")]
    TooLarge(usize),
    #[error("Method Not Allowed: {0}")]
    MethodNotAllowed(&'static str),
    #[error("Service Unavailable: the gateway already holds its maximum of {0} sessions (gateway.max_sessions); end unused sessions with DELETE, or raise max_sessions")]
    TooManySessions(usize),
    #[error("Request Timeout: the body did not arrive within {0}s (gateway.body_timeout)")]
    BodyTimeout(u64),
    #[error("Service Unavailable: large request bodies arriving now already hold the gateway's {0} MiB for them; retry shortly")]
    BodiesOverBudget(usize),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingSession
            | Rejection::UnsupportedVersion(..)
            | Rejection::Parse(_)
            | Rejection::Invalid(_)
            | Rejection::EnvNotAllowed(..) => StatusCode::BAD_REQUEST,
            Rejection::UnknownSession
            | Rejection::UnknownServer(..)
            | Rejection::NoEndpoint(_)
            | Rejection::UnknownEvent(_) => StatusCode::NOT_FOUND,
            Rejection::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Rejection::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Rejection::ShuttingDown
            | Rejection::TooManySessions(_)
            | Rejection::BodiesOverBudget(_) => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Rejection::Forbidden(_) => StatusCode::FORBIDDEN,
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The JSON-RPC code. None of these is a 2026-07-28 code (-32020..-32022), so a dual-era
    /// client probing with `server/discover` falls back to `initialize`.
    pub fn code(&self) -> i64 {
        match self {
            Rejection::Parse(_) => -32700,
            Rejection::Invalid(_)
            | Rejection::ContentType
            | Rejection::NotAcceptable(_)
            | Rejection::TooLarge(_) => -32600,
            _ => -32000,
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = encode::error_with_data(None, self.code(), &self.to_string(), None);
        let mut r = (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Rejection::MethodNotAllowed(_) = self {
            r.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        }
        r
    }
}

/// Why a 2026-07-28 (stateless) request was refused. Unlike [`Rejection`] these carry the
/// request's id, and their codes are the revision's own, so a dual-era client knows it reached
/// a modern server and corrects the request instead of falling back to `initialize`.
#[derive(Debug, thiserror::Error)]
pub enum StatelessError {
    /// `_meta` lacks what every request of the revision carries.
    #[error("Invalid params: {0}")]
    InvalidMeta(String),
    #[error("Header mismatch: {0}")]
    HeaderMismatch(String),
    #[error("Unsupported protocol version {0:?}; supported: {supported}", supported = versions::SUPPORTED.join(", "))]
    UnsupportedVersion(String),
    #[error("Method not found: {0}")]
    MethodNotFound(String),
    /// The server behind the gateway asked for something the client did not declare.
    #[error("the server needs the client capability '{0}' for this request, and the request's _meta[\"io.modelcontextprotocol/clientCapabilities\"] does not declare it")]
    MissingCapability(&'static str),
    /// `requestState` / `inputResponses` that do not fit a waiting call.
    #[error("Invalid params: {0}")]
    BadRetry(String),
}

impl StatelessError {
    pub fn status(&self) -> StatusCode {
        match self {
            StatelessError::MethodNotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            StatelessError::InvalidMeta(_) | StatelessError::BadRetry(_) => {
                ErrorCode::InvalidParams
            }
            StatelessError::HeaderMismatch(_) => ErrorCode::HeaderMismatch,
            StatelessError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            StatelessError::MethodNotFound(_) => ErrorCode::MethodNotFound,
            StatelessError::MissingCapability(_) => ErrorCode::MissingCapability,
        }
    }

    fn data(&self) -> Option<serde_json::Value> {
        match self {
            StatelessError::UnsupportedVersion(requested) => Some(serde_json::json!({
                "supported": versions::SUPPORTED,
                "requested": requested,
            })),
            StatelessError::MissingCapability(cap) => {
                Some(serde_json::json!({ "requiredCapabilities": { *cap: {} } }))
            }
            _ => None,
        }
    }

    /// The JSON-RPC error reply to request `id`.
    pub fn body(&self, id: &str) -> Vec<u8> {
        encode::error_with_data(
            Some(id),
            self.code() as i64,
            &self.to_string(),
            self.data().as_ref(),
        )
    }

    /// The whole HTTP reply to request `id` (always JSON: the error is all there is to say).
    pub fn into_response(self, id: &str) -> Response {
        (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            self.body(id),
        )
            .into_response()
    }
}
