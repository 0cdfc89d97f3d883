//! Where each client message goes: answered here (initialize, ping, aggregated lists), sent to
//! the one server that owns the named tool, prompt or resource, or fanned out. Routed endpoints
//! reach one server with names unchanged; the unified endpoint reaches all of them; a virtual
//! server's endpoint reaches its chosen tools (under their exposed names) and nothing else.
//!
//! This is also where the security pipeline will sit (DESIGN-NOTES §1): every request passes
//! [`request`] with its session (identity, version, capabilities) before any server sees it.

use crate::catalog::{self, ListKind};
use crate::gateway::Gateway;
use crate::session::{Scope, Session};
use flowguard_guard::policy::Args;
use flowguard_guard::{Principal, Stage, Verdict};
use flowguard_protocol::{encode, methods, versions, Envelope, ErrorCode};
use flowguard_upstream::{reply_channel, ClientCall, Driver, ReplyStream, Upstream};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::sync::Arc;

/// What became of a client request.
pub(crate) enum Outcome {
    /// Answered by the gateway: the whole reply.
    Reply(Vec<u8>),
    /// Refused by a rate limit: the JSON-RPC error, and the seconds to wait (HTTP gives 429
    /// with `Retry-After`; stdio and streams get the error alone).
    Limited { reply: Vec<u8>, retry_after: u64 },
    /// Sent to a server: frames arrive on `rx` until the final reply.
    Forwarded {
        upstream: Upstream,
        upstream_id: u64,
        rx: ReplyStream,
        /// The remote exchange to poll beside `rx` (remote servers only).
        driver: Option<Driver>,
        /// The server's breaker and reply cap.
        watch: crate::guard::Watch,
    },
}

fn error(id: &str, code: ErrorCode, message: &str) -> Outcome {
    Outcome::Reply(encode::error(Some(id), code, message))
}

fn param_str<'a>(params: &'a Value, pointer: &str) -> Option<&'a str> {
    params.pointer(pointer).and_then(Value::as_str)
}

/// The policy's answer to a request that names no tool, prompt or resource (`initialize`,
/// lists, `ping`): the JSON-RPC error when it is denied.
pub(crate) fn refused(
    gw: &Gateway,
    who: &Arc<Principal>,
    id: &str,
    method: &str,
) -> Option<Vec<u8>> {
    if !gw.guard.active {
        return None;
    }
    let v = gw.guard.decide(who, method, None, Args::Absent);
    v.blocks().then(|| denied(id, &v))
}

fn denied(id: &str, v: &Verdict) -> Vec<u8> {
    let request_id = crate::request_id::current();
    tracing::info!(stage = %v.stage, rule = %v.rule, request_id = request_id.as_deref().unwrap_or(""), "request denied: {}", v.reason);
    encode::error(Some(id), ErrorCode::Denied, &v.reason)
}

/// The limit that refuses a request: (seconds to wait, 0 for the session's call limit; rule).
fn limit_refusal(
    gw: &Gateway,
    session: &Session,
    who: &Principal,
    tool: Option<(&str, &str)>,
) -> Option<(u64, String)> {
    match gw.guard.limit(who, tool) {
        Err(r) => Some(r),
        Ok(()) => match (tool, gw.guard.setup.limits.calls_per_session) {
            (Some(_), Some(max))
                if session
                    .calls
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    >= max =>
            {
                Some((0, format!("limits.calls_per_session ({max})")))
            }
            _ => None,
        },
    }
}

fn limit_message(secs: u64, rule: &str) -> String {
    if secs == 0 {
        format!(
            "Too many requests: this session has made its {rule} tool calls; start a new session"
        )
    } else {
        format!("Too many requests: {rule} is exhausted; retry after {secs}s")
    }
}

fn limited_reply(id: &str, secs: u64, rule: &str) -> Outcome {
    tracing::info!(stage = "rate-limit", rule = %rule, "request refused by a limit");
    let data = json!({ "retryAfter": secs, "rule": rule });
    Outcome::Limited {
        reply: encode::error_with_data(
            Some(id),
            ErrorCode::RateLimited as i64,
            &limit_message(secs, rule),
            Some(&data),
        ),
        retry_after: secs,
    }
}

pub(crate) async fn request(gw: &Gateway, session: &Arc<Session>, env: &Envelope<'_>) -> Outcome {
    let tracer = gw.tracer.as_ref();
    if !gw.metrics.enabled && tracer.is_none() {
        return decide(gw, session, env).await;
    }
    let started = std::time::Instant::now();
    let (o, root) = match tracer {
        // Boxed: the decision's future is large, and the span's scope would move it whole.
        Some(t) => {
            let f = Box::pin(decide(gw, session, env));
            crate::trace::around(t, env.method(), env.params, f).await
        }
        None => (decide(gw, session, env).await, None),
    };
    // A forwarded request is counted (and its spans end) when its reply ends (its `Track`).
    let status = match &o {
        Outcome::Reply(b) => crate::metrics::status_of(b),
        Outcome::Limited { .. } => "limited",
        Outcome::Forwarded { .. } => return o,
    };
    let server = match &session.scope {
        Scope::Routed(s) => &**s,
        _ => "(gateway)",
    };
    gw.metrics.answered(server, env.method(), status, started);
    if let (Some(t), Some(mut root)) = (tracer, root) {
        root.set("flowguard.status", status);
        if status != "ok" {
            root.status = flowguard_export::Status::Error(status.to_string());
        }
        root.end();
        t.export(root);
    }
    o
}

