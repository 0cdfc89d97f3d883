//! `flowguard audit verify`.

use flowguard_audit::log::{rotated_files, sibling};
use flowguard_audit::verify::verify as check;
use flowguard_audit::VerifyKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn verify(files: &[PathBuf], key: Option<PathBuf>, checkpoints: Option<PathBuf>) -> ExitCode {
    match run(files, key, checkpoints) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("flowguard audit verify: {e}");
            ExitCode::from(2)
        }
    }
}

/// The active log a file belongs to: `audit.jsonl.000000000123` → `audit.jsonl`.
fn base_of(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    match s.rsplit_once('.') {
        Some((base, n)) if n.len() == 12 && n.bytes().all(|b| b.is_ascii_digit()) => base.into(),
        _ => p.to_path_buf(),
    }
}

fn run(
    files: &[PathBuf],
    key: Option<PathBuf>,
    checkpoints: Option<PathBuf>,
) -> Result<ExitCode, String> {
    let mut logs: Vec<PathBuf> = Vec::new();
    for f in files {
        if f.is_dir() {
            return Err(format!(
                "{} is a directory: name the log files (for example {}/audit.jsonl*)",
                f.display(),
                f.display()
            ));
        }
        if !logs.contains(f) {
            logs.push(f.clone());
        }
    }
    let base = base_of(&logs[0]);
    // Given only the active file, its rotated files come along.
    if logs.len() == 1 && logs[0] == base {
        let rotated = rotated_files(&base).map_err(|e| e.to_string())?;
        logs.splice(0..0, rotated.into_iter().map(|(_, p)| p));
    }
    let key_path = key.unwrap_or_else(|| sibling(&base, "verify-key"));
    let key = VerifyKey::load(&key_path).map_err(|e| {
        format!("{e}\n  (the verification key was written beside the log at first use; give --key FILE for a copy kept elsewhere)")
    })?;
    let cp = checkpoints.unwrap_or_else(|| sibling(&base, "checkpoints"));
    let cp = cp.exists().then_some(cp);
    let r = check(&logs, cp.as_deref(), &key);
    println!(
        "{} file(s), {} line(s), seq {}..{}, {} checkpoint(s) covering up to seq {}",
        r.files, r.records, r.first_seq, r.last_seq, r.checkpoints, r.covered_to
    );
    for n in &r.notes {
        println!("note: {n}");
    }
    if r.ok() {
        println!("ok: the chain, every tag and every checkpoint verify");
        return Ok(ExitCode::SUCCESS);
    }
    let first = &r.findings[0];
    println!(
        "FAILED: first bad record: {} at {}: {}",
        first.kind.as_str(),
        first.place,
        first.detail
    );
    for f in r.findings.iter().skip(1).take(50) {
        println!("  also {} at {}: {}", f.kind.as_str(), f.place, f.detail);
    }
    if r.findings.len() > 51 {
        println!("  … and {} more", r.findings.len() - 51);
    }
    Ok(ExitCode::from(1))
}
