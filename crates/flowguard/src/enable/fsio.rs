//! Writing client config files and their sidecars without loosening their modes: a rewritten
//! file keeps its permission bits and owner, the backup and state file get the config file's,
//! and nothing is ever more open than that on the way (a temporary file is created 0600, filled,
//! given the mode, then renamed over the target, so a crash never leaves a half-written file).

use super::clients::sidecar;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The permission bits and owner that a written file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    pub mode: u32,
    uid: u32,
    gid: u32,
}

impl Perm {
    /// Those of the file at `path` (following symlinks).
    pub fn of(path: &Path) -> io::Result<Perm> {
        let m = fs::metadata(path)?;
        Ok(Perm {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })
    }
}

/// Sets the contents of `path` (which may not exist yet) to `bytes`, with `perm`. A symlink is
/// followed, so the link stays and its target is replaced. A file that cannot be opened for
/// writing (read-only) is an error, as it would be for an in-place write.
pub fn write(path: &Path, bytes: &[u8], perm: Perm) -> io::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if target.exists() {
        OpenOptions::new().write(true).open(&target)?;
    }
    let tmp = sidecar(&target, &format!(".flowguard-tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let result = match fill(&mut file, bytes, perm) {
        Ok(true) => fs::rename(&tmp, &target),
        Ok(false) => {
            // The owner cannot be given to a new file: write over the old one in place.
            let _ = fs::remove_file(&tmp);
            return in_place(&target, bytes, perm);
        }
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes, sets owner and mode, syncs; `Ok(false)` when the owner cannot be set.
fn fill(file: &mut File, bytes: &[u8], perm: Perm) -> io::Result<bool> {
    file.write_all(bytes)?;
    let m = file.metadata()?;
    if (m.uid(), m.gid()) != (perm.uid, perm.gid)
        && std::os::unix::fs::fchown(&*file, Some(perm.uid), Some(perm.gid)).is_err()
    {
        return Ok(false);
    }
    file.set_permissions(Permissions::from_mode(perm.mode))?;
    file.sync_all()?;
    Ok(true)
}

fn in_place(target: &Path, bytes: &[u8], perm: Perm) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(target)?;
    file.write_all(bytes)?;
    if file.metadata()?.mode() & 0o7777 != perm.mode {
        file.set_permissions(Permissions::from_mode(perm.mode))?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_rewritten_file_keeps_its_mode_and_a_new_one_gets_the_given_mode() {
        let dir = tempfile::tempdir().unwrap();
        for m in [0o600, 0o644] {
            let p = dir.path().join(format!("f{m:o}"));
            fs::write(&p, "old").unwrap();
            fs::set_permissions(&p, Permissions::from_mode(m)).unwrap();
            write(&p, b"new", Perm::of(&p).unwrap()).unwrap();
            assert_eq!(
                (fs::read_to_string(&p).unwrap(), mode(&p)),
                ("new".into(), m)
            );
            let copy = dir.path().join(format!("copy{m:o}"));
            write(&copy, b"c", Perm::of(&p).unwrap()).unwrap();
            assert_eq!(mode(&copy), m);
        }
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 4, "no temporary file is left");
    }

    #[test]
    fn a_symlink_stays_and_its_target_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link) = (dir.path().join("real"), dir.path().join("link"));
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, b"new", Perm::of(&link).unwrap()).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
    }
}
