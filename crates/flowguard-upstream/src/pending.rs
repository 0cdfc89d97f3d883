//! Requests sent to an upstream and not yet answered, keyed by the upstream-side id.

use crate::{ReplySink, SessionKey, UpstreamError};
use flowguard_protocol::RawId;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// A reply as the server sent it: `Ok(result)` or `Err(error object)`, both raw.
pub type RawReply = Result<Box<RawValue>, Box<RawValue>>;

pub enum Pending {
    /// A client's request: the reply goes to its stream with its own id restored.
    Client {
        client_id: RawId,
        session: SessionKey,
        sink: ReplySink,
        /// The client's own progress token, replaced on the way up by the upstream id.
        progress_token: Option<Box<RawValue>>,
    },
    /// The gateway's own request (initialize, aggregation): the raw reply is handed back, or
    /// why it could not be delivered.
    Internal(oneshot::Sender<Result<RawReply, UpstreamError>>),
}

#[derive(Default)]
pub struct PendingRequests {
    map: Mutex<HashMap<u64, Pending>>,
}

impl PendingRequests {
    pub fn insert(&self, id: u64, p: Pending) {
        self.lock().insert(id, p);
    }

    pub fn remove(&self, id: u64) -> Option<Pending> {
        self.lock().remove(&id)
    }

    /// Runs `f` on a pending client request without removing it (progress notifications).
    pub fn with_client<R>(
        &self,
        id: u64,
        f: impl FnOnce(&SessionKey, &ReplySink, Option<&RawValue>) -> R,
    ) -> Option<R> {
        match self.lock().get(&id) {
            Some(Pending::Client {
                session,
                sink,
                progress_token,
                ..
            }) => Some(f(session, sink, progress_token.as_deref())),
            _ => None,
        }
    }

    /// The client request that started most recently (ids only grow).
    pub fn newest_client(&self) -> Option<(SessionKey, ReplySink)> {
        let map = self.lock();
        map.iter()
            .filter_map(|(id, p)| match p {
                Pending::Client { session, sink, .. } => Some((*id, session, sink)),
                Pending::Internal(_) => None,
            })
            .max_by_key(|(id, ..)| *id)
            .map(|(_, s, k)| (s.clone(), k.clone()))
    }

    /// Whether a request of this client session is waiting.
    pub fn any_for(&self, session: &str) -> bool {
        self.lock()
            .values()
            .any(|p| matches!(p, Pending::Client { session: s, .. } if &**s == session))
    }

    /// The id of the only request waiting, when exactly one is.
    pub fn only(&self) -> Option<u64> {
        let map = self.lock();
        let mut ids = map.keys();
        match (ids.next(), ids.next()) {
            (Some(id), None) => Some(*id),
            _ => None,
        }
    }

    /// The upstream id of a client's request, found by the client's session and id. A scan: it
    /// runs only for cancellations, and keeps the hot path free of a second index.
    pub fn find_client(&self, session: &str, client_id: &str) -> Option<u64> {
        self.lock().iter().find_map(|(id, p)| match p {
            Pending::Client {
                session: s,
                client_id: c,
                ..
            } if &**s == session && c.get() == client_id => Some(*id),
            _ => None,
        })
    }

    /// Removes every pending request, for failing them when the connection is gone.
    pub fn drain(&self) -> Vec<(u64, Pending)> {
        self.lock().drain().collect()
    }

    /// Removes the requests of one client session (it ended).
    pub fn drain_session(&self, session: &str) -> Vec<u64> {
        let mut map = self.lock();
        let ids: Vec<u64> = map
            .iter()
            .filter_map(|(id, p)| match p {
                Pending::Client { session: s, .. } if &**s == session => Some(*id),
                _ => None,
            })
            .collect();
        for id in &ids {
            map.remove(id);
        }
        ids
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        // A panic while holding this lock cannot leave the map half-updated: every operation is
        // a single HashMap call, so a poisoned lock is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}
