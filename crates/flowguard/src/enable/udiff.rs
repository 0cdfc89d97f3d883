//! A small line-based unified diff (Myers' algorithm) for `--dry-run`: `--- a/<path>` and
//! `+++ b/<path>` headers (the absolute path without its leading `/`, so `patch -d / -p1` applies
//! it, and `patch FILE` applies one file's diff), `@@ -l,n +l,n @@` hunks with 3 lines of
//! context, and `\ No newline at end of file` where a file has no final newline.

use std::ops::Range;
use std::path::Path;

const CONTEXT: usize = 3;
/// Past this many differing lines the shortest edit is not searched for: the differing middle
/// becomes one hunk (still a correct diff, only not the smallest).
const MAX_EDITS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Del,
    Ins,
}

/// The unified diff from `old` to `new` of the file at `path`; empty when they are equal.
pub fn unified(path: &Path, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (lines(old), lines(new));
    let name = header_name(path);
    let mut out = format!("--- a/{name}\n+++ b/{name}\n");
    let ops = script(&a, &b);
    for hunk in hunks(&ops) {
        write_hunk(&mut out, &ops, hunk, (&a, &b));
    }
    out
}

/// Lines with their `\n` (the last one may have none).
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The path without its leading `/`: quoted C-style when it holds a quote, a backslash or a
/// control character, followed by a tab when it holds a space (as git and GNU patch do).
fn header_name(path: &Path) -> String {
    let s = path.to_string_lossy();
    let s = s.trim_start_matches('/');
    if s.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                c if c.is_control() => q.push_str(&format!("\\{:03o}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        return q;
    }
    if s.contains(' ') {
        return format!("{s}\t");
    }
    s.to_string()
}

/// The edit script from `a` to `b`: common head and tail, and Myers' shortest edit in between.
fn script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_mid, b_mid) = (&a[head..], &b[head..]);
    let tail = a_mid
        .iter()
        .rev()
        .zip(b_mid.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a_mid[..a_mid.len() - tail], &b_mid[..b_mid.len() - tail]);
    let mut ops = vec![Op::Same; head];
    match myers(a_mid, b_mid) {
        Some(mid) => ops.extend(mid),
        None => {
            ops.extend(std::iter::repeat_n(Op::Del, a_mid.len()));
            ops.extend(std::iter::repeat_n(Op::Ins, b_mid.len()));
        }
    }
    ops.extend(std::iter::repeat_n(Op::Same, tail));
    ops
}

/// Myers' O((N+M)D) shortest edit script, or `None` past `MAX_EDITS` edits.
fn myers(a: &[&str], b: &[&str]) -> Option<Vec<Op>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (a.len() + b.len()).min(MAX_EDITS) as isize;
    // v[k + off]: the furthest x on diagonal k; trace[d] is v before step d (indices -d-1..=d+1).
    let off = max + 1;
    let mut v = vec![0isize; 2 * off as usize + 1];
    let mut trace: Vec<Vec<isize>> = vec![];
    for d in 0..=max {
        trace.push(v[(off - d - 1) as usize..=(off + d + 1) as usize].to_vec());
        for k in (-d..=d).step_by(2) {
            let down = k == -d || (k != d && v[(off + k - 1) as usize] < v[(off + k + 1) as usize]);
            let mut x = if down {
                v[(off + k + 1) as usize]
            } else {
                v[(off + k - 1) as usize] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[(off + k) as usize] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m));
            }
        }
    }
    None
}

fn backtrack(trace: &[Vec<isize>], n: isize, m: isize) -> Vec<Op> {
    let (mut x, mut y) = (n, m);
    let mut ops = vec![];
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as isize;
        // v holds diagonals -d-1..=d+1.
        let at = |k: isize| v[(k + d + 1) as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            ops.push(Op::Same);
            x -= 1;
            y -= 1;
        }
        if d > 0 {
            ops.push(if x == prev_x { Op::Ins } else { Op::Del });
        }
        (x, y) = (prev_x, prev_y);
    }
    ops.reverse();
    ops
}

/// The ranges of `ops` to show: each change with up to `CONTEXT` unchanged lines around it,
/// joined when they touch.
fn hunks(ops: &[Op]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = vec![];
    for (i, op) in ops.iter().enumerate() {
        if *op == Op::Same {
            continue;
        }
        let (start, end) = (i.saturating_sub(CONTEXT), (i + 1 + CONTEXT).min(ops.len()));
        match out.last_mut() {
            Some(r) if start <= r.end => r.end = end,
            _ => out.push(start..end),
        }
    }
    out
}

