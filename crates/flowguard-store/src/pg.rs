//! The PostgreSQL engine (the synchronous `postgres` client; no TLS yet: a loopback, socket or
//! private-network server). A connection that breaks is dropped and made again on the next
//! call, so a database that goes away and comes back costs errors in between, never a hang:
//! connecting waits 5 s at most and an unanswered connection is given up after 10 s.

use crate::engine::{audit_where, Engine, Param};
use crate::location::hide_password;
use crate::migrate::Migration;
use crate::secrets::SealedRow;
use crate::{now_ms, AuditRow, Filter, Result, StoreError};
use postgres::types::ToSql;
use postgres::{Client, NoTls};
use std::str::FromStr;
use std::time::Duration;

pub struct Postgres {
    config: postgres::Config,
    schema: Option<String>,
    client: Option<Client>,
    target: String,
}

/// The advisory lock key held while migrating ("flowguard" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x666c_6f77_6775_6172;

impl Postgres {
    pub fn open(url: &str, schema: Option<String>) -> Result<Postgres> {
        let target = format!("PostgreSQL {}", hide_password(url));
        let mut config = postgres::Config::from_str(url).map_err(|e| StoreError::Open {
            target: target.clone(),
            // The parser's message never holds the password.
            why: format!("not a PostgreSQL URL: {e}"),
        })?;
        config
            .connect_timeout(Duration::from_secs(5))
            .tcp_user_timeout(Duration::from_secs(10))
            .keepalives_idle(Duration::from_secs(30))
            .application_name("flowguard");
        let mut pg = Postgres {
            config,
            schema,
            client: None,
            target,
        };
        pg.client().map_err(|e| match e {
            StoreError::Query { target, why } => StoreError::Open {
                target,
                why: format!("{why}. Check that the server runs and that [storage] url is right"),
            },
            e => e,
        })?;
        Ok(pg)
    }

    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut c = self.config.connect(NoTls).map_err(|e| self.fail(&e))?;
            if let Some(s) = &self.schema {
                // `s` was checked: letters, digits and _ only.
                c.batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
                ))
                .map_err(|e| self.fail(&e))?;
            }
            self.client = Some(c);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    fn fail(&self, e: &postgres::Error) -> StoreError {
        // The error's text says what the server said; with its cause when it is I/O.
        let mut why = e.to_string();
        if let Some(src) = std::error::Error::source(e) {
            let s = src.to_string();
            if !why.contains(&s) {
                why = format!("{why}: {s}");
            }
        }
        StoreError::Query {
            target: self.target.clone(),
            why,
        }
    }

    /// Runs `f` with a connection; a failure that broke the connection drops it.
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let c = self.client()?;
        match f(c) {
            Ok(v) => Ok(v),
            Err(e) => {
                let err = self.fail(&e);
                if e.is_closed() || self.client.as_ref().is_some_and(|c| c.is_closed()) {
                    self.client = None;
                }
                Err(err)
            }
        }
    }
}

