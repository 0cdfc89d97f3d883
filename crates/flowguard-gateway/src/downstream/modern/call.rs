//! One stateless request forwarded to a handshake-era server, until its reply: related
//! notifications (progress; log messages only at the level the client asked for) on the
//! request's SSE stream, the final result with the revision's `resultType` and serverInfo
//! spliced in, and a server-to-client request turned into an input-required result (MRTR)
//! while the server's call waits in [`super::parked`].

use super::parked::{Inputs, Parked, Registration};
use crate::downstream::in_flight::{InFlight, Next};
use crate::downstream::reply::{self, Accept};
use crate::error::StatelessError;
use crate::gateway::Gateway;
use crate::router::Outcome;
use crate::session::Session;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use flowguard_protocol::modern::{self, splice_result};
use flowguard_protocol::{encode, methods, sse, Envelope, Kind};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A stateless request and what its reply needs.
pub(crate) struct Call {
    pub session: Arc<Session>,
    /// Keeps the session findable (for the server's requests) while the call lasts.
    registration: Registration,
    /// The id of the request being answered now (a retry's own id after `inputResponses`).
    pub id: String,
    pub method: String,
    log_level: Option<usize>,
    server_info: String,
}

impl Call {
    pub(crate) fn new(
        gw: &Arc<Gateway>,
        session: Arc<Session>,
        id: &str,
        method: &str,
        log_level: Option<usize>,
        server_info: String,
    ) -> Self {
        Call {
            registration: Registration::new(gw, session.clone()),
            session,
            id: id.to_string(),
            method: method.to_string(),
            log_level,
            server_info,
        }
    }

    /// Continues a parked call for its retry: answers go out with the retry's id and log level
    /// (the parked call keeps its own session, which the server's request belongs to).
    fn adopt(&mut self, retry: Call) {
        self.id = retry.id;
        self.log_level = retry.log_level;
    }

    fn cacheable(&self) -> bool {
        matches!(
            self.method.as_str(),
            methods::TOOLS_LIST
                | methods::PROMPTS_LIST
                | methods::RESOURCES_LIST
                | methods::RESOURCE_TEMPLATES_LIST
                | methods::RESOURCES_READ
        )
    }

    /// A log message passes when the client asked for its level (or a less severe one).
    fn wants_log(&self, env: &Envelope<'_>) -> bool {
        let Some(min) = self.log_level else {
            return false;
        };
        let level = env
            .params
            .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
            .and_then(|p| {
                p.get("level")
                    .and_then(Value::as_str)
                    .and_then(modern::log_rank)
            });
        level.is_none_or(|l| l >= min)
    }

    /// The final reply with this call's id, a result completed for the revision.
    fn finish(&self, reply: &[u8]) -> Vec<u8> {
        match Envelope::parse_lenient(reply) {
            Ok(env) if env.result.is_some() => {
                let text = complete(
                    env.result.map_or("{}", |r| r.get()),
                    self.cacheable(),
                    &self.server_info,
                );
                encode::result_json(&self.id, text.as_bytes())
            }
            Ok(env) => encode::response(&self.id, None, env.error),
            Err(_) => reply.to_vec(),
        }
    }
}

/// A result as the revision wants it: `resultType` (and the cache hints of cacheable results)
/// unless the server gave them, and the endpoint's serverInfo in `_meta`.
pub(crate) fn complete(result: &str, cacheable: bool, server_info: &str) -> String {
    let mut fields = vec![("resultType", "\"complete\"")];
    if cacheable {
        // The gateway caches lists until a server says they changed; clients should re-fetch.
        fields.extend([("ttlMs", "0"), ("cacheScope", "\"private\"")]);
    }
    splice_result(result, &fields, &[(modern::META_SERVER_INFO, server_info)])
}

/// What came next for a stateless call.
enum Step {
    Notify(Bytes),
    Done(Vec<u8>),
    /// The server sent the client a request: the call must wait for its answer.
    Input(Bytes),
}

async fn step(call: &Call, req: &mut InFlight) -> Step {
    loop {
        match req.next().await {
            Next::Final(b) => return Step::Done(call.finish(&b)),
            Next::Message(m) => {
                let Ok(env) = Envelope::parse_lenient(&m) else {
                    continue;
                };
                if env.kind() == Ok(Kind::Request) {
                    if env.method() == methods::ROOTS_LIST
                        && !call.session.hello().supports(methods::ROOTS_LIST)
                    {
                        // Asking for roots is the server's own business (servers ask and carry
                        // on without them): the server hears that this client has none, as a
                        // handshake client without the capability would answer, and the call
                        // goes on. Sampling and elicitation are what a call needs: -32021.
                        let gw_id: u64 = env.id.and_then(|i| i.get().parse().ok()).unwrap_or(0);
                        if let Some(gw) = call.registration.gateway() {
                            let why = "the client did not declare the roots capability";
                            refuse_with(
                                &gw,
                                gw_id,
                                flowguard_protocol::ErrorCode::MethodNotFound,
                                why,
                            );
                        }
                        continue;
                    }
                    return Step::Input(m);
                }
                if env.method() == methods::LOG_MESSAGE && !call.wants_log(&env) {
                    continue;
                }
                return Step::Notify(m);
            }
        }
    }
}