async fn decide(gw: &Gateway, session: &Arc<Session>, env: &Envelope<'_>) -> Outcome {
    let id = env.id.map_or("null", |i| i.get());
    let method = env.method();
    let scope_key = gw.scope_key(&session.scope);
    let names_item = matches!(
        method,
        methods::TOOLS_CALL
            | methods::PROMPTS_GET
            | methods::RESOURCES_READ
            | methods::RESOURCES_SUBSCRIBE
            | methods::RESOURCES_UNSUBSCRIBE
    );
    if !names_item && (gw.guard.active || gw.audit.get().is_some()) {
        if let Some(o) = guard_plain(gw, session, id, method, None).await {
            return o;
        }
    }
    if let Some(kind) = ListKind::from_method(method) {
        let params: Value = env
            .params
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or(Value::Null);
        let members = gw.members(session);
        let view = gw.catalog.view(scope_key, &members, kind).await;
        let view = gw.guard.filter(&session.principal(), view, kind, |i| {
            gw.servers().get(i).map(|s| s.shared_id())
        });
        return match catalog::page(
            id,
            &view,
            kind,
            param_str(&params, "/cursor"),
            gw.settings.page_size,
        ) {
            Ok(reply) => Outcome::Reply(reply),
            Err(e) => error(id, ErrorCode::InvalidParams, &e),
        };
    }
    match method {
        methods::PING => Outcome::Reply(encode::result_value(id, &json!({}))),
        methods::SET_LEVEL => {
            for s in gw.reachable(session) {
                if offers(&s, "logging") {
                    let _ = s.request(method, env.params).await;
                }
            }
            Outcome::Reply(encode::result_value(id, &json!({})))
        }
        methods::TOOLS_CALL | methods::PROMPTS_GET => by_name(gw, session, env, method).await,
        methods::RESOURCES_READ | methods::RESOURCES_SUBSCRIBE | methods::RESOURCES_UNSUBSCRIBE => {
            by_uri(gw, session, env).await
        }
        methods::COMPLETE => completion(gw, session, env).await,
        _ => match the_only_server(gw, session) {
            Some(Ok(s)) => forward(gw, &s, session, env, None).await,
            Some(Err(e)) => error(id, ErrorCode::Unavailable, &e),
            None => error(
                id,
                ErrorCode::MethodNotFound,
                &unroutable(&session.scope, method),
            ),
        },
    }
}

fn offers(s: &Upstream, capability: &str) -> bool {
    s.init_result().is_some_and(|r| {
        r.get("capabilities")
            .is_some_and(|c| c.get(capability).is_some())
    })
}

/// Why a method that names no tool, prompt or resource has nowhere to go.
fn unroutable(scope: &Scope, method: &str) -> String {
    match scope {
        Scope::Virtual(v) => format!(
            "method {method} is not offered by the virtual server {}: it offers tools only",
            v.name
        ),
        _ => format!("method {method} cannot be routed on the unified endpoint: no tool, prompt or resource names a server; use /mcp/<server>"),
    }
}

/// The session's instance of its endpoint's server, when the endpoint has exactly one (a
/// virtual server has none: even with one member it offers only its chosen tools).
fn the_only_server(gw: &Gateway, session: &Session) -> Option<Result<Upstream, String>> {
    if let Scope::Virtual(_) = &session.scope {
        return None;
    }
    let mut it = gw.servers_in(&session.scope);
    let first = it.next()?;
    if it.next().is_some() {
        return None;
    }
    let idx = gw.catalog.index_of(first.id())?;
    Some(gw.instance(session, idx))
}

/// Sends the request to `upstream`, with `params` replaced when names were rewritten. The
/// server's circuit breaker is asked first (the last stage before a server).
async fn forward(
    gw: &Gateway,
    upstream: &Upstream,
    session: &Arc<Session>,
    env: &Envelope<'_>,
    params: Option<&RawValue>,
) -> Outcome {
    let id = env.id.expect("requests have ids");
    let mut watch = match gw.guard.watch(upstream.id()) {
        Ok(w) => w,
        Err(secs) => {
            tracing::info!(
                stage = "breaker",
                server = upstream.id(),
                "request refused: the breaker is open"
            );
            let msg = format!(
                "server '{}' is failing: its circuit breaker is open (limits.breaker); retry in {secs}s",
                upstream.id()
            );
            return error(id.get(), ErrorCode::Unavailable, &msg);
        }
    };
    let mut traced_params = None;
    let mut traced_headers = None;
    let spans = match &gw.tracer {
        Some(tracer) => crate::trace::upstream(upstream.id()).map(|(root, up)| {
            let ctx = up.context();
            traced_params = crate::trace::with_traceparent(params.or(env.params), &ctx);
            // Remote servers also get it as a header (stdio servers have none).
            if matches!(
                upstream.config().transport,
                flowguard_config::Transport::Http(_) | flowguard_config::Transport::Sse(_)
            ) {
                let mut h = with_subject_or_session(upstream, session);
                h.push((
                    "traceparent".into(),
                    flowguard_export::traceparent::format(&ctx),
                ));
                traced_headers = Some(h);
            }
            crate::metrics::Spans {
                root,
                upstream: up,
                tracer: tracer.clone(),
            }
        }),
        None => None,
    };
    watch.track = gw.metrics.track(upstream.id(), env.method(), spans);
    let (tx, rx) = reply_channel();
    let with_subject = match traced_headers {
        Some(h) => Some(h),
        None => subject_header(upstream, session),
    };
    let call = ClientCall {
        method: env.method(),
        params: traced_params.as_deref().or(params).or(env.params),
        client_id: id.to_owned(),
        session: session.id.clone(),
        sink: tx,
        headers: with_subject.as_deref().unwrap_or(&session.forward_headers),
    };
    match upstream.forward(call).await {
        Ok(f) => Outcome::Forwarded {
            upstream: upstream.clone(),
            upstream_id: f.id,
            rx,
            driver: f.driver,
            watch,
        },
        Err(e) => {
            watch.failure();
            if let Some(t) = watch.track.as_mut() {
                t.finish("error");
            }
            error(id.get(), e.code(), &e.to_string())
        }
    }
}

