//! `enable` on one config file: wrap its stdio entries, point entries it wrapped before at the
//! chosen binary, and save the file with its backup and state (or print the diff).

use super::clients::{sidecar, ConfigFile};
use super::edit::{apply, fnv1a, Kind};
use super::fsio::{self, Perm};
use super::{load_state, read, udiff, write_error, Out, BACKUP, STATE};
use serde_json::{json, Value};

pub fn run(f: &ConfigFile, exe: &str, out: Out) -> Result<(), String> {
    let text = read(&f.path)?;
    let entries = f.layout.entries(&text)?;
    let format = f.layout.format();
    out.say(format!("{} [{}]", f.path.display(), f.client.label()));
    let (mut edits, mut wrapped) = (vec![], vec![]);
    for e in &entries {
        let what = match &e.kind {
            Kind::Remote => "skipped (remote url)".to_string(),
            Kind::Unusable(why) => format!("skipped ({why})"),
            Kind::Stdio(s) if s.is_wrapped() => match s.rebind_edit(format, exe, &e.name) {
                Some(edit) => {
                    edits.push(edit);
                    format!("already wrapped; now runs {exe} instead of {}", s.command)
                }
                None => "already wrapped".to_string(),
            },
            Kind::Stdio(s) => {
                edits.extend(s.wrap_edits(format, exe, &e.name));
                let args = s.args.as_ref().map(|a| a.values.clone());
                wrapped.push(json!({"group": e.group, "name": e.name,
                    "command": s.command, "args": args}));
                "wrapped".to_string()
            }
        };
        out.say(format!("  {}.{}: {what}", e.group, e.name));
    }
    if entries.is_empty() {
        out.say("  no MCP servers");
    }
    if edits.is_empty() {
        return Ok(());
    }
    let new = apply(&text, &edits);
    f.layout
        .entries(&new)
        .map_err(|e| format!("the rewritten file would not parse ({e}); it was not changed"))?;
    if out.dry_run {
        print!("{}", udiff::unified(&f.path, &text, &new));
        return Ok(());
    }
    save(f, &text, &new, wrapped, out)
}

/// Writes the backup (first time only), the new text and the state, all with the file's mode.
fn save(
    f: &ConfigFile,
    text: &str,
    new: &str,
    wrapped: Vec<Value>,
    out: Out,
) -> Result<(), String> {
    let perm = Perm::of(&f.path)
        .map_err(|e| format!("cannot read its permissions ({e}); it was not changed"))?;
    let backup = sidecar(&f.path, BACKUP);
    let created = !backup.exists();
    if created {
        fsio::write(&backup, text.as_bytes(), perm).map_err(|e| {
            format!(
                "cannot write the backup {} ({e}); it was not changed",
                backup.display()
            )
        })?;
    }
    if let Err(e) = fsio::write(&f.path, new.as_bytes(), perm) {
        if created {
            let _ = std::fs::remove_file(&backup);
        }
        return Err(write_error(e));
    }
    let state_path = sidecar(&f.path, STATE);
    let previous = load_state(&state_path);
    let mut all = previous
        .as_ref()
        .and_then(|s| s["wrapped"].as_array().cloned())
        .unwrap_or_default();
    all.extend(wrapped);
    // An exact restore is right while the backup is the file as it was before a run of changes
    // all made by `enable`: this one, or this one on top of what the last one wrote.
    let exact = created
        || previous.as_ref().is_some_and(|s| {
            s["exact"] == json!(true) && s["written_fnv1a64"] == json!(fnv1a(text.as_bytes()))
        });
    let state = json!({"exact": exact, "written_fnv1a64": fnv1a(new.as_bytes()), "wrapped": all});
    let state_text = format!("{state:#}\n");
    if let Err(e) = fsio::write(&state_path, state_text.as_bytes(), perm) {
        out.say(format!(
            "  warning: cannot write {} ({e}); `flowguard disable` will un-wrap the entries \
             instead of restoring the backup",
            state_path.display()
        ));
    }
    out.say(format!("  backup: {}", backup.display()));
    Ok(())
}
