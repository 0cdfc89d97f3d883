//! The gateway over stdin/stdout, for clients that launch their servers as programs (Claude
//! Desktop, Claude Code): one JSON-RPC message per line each way, one client session for the
//! life of the process. Messages take the same router as over HTTP, so a wrapped server gets
//! the same routing (and, later, the same security) as one behind the HTTP endpoint. Nothing
//! but MCP messages is written to stdout; logs go to stderr. A client that does not initialize
//! and names the 2026-07-28 revision in its requests' `_meta` (or probes with
//! `server/discover`) is served statelessly, as over HTTP (`modern::serve_line`).

use super::in_flight::forward_all;
use super::modern;
use crate::gateway::Gateway;
use crate::router;
use crate::session::{new_session_id, ClientHello, Scope, Session};
use bytes::Bytes;
use flowguard_protocol::lines::LineRead;
use flowguard_protocol::{encode, methods, Envelope, ErrorCode, Kind};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Serves one client on `input`/`output` until the input ends; the session ends with it.
pub async fn serve<R, W>(gw: Arc<Gateway>, scope: Scope, input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out, out_rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(write_lines(output, out_rx));
    let mut lines = BufReader::new(input);
    let mut line = Vec::new();
    let mut session: Option<Arc<Session>> = None;
    // Set at the end of input: ends the 2026-07-28 listen subscriptions of this client.
    let (input_ended, ended_rx) = tokio::sync::watch::channel(false);
    let mut stateless = Stateless {
        seen: false,
        input_ended: ended_rx,
        running: HashMap::new(),
    };
    let max = gw.settings.max_line_bytes;
    loop {
        // Capped while it is read: a client that never sends a newline cannot grow it.
        match flowguard_upstream::read_capped(&mut lines, &mut line, max).await? {
            LineRead::Eof => break,
            LineRead::TooLong => {
                let msg = format!("message larger than max_line_bytes ({max})");
                let _ = out.send(encode::error(None, ErrorCode::InvalidRequest, &msg).into());
                continue;
            }
            LineRead::Line => {}
        }
        let text = line.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let line = Bytes::copy_from_slice(text);
        handle_line(&gw, &scope, &mut session, line, &out, &mut stateless).await;
    }
    let _ = input_ended.send(true);
    if let Some(s) = session {
        gw.end_session(&s);
    }
    drop(out);
    let _ = writer.await;
    Ok(())
}

async fn write_lines<W: AsyncWrite + Unpin>(mut output: W, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(msg) = rx.recv().await {
        let mut buf = Vec::with_capacity(msg.len() + 1);
        buf.extend_from_slice(&msg);
        buf.push(b'\n');
        while let Ok(more) = rx.try_recv() {
            buf.extend_from_slice(&more);
            buf.push(b'\n');
        }
        if output.write_all(&buf).await.is_err() || output.flush().await.is_err() {
            break;
        }
    }
}

/// The stateless (2026-07-28) requests of a client that did not initialize, while they run.
struct Stateless {
    /// The client spoke the stateless revision: what it sends without a request (other than a
    /// cancellation) has nothing to act on, and gets it no handshake session.
    seen: bool,
    /// Set at the end of input: ends listen subscriptions.
    input_ended: tokio::sync::watch::Receiver<bool>,
    /// Request id (as sent) → its task, for `notifications/cancelled`.
    running: HashMap<String, tokio::task::AbortHandle>,
}