/// The `@@` hunk of `ops[range]`, from the lines `a` to the lines `b`.
fn write_hunk(out: &mut String, ops: &[Op], range: Range<usize>, (a, b): (&[&str], &[&str])) {
    let (before, hunk) = (&ops[..range.start], &ops[range]);
    let (mut i, mut j) = (
        before.iter().filter(|o| **o != Op::Ins).count(),
        before.iter().filter(|o| **o != Op::Del).count(),
    );
    let old_n = hunk.iter().filter(|o| **o != Op::Ins).count();
    let new_n = hunk.iter().filter(|o| **o != Op::Del).count();
    // An empty side is numbered by the line before it (0 at the start of the file).
    let at = |start: usize, n: usize| if n == 0 { start } else { start + 1 };
    out.push_str(&format!(
        "@@ -{},{old_n} +{},{new_n} @@\n",
        at(i, old_n),
        at(j, new_n)
    ));
    for op in hunk {
        let (mark, line) = match op {
            Op::Same => (' ', a[i]),
            Op::Del => ('-', a[i]),
            Op::Ins => ('+', b[j]),
        };
        if *op != Op::Ins {
            i += 1;
        }
        if *op != Op::Del {
            j += 1;
        }
        out.push(mark);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(old: &str, new: &str) -> String {
        unified(Path::new("/h/f.json"), old, new)
    }

    #[test]
    fn hunks_have_three_lines_of_context_and_gnu_numbering() {
        let old: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let new = old.replace("10\n", "ten\n");
        assert_eq!(
            diff(&old, &new),
            "--- a/h/f.json\n+++ b/h/f.json\n@@ -7,7 +7,7 @@\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n"
        );
        // Changes with 7 unchanged lines between them make two hunks; with 6, one.
        let change = |lines: &[usize]| -> String {
            (1..=20)
                .map(|i| {
                    if lines.contains(&i) {
                        "x\n".into()
                    } else {
                        format!("{i}\n")
                    }
                })
                .collect()
        };
        assert_eq!(diff(&old, &change(&[2, 10])).matches("@@ -").count(), 2);
        assert_eq!(diff(&old, &change(&[2, 9])).matches("@@ -").count(), 1);
        assert_eq!(diff("a\n", "a\n"), "");
        assert_eq!(
            diff("", "a\n"),
            "--- a/h/f.json\n+++ b/h/f.json\n@@ -0,0 +1,1 @@\n+a\n"
        );
    }

    #[test]
    fn a_missing_final_newline_is_marked() {
        assert_eq!(
            diff("a\nb", "a\nc"),
            "--- a/h/f.json\n+++ b/h/f.json\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn the_script_is_a_shortest_one() {
        let (a, b) = (lines("a\nb\nc\nd\n"), lines("b\nc\nx\nd\ny\n"));
        let ops = script(&a, &b);
        assert_eq!(ops.iter().filter(|o| **o != Op::Same).count(), 3);
        // Replaying the script on `a` gives `b`.
        let (mut i, mut out) = (0, vec![]);
        let mut j = 0;
        for op in ops {
            match op {
                Op::Same => {
                    out.push(a[i]);
                    i += 1;
                    j += 1;
                }
                Op::Del => i += 1,
                Op::Ins => {
                    out.push(b[j]);
                    j += 1;
                }
            }
        }
        assert_eq!(out, b);
    }

    #[test]
    fn past_the_edit_limit_the_middle_is_one_hunk() {
        let old: String = (0..800).map(|i| format!("a{i}\n")).collect();
        let new: String = (0..800).map(|i| format!("b{i}\n")).collect();
        let d = diff(&format!("x\n{old}y\n"), &format!("x\n{new}y\n"));
        assert!(d.contains("@@ -1,802 +1,802 @@\n x\n-a0\n"), "{}", &d[..60]);
        assert_eq!(d.matches("@@").count(), 2);
    }

    #[test]
    fn names_with_spaces_or_quotes_are_marked() {
        assert_eq!(header_name(Path::new("/a b/c")), "a b/c\t");
        assert_eq!(header_name(Path::new("/a\"b")), "\"a\\\"b\"");
    }
}
