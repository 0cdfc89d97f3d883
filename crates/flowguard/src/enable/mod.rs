//! `flowguard enable` and `flowguard disable`: rewrite the stdio server entries of MCP client
//! config files (Claude Code, Claude Desktop, Cursor, VS Code, Codex, Gemini CLI) so that each
//! runs through `flowguard wrap --name <entry> -- CMD ARGS...`, and put them back.
//!
//! The `flowguard` path written is `--binary`, else the one on `PATH`, else the running binary
//! (see [`binary`]). Before its first change to a file, `enable` copies it to
//! `<file>.flowguard-backup` (never overwritten) and records in `<file>.flowguard-state.json` the
//! wrapped entries and a hash of what it wrote; both get the file's mode, and the file keeps its
//! own (see [`fsio`]). `disable` copies the backup back (byte-identical) when the file still has
//! that hash; otherwise it un-wraps only the wrapped entries and keeps the user's edits.
//! `--dry-run` prints a unified diff on stdout (progress goes to stderr) and writes nothing.

pub(crate) mod binary;
mod clients;
mod codex;
mod disable_file;
mod edit;
mod enable_file;
mod fsio;
mod json;
mod jsonc;
mod udiff;

pub use clients::Client;
use clients::ConfigFile;
use serde_json::Value;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const BACKUP: &str = ".flowguard-backup";
const STATE: &str = ".flowguard-state.json";

/// What `enable` and `disable` act on.
pub struct Options {
    pub clients: Vec<Client>,
    pub dry_run: bool,
    pub project: Option<PathBuf>,
    /// `enable --binary`: the flowguard path to write.
    pub binary: Option<PathBuf>,
}

/// Where progress lines go: stdout, or stderr under `--dry-run` so that stdout is only the diff.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub dry_run: bool,
}

impl Out {
    pub fn say(self, line: impl Display) {
        if self.dry_run {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

pub fn enable(opts: Options) -> ExitCode {
    let out = Out {
        dry_run: opts.dry_run,
    };
    let exe = match flowguard_path(opts.binary.as_deref(), out) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for_each_file(&opts, |f| enable_file::run(f, &exe, out))
}

pub fn disable(opts: Options) -> ExitCode {
    let out = Out {
        dry_run: opts.dry_run,
    };
    for_each_file(&opts, |f| disable_file::run(f, out))
}

/// The flowguard path to write (see [`binary::choose`]), with a warning when it is in a build
/// folder.
fn flowguard_path(flag: Option<&Path>, out: Out) -> Result<String, String> {
    let cwd = std::env::current_dir()
        .map_err(|e| format!("cannot read the current directory ({e}); cd to one and run again"))?;
    let running = std::env::current_exe().ok();
    let path_var = std::env::var_os("PATH");
    let (path, source) = binary::choose(&binary::Inputs {
        flag,
        path_var: path_var.as_deref(),
        running: running.as_deref(),
        cwd: &cwd,
        is_executable: &binary::is_executable,
    })?;
    out.say(format!(
        "wrapping with {} ({})",
        path.display(),
        source.label()
    ));
    if binary::in_build_folder(&path, &|p: &Path| p.is_file()) {
        eprintln!("{}", binary::build_folder_warning(&path));
    }
    path.to_str().map(String::from).ok_or_else(|| {
        format!(
            "the flowguard path {} is not valid UTF-8; pass --binary with another path",
            path.display()
        )
    })
}

/// Runs `act` on every existing config file of the chosen clients; errors are reported and
/// the other files still processed.
fn for_each_file(opts: &Options, act: impl Fn(&ConfigFile) -> Result<(), String>) -> ExitCode {
    let out = Out {
        dry_run: opts.dry_run,
    };
    let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
        eprintln!("error: $HOME is not set; set it to your home directory");
        return ExitCode::FAILURE;
    };
    let home = PathBuf::from(home);
    let project = match &opts.project {
        Some(p) => p.clone(),
        None => PathBuf::from("."),
    };
    // Absolute and without `..`, so that the paths shown do not depend on the cwd and the diff
    // headers are ones `patch` accepts.
    let project = std::fs::canonicalize(&project)
        .or_else(|_| std::path::absolute(&project))
        .unwrap_or(project);
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
        out.say(format!(
            "no MCP client config file found (looked under {} and {})",
            home.display(),
            project.display()
        ));
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

fn write_error(e: std::io::Error) -> String {
    format!("cannot write it ({e}); check its permissions and run again; it was not changed")
}

fn load_state(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[cfg(test)]
mod tests;
