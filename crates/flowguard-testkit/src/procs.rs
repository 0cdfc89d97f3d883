//! Looking at processes through `/proc`: whether one is alive, its children, and sending it a
//! signal. Used to check that the gateway leaves no orphan behind.

use std::fs;
use std::time::{Duration, Instant};

/// The fields of `/proc/<pid>/stat` the tests need.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub pid: u32,
    /// The command name (at most 15 characters).
    pub comm: String,
    /// `R`, `S`, `Z`, ...
    pub state: char,
    pub ppid: u32,
}

pub fn stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let mut rest = text[close + 2..].split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        comm,
        state,
        ppid,
    })
}

/// Alive: present in `/proc` and not a zombie (a zombie has exited; only its entry is left).
pub fn is_alive(pid: u32) -> bool {
    stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Every process in `/proc`.
pub fn all() -> Vec<ProcStat> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// Live direct children of `pid`.
pub fn children_of(pid: u32) -> Vec<ProcStat> {
    all()
        .into_iter()
        .filter(|p| p.ppid == pid && !matches!(p.state, 'Z' | 'X'))
        .collect()
}

/// Field 22 of `/proc/<pid>/stat`, the start time; with the pid it names a process uniquely.
pub fn start_time(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 2..]
        .split(' ')
        .nth(19)?
        .parse()
        .ok()
}

/// Processes whose environment holds `name=value` exactly.
pub fn with_env(name: &str, value: &str) -> Vec<u32> {
    let wanted = format!("{name}={value}");
    all()
        .into_iter()
        .filter(|p| {
            fs::read(format!("/proc/{}/environ", p.pid))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()))
        })
        .map(|p| p.pid)
        .collect()
}

/// Sends `sig` to `pid`; false when there is no such process.
#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 1 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait_until`] for async tests: sleeps without blocking the runtime.
pub async fn wait_until_async(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