impl Engine for Postgres {
    fn version(&mut self) -> Result<u32> {
        self.run(|c| {
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS flowguard_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            )?;
            let v: i32 = c
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM flowguard_migrations",
                    &[],
                )?
                .get(0);
            Ok(v as u32)
        })
    }

    fn apply(&mut self, m: &Migration) -> Result<()> {
        self.run(|c| {
            let mut tx = c.transaction()?;
            tx.batch_execute(m.postgres)?;
            tx.execute(
                "INSERT INTO flowguard_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                &[&(m.version as i32), &m.name, &now_ms()],
            )?;
            tx.commit()
        })
    }

    fn lock_migrations(&mut self) -> Result<()> {
        self.run(|c| {
            c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .map(|_| ())
        })
    }

    fn unlock_migrations(&mut self) -> Result<()> {
        self.run(|c| {
            c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .map(|_| ())
        })
    }

    fn kv_get(&mut self, ns: &str, key: &str) -> Result<Option<String>> {
        self.run(|c| {
            c.query_opt(
                "SELECT value FROM kv WHERE ns = $1 AND key = $2",
                &[&ns, &key],
            )
            .map(|r| r.map(|r| r.get(0)))
        })
    }

    fn kv_put(&mut self, ns: &str, key: &str, value: &str) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT INTO kv (ns, key, value, updated_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                &[&ns, &key, &value, &now_ms()],
            )
            .map(|_| ())
        })
    }

    fn kv_delete(&mut self, ns: &str, key: &str) -> Result<bool> {
        self.run(|c| {
            c.execute("DELETE FROM kv WHERE ns = $1 AND key = $2", &[&ns, &key])
                .map(|n| n > 0)
        })
    }

    fn kv_list(&mut self, ns: &str, prefix: &str) -> Result<Vec<(String, String)>> {
        let pat = format!("{}%", crate::engine::like_literal(prefix));
        self.run(|c| {
            c.query(
                "SELECT key, value FROM kv WHERE ns = $1 AND key LIKE $2 ESCAPE '\\' ORDER BY key",
                &[&ns, &pat],
            )
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn secret_get(&mut self, name: &str) -> Result<Option<SealedRow>> {
        self.run(|c| {
            c.query_opt(
                "SELECT key_id, nonce, sealed FROM secrets WHERE name = $1",
                &[&name],
            )
            .map(|r| {
                r.map(|r| SealedRow {
                    name: name.into(),
                    key_id: r.get(0),
                    nonce: r.get(1),
                    sealed: r.get(2),
                })
            })
        })
    }

    fn secret_put(&mut self, row: &SealedRow) -> Result<()> {
        self.run(|c| {
            c.execute(
                "INSERT INTO secrets (name, key_id, nonce, sealed, updated_ms) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
                 sealed = excluded.sealed, updated_ms = excluded.updated_ms",
                &[&row.name, &row.key_id, &row.nonce, &row.sealed, &now_ms()],
            )
            .map(|_| ())
        })
    }

    fn secret_delete(&mut self, name: &str) -> Result<bool> {
        self.run(|c| {
            c.execute("DELETE FROM secrets WHERE name = $1", &[&name])
                .map(|n| n > 0)
        })
    }

    fn secret_names(&mut self) -> Result<Vec<String>> {
        self.run(|c| {
            c.query("SELECT name FROM secrets ORDER BY name", &[])
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn audit_insert(&mut self, rows: &[AuditRow]) -> Result<()> {
        self.run(|c| {
            let mut tx = c.transaction()?;
            let st = tx.prepare(
                "INSERT INTO audit (seq, time_ms, request_id, subject, client, server, tool, method,
                 decision, rule, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (seq) DO NOTHING",
            )?;
            for r in rows {
                tx.execute(
                    &st,
                    &[
                        &r.seq,
                        &r.time_ms,
                        &r.request_id,
                        &r.subject,
                        &r.client,
                        &r.server,
                        &r.tool,
                        &r.method,
                        &r.decision,
                        &r.rule,
                        &r.record,
                    ],
                )?;
            }
            tx.commit()
        })
    }

    fn audit_query(&mut self, f: &Filter) -> Result<Vec<AuditRow>> {
        let (cond, params) = audit_where(f, "$", "ILIKE");
        let sql = format!(
            "SELECT seq, time_ms, request_id, subject, client, server, tool, method, decision, rule,
             record FROM audit{cond} ORDER BY seq LIMIT {}",
            f.page()
        );
        let owned: Vec<Box<dyn ToSql + Sync>> = params
            .into_iter()
            .map(|p| -> Box<dyn ToSql + Sync> {
                match p {
                    Param::Int(i) => Box::new(i),
                    Param::Text(t) => Box::new(t.to_string()),
                    Param::Owned(t) => Box::new(t),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        self.run(|c| {
            c.query(&sql, &refs).map(|rows| {
                rows.iter()
                    .map(|r| AuditRow {
                        seq: r.get(0),
                        time_ms: r.get(1),
                        request_id: r.get(2),
                        subject: r.get(3),
                        client: r.get(4),
                        server: r.get(5),
                        tool: r.get(6),
                        method: r.get(7),
                        decision: r.get(8),
                        rule: r.get(9),
                        record: r.get(10),
                    })
                    .collect()
            })
        })
    }

    fn audit_last_seq(&mut self) -> Result<Option<i64>> {
        self.run(|c| {
            c.query_one("SELECT MAX(seq) FROM audit", &[])
                .map(|r| r.get(0))
        })
    }
}
