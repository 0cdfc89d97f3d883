//! `flowguard enable` / `flowguard disable` on the config files of the clients under a
//! temporary `$HOME`: enable then disable gives every file back byte for byte, enable is
//! idempotent, `--dry-run` writes nothing, a wrapped entry really runs its server through
//! `flowguard wrap`, edits made after enable survive disable, and a broken file is reported
//! and left alone.

use flowguard_testkit::bins::{fake_bin, flowguard_bin};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary home with one config file per client (and a project directory).
struct Home {
    _dir: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (home, project) = (dir.path().join("home"), dir.path().join("proj"));
        let fake = fake_bin().to_string_lossy().into_owned();
        let files: Vec<(PathBuf, String)> = vec![
            (home.join(".claude.json"), "{\n  \"numStartups\": 3,\n  \"mcpServers\": {\n    \"a\": {\"command\": \"npx\", \"args\": [\"-y\", \"pkg\"], \"env\": {\"K\": \"v\"}}\n  },\n  \"projects\": {\n    \"/p\": {\"allowedTools\": [], \"mcpServers\": {\"b\": {\"type\": \"stdio\", \"command\": \"uvx\", \"args\": [\"srv\"]}}}\n  }\n}\n".into()),
            (project.join(".mcp.json"), "{\"mcpServers\": {\"local\": {\"command\": \"node\", \"args\": [\"s.js\"], \"cwd\": \"/tmp\"},\n \"remote\": {\"type\": \"http\", \"url\": \"https://example.com/mcp\"}}}".into()),
            (home.join(".config/Claude/claude_desktop_config.json"), "{\n\t\"mcpServers\": {\n\t\t\"fs\": {\n\t\t\t\"command\": \"npx\",\n\t\t\t\"args\": [\"-y\", \"@modelcontextprotocol/server-filesystem\", \"/tmp\"]\n\t\t}\n\t},\n\t\"globalShortcut\": \"\"\n}\n".into()),
            (home.join(".cursor/mcp.json"), format!("{{\n  \"mcpServers\": {{\n    \"fake\": {{\n      \"command\": {}\n    }}\n  }}\n}}\n", json!(fake))),
            (home.join(".config/Code/User/mcp.json"), "{\n  \"servers\": {\n    \"gh\": {\"type\": \"stdio\", \"command\": \"docker\", \"args\": [\"run\", \"-i\", \"gh\"]}\n  },\n  \"inputs\": []\n}\n".into()),
            (project.join(".vscode/mcp.json"), "{\"servers\": {\"p\": {\"command\": \"python\", \"args\": [\"-m\", \"srv\"]}}}\n".into()),
            (home.join(".codex/config.toml"), "# my codex\nmodel = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"npx\" # the runner\nargs = [\"-y\", \"docs\"]\nenv = { \"A\" = \"1\" }\n\n[mcp_servers.web]\nurl = \"https://example.com/mcp\"\n".into()),
        ];
        for (path, text) in &files {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Home {
            _dir: dir,
            home,
            project,
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        let h = |p: &str| self.home.join(p);
        vec![
            h(".claude.json"),
            self.project.join(".mcp.json"),
            h(".config/Claude/claude_desktop_config.json"),
            h(".cursor/mcp.json"),
            h(".config/Code/User/mcp.json"),
            self.project.join(".vscode/mcp.json"),
            h(".codex/config.toml"),
        ]
    }

    fn snapshot(&self) -> Vec<Vec<u8>> {
        self.files()
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// `flowguard <args>` with this `$HOME`, run from the project directory.
    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(flowguard_bin())
            .args(args)
            .env("HOME", &self.home)
            // No installed flowguard on PATH: the binary under test is the one written.
            .env("PATH", "/usr/bin:/bin")
            .current_dir(&self.project)
            .output()
            .expect("flowguard runs");
        eprintln!(
            "$ flowguard {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "flowguard {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, rel: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.home.join(rel)).unwrap()).unwrap()
    }
}

fn backup(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.flowguard-backup", p.display()))
}

fn flowguard_path() -> String {
    flowguard_bin()
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn enable_then_disable_gives_back_every_file_byte_for_byte() {
    let h = Home::new();
    let before = h.snapshot();
    let out = h.ok(&["enable"]);
    assert_eq!(out.matches(": wrapped").count(), 8, "{out}");
    assert!(out.contains("mcpServers.remote: skipped (remote url)"));
    assert!(out.contains("mcp_servers.web: skipped (remote url)"));
    for (path, old) in h.files().iter().zip(&before) {
        assert_ne!(
            &std::fs::read(path).unwrap(),
            old,
            "{} changed",
            path.display()
        );
        assert_eq!(&std::fs::read(backup(path)).unwrap(), old);
    }
    let claude = h.json(".claude.json");
    assert_eq!(claude["numStartups"], 3);
    assert_eq!(claude["mcpServers"]["a"]["env"], json!({"K": "v"}));
    assert_eq!(
        claude["mcpServers"]["a"]["command"],
        json!(flowguard_path())
    );
    assert_eq!(
        claude["mcpServers"]["a"]["args"],
        json!(["wrap", "--name", "a", "--", "npx", "-y", "pkg"])
    );
    assert_eq!(
        claude["projects"]["/p"]["mcpServers"]["b"]["args"],
        json!(["wrap", "--name", "b", "--", "uvx", "srv"])
    );
    let codex = std::fs::read_to_string(h.home.join(".codex/config.toml")).unwrap();
    assert!(
        codex.contains(
            "\nargs = [\"wrap\", \"--name\", \"docs\", \"--\", \"npx\", \"-y\", \"docs\"]\n"
        ),
        "{codex}"
    );
    assert!(codex.starts_with("# my codex\n") && codex.contains("# the runner"));

    let out = h.ok(&["disable"]);
    assert_eq!(out.matches(": restored").count(), 8, "{out}");
    assert_eq!(h.snapshot(), before);
    for path in h.files() {
        assert!(!backup(&path).exists());
    }
}

#[test]
fn enable_twice_is_enable_once() {
    let h = Home::new();
    let before = h.snapshot();
    h.ok(&["enable"]);
    let once = h.snapshot();
    let out = h.ok(&["enable"]);
    assert_eq!(out.matches(": already wrapped").count(), 8, "{out}");
    assert!(!out.contains(": wrapped"));
    assert_eq!(h.snapshot(), once);
    for (path, old) in h.files().iter().zip(&before) {
        assert_eq!(&std::fs::read(backup(path)).unwrap(), old);
    }
    h.ok(&["disable"]);
    assert_eq!(h.snapshot(), before);
}

#[test]
fn dry_run_shows_a_diff_and_writes_nothing() {
    let h = Home::new();
    let before = h.snapshot();
    let out = h.ok(&[
        "enable",
        "--dry-run",
        "--project",
        h.project.to_str().unwrap(),
    ]);
    assert!(out.contains("-      \"command\": "), "{out}");
    assert!(out.contains(&format!(
        "+      \"command\": {}, \"args\": [\"wrap\"",
        json!(flowguard_path())
    )));
    assert_eq!(h.snapshot(), before);
    for path in h.files() {
        assert!(!backup(&path).exists());
    }
    h.ok(&["enable", "--client", "cursor"]);
    let enabled = h.snapshot();
    let out = h.ok(&["disable", "--dry-run"]);
    assert!(out.contains("+      \"command\": "), "{out}");
    assert_eq!(h.snapshot(), enabled);
}

#[test]
fn a_wrapped_entry_runs_its_server_through_flowguard() {
    let h = Home::new();
    h.ok(&["enable", "--client", "cursor"]);
    let entry = &h.json(".cursor/mcp.json")["mcpServers"]["fake"];
    let args: Vec<String> = serde_json::from_value(entry["args"].clone()).unwrap();
    assert_eq!(args[..4], ["wrap", "--name", "fake", "--"]);
    let mut child = Command::new(entry["command"].as_str().unwrap())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the wrapped command starts");
    let mut stdin = child.stdin.take().unwrap();
    for msg in [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"through flowguard"}}}),
    ] {
        writeln!(stdin, "{msg}").unwrap();
    }
    stdin.flush().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let reply = loop {
        let line = lines.next().expect("a reply on stdout").unwrap();
        let msg: Value = serde_json::from_str(&line).unwrap();
        if msg["id"] == 2 {
            break msg;
        }
    };
    assert_eq!(reply["result"]["content"][0]["text"], "through flowguard");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn disable_after_an_edit_unwraps_and_keeps_the_edit() {
    let h = Home::new();
    let fake = fake_bin().to_string_lossy().into_owned();
    h.ok(&["enable", "--client", "cursor"]);
    let path = h.home.join(".cursor/mcp.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(
        "\"mcpServers\": {",
        "\"mcpServers\": {\n    \"new\": {\"command\": \"x\"},",
    );
    std::fs::write(&path, &edited).unwrap();
    let out = h.ok(&["disable", "--client", "cursor"]);
    assert!(out.contains("changed since `flowguard enable`"), "{out}");
    assert!(out.contains("mcpServers.fake: restored"), "{out}");
    let servers = &h.json(".cursor/mcp.json")["mcpServers"];
    assert_eq!(servers["fake"], json!({"command": fake, "args": []}));
    assert_eq!(servers["new"], json!({"command": "x"}));
    assert!(backup(&path).exists(), "the pre-enable copy is kept");
}

#[test]
fn a_broken_file_is_reported_and_left_untouched() {
    let h = Home::new();
    let path = h.home.join(".cursor/mcp.json");
    std::fs::write(&path, "{\"mcpServers\": {\"x\": ").unwrap();
    let out = h.run(&["enable"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: is not valid JSON", path.display()))
            && stderr.contains("fix it"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"mcpServers\": {\"x\": ");
    assert!(!backup(&path).exists());
    // The other files were still enabled.
    assert!(String::from_utf8_lossy(&out.stdout).contains("mcpServers.a: wrapped"));
}
