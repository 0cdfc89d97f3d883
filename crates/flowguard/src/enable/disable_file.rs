//! `disable` on one config file: copy the backup back when the file is still what `enable`
//! wrote, else un-wrap only the entries `enable` wrapped (or print the diff).

use super::clients::{sidecar, ConfigFile};
use super::edit::{apply, fnv1a, Kind};
use super::fsio::{self, Perm};
use super::{load_state, read, udiff, write_error, Out, BACKUP, STATE};
use serde_json::{json, Value};

pub fn run(f: &ConfigFile, out: Out) -> Result<(), String> {
    let text = read(&f.path)?;
    let (backup, state_path) = (sidecar(&f.path, BACKUP), sidecar(&f.path, STATE));
    let state = load_state(&state_path);
    out.say(format!("{} [{}]", f.path.display(), f.client.label()));
    let unchanged = state.as_ref().is_some_and(|s| {
        s["exact"] == json!(true) && s["written_fnv1a64"] == json!(fnv1a(text.as_bytes()))
    });
    if unchanged && backup.is_file() {
        return restore(f, &text, state.as_ref(), out);
    }
    if state.is_none() && !backup.exists() {
        out.say("  nothing to restore (not changed by `flowguard enable`)");
        return Ok(());
    }
    let entries = f.layout.entries(&text)?;
    let mut edits = vec![];
    for e in &entries {
        if let Kind::Stdio(s) = &e.kind {
            if let Some(es) = s.unwrap_edits(f.layout.format(), &e.name) {
                edits.extend(es);
                out.say(format!("  {}.{}: restored", e.group, e.name));
            }
        }
    }
    if edits.is_empty() {
        out.say("  no wrapped entries left");
    } else {
        out.say("  the file was changed since `flowguard enable`: un-wrapping only the wrapped entries, keeping everything else");
    }
    let new = apply(&text, &edits);
    if out.dry_run {
        print!("{}", udiff::unified(&f.path, &text, &new));
        return Ok(());
    }
    if !edits.is_empty() {
        let perm = Perm::of(&f.path).map_err(write_error)?;
        fsio::write(&f.path, new.as_bytes(), perm).map_err(write_error)?;
    }
    let _ = std::fs::remove_file(&state_path);
    if backup.exists() {
        out.say(format!(
            "  the file as it was before enable is kept at {}",
            backup.display()
        ));
    }
    Ok(())
}

/// Copies the backup back, byte for byte, keeping the file's mode; removes backup and state.
fn restore(f: &ConfigFile, text: &str, state: Option<&Value>, out: Out) -> Result<(), String> {
    let (backup, state_path) = (sidecar(&f.path, BACKUP), sidecar(&f.path, STATE));
    let original = std::fs::read(&backup)
        .map_err(|e| format!("cannot read the backup {} ({e})", backup.display()))?;
    for w in state
        .and_then(|s| s["wrapped"].as_array())
        .into_iter()
        .flatten()
    {
        let (g, n) = (w["group"].as_str(), w["name"].as_str());
        out.say(format!(
            "  {}.{}: restored",
            g.unwrap_or("?"),
            n.unwrap_or("?")
        ));
    }
    if out.dry_run {
        let original = String::from_utf8_lossy(&original);
        print!("{}", udiff::unified(&f.path, text, &original));
        return Ok(());
    }
    let perm = Perm::of(&f.path).map_err(write_error)?;
    fsio::write(&f.path, &original, perm).map_err(write_error)?;
    let _ = std::fs::remove_file(&backup);
    let _ = std::fs::remove_file(&state_path);
    out.say(format!(
        "  restored byte-identical from {} (backup removed)",
        backup.display()
    ));
    Ok(())
}
