//! The last lines a server wrote to stderr, kept so that a start-up failure or a crash can be
//! explained with what the server itself said.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct StderrRing {
    lines: VecDeque<String>,
    cap: usize,
}

impl StderrRing {
    pub fn new(cap: usize) -> Self {
        StderrRing {
            lines: VecDeque::with_capacity(cap.min(64)),
            cap: cap.max(1),
        }
    }

    pub fn push(&mut self, line: String) {
        if self.lines.len() == self.cap {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Forgets every line: a new run of the server starts with an empty tail.
    pub fn clear(&mut self) {
        self.lines.clear();
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<String> {
        self.lines
            .iter()
            .skip(self.lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_lines() {
        let mut r = StderrRing::new(3);
        for i in 0..5 {
            r.push(i.to_string());
        }
        assert_eq!(r.tail(10), vec!["2", "3", "4"]);
        assert_eq!(r.tail(1), vec!["4"]);
    }
}
