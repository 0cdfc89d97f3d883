//! Messages servers send on their own: requests to a client (sampling, elicitation, roots) and
//! notifications (logging, list changes, resource updates, cancellations). Each goes to the
//! client session it concerns, on the stream of the request it relates to when there is one
//! (that is where clients look for it), else on the session's GET stream.

use crate::catalog::ListKind;
use crate::gateway::{Gateway, Outstanding};
use crate::session::{Scope, Session, SessionStore};
use bytes::Bytes;
use flowguard_protocol::{encode, methods, ErrorCode, RawId};
use flowguard_upstream::{Frame, Related, Upstream, UpstreamEvents};
use serde_json::value::RawValue;
use std::sync::{Arc, Weak};

pub(crate) struct EventRouter {
    gateway: Weak<Gateway>,
}

impl EventRouter {
    pub(crate) fn new(gateway: Weak<Gateway>) -> Self {
        EventRouter { gateway }
    }
}

/// Sessions that see an instance (with the listen streams of 2026-07-28 clients), most
/// recently active first: for a per-session instance only its own session, so nothing of one
/// session's instance reaches another session.
fn sessions_of(gw: &Gateway, upstream: &Upstream) -> Vec<Arc<Session>> {
    if let Some(own) = upstream.session() {
        return gw
            .sessions
            .get(own)
            .or_else(|| gw.stateless.get(own))
            .into_iter()
            .collect();
    }
    let mut v: Vec<_> = gw
        .sessions
        .all()
        .into_iter()
        .chain(gw.stateless.all())
        .filter(|s| s.scope.includes(upstream.id()))
        .collect();
    v.sort_by_key(|s| s.idle_for());
    v
}

fn refuse(upstream: &Upstream, server_id: &RawValue, message: &str) {
    let err = serde_json::json!({ "code": ErrorCode::MethodNotFound as i64, "message": message });
    let raw = serde_json::value::to_raw_value(&err).expect("a Value serializes");
    upstream.respond(server_id, None, Some(&raw));
}

impl UpstreamEvents for EventRouter {
    fn server_request(
        &self,
        upstream: &Upstream,
        server_id: RawId,
        method: &str,
        params: Option<&RawValue>,
        related: Option<Related>,
    ) {
        let Some(gw) = self.gateway.upgrade() else {
            return;
        };
        // The client whose request is in flight, else the most recently active one that has a
        // GET stream to carry the request (a 2026-07-28 listen stream carries no requests).
        let target = related
            .as_ref()
            .and_then(|r| {
                gw.sessions
                    .get(&r.session)
                    .or_else(|| gw.stateless.get(&r.session))
            })
            .or_else(|| {
                sessions_of(&gw, upstream)
                    .into_iter()
                    .find(|s| s.has_stream() && !s.stateless)
            });
        let Some(session) = target else {
            if method == methods::ROOTS_LIST {
                // Servers often ask at start, before any client is there: no client, no roots.
                // An empty list is the truth, and an error here reads like a failure in the
                // server's log. The first client with roots to arrive makes the gateway send
                // the server `notifications/roots/list_changed`, so it asks again.
                tracing::debug!(
                    server = upstream.id(),
                    "roots/list with no client session: answered with no roots"
                );
                let empty = RawValue::from_string("{\"roots\":[]}".into()).expect("valid JSON");
                upstream.respond(&server_id, Some(&empty), None);
                gw.roots_asked(upstream);
                return;
            }
            refuse(
                upstream,
                &server_id,
                &format!("no client session can answer {method} right now"),
            );
            return;
        };
        // A 2026-07-28 request answers a missing capability itself, with -32021 to its client.
        if !session.stateless && !session.hello().supports(method) {
            refuse(
                upstream,
                &server_id,
                &format!("the client did not declare the capability {method} needs"),
            );
            return;
        }
        let gw_id = gw.remember_outstanding(Outstanding {
            session: session.id.clone(),
            upstream: upstream.clone(),
            server_id: server_id.clone(),
        });
        let msg = Bytes::from(encode::request(&gw_id.to_string(), method, params));
        let sent = match &related {
            Some(r) if r.session == session.id => r.sink.send(Frame::Message(msg.clone())).is_ok(),
            _ => false,
        };
        if !sent && !session.push(msg) {
            gw.take_outstanding(gw_id);
            refuse(
                upstream,
                &server_id,
                "the client has no open stream to receive the request",
            );
        }
    }

    fn server_notification(
        &self,
        upstream: &Upstream,
        method: &str,
        params: Option<&RawValue>,
        message: &[u8],
        related: Option<Related>,
    ) {
        let Some(gw) = self.gateway.upgrade() else {
            return;
        };
        let server = upstream.id();
        let changed = match method {
            methods::TOOLS_LIST_CHANGED => Some(ListKind::Tools),
            methods::PROMPTS_LIST_CHANGED => Some(ListKind::Prompts),
            methods::RESOURCES_LIST_CHANGED => Some(ListKind::Resources),
            _ => None,
        };
        if let Some(kind) = changed {
            let owner = upstream.session().map(|s| &**s);
            gw.catalog.invalidate(server, Some(kind), owner);
            if kind == ListKind::Resources {
                gw.catalog
                    .invalidate(server, Some(ListKind::Templates), owner);
            }
            // A virtual server's sessions see tools only: other lists are always empty there.
            broadcast(&gw, upstream, message, |s| {
                kind == ListKind::Tools || !matches!(s.scope, Scope::Virtual(_))
            });
            return;
        }
        match method {
            methods::RESOURCE_UPDATED => {
                let uri = params
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                    .and_then(|v| v.get("uri").and_then(|u| u.as_str()).map(str::to_string));
                broadcast(&gw, upstream, message, |s| {
                    uri.as_ref().is_some_and(|u| {
                        s.subscriptions
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .contains_key(u)
                    })
                });
            }
            methods::CANCELLED => cancel_outstanding(&gw, upstream, params),
            _ => {
                let msg = Bytes::copy_from_slice(message);
                let on_request =
                    related.is_some_and(|r| r.sink.send(Frame::Message(msg.clone())).is_ok());
                if !on_request {
                    broadcast(&gw, upstream, message, |_| true);
                }
            }
        }
    }
}

/// Sends a notification to the GET streams of the server's sessions that `want` it.
fn broadcast(gw: &Gateway, upstream: &Upstream, message: &[u8], want: impl Fn(&Session) -> bool) {
    let msg = Bytes::copy_from_slice(message);
    for s in sessions_of(gw, upstream) {
        if want(&s) {
            s.push(msg.clone());
        }
    }
}

/// The server cancelled a request it had sent to a client: tell that client, with its id.
fn cancel_outstanding(gw: &Gateway, upstream: &Upstream, params: Option<&RawValue>) {
    let Some(v) = params.and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
    else {
        return;
    };
    let Some(req) = v.get("requestId") else {
        return;
    };
    let Some((gw_id, session)) = gw.find_outstanding(upstream, &req.to_string()) else {
        return;
    };
    gw.take_outstanding(gw_id);
    let mut v = v.clone();
    v["requestId"] = gw_id.into();
    let raw = serde_json::value::to_raw_value(&v).expect("a Value serializes");
    if let Some(s) = gw.sessions.get(&session) {
        s.push(encode::notification(methods::CANCELLED, Some(&raw)).into());
    }
}
