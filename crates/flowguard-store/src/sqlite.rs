//! The SQLite engine (rusqlite, bundled): one file, WAL journal, a 5 s busy timeout so that two
//! processes on one file wait instead of failing.

use crate::engine::{audit_where, Engine, Param};
use crate::migrate::Migration;
use crate::secrets::SealedRow;
use crate::{now_ms, AuditRow, Filter, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub struct Sqlite {
    conn: Connection,
    target: String,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite> {
        let target = format!("SQLite file {}", path.display());
        let fail = |why: String| StoreError::Open {
            target: target.clone(),
            why,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                // Private when we made it; left alone when it was there (it may be shared).
                if let Ok(m) = std::fs::metadata(dir) {
                    if m.permissions().mode() & 0o077 != 0
                        && dir
                            .read_dir()
                            .map(|mut d| d.next().is_none())
                            .unwrap_or(false)
                    {
                        let _ =
                            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
                    }
                }
            }
        }
        let conn = Connection::open(path).map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| fail(e.to_string()))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .map_err(|e| fail(format!("{e} (is it a SQLite database?)")))?;
        Ok(Sqlite { conn, target })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Query {
            target: self.target.clone(),
            why: e.to_string(),
        }
    }
}

impl Engine for Sqlite {
    fn version(&mut self) -> Result<u32> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS flowguard_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
            )
            .map_err(|e| self.err(e))?;
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM flowguard_migrations",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v as u32)
            .map_err(|e| self.err(e))
    }

    fn apply(&mut self, m: &Migration) -> Result<()> {
        // IMMEDIATE takes the write lock first: a second process migrating the same file waits,
        // then sees the version already applied and skips it.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )
        .map_err(|e| self.err(e))?;
        let have: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM flowguard_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if have >= m.version as i64 {
            return Ok(());
        }
        tx.execute_batch(m.sqlite).map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT INTO flowguard_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
            params![m.version as i64, m.name, now_ms()],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    fn lock_migrations(&mut self) -> Result<()> {
        // Each migration takes the write lock itself (`apply`).
        Ok(())
    }

    fn unlock_migrations(&mut self) -> Result<()> {
        Ok(())
    }

    fn kv_get(&mut self, ns: &str, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM kv WHERE ns = ?1 AND key = ?2",
                params![ns, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn kv_put(&mut self, ns: &str, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO kv (ns, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                params![ns, key, value, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn kv_delete(&mut self, ns: &str, key: &str) -> Result<bool> {
        self.conn
            .execute(
                "DELETE FROM kv WHERE ns = ?1 AND key = ?2",
                params![ns, key],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    fn kv_list(&mut self, ns: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let pat = format!("{}%", crate::engine::like_literal(prefix));
        let mut st = self
            .conn
            .prepare(
                "SELECT key, value FROM kv WHERE ns = ?1 AND key LIKE ?2 ESCAPE '\\' ORDER BY key",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![ns, pat], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<(String, String)>>>());
        // LIKE is case-insensitive in SQLite: keep exact prefixes only.
        rows.map(|v| {
            v.into_iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .collect()
        })
        .map_err(|e| StoreError::Query {
            target: self.target.clone(),
            why: e.to_string(),
        })
    }

    fn secret_get(&mut self, name: &str) -> Result<Option<SealedRow>> {
        self.conn
            .query_row(
                "SELECT key_id, nonce, sealed FROM secrets WHERE name = ?1",
                params![name],
                |r| {
                    Ok(SealedRow {
                        name: name.into(),
                        key_id: r.get(0)?,
                        nonce: r.get(1)?,
                        sealed: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn secret_put(&mut self, row: &SealedRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO secrets (name, key_id, nonce, sealed, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
                 sealed = excluded.sealed, updated_ms = excluded.updated_ms",
                params![row.name, row.key_id, row.nonce, row.sealed, now_ms()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn secret_delete(&mut self, name: &str) -> Result<bool> {
        self.conn
            .execute("DELETE FROM secrets WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    fn secret_names(&mut self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM secrets ORDER BY name")
            .map_err(|e| self.err(e))?;
        let v = st
            .query_map([], |r| r.get(0))
            .and_then(|it| it.collect::<rusqlite::Result<Vec<String>>>());
        v.map_err(|e| StoreError::Query {
            target: self.target.clone(),
            why: e.to_string(),
        })
    }

    fn audit_insert(&mut self, rows: &[AuditRow]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO audit (seq, time_ms, request_id, subject, client, server, tool, method,
                     decision, rule, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT (seq) DO NOTHING",
                )
                .map_err(|e| self.err(e))?;
            for r in rows {
                st.execute(params![
                    r.seq,
                    r.time_ms,
                    r.request_id,
                    r.subject,
                    r.client,
                    r.server,
                    r.tool,
                    r.method,
                    r.decision,
                    r.rule,
                    r.record
                ])
                .map_err(|e| StoreError::Query {
                    target: self.target.clone(),
                    why: e.to_string(),
                })?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn audit_query(&mut self, f: &Filter) -> Result<Vec<AuditRow>> {
        let (cond, params) = audit_where(f, "?", "LIKE");
        let sql = format!(
            "SELECT seq, time_ms, request_id, subject, client, server, tool, method, decision, rule,
             record FROM audit{cond} ORDER BY seq LIMIT {}",
            f.page()
        );
        let values: Vec<rusqlite::types::Value> = params
            .into_iter()
            .map(|p| match p {
                Param::Int(i) => rusqlite::types::Value::Integer(i),
                Param::Text(t) => rusqlite::types::Value::Text(t.to_string()),
                Param::Owned(t) => rusqlite::types::Value::Text(t),
            })
            .collect();
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok(AuditRow {
                    seq: r.get(0)?,
                    time_ms: r.get(1)?,
                    request_id: r.get(2)?,
                    subject: r.get(3)?,
                    client: r.get(4)?,
                    server: r.get(5)?,
                    tool: r.get(6)?,
                    method: r.get(7)?,
                    decision: r.get(8)?,
                    rule: r.get(9)?,
                    record: r.get(10)?,
                })
            })
            .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|e| StoreError::Query {
            target: self.target.clone(),
            why: e.to_string(),
        })
    }

    fn audit_last_seq(&mut self) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT MAX(seq) FROM audit", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}
