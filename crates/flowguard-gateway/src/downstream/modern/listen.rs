//! `subscriptions/listen`: the 2026-07-28 replacement of the GET stream. The response is a
//! long-lived SSE stream that first acknowledges what the gateway will send, then carries the
//! list changes and resource updates the client opted into, each tagged with the listen
//! request's id in `_meta["io.modelcontextprotocol/subscriptionId"]`. The stream's session sits
//! in `Gateway::stateless`, where the event router finds it like any GET stream.

use super::parked::Registration;
use crate::downstream::reply;
use crate::error::StatelessError;
use crate::gateway::Gateway;
use crate::router;
use crate::session::{ClientHello, Scope, Sequenced, Session};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use flowguard_protocol::modern::{splice_result, META_SUBSCRIPTION_ID};
use flowguard_protocol::{encode, methods, sse, versions, Envelope};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Comments on an idle stream, so that proxies do not cut it.
const KEEPALIVE: Duration = Duration::from_secs(25);

/// The notification kinds a listen request can opt into, by filter field.
const LIST_FILTERS: [(&str, &str, &str); 3] = [
    ("toolsListChanged", "tools", methods::TOOLS_LIST_CHANGED),
    (
        "promptsListChanged",
        "prompts",
        methods::PROMPTS_LIST_CHANGED,
    ),
    (
        "resourcesListChanged",
        "resources",
        methods::RESOURCES_LIST_CHANGED,
    ),
];

/// An opened subscription: its acknowledgement, where its notifications arrive, which of
/// them the client opted into, and the registration that keeps it findable.
struct Listening {
    first: Bytes,
    rx: mpsc::UnboundedReceiver<Sequenced>,
    allowed: Vec<&'static str>,
    registration: Registration,
}

pub(crate) async fn open(
    gw: &Arc<Gateway>,
    scope: Scope,
    agent: Option<String>,
    hello: ClientHello,
    id: &str,
    params: &Value,
) -> Response {
    match subscribe_all(gw, scope, agent, hello, id, params).await {
        Ok(l) => stream(l.first, l.rx, l.allowed, id.to_string(), l.registration),
        Err(e) => e.into_response(id),
    }
}

/// `subscriptions/listen` over stdio: the acknowledgement and then each notification the
/// client opted into, as lines on `out`, until the client's input ends or it cancels the
/// listen request (this runs in that request's task); its resource subscriptions are then
/// released.
pub(crate) async fn open_lines(
    gw: &Arc<Gateway>,
    scope: Scope,
    hello: ClientHello,
    id: &str,
    params: &Value,
    out: mpsc::UnboundedSender<Bytes>,
    mut input_ended: tokio::sync::watch::Receiver<bool>,
) {
    let mut l = match subscribe_all(gw, scope, None, hello, id, params).await {
        Ok(l) => l,
        Err(e) => return drop(out.send(e.body(id).into())),
    };
    if out.send(l.first).is_err() {
        return;
    }
    let _registration = l.registration;
    loop {
        let msg = tokio::select! {
            m = l.rx.recv() => m,
            _ = out.closed() => return,
            _ = input_ended.wait_for(|e| *e) => return,
        };
        let Some((_, msg)) = msg else {
            let _ = out.send(closed(id));
            return;
        };
        let tagged = opted_into(&msg, &l.allowed, id);
        if tagged.is_some_and(|t| out.send(t).is_err()) {
            return;
        }
    }
}

/// A notification the listen request opted into, tagged with its subscription id.
fn opted_into(msg: &[u8], allowed: &[&str], id: &str) -> Option<Bytes> {
    let env = Envelope::parse_lenient(msg).ok()?;
    allowed
        .contains(&env.method())
        .then(|| tag(env.method(), env.params, id))
}