/// The session's headers for a remote server plus its `subject_header`, when the server has
/// one and the caller's identity was verified (an asserted agent id is never passed as one).
fn subject_header(upstream: &Upstream, session: &Session) -> Option<Vec<(String, String)>> {
    let (flowguard_config::Transport::Http(spec) | flowguard_config::Transport::Sse(spec)) =
        &upstream.config().transport
    else {
        return None;
    };
    let name = spec.subject_header.as_ref()?;
    let who = session.principal();
    let subject = who
        .subject
        .as_deref()
        .filter(|_| who.method.is_verified())?;
    let mut headers = session.forward_headers.clone();
    headers.push((name.clone(), subject.to_string()));
    Some(headers)
}

/// The headers for a remote server: the session's, with its `subject_header` when it has one.
fn with_subject_or_session(upstream: &Upstream, session: &Session) -> Vec<(String, String)> {
    subject_header(upstream, session).unwrap_or_else(|| session.forward_headers.clone())
}

/// `params` with the value at `pointer` replaced by `name`.
fn with_name(params: &Value, pointer: &str, name: &str) -> Option<Box<RawValue>> {
    let mut p = params.clone();
    *p.pointer_mut(pointer)? = Value::String(name.to_string());
    serde_json::value::to_raw_value(&p).ok()
}