/// Answers a stateless request from what the router made of it.
pub(crate) async fn respond(
    gw: Arc<Gateway>,
    call: Call,
    outcome: Outcome,
    accept: Accept,
) -> Response {
    let req = match outcome {
        Outcome::Reply(bytes) => return reply::json(call.finish(&bytes), accept),
        Outcome::Limited { reply, retry_after } => {
            let mut r = reply::json(call.finish(&reply), accept);
            *r.status_mut() = axum::http::StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after.max(1)),
            );
            return r;
        }
        Outcome::Forwarded {
            upstream,
            upstream_id,
            rx,
            driver,
            watch,
        } => InFlight::new(upstream, upstream_id, rx, driver, call.id.clone(), watch),
    };
    run(gw, call, req, accept).await
}

async fn run(gw: Arc<Gateway>, call: Call, mut req: InFlight, accept: Accept) -> Response {
    loop {
        match step(&call, &mut req).await {
            Step::Done(bytes) => return reply::json(bytes, accept),
            Step::Input(msg) => {
                let (status, bytes) = input_required(&gw, call, req, &msg);
                let mut r = reply::json(bytes, accept);
                *r.status_mut() = status;
                return r;
            }
            Step::Notify(m) if accept.sse => return stream(gw, call, m, req),
            // A JSON-only client has no stream for notifications in this revision.
            Step::Notify(_) => {}
        }
    }
}

/// The rest of the call as an SSE stream. Closing it drops the call, which cancels it upstream.
fn stream(gw: Arc<Gateway>, call: Call, first: Bytes, req: InFlight) -> Response {
    enum State {
        First(Bytes, Call, InFlight),
        Next(Call, InFlight),
        End,
    }
    let events = futures_util::stream::unfold(State::First(first, call, req), move |state| {
        let gw = gw.clone();
        async move {
            let (bytes, next) = match state {
                State::First(b, call, req) => (b.to_vec(), State::Next(call, req)),
                State::Next(call, mut req) => match step(&call, &mut req).await {
                    Step::Notify(m) => (m.to_vec(), State::Next(call, req)),
                    Step::Done(b) => (b, State::End),
                    Step::Input(m) => (input_required(&gw, call, req, &m).1, State::End),
                },
                State::End => return None,
            };
            Some((Ok::<_, Infallible>(sse::message_event(None, &bytes)), next))
        }
    });
    reply::sse_response(Body::from_stream(events))
}

/// The server asked the client something: park the call and tell the client what to answer,
/// or refuse with -32021 when the client did not declare the capability the request needs.
fn input_required(
    gw: &Arc<Gateway>,
    call: Call,
    req: InFlight,
    msg: &[u8],
) -> (StatusCode, Vec<u8>) {
    let Ok(env) = Envelope::parse_lenient(msg) else {
        return (StatusCode::OK, call.finish(b"{}"));
    };
    let gw_id: u64 = env.id.and_then(|i| i.get().parse().ok()).unwrap_or(0);
    let method = env.method().to_string();
    if !call.session.hello().supports(&method) {
        let cap = match method.as_str() {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            _ => "roots",
        };
        refuse_server_request(
            gw,
            gw_id,
            &format!("the client did not declare the {cap} capability"),
        );
        let e = StatelessError::MissingCapability(cap);
        return (e.status(), e.body(&call.id));
    }
    let key = format!("input-{gw_id}");
    let mut request = format!("{{\"method\":{}", Value::from(method.as_str()));
    if let Some(p) = env.params {
        request.push_str(",\"params\":");
        request.push_str(p.get());
    }
    request.push('}');
    let id = call.id.clone();
    let info = call.server_info.clone();
    let state = gw.parked.park(Parked {
        call,
        req,
        inputs: Inputs::new(gw, vec![(key.clone(), gw_id)]),
    });
    let result = format!(
        "{{\"resultType\":\"input_required\",\"inputRequests\":{{{}:{request}}},\"requestState\":{}}}",
        Value::from(key),
        Value::from(state)
    );
    let text = splice_result(&result, &[], &[(modern::META_SERVER_INFO, &info)]);
    (StatusCode::OK, encode::result_json(&id, text.as_bytes()))
}

