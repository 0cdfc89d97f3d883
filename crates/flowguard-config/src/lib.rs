//! FlowGuard's configuration: one typed model behind three surface syntaxes.
//!
//! TOML, YAML and JSON files, and JSON on stdin, are parsed into one tree; `${VAR}` references
//! are expanded in every string value; the tree is read into a raw serde model that denies
//! unknown fields (in one of two shapes: `[servers.<id>]` with snake_case keys, or
//! `{"mcpServers": ...}` with camelCase keys); and the raw model is validated into the runtime
//! model of [`model`]. Every error names the file and the config path of the bad value.
//!
//! Only this crate knows about file formats; the rest of the gateway sees [`Config`].

#![forbid(unsafe_code)]

mod document;
mod envfile;
mod error;
mod expand;
mod format;
pub mod model;
mod raw;
mod schema;
mod suggest;
mod validate;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use envfile::load_env_file;
pub use error::ConfigError;
pub use format::Format;
pub use model::{
    AlertSettings, AuditSettings, Config, ContainerRuntime, ContainerSpec, EnvValue,
    GatewaySettings, Guard, HttpSpec, Isolation, MetricsSettings, Mode, Mount, PrefixMode,
    ProcessSpec, Secret, ServerConfig, SessionIsolation, StorageSettings, TracingSettings,
    Transport, VirtualServer, VirtualTool,
};
pub use raw::parse_duration;
pub use schema::json_schema;
pub use validate::is_dangerous_env_name;

/// Loads a configuration file, choosing the syntax by extension and expanding `${VAR}` from
/// the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let format = Format::from_path(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    let env = |name: &str| std::env::var(name).ok();
    load(&text, format, &path.display().to_string(), &env, base)
}

/// Loads a configuration from text. `source` names it in errors (a path, or `<stdin>`);
/// `env` looks up variables for `${VAR}`.
pub fn load_str(
    text: &str,
    format: Format,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    load(text, format, source, env, None)
}

/// [`load_str`], with relative `command` paths (`./server`, `bin/server`) and
/// `working_directory` values resolved against `base` (the config file's folder; `None`: the
/// current directory). A bare command name (`npx`) is looked up on `PATH` when it starts.
fn load(
    text: &str,
    format: Format,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base: Option<&Path>,
) -> Result<Config, ConfigError> {
    let mut tree = format::parse(text, format, source)?;
    let shape = document::detect_shape(&tree, source)?;
    document::reject_unsupported(&tree, shape, source)?;
    let emptied = expand::expand_tree(&mut tree, env, source)?;
    let raw = document::deserialize(tree, shape, source)?;
    validate::build(
        raw,
        &validate::Ctx {
            source,
            shape,
            emptied: &emptied,
            base,
        },
    )
}