/// tools/call and prompts/get: the public name picks the server; its own name is put back.
async fn by_name(
    gw: &Gateway,
    session: &Arc<Session>,
    env: &Envelope<'_>,
    method: &str,
) -> Outcome {
    let id = env.id.map_or("null", |i| i.get());
    let (kind, what) = if method == methods::TOOLS_CALL {
        (ListKind::Tools, "tool")
    } else {
        (ListKind::Prompts, "prompt")
    };
    // A routed server without an allow-list gets the call as it is: nothing to look up, and
    // unguarded nothing to parse. Guarded, only the name and the arguments are read (the name
    // is the server's own here); an unknown name the policy allows gets the server's answer,
    // and one it hides gets the same answer as any hidden one, so existence shows nowhere.
    if let Scope::Routed(sid) = &session.scope {
        // Inspection holds items back through the lists, so a call then resolves its name there.
        let unfiltered = gw.catalog.inspector.get().is_none()
            && gw.policy_patterns.is_none()
            && gw
                .server(sid)
                .is_some_and(|s| s.config().tools.is_none() || kind != ListKind::Tools);
        if unfiltered {
            let s = match the_only_server(gw, session) {
                Some(Ok(s)) => s,
                Some(Err(e)) => return error(id, ErrorCode::Unavailable, &e),
                None => return error(id, ErrorCode::InvalidParams, &format!("Unknown {what}")),
            };
            if gw.guard.active || gw.audit.get().is_some() || gw.metrics.enabled {
                let named = match Named::read(env.params, gw.guard.setup.has_policy()) {
                    Ok(n) => n,
                    Err(e) => {
                        return error(
                            id,
                            ErrorCode::InvalidParams,
                            &format!("{method}: params are not accepted: {e}"),
                        )
                    }
                };
                let Some(name) = named.name.as_deref() else {
                    return error(
                        id,
                        ErrorCode::InvalidParams,
                        &format!("{method} needs params.name"),
                    );
                };
                if let Some(o) = guard_call(
                    gw,
                    session,
                    id,
                    method,
                    kind,
                    s.id(),
                    name,
                    name,
                    named.arguments.as_ref(),
                    match (&named.arguments, named.raw_arguments) {
                        (Some(v), _) => crate::audit::Arguments::Value(v),
                        (None, Some(r)) => crate::audit::Arguments::Raw(r.get()),
                        (None, None) => crate::audit::Arguments::None,
                    },
                )
                .await
                {
                    return o;
                }
            }
            return forward(gw, &s, session, env, None).await;
        }
    }
    // Guarded, the params are read strictly (duplicate keys refused): the gateway and the
    // server must not read two different values.
    let params: Value = match (gw.guard.active, env.params) {
        (true, Some(p)) => match flowguard_guard::args::parse_strict(p.get()) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    id,
                    ErrorCode::InvalidParams,
                    &format!("{method}: params are not accepted: {e}"),
                )
            }
        },
        (_, p) => p
            .and_then(|p| serde_json::from_str(p.get()).ok())
            .unwrap_or(Value::Null),
    };
    let Some(name) = param_str(&params, "/name").map(str::to_string) else {
        return error(
            id,
            ErrorCode::InvalidParams,
            &format!("{method} needs params.name"),
        );
    };
    let name = name.as_str();
    let members = gw.members(session);
    let resolved = gw
        .catalog
        .resolve_name(gw.scope_key(&session.scope), &members, kind, name)
        .await;
    // Inspection of the arguments (secrets, injection) before the guard records the call, so
    // the record holds them as the server will get them (redacted).
    let scanner = match (gw.catalog.inspector.get(), &resolved) {
        (Some(i), Some((server, _))) => i.scanner_for(server.id()),
        _ => None,
    };
    let inspected = match (&scanner, &resolved, kind) {
        (Some(sc), Some((server, _)), ListKind::Tools) if sc.active(crate::scan::Direction::In) => {
            let mut args = params.get("arguments").cloned().unwrap_or(Value::Null);
            let verdicts = sc.value(crate::scan::Direction::In, server.id(), &mut args);
            (!verdicts.is_empty()).then_some((args, verdicts))
        }
        _ => None,
    };
    let watched = gw.guard.active || gw.audit.get().is_some() || gw.metrics.enabled;
    if let (true, Some((server, own))) = (watched, &resolved) {
        // The audit's copy never holds a secret, whatever reaches the server.
        let audit_copy = match (&scanner, gw.audit.get(), params.get("arguments")) {
            (Some(sc), Some(_), Some(a)) => sc.audit_copy(a),
            _ => None,
        };
        let shown = match (&audit_copy, &inspected, params.get("arguments")) {
            (Some(c), _, _) => crate::audit::Arguments::Value(c),
            (None, Some((redacted, _)), _) => crate::audit::Arguments::Value(redacted),
            (None, None, Some(a)) => crate::audit::Arguments::Value(a),
            (None, None, None) => crate::audit::Arguments::None,
        };
        if let Some(o) = guard_call(
            gw,
            session,
            id,
            method,
            kind,
            server.id(),
            own,
            name,
            params.get("arguments"),
            shown,
        )
        .await
        {
            return o;
        }
    }
    // The arguments against the tool's advertised inputSchema.
    if let (Some(ins), Some((server, own)), ListKind::Tools) =
        (gw.catalog.inspector.get(), &resolved, kind)
    {
        if let Some(v) = ins.check_arguments(server.id(), own, params.get("arguments")) {
            let who = session.principal();
            let shown = match (&scanner, params.get("arguments")) {
                (Some(sc), Some(a)) => sc.audit_copy(a),
                _ => None,
            };
            let args = match (&shown, params.get("arguments")) {
                (Some(c), _) => crate::audit::Arguments::Value(c),
                (None, Some(a)) => crate::audit::Arguments::Value(a),
                (None, None) => crate::audit::Arguments::None,
            };
            let what = (method, id, Some(server.id()), Some(own.as_str()), args);
            if let Err(o) = audit(gw, session, what, &who, &v, std::time::Instant::now()).await {
                return o;
            }
            if v.blocks() {
                tracing::info!(stage = %v.stage, rule = %v.rule, "request refused: {}", v.reason);
                return error(id, ErrorCode::InvalidParams, &v.reason);
            }
        }
    }
    let mut params = params;
    let mut modified = false;
    if let (Some((redacted, verdicts)), Some((server, own))) = (inspected, &resolved) {
        let who = session.principal();
        let started = std::time::Instant::now();
        let audit_copy = scanner.as_ref().and_then(|sc| sc.audit_copy(&redacted));
        for v in &verdicts {
            let shown = audit_copy.as_ref().unwrap_or(&redacted);
            let what = (
                method,
                id,
                Some(server.id()),
                Some(own.as_str()),
                crate::audit::Arguments::Value(shown),
            );
            if let Err(o) = audit(gw, session, what, &who, v, started).await {
                return o;
            }
        }
        if let Some(v) = verdicts.iter().find(|v| v.blocks()) {
            return Outcome::Reply(denied(id, v));
        }
        if verdicts
            .iter()
            .any(|v| v.decision == flowguard_guard::Decision::Modify)
        {
            if let Some(a) = params.get_mut("arguments") {
                *a = redacted;
                modified = true;
            }
        }
    }
    let result_scanner = scanner.clone().or_else(|| gw.policy_patterns.clone());
    let result_check = match (&result_scanner, &resolved, kind) {
        (Some(sc), Some((server, own)), ListKind::Tools)
            if sc.active(crate::scan::Direction::Out) =>
        {
            Some(Box::new(crate::scan::ResultCheck {
                scanner: sc.clone(),
                audit: gw.audit.get().cloned(),
                server: server.id().to_string(),
                tool: own.clone(),
                who: session.principal().as_ref().clone(),
                session: crate::audit::session_id(session).to_string(),
            }))
        }
        _ => None,
    };
    let mut outcome = match resolved {
        Some((server, own)) if own == name && !modified => {
            forward(gw, &server, session, env, None).await
        }
        Some((server, own)) => {
            let rewritten = with_name(&params, "/name", &own);
            forward(gw, &server, session, env, rewritten.as_deref()).await
        }
        None => match unavailable_owner(gw, &members, name) {
            // Its server is not running: say so, rather than that the name is unknown.
            Some(why) => error(id, ErrorCode::Unavailable, &why),
            // A hidden tool looks exactly like one that does not exist (DESIGN-NOTES §5).
            None => error(
                id,
                ErrorCode::InvalidParams,
                &format!("Unknown {what}: {name}"),
            ),
        },
    };
    if let (Outcome::Forwarded { watch, .. }, Some(c)) = (&mut outcome, result_check) {
        watch.result = Some(c);
    }
    outcome
}

