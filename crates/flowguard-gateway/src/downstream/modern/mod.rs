//! The 2026-07-28 ("stateless") revision on the same endpoints as the handshake era (dual-era,
//! spec: versioning and Streamable HTTP of 2026-07-28). A request without `Mcp-Session-Id` that
//! names the revision (header or `_meta`) is served here without a session: its `_meta` says
//! who the client is and what it can do; the handshake-era servers behind the gateway see an
//! ordinary request. Server-to-client requests become input-required results (`call.rs`,
//! `parked.rs`); list changes and resource updates go to `subscriptions/listen` streams
//! (`listen.rs`).

mod call;
mod checks;
mod listen;
mod parked;

pub(crate) use parked::ParkedCalls;

use super::reply::{self, Accept};
use crate::gateway::Gateway;
use crate::router;
use crate::session::{ClientHello, Scope, Session};
use axum::http::HeaderMap;
use axum::response::Response;
use call::Call;
use flowguard_protocol::{encode, methods, modern, versions, Envelope, ErrorCode, Kind};
use serde_json::{json, Value};
use std::sync::Arc;

/// Whether a message without a session belongs to the stateless era: its
/// `MCP-Protocol-Version` header or its `_meta` names a revision, and it is not a handshake
/// `initialize` (which carries `params.protocolVersion`). An unknown version in the header
/// also lands here, to get the revision's `-32022` naming what the gateway speaks.
pub(crate) fn selects(headers: &HeaderMap, env: &Envelope<'_>, params: &Value) -> bool {
    if env.kind() == Ok(Kind::Response) {
        return false;
    }
    if env.method() == methods::INITIALIZE && params.get("protocolVersion").is_some() {
        return false;
    }
    match super::http::header(headers, &crate::downstream::http::VERSION) {
        Some(v) if v == versions::STATELESS || !versions::is_supported(v) => true,
        _ => names_revision(params),
    }
}

/// Whether `params._meta` names a protocol revision (only 2026-07-28 requests carry one).
fn names_revision(params: &Value) -> bool {
    params
        .pointer("/_meta")
        .and_then(|m| m.get(modern::META_PROTOCOL_VERSION))
        .is_some()
}

/// Serves one stateless message.
pub(crate) async fn post(
    gw: Arc<Gateway>,
    scope: Scope,
    headers: &HeaderMap,
    env: &Envelope<'_>,
    params: Value,
    accept: Accept,
    who: Arc<flowguard_guard::Principal>,
) -> Response {
    if env.kind() == Ok(Kind::Notification) {
        // Nothing to act on without a session: cancellation is closing the response stream.
        return reply::accepted();
    }
    let id = env.id.map_or("null", |i| i.get());
    let checked = match checks::check(Some(headers), env, &params) {
        Ok(c) => c,
        Err(e) => return e.into_response(id),
    };
    let agent = who.subject.as_deref().map(str::to_string);
    tracing::debug!(method = env.method(), endpoint = ?scope, "stateless request");
    let info = server_info(&gw, &scope);
    match env.method() {
        methods::SERVER_DISCOVER => reply::json(discover(&gw, &scope, id, &info).await, accept),
        methods::SUBSCRIPTIONS_LISTEN => {
            listen::open(&gw, scope, agent, checked.hello, id, &params).await
        }
        method => {
            let forward = param_headers(headers);
            let session = Arc::new(Session::stateless(scope, agent, checked.hello, forward));
            session.set_principal(who);
            let call = Call::new(&gw, session, id, method, checked.log_level, info);
            if params.get("requestState").is_some() {
                call::resume(gw, call, &params, accept).await
            } else {
                let outcome = route(&gw, &call, env).await;
                call::respond(gw, call, outcome, accept).await
            }
        }
    }
}

/// Whether a line from a stdio client that has not initialized belongs to the stateless
/// revision: `server/discover` (a dual-era client's probe), or a request whose `_meta` names a
/// revision. There are no headers on stdio; the body says it all.
pub(crate) fn selects_line(env: &Envelope<'_>, params: &Value) -> bool {
    env.kind() == Ok(Kind::Request)
        && (env.method() == methods::SERVER_DISCOVER || names_revision(params))
}

