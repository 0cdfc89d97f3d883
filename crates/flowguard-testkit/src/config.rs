//! Config snippets for the test servers. Tests write their own `[gateway]` settings and add
//! servers with these, so a test's config reads as what it is about.

use crate::bins::{fake_bin, fixture_bin};

/// A TOML (and JSON) string literal: JSON's escapes are valid in TOML basic strings.
pub fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// The fake server's path as a quoted string literal.
pub fn fake_path() -> String {
    quote(&fake_bin().display().to_string())
}

/// `[servers.<id>]` running the fake server with `args`, plus `extra` TOML lines
/// (`tools = [...]`, `env = {...}`, ...).
pub fn fake_server(id: &str, args: &[&str], extra: &str) -> String {
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    format!(
        "[servers.{id}]\ncommand = {}\nargs = [{}]\n{extra}\n",
        fake_path(),
        args.join(", ")
    )
}

/// A whole TOML config: `[gateway]` with `gateway` lines, and one fake server called `fake`.
pub fn one_fake(gateway: &str) -> String {
    format!("[gateway]\n{gateway}\n\n{}", fake_server("fake", &[], ""))
}

/// `[servers.<id>]` running the conformance fixture over stdio.
pub fn fixture_server(id: &str) -> String {
    format!(
        "[servers.{id}]\ncommand = {}\nargs = [\"stdio\"]\n",
        quote(&fixture_bin().display().to_string())
    )
}
