//! What an engine does; `Store` adds the locking, the keys and the checks.

use crate::migrate::Migration;
use crate::secrets::SealedRow;
use crate::{AuditRow, Filter, Result};

pub trait Engine: Send {
    /// The applied schema version (0 for an empty database).
    fn version(&mut self) -> Result<u32>;
    /// Runs one migration and records it, in one transaction.
    fn apply(&mut self, m: &Migration) -> Result<()>;
    /// Held while migrating, so that two gateways starting on one database do not race.
    fn lock_migrations(&mut self) -> Result<()>;
    fn unlock_migrations(&mut self) -> Result<()>;

    fn kv_get(&mut self, ns: &str, key: &str) -> Result<Option<String>>;
    fn kv_put(&mut self, ns: &str, key: &str, value: &str) -> Result<()>;
    fn kv_delete(&mut self, ns: &str, key: &str) -> Result<bool>;
    fn kv_list(&mut self, ns: &str, prefix: &str) -> Result<Vec<(String, String)>>;

    fn secret_get(&mut self, name: &str) -> Result<Option<SealedRow>>;
    fn secret_put(&mut self, row: &SealedRow) -> Result<()>;
    fn secret_delete(&mut self, name: &str) -> Result<bool>;
    fn secret_names(&mut self) -> Result<Vec<String>>;

    fn audit_insert(&mut self, rows: &[AuditRow]) -> Result<()>;
    fn audit_query(&mut self, f: &Filter) -> Result<Vec<AuditRow>>;
    fn audit_last_seq(&mut self) -> Result<Option<i64>>;
}

/// `s` as a LIKE pattern matching it literally (escape character `\`).
pub fn like_literal(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// The WHERE clause of an audit query with numbered parameters (`$1`… for PostgreSQL, `?1`…
/// for SQLite), and the parameters in order.
pub enum Param<'a> {
    Int(i64),
    Text(&'a str),
    Owned(String),
}

pub fn audit_where<'a>(f: &'a Filter, mark: &str, ilike: &str) -> (String, Vec<Param<'a>>) {
    let mut sql = String::new();
    let mut params: Vec<Param<'a>> = Vec::new();
    let mut add = |cond: &str, p: Param<'a>, params: &mut Vec<Param<'a>>| {
        sql.push_str(if sql.is_empty() { " WHERE " } else { " AND " });
        params.push(p);
        sql.push_str(&cond.replace('#', &format!("{mark}{}", params.len())));
    };
    if let Some(v) = f.from_ms {
        add("time_ms >= #", Param::Int(v), &mut params);
    }
    if let Some(v) = f.to_ms {
        add("time_ms < #", Param::Int(v), &mut params);
    }
    if let Some(v) = f.after_seq {
        add("seq > #", Param::Int(v), &mut params);
    }
    for (col, v) in [
        ("subject", &f.subject),
        ("client", &f.client),
        ("server", &f.server),
        ("tool", &f.tool),
        ("decision", &f.decision),
        ("rule", &f.rule),
    ] {
        if let Some(v) = v {
            add(&format!("{col} = #"), Param::Text(v), &mut params);
        }
    }
    if let Some(t) = &f.text {
        let pat = format!("%{}%", like_literal(t));
        add(
            &format!("record {ilike} # ESCAPE '\\'"),
            Param::Owned(pat),
            &mut params,
        );
    }
    (sql, params)
}
