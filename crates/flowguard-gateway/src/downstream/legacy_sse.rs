//! The 2024-11-05 HTTP+SSE transport, for older clients: `GET /sse` opens the session's event
//! stream and names, in its first `endpoint` event, the URL to POST messages to
//! (`/messages?sessionId=...`); every reply and server message then arrives on that stream.
//! Messages take the same router as on the other transports. The session ends when the client
//! closes the stream.

use super::env_headers::env_from_headers;
use super::http::SESSION_QUERY;
use super::in_flight::forward_all;
use super::reply;
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::router;
use crate::session::{new_session_id, ClientHello, Scope, Session};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use flowguard_protocol::{encode, methods, Envelope, ErrorCode, Kind};
use std::sync::Arc;

/// Ends the session when the client's event stream goes away.
struct EndOnDrop {
    gw: Arc<Gateway>,
    session: Arc<Session>,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.gw.end_session(&self.session);
        tracing::info!(session = %self.session.id, "HTTP+SSE stream closed; session ended");
    }
}

/// `GET .../sse`: a new session and its event stream, starting with the `endpoint` event.
pub(crate) async fn open(
    gw: Arc<Gateway>,
    scope: Scope,
    headers: &HeaderMap,
    messages_path: &str,
) -> Response {
    if gw.lifecycle.is_closing() {
        return Rejection::ShuttingDown.into_response();
    }
    let env = match env_from_headers(&gw, &scope, headers) {
        Ok(env) => env,
        Err(r) => return r.into_response(),
    };
    let Some(slot) = gw.admit_session() else {
        return Rejection::TooManySessions(gw.settings.max_sessions).into_response();
    };
    let who = match gw.guard.authenticate(headers).await {
        Ok(p) => p,
        Err(e) => return crate::audit::refused(&gw, &scope, &e, "GET /sse").await,
    };
    let agent = who.subject.as_deref().map(str::to_string);
    let session = Arc::new(Session::new(new_session_id(), scope, agent, None));
    session.set_principal(who);
    session.set_header_env(env);
    session.touch();
    gw.sessions.insert(session.clone());
    drop(slot);
    tracing::info!(session = %session.id, endpoint = ?session.scope, "HTTP+SSE session started");
    let endpoint = format!(
        "event: endpoint\ndata: {messages_path}?{SESSION_QUERY}={}\n\n",
        session.id
    );
    let rx = session.open_stream();
    reply::session_stream(Some(Bytes::from(endpoint)), rx, EndOnDrop { gw, session })
}

/// The session a `?sessionId=` names, on this endpoint.
fn session_of(gw: &Gateway, scope: &Scope, uri: &Uri) -> Result<Arc<Session>, Rejection> {
    let id = uri
        .query()
        .and_then(|q| {
            q.split('&').find_map(|kv| {
                kv.strip_prefix(SESSION_QUERY)
                    .and_then(|v| v.strip_prefix('='))
            })
        })
        .ok_or(Rejection::MissingSession)?;
    let s = gw
        .sessions
        .get(id)
        .filter(|s| &s.scope == scope)
        .ok_or(Rejection::UnknownSession)?;
    s.touch();
    Ok(s)
}

/// `POST .../messages?sessionId=...`: accepted with 202; whatever answers it goes on the stream.
pub(crate) async fn message(
    gw: Arc<Gateway>,
    scope: Scope,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if gw.lifecycle.is_closing() {
        return Rejection::ShuttingDown.into_response();
    }
    let who = match gw.guard.authenticate(headers).await {
        Ok(p) => p,
        Err(e) => return crate::audit::refused(&gw, &scope, &e, "POST /message").await,
    };
    let session = match session_of(&gw, &scope, uri) {
        Ok(s) if !gw.guard.binds_sessions() || s.owned_by(&who) => s,
        Ok(_) => return Rejection::UnknownSession.into_response(),
        Err(r) => return r.into_response(),
    };
    if let Err(r) = reply::require_json(headers) {
        return r.into_response();
    }
    let env = match reply::parse_body(&body) {
        Ok(env) => env,
        Err(r) => return r.into_response(),
    };
    match env.kind().expect("parse checked the kind") {
        Kind::Notification => router::notification(&gw, &session, &env),
        Kind::Response => router::response(&gw, &session, &env),
        Kind::Request => {
            drop(env);
            tokio::spawn(run_request(gw, session, body));
        }
    }
    StatusCode::ACCEPTED.into_response()
}

async fn run_request(gw: Arc<Gateway>, session: Arc<Session>, body: Bytes) {
    let env = Envelope::parse_lenient(&body).expect("parsed once already");
    let id = env.id.map_or("null", |i| i.get()).to_string();
    if env.method() == methods::INITIALIZE {
        if let Some(reply) = router::refused(&gw, &session.principal(), &id, methods::INITIALIZE) {
            session.push(reply.into());
            return;
        }
        let params: serde_json::Value = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let version = router::negotiate(&params);
        session.set_hello(ClientHello::from_initialize(&params, version));
        let reply = match router::initialize_result(&gw, &session, version).await {
            Ok(result) => encode::result_value(&id, &result),
            Err(e) => encode::error(Some(&id), ErrorCode::Unavailable, &e),
        };
        session.push(reply.into());
        return;
    }
    let outcome = router::request(&gw, &session, &env).await;
    forward_all(outcome, id, |msg| {
        session.push(msg);
    })
    .await;
}
