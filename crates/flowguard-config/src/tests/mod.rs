//! End-to-end tests of `load_str`: the same configuration in every shape and syntax, and the
//! messages people see when a configuration is wrong.

mod errors;
mod inspect;
mod shapes;
mod virtual_servers;

use crate::{load_str, Config, ConfigError, Format};

/// The environment the tests expand `${VAR}` from.
fn test_env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("s3cret".into()),
        "PORT" => Some("8123".into()),
        _ => None,
    }
}

fn load(text: &str, format: Format) -> Result<Config, ConfigError> {
    load_str(text, format, "test.cfg", &test_env)
}

fn load_ok(text: &str, format: Format) -> Config {
    load(text, format).unwrap_or_else(|e| panic!("{e}"))
}

/// The error message, asserting it names the source.
fn load_err(text: &str, format: Format) -> String {
    let message = load(text, format)
        .expect_err("the configuration should be rejected")
        .to_string();
    assert!(message.starts_with("error: "), "{message}");
    assert!(
        message.lines().next().unwrap().ends_with(" in test.cfg"),
        "{message}"
    );
    message
}
