//! Versioned migrations, applied in order at open, each in its own transaction and recorded in
//! `flowguard_migrations`. A database with a version newer than this build knows is refused
//! (an older FlowGuard must not write into a schema it does not understand). Migrations only
//! ever get appended to [`MIGRATIONS`]; a released one is never edited.

use crate::engine::Engine;
use crate::{Result, StoreError};

pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "kv, secrets, audit",
    sqlite: "
            CREATE TABLE kv (
                ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                updated_ms INTEGER NOT NULL, PRIMARY KEY (ns, key));
            CREATE TABLE secrets (
                name TEXT PRIMARY KEY, key_id TEXT NOT NULL, nonce BLOB NOT NULL,
                sealed BLOB NOT NULL, updated_ms INTEGER NOT NULL);
            CREATE TABLE audit (
                seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, request_id TEXT,
                subject TEXT, client TEXT, server TEXT, tool TEXT, method TEXT NOT NULL,
                decision TEXT NOT NULL, rule TEXT NOT NULL, record TEXT NOT NULL);
            CREATE INDEX audit_time ON audit (time_ms);
            CREATE INDEX audit_server_tool ON audit (server, tool, seq);",
    postgres: "
            CREATE TABLE kv (
                ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                updated_ms BIGINT NOT NULL, PRIMARY KEY (ns, key));
            CREATE TABLE secrets (
                name TEXT PRIMARY KEY, key_id TEXT NOT NULL, nonce BYTEA NOT NULL,
                sealed BYTEA NOT NULL, updated_ms BIGINT NOT NULL);
            CREATE TABLE audit (
                seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, request_id TEXT,
                subject TEXT, client TEXT, server TEXT, tool TEXT, method TEXT NOT NULL,
                decision TEXT NOT NULL, rule TEXT NOT NULL, record TEXT NOT NULL);
            CREATE INDEX audit_time ON audit (time_ms);
            CREATE INDEX audit_server_tool ON audit (server, tool, seq);",
}];

/// The version this build brings a database to.
pub fn latest() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Brings the database to [`latest`]; returns the versions applied.
pub(crate) fn apply(e: &mut dyn Engine) -> Result<Vec<u32>> {
    e.lock_migrations()?;
    let r = apply_locked(e);
    let u = e.unlock_migrations();
    let done = r?;
    u?;
    Ok(done)
}

fn apply_locked(e: &mut dyn Engine) -> Result<Vec<u32>> {
    let have = e.version()?;
    if have > latest() {
        return Err(StoreError::TooNew {
            target: "the database".into(),
            found: have,
            known: latest(),
        });
    }
    let mut done = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > have) {
        e.apply(m)?;
        done.push(m.version);
    }
    Ok(done)
}
