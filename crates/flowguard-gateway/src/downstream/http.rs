//! The Streamable HTTP endpoints: `/mcp` (unified), `/mcp/{server}` (routed), `/health` and
//! `/close`. POST carries client messages, GET opens the server-to-client stream, DELETE ends a
//! session (MCP transports spec, revisions 2025-03-26 to 2025-11-25). POSTs without a session
//! that name the 2026-07-28 revision are served statelessly by `modern`.

use super::env_headers::env_from_headers;
use super::guard::HostGuard;
use super::legacy_sse;
use super::modern;
use super::reply::{self, Accept};
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::health;
use crate::identity;
use crate::replay;
use crate::router;
use crate::session::{new_session_id, ClientHello, Scope, Session};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{AsHeaderName, HeaderName};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use flowguard_config::Mode;
use flowguard_protocol::{encode, methods, versions, Envelope, ErrorCode, Kind};
use std::net::SocketAddr;
use std::sync::Arc;

pub const SESSION_HEADER: &str = "mcp-session-id";
/// The same names as `HeaderName`s: a lookup by `HeaderName` skips parsing and lower-casing
/// the name, and these run for every message.
static SESSION: HeaderName = HeaderName::from_static(SESSION_HEADER);
pub(crate) static VERSION: HeaderName = HeaderName::from_static(VERSION_HEADER);
/// The query parameter naming the session on the old HTTP+SSE transport's message URL.
pub(crate) const SESSION_QUERY: &str = "sessionId";
const VERSION_HEADER: &str = "mcp-protocol-version";
const LAST_EVENT_HEADER: &str = "last-event-id";

/// The whole HTTP surface for a gateway listening on `listen`.
pub fn app(gw: Arc<Gateway>, listen: SocketAddr) -> Router {
    let host_guard = HostGuard::new(
        listen,
        &gw.settings.allowed_hosts,
        &gw.settings.allowed_origins,
    );
    // Checked first in every handler (`admit`) rather than as a middleware layer, which cost a
    // boxed future per request on the hot path.
    let _ = gw.host_guard.set(host_guard);
    let unified = get(get_unified).post(post_unified).delete(delete_unified);
    let routed = get(get_routed).post(post_routed).delete(delete_routed);
    Router::new()
        .route("/mcp", unified.clone())
        .route("/mcp/", unified)
        .route("/mcp/{server}", routed.clone())
        .route("/mcp/{server}/", routed)
        // The 2024-11-05 HTTP+SSE transport, for older clients.
        .route("/sse", get(sse_unified))
        .route("/messages", post(messages_unified))
        .route("/mcp/{server}/sse", get(sse_routed))
        .route("/mcp/{server}/messages", post(messages_routed))
        .merge(crate::guard::metadata_routes())
        .route("/health", get(health::health))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/close", post(health::close))
        // Bodies are read (bounded by limits.max_request_bytes) before the router sees them.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(gw)
}

/// DNS-rebinding protection: the Host and Origin headers must name this gateway.
pub(crate) fn admit(gw: &Gateway, headers: &HeaderMap) -> Result<(), Rejection> {
    match gw.host_guard.get() {
        Some(g) => g.check(
            header(headers, &header::HOST),
            header(headers, &header::ORIGIN),
        ),
        None => Ok(()),
    }
}

fn unified_scope(gw: &Gateway, headers: &HeaderMap) -> Result<Scope, Rejection> {
    admit(gw, headers)?;
    match gw.mode {
        Mode::Routed => Err(Rejection::NoEndpoint(
            "the unified endpoint /mcp is off (routed mode); use /mcp/<server>".into(),
        )),
        _ => Ok(Scope::Unified),
    }
}

/// `/mcp/{name}`: a server's own endpoint, or a virtual server's. Virtual servers are served in
/// every mode (they were configured on purpose); servers' own endpoints not in unified mode.
fn routed_scope(gw: &Gateway, headers: &HeaderMap, server: &str) -> Result<Scope, Rejection> {
    admit(gw, headers)?;
    if let Some(v) = gw.virtual_server(server) {
        return Ok(Scope::Virtual(v.clone()));
    }
    if gw.mode == Mode::Unified {
        return Err(Rejection::NoEndpoint(
            "per-server endpoints are off (unified mode); use /mcp".into(),
        ));
    }
    match gw.server(server) {
        Some(s) => Ok(Scope::Routed(s.shared_id())),
        None => {
            let ids: Vec<&str> = gw
                .servers()
                .iter()
                .map(|s| s.id())
                .chain(gw.virtual_servers().iter().map(|v| &*v.name))
                .collect();
            Err(Rejection::UnknownServer(server.to_string(), ids.join(", ")))
        }
    }
}

async fn post_unified(State(gw): State<Arc<Gateway>>, headers: HeaderMap, body: Bytes) -> Response {
    post_unified_parts(gw, headers, body).await
}

