//! Server risk (ROADMAP G6), as mcpgw's `server_eval` rates it: each tool is high, medium or low
//! risk by its name (mcpgw's patterns by default, configurable), the server's level is the
//! highest of its tools' and its score their mean. The gateway keeps a status per server
//! (pending, approved, denied) and approves automatically the levels configured.

/// A risk level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "low" => Some(Level::Low),
            "medium" => Some(Level::Medium),
            "high" => Some(Level::High),
            _ => None,
        }
    }

    fn score(self) -> f32 {
        match self {
            Level::Low => 0.2,
            Level::Medium => 0.5,
            Level::High => 0.9,
        }
    }
}

/// mcpgw's patterns for high-risk tool names.
pub const HIGH: &[&str] = &["exec_*", "run_*", "send_*", "delete_*", "write_*", "sql_*"];
/// mcpgw's patterns for medium-risk tool names.
pub const MEDIUM: &[&str] = &["read_file", "get_env", "list_env", "list_*"];

/// Name patterns (`*` matches any run of characters) for the two upper levels.
#[derive(Debug, Clone)]
pub struct Rules {
    pub high: Vec<String>,
    pub medium: Vec<String>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            high: HIGH.iter().map(|s| s.to_string()).collect(),
            medium: MEDIUM.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// A server's rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub level: Level,
    /// The mean of its tools' scores (0 without tools).
    pub score: f32,
    /// The tools at the server's level (why it is rated so).
    pub because: Vec<String>,
}

impl Rules {
    /// The level of one tool.
    pub fn tool(&self, name: &str) -> Level {
        if self.high.iter().any(|p| glob(p, name)) {
            Level::High
        } else if self.medium.iter().any(|p| glob(p, name)) {
            Level::Medium
        } else {
            Level::Low
        }
    }

    /// A server's rating from its tool names.
    pub fn assess<'a>(&self, tools: impl IntoIterator<Item = &'a str>) -> Assessment {
        let levels: Vec<(&str, Level)> = tools.into_iter().map(|t| (t, self.tool(t))).collect();
        let level = levels.iter().map(|(_, l)| *l).max().unwrap_or(Level::Low);
        let score = if levels.is_empty() {
            0.0
        } else {
            levels.iter().map(|(_, l)| l.score()).sum::<f32>() / levels.len() as f32
        };
        let because = levels
            .iter()
            .filter(|(_, l)| *l == level && level > Level::Low)
            .map(|(t, _)| t.to_string())
            .collect();
        Assessment {
            level,
            score,
            because,
        }
    }
}

/// `*` matches any run of characters (mcpgw's glob, as its server evaluation uses it); names
/// are compared case-sensitively.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcpgw_levels() {
        let r = Rules::default();
        assert_eq!(r.tool("exec_command"), Level::High);
        assert_eq!(r.tool("list_files"), Level::Medium);
        assert_eq!(r.tool("read_file"), Level::Medium);
        assert_eq!(r.tool("get_time"), Level::Low);
        let a = r.assess(["get_time", "list_files", "send_email"]);
        assert_eq!(a.level, Level::High);
        assert_eq!(a.because, ["send_email"]);
        assert!((a.score - (0.2 + 0.5 + 0.9) / 3.0).abs() < 1e-6);
        assert_eq!(r.assess([]).level, Level::Low);
        assert!(glob("a*b*c", "axxbyyc") && !glob("a*b*c", "axxc") && glob("*", ""));
    }
}
