//! Opening storage from the config and flags, and `flowguard audit query`.

use crate::cli::QueryArgs;
use flowguard_config::StorageSettings;
use flowguard_store::{location, Filter, Location, SecretKeys, Store};
use std::path::Path;
use std::process::ExitCode;

/// The store `[storage]` (and `--data-dir`, which wins over `data_dir`) names, migrated. The
/// error says where and what to do.
pub fn open(s: &StorageSettings, data_dir: Option<&Path>) -> Result<Store, String> {
    let at = location_of(s.url.as_deref(), s.schema.clone(), s, data_dir)?;
    let keys = SecretKeys::from_env_or_file(s.secret_key_file.as_deref())
        .map_err(|e| format!("error: {e}"))?;
    Store::open(&at, keys).map_err(|e| {
        format!("error: {e}\nhint: [storage] url chooses the database (docs/config.md, Storage); without it FlowGuard uses <data dir>/flowguard.db")
    })
}

fn location_of(
    url: Option<&str>,
    schema: Option<String>,
    s: &StorageSettings,
    data_dir: Option<&Path>,
) -> Result<Location, String> {
    match url {
        Some(u) => Location::parse(u, schema, Path::new("."))
            .map_err(|e| format!("error: storage url: {e}")),
        None => {
            let dir = data_dir
                .map(Path::to_path_buf)
                .or_else(|| s.data_dir.clone())
                .unwrap_or_else(location::default_data_dir);
            Ok(Location::default_in(&dir))
        }
    }
}

pub fn query(q: QueryArgs) -> ExitCode {
    match run_query(q) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowguard audit query: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_query(q: QueryArgs) -> Result<ExitCode, String> {
    let store = open_existing(
        q.config.as_deref(),
        q.storage.as_deref(),
        q.data_dir.as_deref(),
    )?;
    query_store(&store, q)
}

/// The store a command names (`--config`'s [storage], `--storage`, `--data-dir`), which must
/// exist already when it is a SQLite file.
pub fn open_existing(
    config: Option<&Path>,
    storage: Option<&str>,
    data_dir: Option<&Path>,
) -> Result<Store, String> {
    let settings = match config {
        Some(c) => {
            flowguard_config::load_file(c)
                .map_err(|e| e.to_string())?
                .storage
        }
        None => StorageSettings::default(),
    };
    let at = match storage {
        Some(u) => location_of(Some(u), None, &settings, None)?,
        None => location_of(
            settings.url.as_deref(),
            settings.schema.clone(),
            &settings,
            data_dir,
        )?,
    };
    if let Location::Sqlite(p) = &at {
        if !p.exists() {
            return Err(format!(
                "{} does not exist: no gateway has kept state there (give --config, --storage or --data-dir)",
                p.display()
            ));
        }
    }
    Store::open(&at, None).map_err(|e| e.to_string())
}

fn query_store(store: &Store, q: QueryArgs) -> Result<ExitCode, String> {
    let time = |t: &Option<String>, flag: &str| -> Result<Option<i64>, String> {
        t.as_deref()
            .map(|s| {
                flowguard_audit::time::parse_ms(s).ok_or_else(|| {
                    format!(
                        "--{flag} {s:?}: write a UTC time such as 2026-12-03T10:00:00Z, or a date"
                    )
                })
            })
            .transpose()
    };
    let filter = Filter {
        from_ms: time(&q.from, "from")?,
        to_ms: time(&q.to, "to")?,
        subject: q.subject,
        client: q.client,
        server: q.server,
        tool: q.tool,
        decision: q.decision,
        rule: q.rule,
        text: q.text,
        after_seq: q.after,
        limit: q.limit.max(1),
    };
    let rows = store.audit(&filter).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for r in &rows {
        out.push_str(&r.record);
        out.push('\n');
    }
    print!("{out}");
    match rows.last() {
        Some(last) if rows.len() == filter.page() as usize => eprintln!(
            "{} record(s); more may follow: add --after {}",
            rows.len(),
            last.seq
        ),
        _ => eprintln!("{} record(s)", rows.len()),
    }
    Ok(ExitCode::SUCCESS)
}
