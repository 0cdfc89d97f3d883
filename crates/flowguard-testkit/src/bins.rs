//! Where the binaries under test are: next to the test executable. Integration tests run from
//! `target/<profile>/deps/`, and cargo puts every bin target in `target/<profile>/`.

use std::path::PathBuf;

/// `target/<profile>/`, found from the running test executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test executable");
    let dir = exe.parent().expect("the test executable is in a directory");
    if dir.ends_with("deps") {
        dir.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// A binary of the workspace; panics with the fix when it has not been built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} does not exist: run `cargo build --workspace` first (with the same CARGO_TARGET_DIR \
         and profile as the tests)",
        path.display()
    );
    path
}

/// The gateway itself.
pub fn flowguard_bin() -> PathBuf {
    bin("flowguard")
}

/// The fault-injecting stdio server (`src/bin/fake.rs`).
pub fn fake_bin() -> PathBuf {
    bin("fake")
}

/// The conformance server (`src/bin/fixture/`); run it as `fixture stdio`.
pub fn fixture_bin() -> PathBuf {
    bin("fixture")
}
