//! CPU time (utime + stime) of process trees, from /proc: the given processes and all their
//! descendants (found through the ppid field of /proc/*/stat).

use std::collections::HashMap;

/// (ppid, utime + stime in clock ticks) from the text of /proc/PID/stat.
fn parse_stat(text: &str) -> Option<(u32, u64)> {
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    let rest = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// Clock ticks per second (AT_CLKTCK from the auxiliary vector; 100 if it cannot be read).
pub fn clock_ticks() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let Ok(aux) = std::fs::read("/proc/self/auxv") else {
        return 100;
    };
    let word = std::mem::size_of::<usize>();
    for pair in aux.chunks_exact(2 * word) {
        let read = |b: &[u8]| {
            let mut v = [0u8; 8];
            v[..word].copy_from_slice(b);
            u64::from_ne_bytes(v)
        };
        if read(&pair[..word]) == AT_CLKTCK {
            let v = read(&pair[word..]);
            if v > 0 {
                return v;
            }
        }
    }
    100
}

/// Total CPU ticks of `roots` and their descendants, and how many processes that was.
pub fn tree_ticks(roots: &[u32]) -> (u64, usize) {
    let mut procs: HashMap<u32, (u32, u64)> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|t| parse_stat(&t))
            {
                procs.insert(pid, stat);
            }
        }
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, &(ppid, _)) in &procs {
        children.entry(ppid).or_default().push(pid);
    }
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<u32> = roots.to_vec();
    let mut total = 0;
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if let Some(&(_, ticks)) = procs.get(&pid) {
            total += ticks;
        }
        if let Some(c) = children.get(&pid) {
            stack.extend(c);
        }
    }
    let counted = seen.iter().filter(|p| procs.contains_key(p)).count();
    (total, counted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_names() {
        let t =
            "1234 (my (odd) name) S 42 1234 1234 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat(t), Some((42, 175)));
    }

    #[test]
    fn own_process_is_found() {
        assert!(clock_ticks() >= 1);
        let (_, n) = tree_ticks(&[std::process::id()]);
        assert!(n >= 1);
    }
}
