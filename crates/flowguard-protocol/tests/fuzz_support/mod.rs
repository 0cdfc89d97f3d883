//! What the fuzz targets share: the proptest settings, and the replay of a committed corpus.
//!
//! `cargo test` runs each target on its corpus (`fuzz-corpus/<target>/`) and on `FUZZ_CASES`
//! generated inputs (default 256, from the fixed seed `FUZZ_SEED`, so every run is the same).
//! For a longer hunt: `FUZZ_CASES=100000 FUZZ_SEED=$RANDOM cargo test -p flowguard-protocol
//! --release --test fuzz_envelope`. An input that fails goes into the corpus once fixed.

#![allow(dead_code)] // each target uses its part

use proptest::test_runner::{Config, RngSeed};
use std::path::PathBuf;

pub fn config() -> Config {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: var("FUZZ_CASES").map_or(256, |c| c.min(u32::MAX.into()) as u32),
        rng_seed: RngSeed::Fixed(var("FUZZ_SEED").unwrap_or(0x5eed_f10c)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Every file of the target's corpus, sorted by name, with its name; at least 10 of them.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: {} files",
        dir.display(),
        files.len()
    );
    files
}

/// Splits `bytes` into pieces at the given cut points (taken modulo the length, sorted).
pub fn pieces<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for cut in at {
        out.push(&bytes[start..cut]);
        start = cut;
    }
    out.push(&bytes[start..]);
    out
}