async fn post_routed(
    State(gw): State<Arc<Gateway>>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    post_routed_parts(gw, &server, headers, body).await
}

/// `POST /mcp`, from the router or the server loop's fast path (`serve.rs`).
pub(crate) async fn post_unified_parts(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match unified_scope(&gw, &headers) {
        Ok(scope) => post_message(gw, scope, headers, body).await,
        Err(r) => r.into_response(),
    }
}

/// `POST /mcp/{server}`, from the router or the server loop's fast path (`serve.rs`).
pub(crate) async fn post_routed_parts(
    gw: Arc<Gateway>,
    server: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match routed_scope(&gw, &headers, server) {
        Ok(scope) => post_message(gw, scope, headers, body).await,
        Err(r) => r.into_response(),
    }
}

async fn get_unified(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match unified_scope(&gw, &headers) {
        Ok(scope) => open_stream(&gw, scope, &headers).await,
        Err(r) => r.into_response(),
    }
}

async fn get_routed(
    State(gw): State<Arc<Gateway>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    match routed_scope(&gw, &headers, &server) {
        Ok(scope) => open_stream(&gw, scope, &headers).await,
        Err(r) => r.into_response(),
    }
}

async fn delete_unified(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match unified_scope(&gw, &headers) {
        Ok(scope) => end_session(&gw, scope, &headers).await,
        Err(r) => r.into_response(),
    }
}

async fn delete_routed(
    State(gw): State<Arc<Gateway>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    match routed_scope(&gw, &headers, &server) {
        Ok(scope) => end_session(&gw, scope, &headers).await,
        Err(r) => r.into_response(),
    }
}

async fn sse_unified(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    match unified_scope(&gw, &headers) {
        Ok(scope) => legacy_sse::open(gw, scope, &headers, "/messages").await,
        Err(r) => r.into_response(),
    }
}

async fn sse_routed(
    State(gw): State<Arc<Gateway>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    match routed_scope(&gw, &headers, &server) {
        Ok(scope) => {
            legacy_sse::open(gw, scope, &headers, &format!("/mcp/{server}/messages")).await
        }
        Err(r) => r.into_response(),
    }
}

async fn messages_unified(
    State(gw): State<Arc<Gateway>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match unified_scope(&gw, &headers) {
        Ok(scope) => legacy_sse::message(gw, scope, &uri, &headers, body).await,
        Err(r) => r.into_response(),
    }
}

async fn messages_routed(
    State(gw): State<Arc<Gateway>>,
    Path(server): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match routed_scope(&gw, &headers, &server) {
        Ok(scope) => legacy_sse::message(gw, scope, &uri, &headers, body).await,
        Err(r) => r.into_response(),
    }
}

