//! `flowguard inspect corpus`: the detectors' precision and recall on the labelled corpus
//! (`flowguard_inspect::corpus`; docs/inspection.md).

use std::path::Path;
use std::process::ExitCode;

pub fn run(dir: &Path, misses: bool) -> ExitCode {
    match flowguard_inspect::corpus::evaluate(dir, misses) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("flowguard inspect corpus: {e}");
            ExitCode::from(2)
        }
    }
}
