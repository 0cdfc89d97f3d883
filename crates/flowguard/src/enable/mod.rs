//! `flowguard enable` and `flowguard disable`: rewrite the stdio server entries of MCP client
//! config files (Claude Code, Claude Desktop, Cursor, VS Code, Codex) so that each runs through
//! `flowguard wrap --name <entry> -- CMD ARGS...`, and put them back.
//!
//! Before its first change to a file, `enable` copies it to `<file>.flowguard-backup` (never
//! overwritten) and records in `<file>.flowguard-state.json` the wrapped entries and a hash of
//! what it wrote. `disable` copies the backup back (byte-identical) when the file still has
//! that hash; otherwise it un-wraps only the wrapped entries and keeps the user's edits.

mod clients;
mod codex;
mod edit;
mod json;

pub use clients::Client;
use clients::{sidecar, ConfigFile};
use edit::{apply, diff, fnv1a, Kind};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const BACKUP: &str = ".flowguard-backup";
const STATE: &str = ".flowguard-state.json";

/// What `enable` and `disable` act on.
pub struct Options {
    pub clients: Vec<Client>,
    pub dry_run: bool,
    pub project: Option<PathBuf>,
}

pub fn enable(opts: Options) -> ExitCode {
    let exe = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(p) => p.to_string_lossy().into_owned(),
        Err(e) => {
            eprintln!("error: cannot find the path of the flowguard binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    for_each_file(&opts, |f| enable_file(f, &exe, opts.dry_run))
}

pub fn disable(opts: Options) -> ExitCode {
    for_each_file(&opts, |f| disable_file(f, opts.dry_run))
}

/// Runs `act` on every existing config file of the chosen clients; errors are reported and
/// the other files still processed.
fn for_each_file(opts: &Options, act: impl Fn(&ConfigFile) -> Result<(), String>) -> ExitCode {
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        eprintln!("error: $HOME is not set; set it to your home directory");
        return ExitCode::FAILURE;
    };
    let home = PathBuf::from(home);
    let project = match &opts.project {
        Some(p) => p.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let chosen = if opts.clients.is_empty() {
        Client::ALL.to_vec()
    } else {
        opts.clients.clone()
    };
    let mut seen = vec![];
    let mut failed = false;
    for client in chosen {
        for f in clients::files(client, &home, &project) {
            if !f.path.is_file() || seen.contains(&f.path) {
                continue;
            }
            seen.push(f.path.clone());
            if let Err(e) = act(&f) {
                eprintln!("error: {}: {e}", f.path.display());
                failed = true;
            }
        }
    }
    if seen.is_empty() {
        println!(
            "no MCP client config file found (looked under {} and {})",
            home.display(),
            project.display()
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read it ({e}); nothing was changed"))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| {
        format!("cannot write it ({e}); check its permissions and run again; it was not changed")
    })
}

fn enable_file(f: &ConfigFile, exe: &str, dry_run: bool) -> Result<(), String> {
    let text = read(&f.path)?;
    let entries = f.layout.entries(&text)?;
    let format = f.layout.format();
    println!("{} [{}]", f.path.display(), f.client.label());
    let (mut edits, mut wrapped) = (vec![], vec![]);
    for e in &entries {
        let what = match &e.kind {
            Kind::Remote => "skipped (remote url)".to_string(),
            Kind::Unusable(why) => format!("skipped ({why})"),
            Kind::Stdio(s) if s.is_wrapped() => "already wrapped".to_string(),
            Kind::Stdio(s) => {
                edits.extend(s.wrap_edits(format, exe, &e.name));
                let args = s.args.as_ref().map(|(a, _)| a.clone());
                wrapped.push(json!({"group": e.group, "name": e.name,
                    "command": s.command, "args": args}));
                "wrapped".to_string()
            }
        };
        println!("  {}.{}: {what}", e.group, e.name);
    }
    if entries.is_empty() {
        println!("  no MCP servers");
    }
    if edits.is_empty() {
        return Ok(());
    }
    let new = apply(&text, &edits);
    f.layout
        .entries(&new)
        .map_err(|e| format!("the rewritten file would not parse ({e}); it was not changed"))?;
    if dry_run {
        print_diff(&f.path, "enabled", &diff(&text, &edits));
        return Ok(());
    }
    let backup = sidecar(&f.path, BACKUP);
    let created = !backup.exists();
    if created {
        std::fs::write(&backup, text.as_bytes()).map_err(|e| {
            format!(
                "cannot write the backup {} ({e}); it was not changed",
                backup.display()
            )
        })?;
    }
    if let Err(e) = write(&f.path, new.as_bytes()) {
        if created {
            let _ = std::fs::remove_file(&backup);
        }
        return Err(e);
    }
    let state_path = sidecar(&f.path, STATE);
    let mut all = load_state(&state_path)
        .and_then(|s| s["wrapped"].as_array().cloned())
        .unwrap_or_default();
    all.extend(wrapped);
    // An exact restore is only right when the backup is the file this very change started from.
    let state = json!({"exact": created, "written_fnv1a64": fnv1a(new.as_bytes()), "wrapped": all});
    let state_text = serde_json::to_string_pretty(&state).expect("a Value serializes");
    if let Err(e) = std::fs::write(&state_path, state_text + "\n") {
        println!("  warning: cannot write {} ({e}); `flowguard disable` will un-wrap the entries instead of restoring the backup", state_path.display());
    }
    println!("  backup: {}", backup.display());
    Ok(())
}

fn print_diff(path: &Path, what: &str, diff: &str) {
    println!("--- {}\n+++ {} ({what})", path.display(), path.display());
    print!("{diff}");
}

fn load_state(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn disable_file(f: &ConfigFile, dry_run: bool) -> Result<(), String> {
    let text = read(&f.path)?;
    let (backup, state_path) = (sidecar(&f.path, BACKUP), sidecar(&f.path, STATE));
    let state = load_state(&state_path);
    println!("{} [{}]", f.path.display(), f.client.label());
    let unchanged = state.as_ref().is_some_and(|s| {
        s["exact"] == json!(true) && s["written_fnv1a64"] == json!(fnv1a(text.as_bytes()))
    });
    if unchanged && backup.is_file() {
        let original = std::fs::read(&backup)
            .map_err(|e| format!("cannot read the backup {} ({e})", backup.display()))?;
        for w in state
            .as_ref()
            .and_then(|s| s["wrapped"].as_array())
            .into_iter()
            .flatten()
        {
            let (g, n) = (w["group"].as_str(), w["name"].as_str());
            println!("  {}.{}: restored", g.unwrap_or("?"), n.unwrap_or("?"));
        }
        if dry_run {
            let original = String::from_utf8_lossy(&original);
            print_diff(&f.path, "restored", &edit::diff_texts(&text, &original));
            return Ok(());
        }
        write(&f.path, &original)?;
        let _ = std::fs::remove_file(&backup);
        let _ = std::fs::remove_file(&state_path);
        println!(
            "  restored byte-identical from {} (backup removed)",
            backup.display()
        );
        return Ok(());
    }
    if state.is_none() && !backup.exists() {
        println!("  nothing to restore (not changed by `flowguard enable`)");
        return Ok(());
    }
    let entries = f.layout.entries(&text)?;
    let mut edits = vec![];
    for e in &entries {
        if let Kind::Stdio(s) = &e.kind {
            if let Some(es) = s.unwrap_edits(f.layout.format(), &e.name) {
                edits.extend(es);
                println!("  {}.{}: restored", e.group, e.name);
            }
        }
    }
    if edits.is_empty() {
        println!("  no wrapped entries left");
    } else {
        println!("  the file was changed since `flowguard enable`: un-wrapping only the wrapped entries, keeping everything else");
    }
    if dry_run {
        print_diff(&f.path, "un-wrapped", &diff(&text, &edits));
        return Ok(());
    }
    if !edits.is_empty() {
        write(&f.path, apply(&text, &edits).as_bytes())?;
    }
    let _ = std::fs::remove_file(&state_path);
    if backup.exists() {
        println!(
            "  the file as it was before enable is kept at {}",
            backup.display()
        );
    }
    Ok(())
}