pub(crate) fn header(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session a request names. Missing → 400; unknown, ended, or of another endpoint → 404.
fn session_for(
    gw: &Gateway,
    scope: &Scope,
    headers: &HeaderMap,
    who: &flowguard_guard::Principal,
) -> Result<Arc<Session>, Rejection> {
    let value = headers.get(&SESSION).ok_or(Rejection::MissingSession)?;
    // An id that is not even text names no session: 404, as for any unknown id.
    let id = value.to_str().map_err(|_| Rejection::UnknownSession)?;
    let session = gw
        .sessions
        .get(id)
        .filter(|s| &s.scope == scope)
        // Another principal's session looks exactly like one that does not exist.
        .filter(|s| !gw.guard.binds_sessions() || s.owned_by(who))
        .ok_or(Rejection::UnknownSession)?;
    session.touch();
    Ok(session)
}

fn check_version(headers: &HeaderMap) -> Result<(), Rejection> {
    match header(headers, &VERSION) {
        // Any supported revision is accepted, not only the negotiated one: real clients drift.
        Some(v) if !versions::is_supported(v) => Err(Rejection::UnsupportedVersion(
            v.to_string(),
            versions::SUPPORTED.join(", "),
        )),
        _ => Ok(()),
    }
}

/// A POST, as the request its `X-Request-ID` names (or a new id), echoed in the reply.
async fn post_message(gw: Arc<Gateway>, scope: Scope, headers: HeaderMap, body: Bytes) -> Response {
    let id = crate::request_id::from_headers(&headers);
    let labels = crate::request_id::labels_from_headers(&headers);
    let mut r = if gw.tracer.is_some() {
        let tp = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let f = Box::pin(post_request(gw, scope, headers, body));
        crate::request_id::scope(
            id.clone(),
            labels,
            crate::trace::with_incoming(tp.as_deref(), f),
        )
        .await
    } else {
        crate::request_id::scope(id.clone(), labels, post_request(gw, scope, headers, body)).await
    };
    crate::request_id::echo(r.headers_mut(), &id);
    r
}

async fn post_request(gw: Arc<Gateway>, scope: Scope, headers: HeaderMap, body: Bytes) -> Response {
    if gw.lifecycle.is_closing() {
        return Rejection::ShuttingDown.into_response();
    }
    let _in_flight = gw.lifecycle.enter();
    if let Err(r) = reply::require_json(&headers) {
        return r.into_response();
    }
    let accept = Accept::parse(header(&headers, &header::ACCEPT));
    if !accept.json && !accept.sse {
        return Rejection::NotAcceptable("application/json and text/event-stream").into_response();
    }
    let env = match reply::parse_body(&body) {
        Ok(env) => env,
        Err(r) => return r.into_response(),
    };
    // Authentication before anything kept per caller (DESIGN-NOTES §1; guard/mod.rs).
    let who = match gw.guard.authenticate(&headers).await {
        Ok(p) => p,
        Err(e) => return crate::audit::refused(&gw, &scope, &e, env.method()).await,
    };
    let no_session = !headers.contains_key(&SESSION);
    if no_session {
        // Only requests without a session can be of the stateless revision (dual-era).
        let params: serde_json::Value = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        if modern::selects(&headers, &env, &params) {
            return modern::post(gw.clone(), scope, &headers, &env, params, accept, who).await;
        }
    }
    if let Err(r) = check_version(&headers) {
        return r.into_response();
    }
    let kind = env.kind().expect("parse checked the kind");
    if kind == Kind::Request && env.method() == methods::INITIALIZE {
        return initialize(&gw, scope, &headers, &env, accept, who).await;
    }
    if no_session && kind == Kind::Request && env.method() == methods::TOOLS_CALL {
        return call_without_session(&gw, scope, &headers, &env, accept, who).await;
    }
    let session = match session_for(&gw, &scope, &headers, &who) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    tracing::debug!(
        session = %session.id,
        agent = session.agent.as_deref().map(identity::loggable).unwrap_or_default(),
        method = env.method(),
        "message"
    );
    match kind {
        Kind::Notification => {
            router::notification(&gw, &session, &env);
            reply::accepted()
        }
        Kind::Response => {
            router::response(&gw, &session, &env);
            reply::accepted()
        }
        Kind::Request => {
            let client_id = env.id.map_or("null", |i| i.get()).to_string();
            let outcome = router::request(&gw, &session, &env).await;
            reply::respond(outcome, client_id, accept, session).await
        }
    }
}

/// Creates a session from an `initialize`'s params (or none, for a transparent one), and the
/// `InitializeResult` to answer with.
async fn start_session(
    gw: &Gateway,
    scope: Scope,
    headers: &HeaderMap,
    params: &serde_json::Value,
    transparent: bool,
    who: Arc<flowguard_guard::Principal>,
) -> Result<(Arc<Session>, serde_json::Value), String> {
    let version = router::negotiate(params);
    let hello = ClientHello::from_initialize(params, version);
    let agent = who.subject.as_deref().map(str::to_string);
    let session = Arc::new(Session::new(new_session_id(), scope, agent, Some(hello)));
    session.set_principal(who);
    session
        .auto
        .store(transparent, std::sync::atomic::Ordering::Relaxed);
    session.touch();
    if let Ok(env) = env_from_headers(gw, &session.scope, headers) {
        session.set_header_env(env);
    }
    let result = match router::initialize_result(gw, &session, version).await {
        Ok(result) => result,
        Err(e) => {
            // Stops any per-session instance started for it.
            gw.end_session(&session);
            return Err(e);
        }
    };
    tracing::info!(
        session = %session.id,
        agent = session.agent.as_deref().map(identity::loggable).unwrap_or_else(|| "-".into()),
        client = %session.hello().client_info.get("name").and_then(|n| n.as_str()).unwrap_or("?"),
        version,
        endpoint = ?session.scope,
        "session started"
    );
    gw.insert_session(session.clone());
    Ok((session, result))
}

fn with_session_header(mut response: Response, session: &Session) -> Response {
    let sid = HeaderValue::from_str(&session.id).expect("hex ids are valid header values");
    response.headers_mut().insert(SESSION_HEADER, sid);
    response
}

async fn initialize(
    gw: &Gateway,
    scope: Scope,
    headers: &HeaderMap,
    env: &Envelope<'_>,
    accept: Accept,
    who: Arc<flowguard_guard::Principal>,
) -> Response {
    let id = env.id.map_or("null", |i| i.get());
    let params: serde_json::Value = env
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or_default();
    if let Some(reply) = router::refused(gw, &who, id, methods::INITIALIZE) {
        return reply::json(reply, accept);
    }
    if let Err(r) = env_from_headers(gw, &scope, headers) {
        return r.into_response();
    }
    // The slot is held until the session is in the store (start_session may wait for servers).
    let Some(_slot) = gw.admit_session() else {
        return Rejection::TooManySessions(gw.settings.max_sessions).into_response();
    };
    match start_session(gw, scope, headers, &params, false, who).await {
        Ok((session, result)) => with_session_header(
            reply::json(encode::result_value(id, &result), accept),
            &session,
        ),
        Err(e) => reply::json(encode::error(Some(id), ErrorCode::Unavailable, &e), accept),
    }
}

/// Some clients call a tool without initializing first (ROADMAP D5). Such a `tools/call` gets a
/// session of its own, as if it had sent `initialize` with no capabilities, and the reply names
/// it in `Mcp-Session-Id`. Only `tools/call`: any other request without a session stays a 400.
/// (A `tools/call` naming the 2026-07-28 revision is served statelessly instead: `modern`.)
async fn call_without_session(
    gw: &Arc<Gateway>,
    scope: Scope,
    headers: &HeaderMap,
    env: &Envelope<'_>,
    accept: Accept,
    who: Arc<flowguard_guard::Principal>,
) -> Response {
    if let Err(r) = env_from_headers(gw, &scope, headers) {
        return r.into_response();
    }
    let Some(_slot) = gw.admit_session() else {
        return Rejection::TooManySessions(gw.settings.max_sessions).into_response();
    };
    let session = match start_session(gw, scope, headers, &serde_json::Value::Null, true, who).await
    {
        Ok((session, _)) => session,
        Err(e) => {
            let id = env.id.map_or("null", |i| i.get());
            return reply::json(encode::error(Some(id), ErrorCode::Unavailable, &e), accept);
        }
    };
    tracing::info!(session = %session.id, "tools/call before initialize: session created transparently");
    let client_id = env.id.map_or("null", |i| i.get()).to_string();
    let outcome = router::request(gw, &session, env).await;
    let response = reply::respond(outcome, client_id, accept, session.clone()).await;
    with_session_header(response, &session)
}

async fn open_stream(gw: &Gateway, scope: Scope, headers: &HeaderMap) -> Response {
    if gw.lifecycle.is_closing() {
        return Rejection::ShuttingDown.into_response();
    }
    if !Accept::parse(header(headers, &header::ACCEPT)).sse {
        return Rejection::NotAcceptable("text/event-stream").into_response();
    }
    if let Err(r) = check_version(headers) {
        return r.into_response();
    }
    if let Some(r) = stateless_get_or_delete(headers) {
        return r.into_response();
    }
    let who = match gw.guard.authenticate(headers).await {
        Ok(p) => p,
        Err(e) => return crate::audit::refused(gw, &scope, &e, "GET (stream)").await,
    };
    let session = match session_for(gw, &scope, headers, &who) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let Some(last) = header(headers, LAST_EVENT_HEADER) else {
        return reply::session_stream(None, session.open_stream(), ());
    };
    // A reconnecting client: the rest of the one stream its last event belongs to.
    let Some((no, after)) = replay::parse_event_id(last) else {
        return Rejection::UnknownEvent(last.to_string()).into_response();
    };
    if no == replay::GET_STREAM {
        let (missed, rx) = session.resume_stream(after);
        let mut preamble = Vec::new();
        for (seq, msg) in &missed {
            preamble.extend_from_slice(&reply::get_event(*seq, msg));
        }
        let preamble = (!preamble.is_empty()).then(|| Bytes::from(preamble));
        return reply::session_stream(preamble, rx, ());
    }
    match reply::resume(session, no, after) {
        Some(r) => r,
        None => Rejection::UnknownEvent(last.to_string()).into_response(),
    }
}

/// A 2026-07-28 client (its version header, no session) has no GET stream and no session to
/// end: 405, as the revision says a server answers such traffic.
fn stateless_get_or_delete(headers: &HeaderMap) -> Option<Rejection> {
    let stateless = header(headers, &SESSION).is_none()
        && header(headers, &VERSION) == Some(versions::STATELESS);
    stateless.then_some(Rejection::MethodNotAllowed(
        "2026-07-28 has no GET stream or session; POST subscriptions/listen for notifications",
    ))
}

async fn end_session(gw: &Gateway, scope: Scope, headers: &HeaderMap) -> Response {
    if let Some(r) = stateless_get_or_delete(headers) {
        return r.into_response();
    }
    let who = match gw.guard.authenticate(headers).await {
        Ok(p) => p,
        Err(e) => return crate::audit::refused(gw, &scope, &e, "DELETE (session)").await,
    };
    match session_for(gw, &scope, headers, &who) {
        Ok(session) => {
            gw.end_session(&session);
            tracing::info!(session = %session.id, "session ended by the client");
            StatusCode::OK.into_response()
        }
        Err(r) => r.into_response(),
    }
}
