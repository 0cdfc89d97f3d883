//! Messages from a server: replies go to the request waiting for them, progress to the request
//! whose token it carries, `ping` is answered here, and everything else (server requests,
//! notifications) goes to the gateway's event router.

use crate::pending::Pending;
use crate::upstream::{Inner, Upstream};
use crate::{Frame, Related};
use flowguard_protocol::{encode, methods, Envelope, Kind};
use serde_json::value::RawValue;
use std::sync::Arc;

impl Inner {
    fn handle(self: &Arc<Self>) -> Upstream {
        Upstream {
            inner: self.clone(),
        }
    }

    fn related(&self) -> Option<Related> {
        self.pending
            .newest_client()
            .map(|(session, sink)| Related { session, sink })
    }

    /// One message from the server.
    pub(crate) fn handle_message(self: &Arc<Self>, bytes: &[u8]) {
        let env = match Envelope::parse_lenient(bytes) {
            Ok(env) => env,
            Err(e) => {
                let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
                tracing::warn!(server = %self.id, "ignored output that is not JSON-RPC ({e}): {preview}");
                return;
            }
        };
        match env.kind() {
            Ok(Kind::Response) => self.handle_reply(&env),
            Ok(Kind::Notification) if env.method() == methods::PROGRESS => {
                self.handle_progress(&env, bytes)
            }
            Ok(Kind::Notification) => {
                if let Some(events) = self.events.get() {
                    events.server_notification(
                        &self.handle(),
                        env.method(),
                        env.params,
                        bytes,
                        self.related(),
                    );
                }
            }
            Ok(Kind::Request) => {
                let id = env.id.expect("a request has an id");
                if env.method() == methods::PING {
                    let empty = RawValue::from_string("{}".into()).expect("valid JSON");
                    self.handle().respond(id, Some(&empty), None);
                } else if let Some(events) = self.events.get() {
                    events.server_request(
                        &self.handle(),
                        id.to_owned(),
                        env.method(),
                        env.params,
                        self.related(),
                    );
                }
            }
            Err(_) => {}
        }
    }

    fn handle_reply(&self, env: &Envelope<'_>) {
        if env.id.is_none() && env.error.is_some() {
            return self.handle_idless_error(env);
        }
        let Some(id) = env.id.and_then(|i| i.get().parse::<u64>().ok()) else {
            tracing::warn!(server = %self.id, "reply with an id the gateway never sent: {:?}", env.id.map(|i| i.get()));
            return;
        };
        match self.pending.remove(id) {
            Some(Pending::Client {
                client_id, sink, ..
            }) => {
                let bytes = encode::response(client_id.get(), env.result, env.error);
                let _ = sink.send(Frame::Final(bytes.into()));
            }
            Some(Pending::Internal(tx)) => {
                let reply = match (env.result, env.error) {
                    (Some(r), _) => Ok(r.to_owned()),
                    (None, Some(e)) => Err(e.to_owned()),
                    (None, None) => Err(RawValue::from_string("null".into()).expect("valid")),
                };
                let _ = tx.send(Ok(reply));
            }
            None => tracing::debug!(server = %self.id, id, "late reply dropped"),
        }
    }

    /// An error with `"id": null`: the server could not read a request (JSON-RPC: -32700 or
    /// -32600). When one request is waiting, it is the one: it fails now with the server's
    /// error instead of timing out. With several, which one is unknown: they wait for their
    /// own replies or timeouts, and the error is logged.
    fn handle_idless_error(&self, env: &Envelope<'_>) {
        let error = env.error.map_or("", |e| e.get());
        let preview: String = error.chars().take(300).collect();
        // Only "could not read it" belongs to a request: any other error without an id (to a
        // notification, to a client's answer) must not fail a call it has nothing to do with.
        let code = serde_json::from_str::<serde_json::Value>(error)
            .ok()
            .and_then(|e| e.get("code").and_then(serde_json::Value::as_i64));
        let unreadable = matches!(code, Some(-32700) | Some(-32600));
        let only = if unreadable {
            self.pending.only()
        } else {
            None
        };
        match only.and_then(|id| Some((id, self.pending.remove(id)?))) {
            Some((
                _,
                Pending::Client {
                    client_id, sink, ..
                },
            )) => {
                tracing::warn!(server = %self.id, "the server could not read a request: {preview}");
                let bytes = encode::response(client_id.get(), None, env.error);
                let _ = sink.send(Frame::Final(bytes.into()));
            }
            Some((_, Pending::Internal(tx))) => {
                let _ = tx.send(Ok(Err(env.error.expect("checked").to_owned())));
            }
            None => tracing::warn!(
                server = %self.id,
                pending = self.pending.len(),
                "an error without an id (the server could not read a request), not matched to one of the requests waiting: {preview}"
            ),
        }
    }

    /// Progress carries the upstream id as its token (see [`swap_progress_token`]); the client's
    /// own token is put back and the notification goes on that request's stream.
    fn handle_progress(self: &Arc<Self>, env: &Envelope<'_>, bytes: &[u8]) {
        let parsed: Option<serde_json::Map<String, serde_json::Value>> =
            env.params.and_then(|p| serde_json::from_str(p.get()).ok());
        let token = parsed
            .as_ref()
            .and_then(|p| p.get("progressToken"))
            .and_then(|t| t.as_u64());
        let delivered = token.and_then(|t| {
            self.pending.with_client(t, |_, sink, original| {
                let mut params = parsed.clone().unwrap_or_default();
                if let Some(orig) = original.and_then(|o| serde_json::from_str(o.get()).ok()) {
                    params.insert("progressToken".into(), orig);
                }
                let raw = serde_json::value::to_raw_value(&params).expect("a Map serializes");
                let msg = encode::notification(methods::PROGRESS, Some(&raw));
                let _ = sink.send(Frame::Message(msg.into()));
            })
        });
        if delivered.is_none() {
            tracing::debug!(server = %self.id, "progress for no pending request: {}", String::from_utf8_lossy(bytes));
        }
    }
}