async fn handle_line(
    gw: &Arc<Gateway>,
    scope: &Scope,
    session: &mut Option<Arc<Session>>,
    line: Bytes,
    out: &mpsc::UnboundedSender<Bytes>,
    stateless: &mut Stateless,
) {
    let env = match Envelope::parse(&line) {
        Ok(env) => env,
        Err(e) => {
            let _ = out.send(encode::error(None, e.code(), &e.to_string()).into());
            return;
        }
    };
    let kind = env.kind().expect("parse checked the kind");
    if session.is_none() {
        // A client that did not initialize may speak the stateless 2026-07-28 revision: served
        // as over HTTP, each request on its own (dual-era, like the bare server would be).
        let params: serde_json::Value = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        if modern::selects_line(&env, &params) {
            // Keyed as `notifications/cancelled` will name it (the id as JSON, re-encoded).
            let id = env
                .id
                .and_then(|i| serde_json::from_str::<serde_json::Value>(i.get()).ok())
                .map_or_else(|| "null".to_string(), |v| v.to_string());
            drop(env);
            let (gw, scope, out) = (gw.clone(), scope.clone(), out.clone());
            let ended = stateless.input_ended.clone();
            let task = tokio::spawn(modern::serve_line(gw, scope, line, params, out, ended));
            stateless.seen = true;
            stateless.running.retain(|_, t| !t.is_finished());
            stateless.running.insert(id, task.abort_handle());
            return;
        }
        if stateless.seen && kind != Kind::Request {
            // A stateless client's cancellation ends its request (dropping it cancels it
            // upstream); nothing else it sends without a request has anything to act on.
            if env.method() == methods::CANCELLED {
                let req = params.get("requestId").map(|v| v.to_string());
                if let Some(task) = req.and_then(|id| stateless.running.remove(&id)) {
                    task.abort();
                }
            }
            return;
        }
    }
    if kind == Kind::Request && env.method() == methods::INITIALIZE {
        let id = env.id.map_or("null", |i| i.get()).to_string();
        let who = gw.guard.stdio_principal();
        if let Some(reply) = router::refused(gw, &who, &id, methods::INITIALIZE) {
            let _ = out.send(reply.into());
            return;
        }
        let params: serde_json::Value = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or_default();
        let reply = initialize(gw, scope, session, &params, out).await;
        let _ = out.send(match reply {
            Ok(result) => encode::result_value(&id, &result).into(),
            Err(e) => encode::error(Some(&id), ErrorCode::Unavailable, &e).into(),
        });
        return;
    }
    // A client that skips initialize gets a session all the same (ROADMAP D5).
    if session.is_none() {
        let _ = initialize(gw, scope, session, &serde_json::Value::Null, out).await;
    }
    let Some(s) = session.clone() else { return };
    s.touch();
    match kind {
        Kind::Notification => router::notification(gw, &s, &env),
        Kind::Response => router::response(gw, &s, &env),
        Kind::Request => {
            drop(env);
            // Requests run concurrently, as over HTTP: a slow tool does not hold up the next.
            tokio::spawn(run_request(gw.clone(), s, line, out.clone()));
        }
    }
}

async fn run_request(
    gw: Arc<Gateway>,
    session: Arc<Session>,
    line: Bytes,
    out: mpsc::UnboundedSender<Bytes>,
) {
    let env = Envelope::parse_lenient(&line).expect("parsed once already");
    let client_id = env.id.map_or("null", |i| i.get()).to_string();
    let outcome = router::request(&gw, &session, &env).await;
    forward_all(outcome, client_id, |msg| drop(out.send(msg))).await;
}

/// Creates the session (once) and answers `initialize`. Server-initiated messages that belong
/// to no request (list changes, requests from a server with nothing in flight) are written out
/// as they come, as the GET stream carries them over HTTP.
async fn initialize(
    gw: &Gateway,
    scope: &Scope,
    session: &mut Option<Arc<Session>>,
    params: &serde_json::Value,
    out: &mpsc::UnboundedSender<Bytes>,
) -> Result<serde_json::Value, String> {
    let version = router::negotiate(params);
    if session.is_none() {
        let hello = ClientHello::from_initialize(params, version);
        let s = Arc::new(Session::new(
            new_session_id(),
            scope.clone(),
            None,
            Some(hello),
        ));
        // No headers on stdio: the identity comes from the config (auth.stdio_subject).
        s.set_principal(gw.guard.stdio_principal());
        s.touch();
        let mut stream = s.open_stream();
        let out = out.clone();
        tokio::spawn(async move {
            while let Some((_, msg)) = stream.recv().await {
                if out.send(msg).is_err() {
                    break;
                }
            }
        });
        gw.sessions.insert(s.clone());
        tracing::info!(session = %s.id, endpoint = ?s.scope, "stdio session started");
        *session = Some(s);
    }
    let s = session.as_ref().expect("created above");
    router::initialize_result(gw, s, version).await
}