/// Answers a server's request the client cannot serve, so the server is not left waiting.
pub(super) fn refuse_server_request(gw: &Gateway, gw_id: u64, message: &str) {
    refuse_with(
        gw,
        gw_id,
        flowguard_protocol::ErrorCode::MissingCapability,
        message,
    );
}

fn refuse_with(gw: &Gateway, gw_id: u64, code: flowguard_protocol::ErrorCode, message: &str) {
    if let Some(o) = gw.take_outstanding(gw_id) {
        let err = serde_json::json!({
            "code": code as i64,
            "message": message,
        });
        let raw = serde_json::value::to_raw_value(&err).expect("a Value serializes");
        o.upstream.respond(&o.server_id, None, Some(&raw));
    }
}

/// A retry carrying `requestState` and `inputResponses`: the parked call's server requests are
/// answered with the client's responses, and the call goes on (to its result, or to the next
/// input-required result).
pub(crate) async fn resume(
    gw: Arc<Gateway>,
    retry: Call,
    params: &Value,
    accept: Accept,
) -> Response {
    match take_parked(&gw, retry, params) {
        Ok((call, req)) => run(gw, call, req, accept).await,
        Err((id, e)) => e.into_response(&id),
    }
}

/// [`resume`] over stdio: what follows goes to `out`, one message per line.
pub(crate) async fn resume_lines(
    gw: Arc<Gateway>,
    retry: Call,
    params: &Value,
    out: &mpsc::UnboundedSender<Bytes>,
) {
    match take_parked(&gw, retry, params) {
        Ok((call, req)) => drive_lines(&gw, call, req, out).await,
        Err((id, e)) => drop(out.send(e.body(&id).into())),
    }
}

/// The parked call a retry continues, its server requests answered.
fn take_parked(
    gw: &Arc<Gateway>,
    retry: Call,
    params: &Value,
) -> Result<(Call, InFlight), (String, StatelessError)> {
    let state = params
        .get("requestState")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut parked = match gw.parked.take(state, &retry) {
        Ok(p) => p,
        Err(e) => return Err((retry.id.clone(), e)),
    };
    let responses = params.get("inputResponses").and_then(Value::as_object);
    let missing: Vec<&str> = parked
        .inputs
        .keys()
        .filter(|k| responses.is_none_or(|r| !r.contains_key(*k)))
        .collect();
    if !missing.is_empty() {
        let e = StatelessError::BadRetry(format!(
            "inputResponses lacks {}; answer every key of the input-required result's inputRequests",
            missing.join(", ")
        ));
        let id = retry.id.clone();
        gw.parked.put_back(state, parked);
        return Err((id, e));
    }
    for (key, gw_id) in parked.inputs.take() {
        let answer = responses
            .and_then(|r| r.get(&key))
            .cloned()
            .unwrap_or_default();
        let raw = serde_json::value::to_raw_value(&answer).expect("a Value serializes");
        if let Some(o) = gw.take_outstanding(gw_id) {
            o.upstream.respond(&o.server_id, Some(&raw), None);
        }
    }
    let Parked { mut call, req, .. } = parked;
    call.adopt(retry);
    Ok((call, req))
}

/// A stateless request over stdio, from what the router made of it: related notifications,
/// then the final reply (or an input-required result), each a line on `out`.
pub(crate) async fn respond_lines(
    gw: Arc<Gateway>,
    call: Call,
    outcome: Outcome,
    out: &mpsc::UnboundedSender<Bytes>,
) {
    match outcome {
        Outcome::Reply(bytes) | Outcome::Limited { reply: bytes, .. } => {
            drop(out.send(call.finish(&bytes).into()))
        }
        Outcome::Forwarded {
            upstream,
            upstream_id,
            rx,
            driver,
            watch,
        } => {
            let req = InFlight::new(upstream, upstream_id, rx, driver, call.id.clone(), watch);
            drive_lines(&gw, call, req, out).await
        }
    }
}

async fn drive_lines(
    gw: &Arc<Gateway>,
    call: Call,
    mut req: InFlight,
    out: &mpsc::UnboundedSender<Bytes>,
) {
    loop {
        let line = match step(&call, &mut req).await {
            Step::Notify(m) => {
                if out.send(m).is_err() {
                    return; // the client is gone: dropping the call cancels it upstream
                }
                continue;
            }
            Step::Done(bytes) => bytes,
            Step::Input(m) => input_required(gw, call, req, &m).1,
        };
        let _ = out.send(line.into());
        return;
    }
}