/// Serves one stateless request from a stdio client (`flowguard wrap`, `flowguard stdio`), as
/// [`post`] does over HTTP without the header rules: its notifications and reply are lines on
/// `out`. `params` are the line's, already parsed (`selects_line`). A `subscriptions/listen`
/// lasts until `input_ended`.
pub(crate) async fn serve_line(
    gw: Arc<Gateway>,
    scope: Scope,
    line: bytes::Bytes,
    params: Value,
    out: tokio::sync::mpsc::UnboundedSender<bytes::Bytes>,
    input_ended: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(env) = Envelope::parse_lenient(&line) else {
        return;
    };
    let id = env.id.map_or("null", |i| i.get());
    let info = server_info(&gw, &scope);
    if env.method() == methods::SERVER_DISCOVER {
        let _ = out.send(discover(&gw, &scope, id, &info).await.into());
        return;
    }
    let checked = match checks::check(None, &env, &params) {
        Ok(c) => c,
        Err(e) => return drop(out.send(e.body(id).into())),
    };
    tracing::debug!(method = env.method(), endpoint = ?scope, "stateless request (stdio)");
    let method = env.method();
    if method == methods::SUBSCRIPTIONS_LISTEN {
        return listen::open_lines(&gw, scope, checked.hello, id, &params, out, input_ended).await;
    }
    let session = Arc::new(Session::stateless(scope, None, checked.hello, Vec::new()));
    session.set_principal(gw.guard.stdio_principal());
    let call = Call::new(&gw, session, id, method, checked.log_level, info);
    if params.get("requestState").is_some() {
        return call::resume_lines(gw, call, &params, &out).await;
    }
    let outcome = route(&gw, &call, &env).await;
    call::respond_lines(gw, call, outcome, &out).await
}

/// Routes a stateless request. The servers behind were initialized in the handshake era: they
/// get it without the revision's envelope (`flowguard_protocol::era`).
async fn route(gw: &Gateway, call: &Call, env: &Envelope<'_>) -> router::Outcome {
    let id = env.id.map_or("null", |i| i.get());
    if let Some(bytes) = flowguard_protocol::era::handshake_request(id, env.method(), env.params) {
        if let Ok(up) = Envelope::parse_lenient(&bytes) {
            return router::request(gw, &call.session, &up).await;
        }
    }
    router::request(gw, &call.session, env).await
}

/// The `Mcp-Param-*` headers (tool arguments a client mirrors into headers): intermediaries
/// must pass them on, so they go with the request to a remote server.
fn param_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("mcp-param-"))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// How the endpoint names itself in `_meta["io.modelcontextprotocol/serverInfo"]`: a routed
/// endpoint as its server does, the unified one as the gateway.
fn server_info(gw: &Gateway, scope: &Scope) -> String {
    let own = match scope {
        Scope::Routed(sid) => gw
            .server(sid)
            .and_then(|s| s.init_result())
            .and_then(|r| r.get("serverInfo").cloned()),
        Scope::Virtual(v) => Some(router::virtual_info(&v.name)),
        Scope::Unified => None,
    };
    own.unwrap_or_else(router::gateway_info).to_string()
}

/// `server/discover`: what `initialize` would say, in the revision's shape.
async fn discover(gw: &Gateway, scope: &Scope, id: &str, info: &str) -> Vec<u8> {
    // What a session of this endpoint would be offered; per-session instances it needs for
    // that are stopped again when the probe's session ends.
    let probe = Session::stateless(scope.clone(), None, ClientHello::default(), Vec::new());
    let init = router::initialize_result(gw, &probe, versions::LATEST).await;
    gw.end_stateless(&probe);
    let init = match init {
        Ok(init) => init,
        Err(e) => return encode::error(Some(id), ErrorCode::Unavailable, &e),
    };
    let mut result = json!({
        "supportedVersions": versions::SUPPORTED,
        "capabilities": init.get("capabilities").cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(text) = init.get("instructions") {
        result["instructions"] = text.clone();
    }
    let text = call::complete(&result.to_string(), true, info);
    encode::result_json(id, text.as_bytes())
}
