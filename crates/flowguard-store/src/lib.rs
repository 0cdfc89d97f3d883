//! FlowGuard's storage (ROADMAP I1): state that outlives a restart.
//!
//! One interface, [`Store`], over two engines: an embedded SQLite file (the default: nothing to
//! install) and PostgreSQL (`postgres://…`, for teams and, later, several replicas). Both get the
//! same versioned migrations at open ([`migrate`]), and the same tests run against both.
//!
//! What it keeps:
//! - key-value state in namespaces (tool pins, agent labels, approvals: later issues);
//! - audit records, one row per record, for queries ([`AuditRow`], [`Filter`]);
//! - secrets, sealed with AES-256-GCM under a key from the environment or a file, bound to their
//!   row by the associated data, with the key's id kept for rotation ([`secrets`]).
//!
//! Everything is synchronous: the gateway calls a store from a thread of its own. A store whose
//! PostgreSQL server went away answers errors (quickly) and reconnects on the next call.

mod engine;
pub mod location;
pub mod migrate;
mod pg;
pub mod secrets;
mod sqlite;

pub use location::Location;
pub use secrets::{SecretKey, SecretKeys};

use engine::Engine;
use std::sync::Mutex;

/// What went wrong, said so that an operator knows what to do. Never holds a password or a
/// secret's value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: cannot open {target}: {why}")]
    Open { target: String, why: String },
    #[error("storage: {target}: {why}")]
    Query { target: String, why: String },
    #[error("storage: {target} holds schema version {found}, newer than this FlowGuard knows ({known}): use a newer FlowGuard or another database")]
    TooNew {
        target: String,
        found: u32,
        known: u32,
    },
    #[error("storage: secret {name:?}: {why}")]
    Secret { name: String, why: String },
    #[error("storage: {0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One audit record as stored for queries: the columns a query filters on, and the whole record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRow {
    pub seq: i64,
    /// Unix time in milliseconds.
    pub time_ms: i64,
    pub request_id: Option<String>,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub method: String,
    pub decision: String,
    pub rule: String,
    /// The record as written to the log (JSON).
    pub record: String,
}

/// An audit query: every set field must match; results in sequence order.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub decision: Option<String>,
    pub rule: Option<String>,
    /// Case-insensitive substring of the whole record.
    pub text: Option<String>,
    /// Only records after this sequence number (paging).
    pub after_seq: Option<i64>,
    /// At most this many (capped at [`MAX_PAGE`]; 100 when 0).
    pub limit: usize,
}

pub const MAX_PAGE: usize = 1000;

impl Filter {
    /// The page size this filter asks for.
    pub fn page(&self) -> i64 {
        match self.limit {
            0 => 100,
            n => n.min(MAX_PAGE) as i64,
        }
    }
}

/// A store: one engine behind a lock (calls are short; the gateway serialises them anyway).
pub struct Store {
    engine: Mutex<Box<dyn Engine>>,
    keys: Option<SecretKeys>,
    describe: String,
}

impl Store {
    /// Opens (creating it when it is a SQLite file) and migrates to the current schema.
    pub fn open(at: &Location, keys: Option<SecretKeys>) -> Result<Store> {
        let mut engine: Box<dyn Engine> = match at {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
            Location::Postgres { url, schema } => {
                Box::new(pg::Postgres::open(url, schema.clone())?)
            }
        };
        migrate::apply(engine.as_mut())?;
        Ok(Store {
            engine: Mutex::new(engine),
            keys,
            describe: at.to_string(),
        })
    }

    /// Where it is, fit for a log line (no password).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn with<T>(&self, f: impl FnOnce(&mut dyn Engine) -> Result<T>) -> Result<T> {
        let mut e = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        f(e.as_mut())
    }

    /// The schema version now in the database.
    pub fn schema_version(&self) -> Result<u32> {
        self.with(|e| e.version())
    }

    /// A cheap round trip: is the database there?
    pub fn ping(&self) -> Result<()> {
        self.with(|e| e.version().map(|_| ()))
    }

    pub fn get(&self, ns: &str, key: &str) -> Result<Option<String>> {
        self.with(|e| e.kv_get(ns, key))
    }

    pub fn put(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        self.with(|e| e.kv_put(ns, key, value))
    }

    /// Whether there was something to delete.
    pub fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        self.with(|e| e.kv_delete(ns, key))
    }

    /// Every key of `ns` starting with `prefix`, in key order.
    pub fn list(&self, ns: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        self.with(|e| e.kv_list(ns, prefix))
    }

    /// Adds audit rows (a row whose `seq` is there already is left as it was: a retried batch
    /// does not duplicate).
    pub fn add_audit(&self, rows: &[AuditRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.with(|e| e.audit_insert(rows))
    }

    pub fn audit(&self, f: &Filter) -> Result<Vec<AuditRow>> {
        self.with(|e| e.audit_query(f))
    }

    /// The highest stored sequence number.
    pub fn audit_last_seq(&self) -> Result<Option<i64>> {
        self.with(|e| e.audit_last_seq())
    }

    fn keys(&self, name: &str) -> Result<&SecretKeys> {
        self.keys.as_ref().ok_or_else(|| StoreError::Secret {
            name: name.into(),
            why: "no secret key is set: set FLOWGUARD_SECRET_KEY (64 hex digits) or \
                  [storage] secret_key_file"
                .into(),
        })
    }

    /// Seals `value` under the current key and stores it as `name`.
    pub fn put_secret(&self, name: &str, value: &[u8]) -> Result<()> {
        let row = self.keys(name)?.seal(name, value)?;
        self.with(|e| e.secret_put(&row))
    }

    /// Opens the stored secret `name` (with whichever known key sealed it).
    pub fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let keys = self.keys(name)?;
        match self.with(|e| e.secret_get(name))? {
            None => Ok(None),
            Some(row) => keys.open(&row).map(Some),
        }
    }

    pub fn delete_secret(&self, name: &str) -> Result<bool> {
        self.with(|e| e.secret_delete(name))
    }

    pub fn secret_names(&self) -> Result<Vec<String>> {
        self.with(|e| e.secret_names())
    }

    /// Re-seals every secret not sealed under the current key; returns how many.
    pub fn rekey_secrets(&self) -> Result<usize> {
        let keys = self.keys("*")?;
        let mut n = 0;
        for name in self.secret_names()? {
            let Some(row) = self.with(|e| e.secret_get(&name))? else {
                continue;
            };
            if row.key_id == keys.current_id() {
                continue;
            }
            let value = keys.open(&row)?;
            let row = keys.seal(&name, &value)?;
            self.with(|e| e.secret_put(&row))?;
            n += 1;
        }
        Ok(n)
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
