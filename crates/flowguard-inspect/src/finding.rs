//! What a detector reports.

/// One thing a detector found. `rule` is a stable id (`secret.aws-access-key`,
/// `poison.pseudo-tag`, ...); `family` groups rules for the corpus figures; `at` says where
/// (a JSON pointer into the inspected value, or a field name); `span` is the byte range of the
/// match inside the string at `at`, when there is one. The matched text itself is never kept:
/// a finding may be logged and audited.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub family: &'static str,
    pub at: String,
    pub span: Option<(usize, usize)>,
    /// How strongly this finding suggests an attack, 0 to 1.
    pub score: f32,
}
