//! Which `flowguard` path `enable` writes into the client configs. It has to outlive the
//! command: in order, `--binary PATH`, the `flowguard` found on `PATH` (e.g.
//! `~/.cargo/bin/flowguard`, as found there, not resolved further), then the running binary.
//! A path inside a cargo build folder works until `cargo clean` or the clone moves, so it is
//! written with a warning.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// Where the chosen path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    SearchPath,
    Running,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Flag => "--binary",
            Source::SearchPath => "found on PATH",
            Source::Running => "the running binary; none on PATH",
        }
    }
}

/// What the choice depends on, given rather than read so that the choice can be tested.
pub struct Inputs<'a> {
    pub flag: Option<&'a Path>,
    pub path_var: Option<&'a OsStr>,
    pub running: Option<&'a Path>,
    pub cwd: &'a Path,
    pub is_executable: &'a dyn Fn(&Path) -> bool,
}

/// The absolute path to write, and where it came from.
pub fn choose(i: &Inputs) -> Result<(PathBuf, Source), String> {
    if let Some(flag) = i.flag {
        let path = lexical(&i.cwd.join(flag));
        if !(i.is_executable)(&path) {
            return Err(format!(
                "--binary {}: not an executable file; give the path of an installed flowguard, \
                 e.g. ~/.cargo/bin/flowguard after `cargo install --path crates/flowguard`",
                path.display()
            ));
        }
        return Ok((path, Source::Flag));
    }
    let on_path = i.path_var.into_iter().flat_map(std::env::split_paths);
    // Relative entries (`.`) would write a path that depends on where the client starts.
    for dir in on_path.filter(|d| d.is_absolute()) {
        let path = dir.join("flowguard");
        if (i.is_executable)(&path) {
            return Ok((path, Source::SearchPath));
        }
    }
    match i.running {
        Some(p) => Ok((lexical(&i.cwd.join(p)), Source::Running)),
        None => Err(
            "cannot find the flowguard binary: none on PATH and the path of the running \
                     one is unknown; pass --binary PATH"
                .into(),
        ),
    }
}

/// `path` without `.` components, and with each `..` taking away the name before it (the
/// result is then checked to be an executable file, so a symlink that this gets wrong is an
/// error, never a wrong path written).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `path` is a regular file with an execute bit (following symlinks).
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `path` is inside a cargo build folder: a `target` directory followed by `debug` or
/// `release`, or anywhere under a `target` directory next to a `Cargo.toml`.
pub fn in_build_folder(path: &Path, is_file: &dyn Fn(&Path) -> bool) -> bool {
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let profile = names
        .windows(2)
        .any(|w| w[0] == "target" && (w[1] == "debug" || w[1] == "release"));
    profile
        || path.ancestors().skip(1).any(|dir| {
            dir.file_name() == Some(OsStr::new("target"))
                && dir.parent().is_some_and(|p| is_file(&p.join("Cargo.toml")))
        })
}

/// The warning for a path inside a build folder.
pub fn build_folder_warning(path: &Path) -> String {
    format!(
        "warning: {} is inside a cargo build folder: `cargo clean`, or moving or deleting the \
         clone, will break every server wrapped with it.\n\
         warning: to fix it, install flowguard with `cargo install --path crates/flowguard` (in \
         the clone), then run `flowguard enable` again: it points the wrapped servers at the \
         installed binary (or pass --binary PATH).",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose_with(
        flag: Option<&str>,
        path_var: &str,
        running: &str,
        files: &[&str],
    ) -> Result<(PathBuf, Source), String> {
        let exists = |p: &Path| files.iter().any(|f| Path::new(f) == p);
        choose(&Inputs {
            flag: flag.map(Path::new),
            path_var: Some(OsStr::new(path_var)),
            running: Some(Path::new(running)),
            cwd: Path::new("/work"),
            is_executable: &exists,
        })
    }

    #[test]
    fn the_flag_then_path_then_the_running_binary() {
        let run = "/src/fg/target/release/flowguard";
        let installed = ["/home/u/.cargo/bin/flowguard", "/opt/fg", "/work/bin/fg"];
        let got = |flag, path_var| choose_with(flag, path_var, run, &installed);
        let ok = |p: &str, s| Ok((PathBuf::from(p), s));
        assert_eq!(
            got(Some("/opt/fg"), "/home/u/.cargo/bin"),
            ok("/opt/fg", Source::Flag)
        );
        assert_eq!(got(Some("bin/fg"), ""), ok("/work/bin/fg", Source::Flag));
        assert_eq!(
            got(Some("./x/../bin/fg"), ""),
            ok("/work/bin/fg", Source::Flag)
        );
        assert!(got(Some("/nope"), "")
            .unwrap_err()
            .contains("--binary /nope"));
        assert_eq!(
            got(None, "/usr/bin:/home/u/.cargo/bin:/x"),
            ok("/home/u/.cargo/bin/flowguard", Source::SearchPath)
        );
        // A relative PATH entry is skipped even when it has a flowguard.
        let rel = choose_with(None, ".:bin", run, &["./flowguard", "bin/flowguard"]);
        assert_eq!(rel, ok(run, Source::Running));
        assert_eq!(got(None, "/usr/bin"), ok(run, Source::Running));
    }

    #[test]
    fn build_folders_are_recognised() {
        let none = |_: &Path| false;
        let b = |p: &str| in_build_folder(Path::new(p), &none);
        assert!(b("/src/fg/target/release/flowguard"));
        assert!(b("/src/fg/target/debug/flowguard"));
        assert!(!b("/home/u/.cargo/bin/flowguard"));
        assert!(!b("/srv/target/bin/flowguard"));
        let cargo = |p: &Path| p == Path::new("/src/fg/Cargo.toml");
        let custom = Path::new("/src/fg/target/x86_64-unknown-linux-musl/dist/flowguard");
        assert!(in_build_folder(custom, &cargo));
        assert!(!in_build_folder(custom, &none));
        assert!(build_folder_warning(custom).contains("cargo install --path crates/flowguard"));
    }
}