/// The name and arguments of a `tools/call` or `prompts/get`, read without the rest of the
/// params; a repeated `name` or `arguments`, or a repeated key anywhere in the arguments, is
/// refused (the gateway and the server must not read two different values).
struct Named<'a> {
    name: Option<std::borrow::Cow<'a, str>>,
    arguments: Option<Value>,
    /// The arguments as sent (for the audit, which needs no parse when nothing is redacted).
    raw_arguments: Option<&'a RawValue>,
}

impl<'a> Named<'a> {
    /// The name, and the arguments when a rule may read them (parsed strictly: duplicate keys
    /// are refused, so the policy and the server cannot read two different values).
    fn read(params: Option<&'a RawValue>, arguments: bool) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow, default)]
            name: Option<std::borrow::Cow<'a, str>>,
            #[serde(borrow, default)]
            arguments: Option<&'a RawValue>,
        }
        let Some(p) = params else {
            return Ok(Named {
                name: None,
                arguments: None,
                raw_arguments: None,
            });
        };
        let raw: Raw<'a> = serde_json::from_str(p.get()).map_err(|e| e.to_string())?;
        let arguments = match raw.arguments {
            Some(a) if arguments => Some(flowguard_guard::args::parse_strict(a.get())?),
            _ => None,
        };
        Ok(Named {
            name: raw.name,
            arguments,
            raw_arguments: raw.arguments,
        })
    }
}

/// The guard on a call that names a tool or prompt, with its arguments; a denied item that
/// the caller may not even see is answered exactly like an unknown one. Then the limits. The
/// verdict that decided becomes an audit record when the audit is on.
#[allow(clippy::too_many_arguments)]
async fn guard_call(
    gw: &Gateway,
    session: &Session,
    id: &str,
    method: &str,
    kind: ListKind,
    server: &str,
    own: &str,
    public: &str,
    arguments: Option<&Value>,
    shown: crate::audit::Arguments<'_>,
) -> Option<Outcome> {
    let started = std::time::Instant::now();
    let started_ns = gw.tracer.as_ref().map(|_| flowguard_export::span::now_ns());
    let who = session.principal();
    let tool = (kind == ListKind::Tools).then_some((server, own));
    let v = if gw.guard.setup.has_policy() {
        let args = match arguments {
            Some(v) => Args::Present(v),
            None => Args::Absent,
        };
        gw.guard
            .decide(&who, method, Some((kind, server, own)), args)
    } else {
        Verdict::allow(Stage::Policy, "(no-policy)")
    };
    let (v, outcome) = if v.blocks() {
        // Decided with the arguments first: an allowed call needs one evaluation, and a call
        // allowed with its arguments is always visible (an allow rule that reads arguments
        // shows its item).
        let o = if !gw.guard.visible(&who, kind, server, own) {
            let what = if kind == ListKind::Tools {
                "tool"
            } else {
                "prompt"
            };
            tracing::info!(stage = %v.stage, rule = %v.rule, "a hidden {what} was called; answered as unknown");
            error(
                id,
                ErrorCode::InvalidParams,
                &format!("Unknown {what}: {public}"),
            )
        } else {
            Outcome::Reply(denied(id, &v))
        };
        (v, Some(o))
    } else {
        match limit_refusal(gw, session, &who, tool) {
            Some((secs, rule)) => {
                let o = limited_reply(id, secs, &rule);
                let why = limit_message(secs, &rule);
                (Verdict::deny(Stage::RateLimit, rule, why), Some(o))
            }
            None => (v, None),
        }
    };
    if let (Some(t), Some(ns)) = (&gw.tracer, started_ns) {
        crate::trace::stage(
            t,
            "guard",
            ns,
            &[
                ("flowguard.decision", v.decision.as_str()),
                ("flowguard.stage", v.stage.as_str()),
                ("flowguard.rule", &v.rule),
                ("mcp.server", server),
                ("gen_ai.tool.name", own),
            ],
        );
    }
    if let (Some(al), flowguard_guard::Decision::Deny) = (&gw.alerts, v.decision) {
        al.verdict(&v, Some(server), Some(own), who.subject.as_deref());
    }
    if gw.metrics.enabled {
        if v.stage == Stage::RateLimit {
            gw.metrics.rate_limited.inc([server, &v.rule]);
        }
        if kind == ListKind::Tools {
            let client = who.client.as_deref().unwrap_or("");
            gw.metrics
                .tool_calls
                .inc([server, own, v.decision.as_str(), client]);
        }
    }
    let what = (method, id, Some(server), Some(own), shown);
    if let Err(o) = audit(gw, session, what, &who, &v, started).await {
        return Some(o);
    }
    outcome
}

