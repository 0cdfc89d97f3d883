//! Stateless calls waiting for the client's answers (MRTR). When a handshake-era server asks a
//! 2026-07-28 client something, the client's request is answered with an input-required result
//! naming a `requestState`; the server's call stays open here under that state until the client
//! retries with `inputResponses`, or until [`PARK_LIMIT`] passes and the call is cancelled.

use super::call::{refuse_server_request, Call};
use crate::downstream::in_flight::InFlight;
use crate::error::StatelessError;
use crate::gateway::Gateway;
use crate::session::{new_session_id, Session, SessionStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long a call waits for the client's retry: long enough for a person to answer an
/// elicitation form, short enough that abandoned calls do not pile up on the servers.
pub(crate) const PARK_LIMIT: Duration = Duration::from_secs(300);

type Table = Mutex<HashMap<String, Parked>>;

/// The waiting calls by `requestState` (128 random bits, so a state cannot be guessed).
#[derive(Default)]
pub(crate) struct ParkedCalls {
    table: Arc<Table>,
}

/// A call waiting for the client: its reply stream and the server requests to answer.
pub(crate) struct Parked {
    pub call: Call,
    pub req: InFlight,
    pub inputs: Inputs,
}

impl ParkedCalls {
    /// Parks a call; returns its `requestState`. Dropping it later (expiry) cancels it upstream.
    pub(crate) fn park(&self, parked: Parked) -> String {
        let state = new_session_id().to_string();
        lock(&self.table).insert(state.clone(), parked);
        let table = Arc::downgrade(&self.table);
        let key = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PARK_LIMIT).await;
            let expired = table.upgrade().and_then(|t| lock(&t).remove(&key));
            if expired.is_some() {
                tracing::info!("a call waiting for inputResponses expired and was cancelled");
            }
        });
        state
    }

    /// The call a retry continues: same endpoint and method as the request that parked it.
    pub(crate) fn take(&self, state: &str, retry: &Call) -> Result<Parked, StatelessError> {
        let mut table = lock(&self.table);
        let Some(parked) = table.remove(state) else {
            return Err(StatelessError::BadRetry(format!(
                "requestState is unknown or expired (calls wait {} s for inputResponses); send the request again without requestState and inputResponses",
                PARK_LIMIT.as_secs()
            )));
        };
        if parked.call.method != retry.method || parked.call.session.scope != retry.session.scope {
            let e = StatelessError::BadRetry(format!(
                "requestState belongs to a {} request on another endpoint or method, not this {}",
                parked.call.method, retry.method
            ));
            table.insert(state.to_string(), parked);
            return Err(e);
        }
        Ok(parked)
    }

    /// Returns a call taken for a retry that turned out incomplete.
    pub(crate) fn put_back(&self, state: &str, parked: Parked) {
        lock(&self.table).insert(state.to_string(), parked);
    }
}

fn lock(t: &Table) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server requests a parked call waits on, by input key. Any left unanswered when the call
/// goes away are refused, so the server is not left waiting either.
pub(crate) struct Inputs {
    gateway: Weak<Gateway>,
    list: Vec<(String, u64)>,
}

impl Inputs {
    pub(crate) fn new(gw: &Arc<Gateway>, list: Vec<(String, u64)>) -> Self {
        Inputs {
            gateway: Arc::downgrade(gw),
            list,
        }
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(k, _)| k.as_str())
    }

    pub(crate) fn take(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.list)
    }
}

impl Drop for Inputs {
    fn drop(&mut self) {
        if let Some(gw) = self.gateway.upgrade() {
            for (_, gw_id) in self.list.drain(..) {
                refuse_server_request(&gw, gw_id, "the client did not answer in time");
            }
        }
    }
}

/// Keeps a stateless session in `Gateway::stateless` while its call lasts, so the server's
/// requests and notifications find it; removes it when dropped.
pub(crate) struct Registration {
    gateway: Weak<Gateway>,
    session: Arc<Session>,
    ended: bool,
}

impl Registration {
    pub(crate) fn new(gw: &Arc<Gateway>, session: Arc<Session>) -> Self {
        gw.stateless.insert(session.clone());
        Registration {
            gateway: Arc::downgrade(gw),
            session,
            ended: false,
        }
    }

    /// The gateway, while it runs.
    pub(crate) fn gateway(&self) -> Option<Arc<Gateway>> {
        self.gateway.upgrade()
    }

    /// Whether the stream of a listen session already sent its closing result.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn end(&mut self) {
        self.ended = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(gw) = self.gateway.upgrade() {
            gw.end_stateless(&self.session);
        }
    }
}
