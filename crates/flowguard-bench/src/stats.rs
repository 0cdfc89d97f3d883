//! Error kinds, per-task tallies and latency percentiles.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A status other than 200 (or 2xx for notifications).
    HttpStatus,
    /// Connect, write, read or timeout failures.
    Transport,
    /// A body that is not JSON, or SSE without a JSON-RPC response.
    Parse,
    /// A response to another request.
    WrongId,
    /// A JSON-RPC error, no `result`, or `isError: true`.
    ErrorReply,
    /// A result that is not what was asked for (echoed text, item count, initialize result).
    WrongContent,
    /// `initialize` answered without an `Mcp-Session-Id` where one was required.
    NoSession,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::HttpStatus,
        ErrorKind::Transport,
        ErrorKind::Parse,
        ErrorKind::WrongId,
        ErrorKind::ErrorReply,
        ErrorKind::WrongContent,
        ErrorKind::NoSession,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Transport => "transport",
            ErrorKind::Parse => "parse",
            ErrorKind::WrongId => "wrong_id",
            ErrorKind::ErrorReply => "error_reply",
            ErrorKind::WrongContent => "wrong_content",
            ErrorKind::NoSession => "no_session",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Failure {
            kind,
            detail: detail.into(),
        }
    }
}

/// What one task saw; merged at the end.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latencies in µs of the requests that count.
    pub lat: Vec<u32>,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub first_error: Option<String>,
    /// Requests answered correctly, counted or not (warm-up included).
    pub ok_total: u64,
}

impl Tally {
    pub fn error(&mut self, f: &Failure) {
        self.errors[f.kind as usize] += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{}: {}", f.kind.name(), f.detail));
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.lat.extend(other.lat);
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.ok_total += other.ok_total;
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// `errors` and `err_<kind>` fields, flat (easy to read from a shell script).
    pub fn error_fields(&self, out: &mut Map<String, Value>) {
        out.insert("errors".into(), json!(self.error_count()));
        for k in ErrorKind::ALL {
            out.insert(format!("err_{}", k.name()), json!(self.errors[k as usize]));
        }
        if let Some(e) = &self.first_error {
            out.insert("first_error".into(), json!(e));
        }
    }

    pub fn print_errors(&self) {
        let n = self.error_count();
        if n == 0 {
            println!("  errors     0");
            return;
        }
        let kinds: Vec<String> = ErrorKind::ALL
            .iter()
            .filter(|k| self.errors[**k as usize] > 0)
            .map(|k| format!("{} {}", k.name(), self.errors[*k as usize]))
            .collect();
        println!("  errors     {n} ({})", kinds.join(", "));
        if let Some(e) = &self.first_error {
            println!("  first      {e}");
        }
    }
}

/// Percentiles (nearest rank) of a sorted slice, in µs.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn ms(us: u32) -> String {
    format!("{:.3} ms", f64::from(us) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