/// The guard on a request that names no tool or prompt (`initialize`, lists, `ping`, ...; or
/// a resource, `item`), then the limits; the verdict is recorded when the audit is on. `Some`
/// is the refusal.
async fn guard_plain(
    gw: &Gateway,
    session: &Session,
    id: &str,
    method: &str,
    item: Option<(ListKind, &str, &str)>,
) -> Option<Outcome> {
    let started = std::time::Instant::now();
    let who = session.principal();
    let v = if gw.guard.active {
        gw.guard.decide(&who, method, item, Args::Absent)
    } else {
        Verdict::allow(Stage::Policy, "(no-policy)")
    };
    let (v, outcome) = if v.blocks() {
        let o = Outcome::Reply(denied(id, &v));
        (v, Some(o))
    } else if gw.guard.active {
        match limit_refusal(gw, session, &who, None) {
            Some((secs, rule)) => {
                let o = limited_reply(id, secs, &rule);
                let why = limit_message(secs, &rule);
                (Verdict::deny(Stage::RateLimit, rule, why), Some(o))
            }
            None => (v, None),
        }
    } else {
        (v, None)
    };
    if gw.audit.get().is_some() {
        let server = item.map(|i| i.1).or(match &session.scope {
            Scope::Routed(s) => Some(&**s),
            _ => None,
        });
        let what = (
            method,
            id,
            server,
            item.map(|i| i.2),
            crate::audit::Arguments::None,
        );
        if let Err(o) = audit(gw, session, what, &who, &v, started).await {
            return Some(o);
        }
    }
    outcome
}

/// What a record is about: method, JSON-RPC id, server, tool (prompt, resource URI), arguments.
type Subject<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    crate::audit::Arguments<'a>,
);

/// Records a verdict when the audit is on; `Err` is the refusal when its queue is full and the
/// audit fails closed.
async fn audit(
    gw: &Gateway,
    session: &Session,
    (method, id, server, tool, arguments): Subject<'_>,
    who: &Principal,
    v: &Verdict,
    started: std::time::Instant,
) -> Result<(), Outcome> {
    let Some(a) = gw.audit.get() else {
        return Ok(());
    };
    let line = crate::audit::record(&crate::audit::Event {
        method,
        id,
        server,
        tool,
        arguments,
        who,
        session: crate::audit::session_id(session),
        verdict: v,
        latency_us: started.elapsed().as_micros() as u64,
        label_claims: a.label_claims(),
    });
    a.submit(line).await.map_err(|_| {
        error(
            id,
            ErrorCode::Internal,
            "the audit log cannot take the record of this request (its queue is full); the request was not sent",
        )
    })
}

/// For a unified name `<server><separator><name>` whose server is configured for this
/// endpoint but not ready: why it cannot be reached.
fn unavailable_owner(gw: &Gateway, members: &catalog::Members, name: &str) -> Option<String> {
    let (server, _) = name.split_once(gw.settings.separator.as_str())?;
    let (_, member) = members
        .iter()
        .find(|(i, _)| gw.servers().get(*i).is_some_and(|s| s.id() == server))?;
    let state = match member {
        Ok(u) => u.state(),
        Err(e) => return Some(format!("server {server} is unavailable: {e}")),
    };
    if state.kind == flowguard_upstream::StateKind::Ready {
        return None;
    }
    let reason = state
        .detail
        .unwrap_or_else(|| "it is still starting".into());
    // One line: the reason, then the server's last stderr lines.
    let reason: String = reason
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(600)
        .collect();
    Some(format!(
        "server {server} is unavailable ({}): {reason}; GET /health shows its state",
        state.kind.as_str()
    ))
}

async fn by_uri(gw: &Gateway, session: &Arc<Session>, env: &Envelope<'_>) -> Outcome {
    let id = env.id.map_or("null", |i| i.get());
    let params: Value = env
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Value::Null);
    let Some(uri) = param_str(&params, "/uri") else {
        return error(
            id,
            ErrorCode::InvalidParams,
            &format!("{} needs params.uri", env.method()),
        );
    };
    let server = match the_only_server(gw, session) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return error(id, ErrorCode::Unavailable, &e),
        None => {
            let members = gw.members(session);
            gw.catalog
                .resolve_uri(gw.scope_key(&session.scope), &members, uri)
                .await
        }
    };
    let Some(server) = server else {
        return error(
            id,
            ErrorCode::InvalidParams,
            &format!("Resource not found: no server lists {uri}"),
        );
    };
    if gw.guard.active {
        let who = session.principal();
        // A hidden resource reads exactly like one no server lists.
        if !gw
            .guard
            .visible(&who, ListKind::Resources, server.id(), uri)
        {
            return error(
                id,
                ErrorCode::InvalidParams,
                &format!("Resource not found: no server lists {uri}"),
            );
        }
    }
    if gw.guard.active || gw.audit.get().is_some() {
        let item = Some((ListKind::Resources, server.id(), uri));
        if let Some(o) = guard_plain(gw, session, id, env.method(), item).await {
            return o;
        }
    }
    {
        let mut subs = session
            .subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match env.method() {
            methods::RESOURCES_SUBSCRIBE => {
                subs.insert(uri.to_string(), server.clone());
            }
            methods::RESOURCES_UNSUBSCRIBE => {
                subs.remove(uri);
            }
            _ => {}
        }
    }
    forward(gw, &server, session, env, None).await
}

