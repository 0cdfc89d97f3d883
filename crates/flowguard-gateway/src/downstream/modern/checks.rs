//! What a 2026-07-28 request must carry before anything acts on it: `_meta` with the protocol
//! version and client capabilities, and the headers that mirror the body (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`), so that intermediaries routing on headers see the truth.

use crate::downstream::http::header;
use crate::error::StatelessError;
use crate::session::ClientHello;
use axum::http::HeaderMap;
use flowguard_protocol::modern::{self, decode_header_value};
use flowguard_protocol::{methods, versions, Envelope};
use serde_json::Value;

/// The methods of the revision the gateway serves. The handshake era's `initialize`, `ping`,
/// `logging/setLevel` and `resources/(un)subscribe` are not among them: the revision removed
/// them, and a stateless client that sends one gets 404 as for any unknown method.
const SERVED: &[&str] = &[
    methods::SERVER_DISCOVER,
    methods::SUBSCRIPTIONS_LISTEN,
    methods::TOOLS_LIST,
    methods::TOOLS_CALL,
    methods::PROMPTS_LIST,
    methods::PROMPTS_GET,
    methods::RESOURCES_LIST,
    methods::RESOURCE_TEMPLATES_LIST,
    methods::RESOURCES_READ,
    methods::COMPLETE,
];

/// What a request that passed the checks says about its client.
pub(crate) struct Checked {
    pub hello: ClientHello,
    /// The least severe log level the client wants; `None`: no log messages at all.
    pub log_level: Option<usize>,
}

/// The checks of a request over HTTP (`headers`), or over stdio (`None`: no headers to mirror
/// the body).
pub(crate) fn check(
    headers: Option<&HeaderMap>,
    env: &Envelope<'_>,
    params: &Value,
) -> Result<Checked, StatelessError> {
    const META: &str = "params._meta[\"io.modelcontextprotocol/";
    // A version header naming no revision the gateway knows: the revision's own answer, which
    // names the versions spoken, before anything else is looked at.
    if let Some(v) = headers.and_then(|h| header(h, &crate::downstream::http::VERSION)) {
        if !versions::is_supported(v) {
            return Err(StatelessError::UnsupportedVersion(v.to_string()));
        }
    }
    let meta = params.get("_meta").and_then(Value::as_object).ok_or_else(|| {
        StatelessError::InvalidMeta(
            "params._meta is missing; a 2026-07-28 request names its protocolVersion and clientCapabilities there".into(),
        )
    })?;
    let version = meta
        .get(modern::META_PROTOCOL_VERSION)
        .and_then(Value::as_str)
        .ok_or_else(|| {
            StatelessError::InvalidMeta(format!("{META}protocolVersion\"] is missing"))
        })?;
    let capabilities = meta
        .get(modern::META_CLIENT_CAPABILITIES)
        .filter(|c| c.is_object())
        .ok_or_else(|| {
            StatelessError::InvalidMeta(format!(
                "{META}clientCapabilities\"] is missing or not an object"
            ))
        })?;
    match headers.map(|h| header(h, &crate::downstream::http::VERSION)) {
        None => {}
        Some(None) => {
            return Err(StatelessError::HeaderMismatch(format!(
                "the MCP-Protocol-Version header is missing; send MCP-Protocol-Version: {version}"
            )))
        }
        Some(Some(h)) if h != version => {
            return Err(StatelessError::HeaderMismatch(format!(
                "MCP-Protocol-Version header value '{h}' does not match body value '{version}'"
            )))
        }
        Some(_) => {}
    }
    if version != versions::STATELESS {
        return Err(StatelessError::UnsupportedVersion(version.to_string()));
    }
    let method = env.method();
    if let Some(headers) = headers {
        mirrored(headers, modern::HEADER_METHOD, "Mcp-Method", Some(method))?;
    }
    if !SERVED.contains(&method) {
        return Err(StatelessError::MethodNotFound(format!(
            "{method} is not served to 2026-07-28 requests"
        )));
    }
    let name_field = match method {
        methods::TOOLS_CALL | methods::PROMPTS_GET => Some("name"),
        methods::RESOURCES_READ => Some("uri"),
        _ => None,
    };
    if let (Some(field), Some(headers)) = (name_field, headers) {
        let value = params.get(field).and_then(Value::as_str);
        mirrored(headers, modern::HEADER_NAME, "Mcp-Name", value)?;
    }
    let log_level = match meta.get(modern::META_LOG_LEVEL) {
        None | Some(Value::Null) => None,
        Some(level) => Some(level.as_str().and_then(modern::log_rank).ok_or_else(|| {
            StatelessError::InvalidMeta(format!(
                "{META}logLevel\"] = {level} is not a log level (debug, info, notice, warning, error, critical, alert, emergency)"
            ))
        })?),
    };
    Ok(Checked {
        hello: ClientHello {
            protocol_version: version.to_string(),
            capabilities: capabilities.clone(),
            client_info: meta
                .get(modern::META_CLIENT_INFO)
                .cloned()
                .unwrap_or_default(),
        },
        log_level,
    })
}

/// A header that must equal a body value (`=?base64?...?=` values decoded first).
fn mirrored(
    headers: &HeaderMap,
    name: &str,
    shown: &str,
    body: Option<&str>,
) -> Result<(), StatelessError> {
    let Some(raw) = header(headers, name) else {
        return Err(StatelessError::HeaderMismatch(format!(
            "the {shown} header is missing; it must repeat the body's value{}",
            body.map(|b| format!(" ('{b}')")).unwrap_or_default()
        )));
    };
    let decoded = decode_header_value(raw).ok_or_else(|| {
        StatelessError::HeaderMismatch(format!(
            "{shown} header value '{raw}' is not valid =?base64?...?= encoded UTF-8"
        ))
    })?;
    match body {
        Some(b) if b == decoded => Ok(()),
        Some(b) => Err(StatelessError::HeaderMismatch(format!(
            "{shown} header value '{decoded}' does not match body value '{b}'"
        ))),
        None => Err(StatelessError::HeaderMismatch(format!(
            "{shown} header value '{decoded}' has no counterpart in the body"
        ))),
    }
}
