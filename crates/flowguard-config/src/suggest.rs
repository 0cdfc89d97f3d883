//! Did-you-mean suggestions for unknown keys and enum values.
//!
//! The list of allowed names comes from serde's own message ("unknown field `x`, expected one
//! of `a`, `b`"), so it can never drift from the raw model.

/// The names serde lists after "expected" in an unknown field or variant message.
pub(crate) fn expected_names(message: &str) -> Vec<String> {
    let Some(at) = message.find(", expected") else {
        return Vec::new();
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The first backquoted name in a serde message (the unknown field or variant).
pub(crate) fn quoted_name(message: &str) -> Option<&str> {
    let mut parts = message.split('`');
    parts.next()?;
    parts.next()
}

/// The closest candidate: same letters ignoring case and `_`/`-` (a camelCase key in a snake_case
/// file), else a prefix match, else the smallest edit distance up to 2.
pub(crate) fn did_you_mean<'a>(unknown: &str, candidates: &'a [String]) -> Option<&'a str> {
    let folded = fold(unknown);
    if let Some(same) = candidates.iter().find(|c| fold(c) == folded) {
        return Some(same);
    }
    let lower = unknown.to_ascii_lowercase();
    if lower.len() >= 3 {
        if let Some(prefix) = candidates.iter().find(|c| {
            let c = c.to_ascii_lowercase();
            c.starts_with(&lower) || lower.starts_with(&c)
        }) {
            return Some(prefix);
        }
    }
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.as_str())
}

fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_serde_messages() {
        let message = "unknown field `comand`, expected one of `type`, `command`, `args`";
        assert_eq!(quoted_name(message), Some("comand"));
        assert_eq!(expected_names(message), names(&["type", "command", "args"]));
        assert_eq!(
            expected_names("unknown variant `x`, expected `a` or `b`"),
            names(&["a", "b"])
        );
        assert!(expected_names("unknown field `x`, there are no fields").is_empty());
    }

    #[test]
    fn suggests_close_names() {
        let fields = names(&["command", "args", "working_directory", "entrypoint_args"]);
        assert_eq!(did_you_mean("comand", &fields), Some("command"));
        assert_eq!(did_you_mean("arg", &fields), Some("args"));
        assert_eq!(
            did_you_mean("workingDirectory", &fields),
            Some("working_directory")
        );
        assert_eq!(
            did_you_mean("working_dir", &fields),
            Some("working_directory")
        );
        assert_eq!(did_you_mean("zzz", &fields), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