/// completion/complete names a prompt or a resource template in `ref`.
async fn completion(gw: &Gateway, session: &Arc<Session>, env: &Envelope<'_>) -> Outcome {
    let id = env.id.map_or("null", |i| i.get());
    let params: Value = env
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Value::Null);
    // Guarded, completing a hidden prompt or resource reads exactly like an unknown one.
    let hidden = |server: &str| {
        let (kind, name, what) = match param_str(&params, "/ref/type") {
            Some("ref/prompt") => (
                ListKind::Prompts,
                param_str(&params, "/ref/name"),
                "Unknown prompt",
            ),
            _ => (
                ListKind::Resources,
                param_str(&params, "/ref/uri"),
                "Resource not found",
            ),
        };
        let name = name.unwrap_or_default();
        (gw.guard.active && !gw.guard.visible(&session.principal(), kind, server, name))
            .then(|| error(id, ErrorCode::InvalidParams, &format!("{what}: {name}")))
    };
    match the_only_server(gw, session) {
        Some(Ok(s)) => {
            if let Some(o) = hidden(s.id()) {
                return o;
            }
            return forward(gw, &s, session, env, None).await;
        }
        Some(Err(e)) => return error(id, ErrorCode::Unavailable, &e),
        None => {}
    }
    let key = gw.scope_key(&session.scope);
    let members = gw.members(session);
    match param_str(&params, "/ref/type") {
        Some("ref/prompt") => {
            let name = param_str(&params, "/ref/name").unwrap_or_default();
            match gw
                .catalog
                .resolve_name(key, &members, ListKind::Prompts, name)
                .await
            {
                Some((server, own)) => {
                    if gw.guard.active
                        && !gw.guard.visible(
                            &session.principal(),
                            ListKind::Prompts,
                            server.id(),
                            &own,
                        )
                    {
                        return error(
                            id,
                            ErrorCode::InvalidParams,
                            &format!("Unknown prompt: {name}"),
                        );
                    }
                    let rewritten = with_name(&params, "/ref/name", &own);
                    forward(gw, &server, session, env, rewritten.as_deref()).await
                }
                None => error(
                    id,
                    ErrorCode::InvalidParams,
                    &format!("Unknown prompt: {name}"),
                ),
            }
        }
        Some("ref/resource") => {
            let uri = param_str(&params, "/ref/uri").unwrap_or_default();
            match gw.catalog.resolve_uri(key, &members, uri).await {
                Some(server) => {
                    if let Some(o) = hidden(server.id()) {
                        return o;
                    }
                    forward(gw, &server, session, env, None).await
                }
                None => error(
                    id,
                    ErrorCode::InvalidParams,
                    &format!("Resource not found: {uri}"),
                ),
            }
        }
        _ => error(
            id,
            ErrorCode::InvalidParams,
            "completion/complete needs params.ref of type ref/prompt or ref/resource",
        ),
    }
}

/// A notification from the client.
pub(crate) fn notification(gw: &Gateway, session: &Session, env: &Envelope<'_>) {
    // A notification named like a request (`tools/call` without an id) is not MCP: no server
    // gets it, guard or not (mcpx denies it; a server might act on it).
    if !env.method().starts_with("notifications/") {
        tracing::warn!(session = %session.id, method = env.method(), "a notification named like a request was dropped");
        return;
    }
    // Guarded, notifications pass the rules on their method (as in mcpgw: a denied one is
    // dropped, and the client still gets 202).
    if gw.guard.active {
        let v = gw
            .guard
            .decide(&session.principal(), env.method(), None, Args::Absent);
        if v.blocks() {
            tracing::info!(stage = %v.stage, rule = %v.rule, method = env.method(), "notification dropped: {}", v.reason);
            return;
        }
    }
    match env.method() {
        // Nothing waits on it: sessions serve requests from their `initialize` on. Servers that
        // asked for roots before any client was there are told to ask again.
        methods::INITIALIZED => gw.announce_roots(session),
        methods::CANCELLED => {
            let params: Value = env
                .params
                .and_then(|p| serde_json::from_str(p.get()).ok())
                .unwrap_or(Value::Null);
            let Some(req) = params.get("requestId") else {
                return;
            };
            let reason = param_str(&params, "/reason");
            for s in gw.reachable(session) {
                s.cancel_client_request(&session.id, &req.to_string(), reason);
            }
        }
        // Progress from a client would belong to a server's request; none are forwarded yet.
        methods::PROGRESS => {}
        method => {
            for s in gw.reachable(session) {
                s.notify(method, env.params);
            }
        }
    }
}

