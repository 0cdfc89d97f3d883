//! No orphans, ever (DESIGN-NOTES §6). Children die with the gateway (`PR_SET_PDEATHSIG`), every
//! child carries the gateway's owner tag in its environment (inherited by grandchildren), and a
//! new gateway kills processes whose tag names a gateway that is gone, even after `kill -9`.

use std::fs;

/// The environment variable holding `<gateway pid>.<gateway start time>`.
pub const OWNER_ENV: &str = "FLOWGUARD_OWNER";

/// This process's owner tag: pid plus start time, so a reused pid is not mistaken for us.
pub fn owner_tag() -> String {
    let pid = std::process::id();
    format!("{pid}.{}", start_time(pid).unwrap_or(0))
}

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after it do not.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// Whether the gateway that wrote `tag` is still running.
pub fn owner_alive(tag: &str) -> bool {
    let Some((pid, start)) = tag.split_once('.') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(start)
}

/// Kills every process left by a gateway that is gone. Returns how many were killed.
pub fn reap_orphans() -> usize {
    let me = owner_tag();
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        let prefix = format!("{OWNER_ENV}=");
        let tag = environ
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
            .map(|t| String::from_utf8_lossy(t).into_owned());
        if let Some(tag) = tag {
            if tag != me && !owner_alive(&tag) {
                signal(pid, libc::SIGKILL);
                killed += 1;
            }
        }
    }
    killed
}

/// Sends `sig` to a whole process group.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        signal(-pgid, sig);
    }
}

#[allow(unsafe_code)]
fn signal(target: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and has no memory effects on this process.
    unsafe {
        libc::kill(target, sig);
    }
}

/// Asks the kernel to SIGKILL the child when the gateway dies. The spawning thread must outlive
/// the child (PDEATHSIG follows the thread): children are spawned from runtime worker threads,
/// which live as long as the gateway.
#[allow(unsafe_code)]
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (prctl, getppid, kill on itself), allocating nothing.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_tag_is_alive_and_a_dead_one_is_not() {
        assert!(owner_alive(&owner_tag()));
        assert!(!owner_alive("999999999.1"));
        assert!(!owner_alive("garbage"));
    }
}
