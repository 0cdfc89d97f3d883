//! Fuzz target 4: the configuration loader (`load_str`, TOML, YAML and JSON). Never a panic,
//! on arbitrary text and on mutated valid configurations; every error has a message that
//! names the source. Replays `fuzz-corpus/config/` (the extension picks the syntax; each file
//! is also read as the other two): `ok-*` must load, `err-*` must not. `FUZZ_CASES` and
//! `FUZZ_SEED` as in flowguard-protocol's targets (256 cases from a fixed seed by default).

use flowguard_config::{load_str, Format};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::path::PathBuf;

const FORMATS: [Format; 3] = [Format::Toml, Format::Yaml, Format::Json];

fn env(name: &str) -> Option<String> {
    (name == "TOKEN").then(|| "s3cret".to_string())
}

/// Loads `text`; `Ok` if it loaded, else the message, checked.
fn load(text: &str, format: Format) -> Result<(), String> {
    match load_str(text, format, "fuzz.cfg", &env) {
        Ok(_) => Ok(()),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.trim().is_empty(), "an empty error for {text:?}");
            assert!(message.contains("fuzz.cfg"), "{message}");
            Err(message)
        }
    }
}

fn config() -> Config {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: var("FUZZ_CASES").map_or(256, |c| c.min(u32::MAX.into()) as u32),
        rng_seed: RngSeed::Fixed(var("FUZZ_SEED").unwrap_or(0x5eed_f10c)),
        failure_persistence: None,
        ..Config::default()
    }
}

fn corpus() -> Vec<(String, Format, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz-corpus/config");
    let mut files: Vec<(String, Format, String)> = std::fs::read_dir(&dir)
        .expect("the corpus folder")
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let format = Format::from_path(&path).expect("a .toml, .yaml or .json file");
            let bytes = std::fs::read(&path).expect("readable");
            (name, format, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(files.len() >= 10);
    files
}

#[test]
fn corpus_replays() {
    for (name, format, text) in corpus() {
        let outcome = load(&text, format);
        if name.starts_with("ok-") {
            assert!(outcome.is_ok(), "{name}: {outcome:?}");
        } else if name.starts_with("err-") {
            assert!(outcome.is_err(), "{name} loaded");
        }
        for other in FORMATS {
            let _ = load(&text, other);
        }
    }
}

/// The valid files of the corpus, each with its syntax.
fn valid() -> Vec<(Format, String)> {
    corpus()
        .into_iter()
        .filter(|(name, ..)| name.starts_with("ok-"))
        .map(|(_, format, text)| (format, text))
        .collect()
}

/// A valid configuration changed in one place: cut, a character inserted, replaced or
/// removed, a line doubled or dropped, a value swapped for something odd.
fn mutated() -> impl Strategy<Value = (Format, String)> {
    let odd = prop_oneof![
        Just("\"\"".to_string()),
        Just("-1".to_string()),
        Just("1e400".to_string()),
        Just("${".to_string()),
        Just("[".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{feff}".to_string()),
        Just("\r\n".to_string()),
        "[ -~]{0,4}",
        any::<char>().prop_map(String::from),
    ];
    (
        prop::sample::select(valid()),
        any::<prop::sample::Index>(),
        odd,
        0u8..5,
    )
        .prop_map(|((format, text), at, odd, how)| {
            let mut chars: Vec<char> = text.chars().collect();
            let i = at.index(chars.len() + 1);
            match how {
                0 => chars.truncate(i),
                1 => chars.splice(i..i, odd.chars()).for_each(drop),
                2 if i < chars.len() => chars.splice(i..=i, odd.chars()).for_each(drop),
                3 if i < chars.len() => {
                    chars.remove(i);
                }
                _ => {
                    let mut lines: Vec<&str> = text.lines().collect();
                    let k = at
                        .index(lines.len().max(1))
                        .min(lines.len().saturating_sub(1));
                    if i % 2 == 0 && !lines.is_empty() {
                        lines.remove(k);
                    } else if let Some(line) = lines.get(k).copied() {
                        lines.insert(k, line);
                    }
                    return (format, lines.join("\n"));
                }
            }
            (format, chars.into_iter().collect())
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text(text in any::<String>(), format in prop::sample::select(FORMATS.to_vec())) {
        let _ = load(&text, format);
    }

    #[test]
    fn config_like_text(
        text in "[\\[\\]{}\"'=:,.\\-#&*!|>\\n a-z0-9_$]{0,200}",
        format in prop::sample::select(FORMATS.to_vec()),
    ) {
        let _ = load(&text, format);
    }

    #[test]
    fn mutated_valid_configs((format, text) in mutated()) {
        let _ = load(&text, format);
    }
}