/// A client's answer to a request a server sent it: back to that server, with its own id.
pub(crate) fn response(gw: &Gateway, session: &Session, env: &Envelope<'_>) {
    let Some(gw_id) = env.id.and_then(|i| i.get().parse::<u64>().ok()) else {
        tracing::warn!(session = %session.id, "a response to an id the gateway never sent was dropped");
        return;
    };
    match gw.take_outstanding(gw_id) {
        Some(o) if o.session == session.id => {
            o.upstream.respond(&o.server_id, env.result, env.error)
        }
        Some(_) | None => {
            tracing::warn!(session = %session.id, gw_id, "a response to an unknown or foreign request was dropped")
        }
    }
}

/// The `InitializeResult` the gateway answers with: a routed endpoint shows its server's own
/// (capabilities, serverInfo, instructions); the unified endpoint the union of all servers.
///
/// A session's own instances of isolated servers start here: their capabilities are part of
/// the answer.
pub(crate) async fn initialize_result(
    gw: &Gateway,
    session: &Session,
    version: &str,
) -> Result<Value, String> {
    if let Scope::Routed(_) = &session.scope {
        let s = the_only_server(gw, session).ok_or("unknown server")??;
        s.ready().await.map_err(|e| e.to_string())?;
        let mut result = s
            .init_result()
            .map(|r| (*r).clone())
            .unwrap_or_else(|| json!({}));
        result["protocolVersion"] = version.into();
        return Ok(result);
    }
    if let Scope::Virtual(v) = &session.scope {
        return virtual_initialize_result(gw, session, &v.name, version);
    }
    let mut caps = serde_json::Map::new();
    let mut instructions = Vec::new();
    // A session that cannot have its own instance of an isolated server (the per-server cap)
    // is refused here, with the reason, rather than served without that server's tools.
    let servers: Vec<Upstream> = gw
        .members(session)
        .into_iter()
        .map(|(_, m)| m)
        .collect::<Result<_, _>>()?;
    // Shared servers answer from what they cached, once started (a server starting for the
    // first time is waited for briefly, as a list would); new per-session instances must start.
    let wait = gw.catalog.list_wait();
    futures_util::future::join_all(servers.iter().map(|s| async move {
        match s.session() {
            Some(_) => drop(s.ready().await),
            None => drop(catalog::first_start(s, wait).await),
        }
    }))
    .await;
    let mut unknown = false;
    for s in &servers {
        let Some(init) = s.init_result() else {
            // Announced with `list_changed` once it is ready (`Gateway::start`).
            if let Some(i) = gw.catalog.index_of(s.id()) {
                gw.catalog.missed(i);
            }
            unknown = true;
            continue;
        };
        if let Some(c) = init.get("capabilities").and_then(Value::as_object) {
            for (k, v) in c {
                merge_capability(caps.entry(k.clone()).or_insert_with(|| json!({})), v);
            }
        }
        if let Some(text) = init.get("instructions").and_then(Value::as_str) {
            instructions.push(format!("[{}] {text}", s.id()));
        }
    }
    // A server not started yet may offer any list: the session is told of all three, so that
    // it fetches them again when the server is ready and its lists are announced as changed
    // (a client ignores list changes of a capability it was never offered).
    if unknown {
        for kind in ["tools", "prompts", "resources"] {
            caps.entry(kind).or_insert_with(|| json!({}));
        }
    }
    // The gateway forwards list changes from any server, and aggregates completions itself.
    for kind in ["tools", "prompts", "resources"] {
        if let Some(c) = caps.get_mut(kind) {
            c["listChanged"] = true.into();
        }
    }
    let mut result = json!({
        "protocolVersion": version,
        "capabilities": caps,
        "serverInfo": gateway_info(),
    });
    if !instructions.is_empty() {
        result["instructions"] = instructions.join("\n\n").into();
    }
    Ok(result)
}

/// A virtual server offers tools (whose list changes whenever a member's does) and nothing
/// else; members' instructions are left out, as they describe tools it may not offer.
///
/// The session's own instances of isolated members start here, as on the unified endpoint, so
/// a session beyond a server's cap is refused now rather than served without its tools.
fn virtual_initialize_result(
    gw: &Gateway,
    session: &Session,
    name: &str,
    version: &str,
) -> Result<Value, String> {
    for (_, member) in gw.members(session) {
        member?;
    }
    Ok(json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": true } },
        "serverInfo": virtual_info(name),
    }))
}

/// How a virtual server names itself.
pub(crate) fn virtual_info(name: &str) -> Value {
    json!({ "name": name, "title": format!("FlowGuard virtual server {name}"), "version": env!("CARGO_PKG_VERSION") })
}

/// How the gateway names itself on the unified endpoint.
pub(crate) fn gateway_info() -> Value {
    json!({ "name": "flowguard", "title": "FlowGuard MCP gateway", "version": env!("CARGO_PKG_VERSION") })
}

/// Union of one capability object: flags become true if any server sets them.
fn merge_capability(into: &mut Value, from: &Value) {
    if let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in from {
            match (into.get_mut(k), v) {
                (Some(Value::Bool(b)), Value::Bool(n)) => *b |= *n,
                (Some(_), _) => {}
                (None, v) => drop(into.insert(k.clone(), v.clone())),
            }
        }
    }
}

/// The version answered to a client's `initialize`.
pub(crate) fn negotiate(params: &Value) -> &'static str {
    versions::negotiate(param_str(params, "/protocolVersion"))
}
