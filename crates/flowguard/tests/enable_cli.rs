//! `flowguard enable` / `disable` run as a user would, in a temporary `$HOME`: the `--dry-run`
//! diff applied with the real `patch` gives exactly what `enable` writes, `disable` restores
//! every file byte for byte with its mode, and the binary written is `--binary`, else the one
//! on PATH, with a warning for one in a cargo build folder.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FG: &str = env!("CARGO_BIN_EXE_flowguard");

/// The client files of the test home: (path under home, mode, contents).
const FILES: &[(&str, u32, &str)] = &[
    (
        ".claude.json",
        0o600,
        "{\"mcpServers\": {\"fs\": {\"command\": \"npx\", \"args\": [\"-y\", \"fs-mcp\"]}},\n \"projects\": {\"/w\": {\"mcpServers\": {\"db\": {\"command\": \"db-mcp\"}}}}}",
    ),
    (
        ".config/Code/User/mcp.json",
        0o644,
        "{\n  // user servers\n  \"servers\": {\n    \"web\": {\"url\": \"https://x.example//mcp\"},\n    \"git\": {\n      \"command\": \"uvx\", /* PyPI */\n      \"args\": [\"mcp-server-git\",],\n    },\n  },\n}\n",
    ),
    (
        ".codex/config.toml",
        0o600,
        "model = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"npx\"\nargs = [\"-y\", \"docs\"]\n",
    ),
    (
        ".cursor/mcp.json",
        0o600,
        "{\"mcpServers\":{\"mem\":{\"command\":\"npx\",\"args\":[\"-y\",\"@modelcontextprotocol/server-memory\"]}}}",
    ),
    (
        ".gemini/settings.json",
        0o600,
        "{\n  \"mcpServers\": {\n    \"py\": {\"command\": \"python\", \"args\": [\"-m\", \"srv\"], \"cwd\": \"/srv\"}\n  }\n}\n",
    ),
];

fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    for (path, mode, text) in FILES {
        let p = home.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    home
}

fn contents(home: &Path) -> Vec<(Vec<u8>, u32)> {
    FILES
        .iter()
        .map(|(path, _, _)| {
            let p = home.join(path);
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
            (fs::read(&p).unwrap(), mode)
        })
        .collect()
}

fn flowguard(home: &Path, path_var: &str, args: &[&str]) -> Output {
    let out = Command::new(FG)
        .args(args)
        .arg("--project")
        .arg(home.join("project"))
        .env("HOME", home)
        .env("PATH", path_var)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn patch_is_missing() -> bool {
    let found = Command::new("patch").arg("--version").output().is_ok();
    if !found {
        println!("note: no `patch` command on PATH; the dry-run diff was not applied");
    }
    !found
}

fn patch(args: &[&str], diff: &[u8]) {
    let mut child = Command::new("patch")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), diff).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "patch: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_dry_run_diff_patches_to_what_enable_writes_and_disable_restores_all() {
    if patch_is_missing() {
        return;
    }
    let home = home();
    let h = home.path();
    let before = contents(h);
    // A `flowguard` on PATH (never run by these commands) is the one written.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("flowguard");
    fs::write(&fake, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path_var = dir.path().to_str().unwrap().to_string();

    let dry = flowguard(h, &path_var, &["enable", "--dry-run"]);
    assert_eq!(contents(h), before, "--dry-run wrote nothing");
    let diff = dry.stdout;
    let text = String::from_utf8_lossy(&diff);
    assert!(
        text.starts_with("--- a/"),
        "stdout is only the diff: {text}"
    );
    assert_eq!(text.matches("\n+++ b/").count(), FILES.len(), "{text}");
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert!(stderr.contains(&format!("wrapping with {} (found on PATH)", fake.display())));
    assert!(!stderr.contains("warning"), "{stderr}");

    patch(&["-d", "/", "-p1", "--quiet"], &diff);
    let patched = contents(h);
    for (path, mode, text) in FILES {
        let p = h.join(path);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    flowguard(h, &path_var, &["enable"]);
    let enabled = contents(h);
    assert_eq!(
        patched, enabled,
        "patch applied the diff to what enable wrote"
    );
    assert!(String::from_utf8_lossy(&enabled[1].0).contains("// user servers"));

    // disable --dry-run's diff is the way back, then disable restores for real.
    let back = flowguard(h, &path_var, &["disable", "--dry-run", "--client", "codex"]).stdout;
    let codex = h.join(FILES[2].0);
    patch(&["--quiet", codex.to_str().unwrap()], &back);
    assert_eq!(fs::read(&codex).unwrap(), FILES[2].2.as_bytes());
    fs::write(&codex, &enabled[2].0).unwrap();
    flowguard(h, &path_var, &["disable"]);
    assert_eq!(contents(h), before, "disable restored bytes and modes");
}

#[test]
fn binary_flag_and_the_build_folder_warning() {
    let home = home();
    let h = home.path();
    let claude = h.join(".claude.json");
    // No flowguard on PATH: the running one, in target/debug, is written, with a warning.
    let out = flowguard(h, "/nonexistent", &["enable", "--client", "claude-code"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cargo build folder"), "{stderr}");
    assert!(
        stderr.contains("cargo install --path crates/flowguard"),
        "{stderr}"
    );
    let fg = PathBuf::from(FG);
    let json = serde_json::to_string(fg.to_str().unwrap()).unwrap();
    assert!(fs::read_to_string(&claude).unwrap().contains(&json));
    // --binary wins, and enable again re-points the wrapped entries at it.
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("fg");
    fs::copy(FG, &installed).unwrap();
    let out = flowguard(
        h,
        "/nonexistent",
        &["enable", "--binary", installed.to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&out.stderr).is_empty());
    let text = fs::read_to_string(&claude).unwrap();
    assert!(
        !text.contains(&json) && text.matches("wrap").count() == 2,
        "{text}"
    );
    // A --binary that is not there is an error that says so, and nothing is written.
    let out = Command::new(FG)
        .args(["enable", "--binary", "/no/such/flowguard"])
        .env("HOME", h)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--binary /no/such/flowguard"));
    assert_eq!(fs::read_to_string(&claude).unwrap(), text);
    flowguard(h, "/nonexistent", &["disable"]);
    assert_eq!(contents(h), contents_of_files());
}

fn contents_of_files() -> Vec<(Vec<u8>, u32)> {
    FILES
        .iter()
        .map(|(_, mode, text)| (text.as_bytes().to_vec(), *mode))
        .collect()
}