async fn subscribe_all(
    gw: &Arc<Gateway>,
    scope: Scope,
    agent: Option<String>,
    hello: ClientHello,
    id: &str,
    params: &Value,
) -> Result<Listening, StatelessError> {
    let Some(wanted) = params.get("notifications").and_then(Value::as_object) else {
        return Err(StatelessError::InvalidMeta(
            "subscriptions/listen needs params.notifications (e.g. {\"toolsListChanged\": true})"
                .into(),
        ));
    };
    let session = Arc::new(Session::stateless(scope, agent, hello, Vec::new()));
    let registration = Registration::new(gw, session.clone());
    let caps = router::initialize_result(gw, &session, versions::LATEST)
        .await
        .ok()
        .and_then(|r| r.get("capabilities").cloned())
        .unwrap_or_default();
    let mut honored = Map::new();
    let mut allowed = Vec::new();
    for (field, capability, method) in LIST_FILTERS {
        if wanted.get(field) == Some(&Value::Bool(true)) && caps.get(capability).is_some() {
            honored.insert(field.into(), true.into());
            allowed.push(method);
        }
    }
    let uris = subscribe(gw, &session, wanted).await;
    if !uris.is_empty() {
        honored.insert("resourceSubscriptions".into(), json!(uris));
        allowed.push(methods::RESOURCE_UPDATED);
    }
    let rx = session.open_stream();
    let ack = json!({ "notifications": honored });
    let ack = serde_json::value::to_raw_value(&ack).expect("a Value serializes");
    let first = tag(methods::SUBSCRIPTIONS_ACKNOWLEDGED, Some(&ack), id);
    tracing::debug!(subscription = id, ?allowed, "listen stream opened");
    Ok(Listening {
        first,
        rx,
        allowed,
        registration,
    })
}

/// Subscribes the owning servers to the resources the client listed; returns those accepted.
async fn subscribe(gw: &Gateway, session: &Session, wanted: &Map<String, Value>) -> Vec<String> {
    let uris = wanted
        .get("resourceSubscriptions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    let mut accepted = Vec::new();
    // A virtual server offers no resources, whatever its members offer.
    if let Scope::Virtual(_) = &session.scope {
        return accepted;
    }
    for uri in uris {
        let only = {
            let mut it = gw.servers_in(&session.scope);
            match (it.next(), it.next()) {
                (Some(s), None) => Some(s.clone()),
                _ => None,
            }
        };
        let server = match only {
            Some(s) => Some(s),
            None => {
                let members = gw.members(session);
                gw.catalog
                    .resolve_uri(gw.scope_key(&session.scope), &members, uri)
                    .await
            }
        };
        let Some(server) = server else { continue };
        let params =
            serde_json::value::to_raw_value(&json!({ "uri": uri })).expect("a Value serializes");
        match server
            .request(methods::RESOURCES_SUBSCRIBE, Some(&params))
            .await
        {
            Ok(_) => {
                session
                    .subscriptions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(uri.to_string(), server.clone());
                accepted.push(uri.to_string());
            }
            Err(e) => tracing::warn!(uri, server = server.id(), "resources/subscribe failed: {e}"),
        }
    }
    accepted
}

/// The listen request's result, which ends the subscription gracefully.
fn closed(id: &str) -> Bytes {
    let result =
        format!("{{\"resultType\":\"complete\",\"_meta\":{{\"{META_SUBSCRIPTION_ID}\":{id}}}}}");
    Bytes::from(encode::result_json(id, result.as_bytes()))
}

/// A notification with the subscription id in its `params._meta`.
fn tag(method: &str, params: Option<&RawValue>, id: &str) -> Bytes {
    let params = splice_result(
        params.map_or("{}", |p| p.get()),
        &[],
        &[(META_SUBSCRIPTION_ID, id)],
    );
    let raw = RawValue::from_string(params).ok();
    Bytes::from(encode::notification(method, raw.as_deref()))
}

fn stream(
    first: Bytes,
    rx: mpsc::UnboundedReceiver<Sequenced>,
    allowed: Vec<&'static str>,
    id: String,
    registration: Registration,
) -> Response {
    let state = (Some(first), rx, registration);
    let events = futures_util::stream::unfold(state, move |(first, mut rx, mut registration)| {
        let allowed = allowed.clone();
        let id = id.clone();
        async move {
            if let Some(first) = first {
                let event = sse::message_event(None, &first);
                return Some((Ok::<_, Infallible>(event), (None, rx, registration)));
            }
            loop {
                let msg = match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                    Ok(Some((_, msg))) => msg,
                    // The gateway ended the stream (shutdown): say so with the listen result.
                    Ok(None) if !registration.ended() => {
                        let end = closed(&id);
                        registration.end();
                        return Some((
                            Ok(sse::message_event(None, &end)),
                            (None, rx, registration),
                        ));
                    }
                    Ok(None) => return None,
                    Err(_) => {
                        let keepalive = Bytes::from_static(sse::KEEPALIVE);
                        return Some((Ok(keepalive), (None, rx, registration)));
                    }
                };
                if let Some(tagged) = opted_into(&msg, &allowed, &id) {
                    let event = sse::message_event(None, &tagged);
                    return Some((Ok(event), (None, rx, registration)));
                }
            }
        }
    });
    reply::sse_response(Body::from_stream(events))
}
