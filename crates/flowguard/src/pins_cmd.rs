//! `flowguard pins list` and `flowguard pins approve`: the tool, prompt, resource and server
//! pins the gateway keeps in storage (docs/inspection.md). An approval takes effect in a
//! running gateway at its next list (held-back items are looked up again each time).

use crate::cli::{PinsAction, ServersAction, StoreArgs};
use flowguard_gateway::inspect::{changed_fields, Pin, PINS, SERVERS};
use std::process::ExitCode;

pub fn run(action: PinsAction) -> ExitCode {
    match action_result(action) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowguard pins: {e}");
            ExitCode::from(2)
        }
    }
}

fn open(s: &StoreArgs) -> Result<flowguard_store::Store, String> {
    crate::store_cmd::open_existing(
        s.config.as_deref(),
        s.storage.as_deref(),
        s.data_dir.as_deref(),
    )
}

/// Stored pins as (server, kind, name, pin), optionally of one server.
fn pins(
    store: &flowguard_store::Store,
    server: Option<&str>,
) -> Result<Vec<(String, String, String, Pin)>, String> {
    let mut out = Vec::new();
    for (key, value) in store.list(PINS, "").map_err(|e| e.to_string())? {
        let Ok((s, k, n)) = serde_json::from_str::<(String, String, String)>(&key) else {
            continue;
        };
        if server.is_some_and(|want| want != s) {
            continue;
        }
        if let Some(p) = Pin::from_json(&value) {
            out.push((s, k, n, p));
        }
    }
    Ok(out)
}

fn action_result(action: PinsAction) -> Result<ExitCode, String> {
    match action {
        PinsAction::List {
            store,
            server,
            changed,
        } => {
            let store = open(&store)?;
            let all = pins(&store, server.as_deref())?;
            let mut n = 0;
            for (s, k, name, p) in &all {
                let state = match &p.seen {
                    Some((_, item)) => format!(
                        "CHANGED {}",
                        changed_fields(&p.approved_item, item).join(" ")
                    ),
                    None => "ok".into(),
                };
                if changed && p.seen.is_none() {
                    continue;
                }
                n += 1;
                println!("{s}\t{k}\t{name}\t{state}");
            }
            eprintln!("{n} pin(s)");
            Ok(ExitCode::SUCCESS)
        }
        PinsAction::Approve {
            store,
            server,
            name,
            kind,
            all,
        } => {
            if name.is_none() && !all {
                return Err(format!(
                    "name the item to approve (`flowguard pins approve {server} NAME`), or give --all for every changed item of `{server}`"
                ));
            }
            let st = open(&store)?;
            let mut approved = 0;
            for (s, k, n, mut p) in pins(&st, Some(&server))? {
                let wanted = all
                    || (Some(&n) == name.as_ref() && kind.as_ref().is_none_or(|want| *want == k));
                let Some((hash, item)) = p.seen.take() else {
                    continue;
                };
                if !wanted {
                    continue;
                }
                p.approved = hash;
                p.approved_item = item;
                p.since_ms = flowguard_store::now_ms();
                st.put(
                    PINS,
                    &flowguard_gateway::inspect::pin_key(&s, &k, &n),
                    &p.to_json(),
                )
                .map_err(|e| e.to_string())?;
                println!("approved {s}\t{k}\t{n}");
                approved += 1;
            }
            if approved == 0 {
                return Err(match name {
                    Some(n) => format!("server `{server}` has no changed item `{n}` (see `flowguard pins list --changed`)"),
                    None => format!("server `{server}` has no changed item"),
                });
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `flowguard servers list|approve|deny`.
pub fn servers(action: ServersAction) -> ExitCode {
    match servers_result(action) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowguard servers: {e}");
            ExitCode::from(2)
        }
    }
}

fn servers_result(action: ServersAction) -> Result<ExitCode, String> {
    match action {
        ServersAction::List { store } => {
            let st = open(&store)?;
            let all = st.list(SERVERS, "").map_err(|e| e.to_string())?;
            for (id, value) in &all {
                let v: serde_json::Value = serde_json::from_str(value).unwrap_or_default();
                let because: Vec<&str> = v["because"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|b| b.as_str())
                    .collect();
                println!(
                    "{id}\t{}\t{}\t{:.2}\t{}",
                    v["status"].as_str().unwrap_or("?"),
                    v["level"].as_str().unwrap_or("?"),
                    v["score"].as_f64().unwrap_or(0.0),
                    because.join(",")
                );
            }
            eprintln!("{} server(s)", all.len());
            Ok(ExitCode::SUCCESS)
        }
        ServersAction::Approve { store, server } => set_status(&store, &server, "approved"),
        ServersAction::Deny { store, server } => set_status(&store, &server, "denied"),
    }
}

fn set_status(store: &StoreArgs, server: &str, status: &str) -> Result<ExitCode, String> {
    let st = open(store)?;
    let Some(value) = st.get(SERVERS, server).map_err(|e| e.to_string())? else {
        return Err(format!(
            "no server `{server}` has been rated yet (see `flowguard servers list`; a server is rated when the gateway first lists its tools with [inspect] risk on)"
        ));
    };
    let mut v: serde_json::Value = serde_json::from_str(&value).unwrap_or_default();
    v["status"] = status.into();
    v["by"] = "cli".into();
    v["since_ms"] = flowguard_store::now_ms().into();
    st.put(SERVERS, server, &v.to_string())
        .map_err(|e| e.to_string())?;
    println!("{server}\t{status}");
    Ok(ExitCode::SUCCESS)
}
