//! `[inspect]` and mcpgw's `plugins`.

use super::{load_err, load_ok};
use crate::model::{InspectMode, SecretAction};
use crate::Format;

const SERVER: &str = "[servers.a]\ncommand = \"x\"\n";

#[test]
fn defaults_and_errors() {
    let c = load_ok(&format!("[inspect]\n{SERVER}"), Format::Toml);
    let i = c.inspect.unwrap();
    assert_eq!(
        (i.pins, i.poison, i.schema, i.risk),
        (
            InspectMode::Enforce,
            InspectMode::Enforce,
            InspectMode::Enforce,
            InspectMode::Off
        )
    );
    assert_eq!(
        (i.secrets_in, i.secrets_out),
        (SecretAction::Redact, SecretAction::Redact)
    );
    assert_eq!(
        (i.injection_in, i.injection_out),
        (InspectMode::Enforce, InspectMode::Warn)
    );
    let e = load_err(
        &format!("[inspect]\nsecret_rules = [\"gitlab\"]\n{SERVER}"),
        Format::Toml,
    );
    assert!(
        e.contains("inspect.secret_rules") && e.contains("\"gitlab\" is not a secret rule"),
        "{e}"
    );
    let e = load_err(
        &format!("[inspect]\nallow_secrets = {{ b = [\"github-token\"] }}\n{SERVER}"),
        Format::Toml,
    );
    assert!(
        e.contains("inspect.allow_secrets.b") && e.contains("names no configured server"),
        "{e}"
    );
    let e = load_err(
        &format!("[inspect]\nresponse_patterns = [\"(?=x)\"]\n{SERVER}"),
        Format::Toml,
    );
    assert!(e.contains("inspect.response_patterns[0]"), "{e}");
    let e = load_err(
        &format!("[inspect]\npins = \"strict\"\n{SERVER}"),
        Format::Toml,
    );
    assert!(
        e.contains("inspect.pins") && e.contains("use \"off\", \"warn\" or \"enforce\""),
        "{e}"
    );
}

#[test]
fn mcpgw_plugins_read_into_inspect() {
    let yaml = "plugins:\n  - name: pii\n    config: {mode: redact, patterns: [credit_card, aws_key]}\n  - name: injection\n    config: {sensitivity: high, threshold: 0.6}\n  - name: schema\n    config: {strict: true}\nservers:\n  a:\n    command: x\n";
    let i = load_ok(yaml, Format::Yaml).inspect.unwrap();
    assert_eq!((i.pins, i.poison), (InspectMode::Off, InspectMode::Off));
    assert_eq!(i.secrets_in, SecretAction::Redact);
    assert_eq!(
        i.secret_rules.as_deref(),
        Some(&["pii.card".to_string(), "secret.aws-access-key".to_string()][..])
    );
    assert_eq!(
        (i.injection_in, i.injection_out),
        (InspectMode::Enforce, InspectMode::Off)
    );
    assert!(
        i.injection_mcpgw_scores
            && (i.injection_threshold - 0.6).abs() < 1e-6
            && i.injection_sensitivity > 1.4
    );
    assert!(i.schema_strict);
    let e = load_err(
        "plugins:\n  - name: ratelimit\nservers:\n  a:\n    command: x\n",
        Format::Yaml,
    );
    assert!(
        e.contains("plugins[0].name") && e.contains("pii, injection and schema"),
        "{e}"
    );
    let e = load_err("plugins:\n  - name: pii\n    config: {patterns: [passport]}\nservers:\n  a:\n    command: x\n", Format::Yaml);
    assert!(
        e.contains("\"passport\" is not one of mcpgw's pii patterns"),
        "{e}"
    );
}

#[test]
fn per_server_settings_fall_back_to_the_global_ones() {
    let c = load_ok(
        "[inspect]\nsecrets_in = \"block\"\n\n[servers.a]\ncommand = \"x\"\n\n[servers.gh]\ncommand = \"y\"\ninspect = { secrets_in = \"off\", pins = \"warn\" }\n",
        Format::Toml,
    );
    let i = c.inspect.unwrap();
    assert_eq!(i.for_server("a").secrets_in, SecretAction::Block);
    let gh = i.for_server("gh");
    assert_eq!(
        (gh.secrets_in, gh.pins, gh.secrets_out),
        (SecretAction::Off, InspectMode::Warn, SecretAction::Redact)
    );
    // Only a server's section: the others are not inspected.
    let c = load_ok(
        "[servers.a]\ncommand = \"x\"\n\n[servers.b]\ncommand = \"y\"\ninspect = {}\n",
        Format::Toml,
    );
    let i = c.inspect.unwrap();
    assert_eq!(
        (i.for_server("a").pins, i.for_server("a").secrets_in),
        (InspectMode::Off, SecretAction::Off)
    );
    assert_eq!(
        (i.for_server("b").pins, i.for_server("b").secrets_in),
        (InspectMode::Enforce, SecretAction::Redact)
    );
    assert!(i.needs_storage());
    let e = load_err(
        "[servers.a]\ncommand = \"x\"\ninspect = { schema = \"loose\" }\n",
        Format::Toml,
    );
    assert!(e.contains("servers.a.inspect.schema"), "{e}");
    // The mcpServers shape takes it too.
    let c = load_ok(
        r#"{"mcpServers": {"a": {"command": "x", "inspect": {"secrets_out": "block"}}}}"#,
        Format::Json,
    );
    assert_eq!(
        c.inspect.unwrap().for_server("a").secrets_out,
        SecretAction::Block
    );
}
