//! The JSON Schema of both configuration shapes, generated from the raw model's doc comments.

use schemars::JsonSchema;

use crate::raw::{McpDocument, ServersDocument};

/// Either shape; exists only so the schema says `anyOf` the two documents.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // never constructed: only its schema is used
enum AnyDocument {
    /// `[gateway]` and `[servers.<id>]` with snake_case keys (TOML, YAML, JSON files).
    Servers(ServersDocument),
    /// `{"mcpServers": {...}, "gateway": {...}}` with camelCase keys (JSON on stdin, and the
    /// files of Claude Desktop, Cursor, VS Code and the MCP Gateway Specification).
    McpServers(McpDocument),
}

/// The JSON Schema (draft 2020-12) that every FlowGuard configuration satisfies.
///
/// Values may also be `${VAR}` strings; the schema describes them after expansion.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(AnyDocument);
    schema.insert("title".into(), "FlowGuard configuration".into());
    schema.to_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_covers_both_shapes_with_descriptions() {
        let schema = json_schema();
        let text = serde_json::to_string(&schema).unwrap();
        assert!(
            schema["anyOf"].as_array().is_some_and(|a| a.len() == 2),
            "{text}"
        );
        assert!(
            text.contains("Program to run as a local stdio server"),
            "{text}"
        );
        assert!(text.contains("mcpServers") && text.contains("entrypointArgs"));
        assert!(text.contains("working_directory") && text.contains("\"cwd\""));
        assert!(text.contains("\"additionalProperties\":false"));
        for shape in schema["anyOf"].as_array().unwrap() {
            let name = shape["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/$defs/");
            let required = &schema["$defs"][name]["required"];
            assert!(
                required.as_array().is_some_and(|r| r.len() == 1),
                "{name}: {required}"
            );
        }
    }

    /// The reference in docs/config.md is written by hand; this keeps it complete.
    #[test]
    fn config_reference_documents_every_key() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md");
        let reference = std::fs::read_to_string(path).expect("docs/config.md exists");
        let schema = json_schema();
        let mut missing = Vec::new();
        for definition in schema["$defs"].as_object().unwrap().values() {
            for key in definition["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|p| p.0)
            {
                if !reference.contains(&format!("`{key}`")) {
                    missing.push(key.clone());
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/config.md does not mention: {missing:?}"
        );
    }
}
