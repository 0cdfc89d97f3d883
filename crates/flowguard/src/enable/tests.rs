//! `enable` then `disable` on real files in a temporary home: modes, JSONC, Gemini CLI, and
//! pointing wrapped entries at another binary.

use super::clients::{files, sidecar, ConfigFile};
use super::{disable_file, enable_file, Client, Out, BACKUP, STATE};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const WRITE: Out = Out { dry_run: false };

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// The config file of `client` under `home` (project files under `home/p`), written with `text`.
fn config(home: &Path, client: Client, which: usize, text: &str) -> ConfigFile {
    let f = files(client, home, &home.join("p")).swap_remove(which);
    fs::create_dir_all(f.path.parent().unwrap()).unwrap();
    fs::write(&f.path, text).unwrap();
    f
}

const CLAUDE: &str = r#"{
  "numStartups": 3,
  "mcpServers": {
    "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"], "env": {"TOKEN": "secret"}}
  }
}
"#;

#[test]
fn modes_are_kept_and_disable_restores_bytes_and_mode() {
    for m in [0o600, 0o644] {
        let home = tempfile::tempdir().unwrap();
        let f = config(home.path(), Client::ClaudeCode, 0, CLAUDE);
        fs::set_permissions(&f.path, fs::Permissions::from_mode(m)).unwrap();
        enable_file::run(&f, "/opt/fg/flowguard", WRITE).unwrap();
        let text = fs::read_to_string(&f.path).unwrap();
        assert!(text.contains(r#""command": "/opt/fg/flowguard", "args": ["wrap", "--name", "fs", "--", "npx", "-y","#), "{text}");
        let (backup, state) = (sidecar(&f.path, BACKUP), sidecar(&f.path, STATE));
        assert_eq!([mode(&f.path), mode(&backup), mode(&state)], [m; 3]);
        assert_eq!(fs::read_to_string(&backup).unwrap(), CLAUDE);
        disable_file::run(&f, WRITE).unwrap();
        assert_eq!(fs::read_to_string(&f.path).unwrap(), CLAUDE);
        assert_eq!(mode(&f.path), m);
        assert!(!backup.exists() && !state.exists());
    }
}

/// A VS Code `mcp.json` as people write it: comments, a URL with `//`, trailing commas.
const VSCODE: &str = r#"// Workspace MCP servers
{
  /* inputs are prompted for */
  "inputs": [
    {"type": "promptString", "id": "token", "description": "API token", "password": true},
  ],
  "servers": {
    // the GitHub server, remote
    "github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/"},
    "fetch": {
      "command": "uvx", // from PyPI
      "args": [
        "mcp-server-fetch", // the server
        "--user-agent=https://example.com/bot", /* trailing comma next */
      ],
    },
    "memory": {"command": "npx", "env": {"TOKEN": "${input:token}"},},
  },
}
"#;

#[test]
fn jsonc_keeps_its_comments_and_disable_restores_it() {
    let home = tempfile::tempdir().unwrap();
    let f = config(home.path(), Client::Vscode, 1, VSCODE);
    assert!(f.path.ends_with("p/.vscode/mcp.json"));
    enable_file::run(&f, "/fg", WRITE).unwrap();
    let text = fs::read_to_string(&f.path).unwrap();
    let expected = VSCODE
        .replace(r#""command": "uvx""#, r#""command": "/fg""#)
        .replace(
            r#""mcp-server-fetch", // the server"#,
            r#""wrap", "--name", "fetch", "--", "uvx", "mcp-server-fetch", // the server"#,
        )
        .replace(
            r#""command": "npx","#,
            r#""command": "/fg", "args": ["wrap", "--name", "memory", "--", "npx"],"#,
        );
    assert_eq!(text, expected);
    disable_file::run(&f, WRITE).unwrap();
    assert_eq!(fs::read_to_string(&f.path).unwrap(), VSCODE);

    // Edited since: only the wrapped entries are un-wrapped, every comment stays.
    enable_file::run(&f, "/fg", WRITE).unwrap();
    let edited = fs::read_to_string(&f.path)
        .unwrap()
        .replace("// from PyPI", "// edited");
    fs::write(&f.path, &edited).unwrap();
    disable_file::run(&f, WRITE).unwrap();
    let back = fs::read_to_string(&f.path).unwrap();
    let memory_args = r#""command": "npx", "args": [],"#;
    assert_eq!(
        back,
        VSCODE
            .replace("// from PyPI", "// edited")
            .replace(r#""command": "npx","#, memory_args)
    );
}

#[test]
fn gemini_settings_wrap_stdio_servers_and_leave_remote_ones() {
    let home = tempfile::tempdir().unwrap();
    let paths: Vec<_> = files(Client::Gemini, home.path(), &home.path().join("p"))
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(
        paths,
        [
            home.path().join(".gemini/settings.json"),
            home.path().join("p/.gemini/settings.json")
        ]
    );
    let settings = r#"{
  "theme": "GitHub",
  "mcpServers": {
    "py": {"command": "python", "args": ["-m", "srv"], "cwd": "./srv", "env": {"K": "$K"}, "timeout": 30000},
    "remote": {"httpUrl": "https://x.example/mcp", "headers": {"A": "b"}},
    "sse": {"url": "http://localhost:8080/sse"}
  }
}
"#;
    let f = config(home.path(), Client::Gemini, 0, settings);
    enable_file::run(&f, "/fg", WRITE).unwrap();
    let text = fs::read_to_string(&f.path).unwrap();
    assert_eq!(
        text,
        settings.replace(
            r#""command": "python", "args": ["-m""#,
            r#""command": "/fg", "args": ["wrap", "--name", "py", "--", "python", "-m""#
        )
    );
    disable_file::run(&f, WRITE).unwrap();
    assert_eq!(fs::read_to_string(&f.path).unwrap(), settings);
}

#[test]
fn enable_again_points_wrapped_entries_at_the_new_binary() {
    let home = tempfile::tempdir().unwrap();
    let toml = "# mine\n[mcp_servers.docs]\ncommand = \"npx\" # run\nargs = [\n  \"-y\", # pkg next\n  \"docs-mcp\",\n]\n";
    let f = config(home.path(), Client::Codex, 0, toml);
    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o600)).unwrap();
    enable_file::run(&f, "/src/fg/target/release/flowguard", WRITE).unwrap();
    enable_file::run(&f, "/home/u/.cargo/bin/flowguard", WRITE).unwrap();
    let text = fs::read_to_string(&f.path).unwrap();
    assert_eq!(
        text,
        "# mine\n[mcp_servers.docs]\ncommand = \"/home/u/.cargo/bin/flowguard\" # run\nargs = [\n  \"wrap\", \"--name\", \"docs\", \"--\", \"npx\", \"-y\", # pkg next\n  \"docs-mcp\",\n]\n"
    );
    // Both changes were enable's own: disable still restores byte for byte.
    disable_file::run(&f, WRITE).unwrap();
    assert_eq!(fs::read_to_string(&f.path).unwrap(), toml);
    assert_eq!(mode(&f.path), 0o600);
}

#[test]
fn bad_files_are_errors_that_say_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let f = config(home.path(), Client::Cursor, 0, "{\"mcpServers\": {/* open");
    let e = enable_file::run(&f, "/fg", WRITE).unwrap_err();
    assert!(e.contains("never closed"), "{e}");
    let f = config(
        home.path(),
        Client::Cursor,
        0,
        "{\"mcpServers\": {\"a\": }}",
    );
    let e = enable_file::run(&f, "/fg", WRITE).unwrap_err();
    assert!(e.contains("not valid JSON") && e.contains("line 1"), "{e}");
    assert!(!sidecar(&f.path, BACKUP).exists());
}
