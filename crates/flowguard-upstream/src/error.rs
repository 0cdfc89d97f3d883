//! Errors an upstream reports to the gateway. Each one says which server and what to do.

use flowguard_protocol::ErrorCode;

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("server '{server}' is not available: {reason}")]
    Unavailable { server: String, reason: String },
    #[error("server '{server}' did not answer within {secs} s")]
    Timeout { server: String, secs: u64 },
    #[error("server '{server}' closed the connection before answering ({reason})")]
    Closed { server: String, reason: String },
    #[error("server '{server}' is shutting down")]
    ShuttingDown { server: String },
    #[error("server '{server}' sent an invalid reply: {detail}")]
    BadReply { server: String, detail: String },
}

impl UpstreamError {
    /// The JSON-RPC code a client sees for this error (docs/errors.md).
    pub fn code(&self) -> ErrorCode {
        match self {
            UpstreamError::Timeout { .. } => ErrorCode::Timeout,
            UpstreamError::BadReply { .. } => ErrorCode::Internal,
            _ => ErrorCode::Unavailable,
        }
    }
}
