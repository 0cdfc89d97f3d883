//! [`GatewayProcess`]: the real `flowguard` binary, started on `127.0.0.1:0` with a config
//! written to a temporary directory (or piped to `--config-stdin`). Its stderr is drained by a
//! thread for as long as it runs, so the gateway never blocks on a full pipe, and kept for
//! assertions and failure messages. Dropping it stops the gateway and everything it started.
//!
//! [`GatewayOptions`] adds arguments and environment variables, and also runs one-shot commands
//! (`flowguard config check`, start-up errors) with [`GatewayOptions::run`].

use crate::bins::flowguard_bin;
use crate::procs;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the gateway may take to print `Listening on ...`: servers start first, and a
/// loaded 2-core machine can be slow.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a one-shot command may run before it is killed and the test fails.
const CLI_TIMEOUT: Duration = Duration::from_secs(15);
/// After SIGTERM on drop, how long before SIGKILL: tests must not wait for a full drain.
const DROP_GRACE: Duration = Duration::from_secs(3);
/// The line the gateway prints once it accepts connections.
const LISTENING: &str = "Listening on http://127.0.0.1:";
/// The variable the gateway puts in every child's environment (`<pid>.<start time>`).
const OWNER_ENV: &str = "FLOWGUARD_OWNER";

/// Lines the gateway wrote to stderr, and a signal for waiters when more arrive.
#[derive(Default)]
struct StderrLog {
    text: Mutex<String>,
    grew: Condvar,
}

impl StderrLog {
    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Reads `from` line by line into `log` until EOF, on its own thread.
fn drain_into(from: impl Read + Send + 'static, log: Arc<StderrLog>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut text = log.text.lock().unwrap_or_else(|e| e.into_inner());
                    text.push_str(&String::from_utf8_lossy(&line));
                    log.grew.notify_all();
                }
            }
        }
        log.grew.notify_all();
    });
}

/// Arguments and environment for a gateway run.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    args: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    /// Listen on this port instead of a free one (a gateway restarted in place).
    port: Option<u16>,
    /// Return as soon as it listens, not once every server has started or failed.
    no_wait_servers: bool,
}

/// Where the gateway reads its config from.
enum ConfigInput<'a> {
    File { text: &'a str, ext: &'a str },
    Stdin(&'a str),
}

impl GatewayOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends command-line arguments (after `-c FILE -l 127.0.0.1:0`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets a variable in the gateway's environment.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Listens on `127.0.0.1:port` instead of a free port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Returns from `start` as soon as the gateway listens (it listens before its servers are
    /// up); by default `start` also waits until each server has started or failed.
    pub fn no_wait_servers(mut self) -> Self {
        self.no_wait_servers = true;
        self
    }

    /// Removes a variable from the gateway's environment.
    pub fn env_remove(mut self, name: &str) -> Self {
        self.env_remove.push(name.into());
        self
    }

    /// Starts a gateway with `config_text` written to `gateway.<format_ext>`.
    pub fn start(self, config_text: &str, format_ext: &str) -> GatewayProcess {
        GatewayProcess::spawn(
            self,
            ConfigInput::File {
                text: config_text,
                ext: format_ext,
            },
        )
    }

    /// Starts a gateway that reads `json` from stdin (`--config-stdin`).
    pub fn start_stdin_json(self, json: &str) -> GatewayProcess {
        GatewayProcess::spawn(self, ConfigInput::Stdin(json))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(flowguard_bin());
        cmd.args(args).args(&self.args);
        for name in &self.env_remove {
            cmd.env_remove(name);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `flowguard <args> <options' args>` to completion (at most 15 s), for commands that
    /// are expected to exit: `config check`, `config schema`, start-up errors.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("flowguard starts");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes());
        }
        let (out, err) = (
            Arc::new(StderrLog::default()),
            Arc::new(StderrLog::default()),
        );
        drain_into(child.stdout.take().expect("piped"), out.clone());
        drain_into(child.stderr.take().expect("piped"), err.clone());
        let status = wait_child(&mut child, CLI_TIMEOUT);
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`flowguard {}` did not exit within {CLI_TIMEOUT:?}; stderr:\n{}",
                args.join(" "),
                err.text()
            );
        };
        // The pipes close at exit; give the reader threads a moment to take the last bytes.
        std::thread::sleep(Duration::from_millis(50));
        CliOutput {
            status,
            stdout: out.text(),
            stderr: err.text(),
        }
    }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a one-shot `flowguard` command printed, and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A running gateway. Dropping it sends SIGTERM, then SIGKILL after 3 s, then kills whatever
/// still carries its owner tag (children and grandchildren).
pub struct GatewayProcess {
    child: Child,
    port: u16,
    stderr: Arc<StderrLog>,
    owner_tag: Option<String>,
    exit: Option<ExitStatus>,
    dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Starts `flowguard -c <dir>/gateway.<format_ext> -l 127.0.0.1:0 <extra_args>`.
    pub fn start(config_text: &str, format_ext: &str, extra_args: &[&str]) -> Self {
        GatewayOptions::new()
            .args(extra_args)
            .start(config_text, format_ext)
    }

    /// Starts `flowguard --config-stdin -l 127.0.0.1:0` with `json` on stdin.
    pub fn start_stdin_json(json: &str) -> Self {
        GatewayOptions::new().start_stdin_json(json)
    }

    fn spawn(opts: GatewayOptions, input: ConfigInput<'_>) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut args: Vec<String> = Vec::new();
        match &input {
            ConfigInput::File { text, ext } => {
                let path = dir.path().join(format!("gateway.{ext}"));
                std::fs::write(&path, text).expect("the config is written");
                args.extend(["-c".into(), path.display().to_string()]);
            }
            ConfigInput::Stdin(_) => args.push("--config-stdin".into()),
        }
        args.extend(["-l".into(), format!("127.0.0.1:{}", opts.port.unwrap_or(0))]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = opts.command(&args);
        // State (the SQLite store) goes in the test's own directory, never the user's.
        if !opts.env.iter().any(|(k, _)| k == "FLOWGUARD_DATA_DIR") {
            cmd.env("FLOWGUARD_DATA_DIR", dir.path().join("data"));
        }
        let stdin = match input {
            ConfigInput::Stdin(_) => Stdio::piped(),
            ConfigInput::File { .. } => Stdio::null(),
        };
        cmd.stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let wait_servers = !opts.no_wait_servers;
        let mut child = cmd.spawn().expect("flowguard starts");
        let owner_tag = procs::start_time(child.id()).map(|t| format!("{}.{t}", child.id()));
        if let (ConfigInput::Stdin(json), Some(mut pipe)) = (input, child.stdin.take()) {
            let _ = pipe.write_all(json.as_bytes());
        }
        let stderr = Arc::new(StderrLog::default());
        drain_into(child.stderr.take().expect("piped"), stderr.clone());
        let mut gw = GatewayProcess {
            child,
            port: 0,
            stderr,
            owner_tag,
            exit: None,
            dir,
        };
        gw.port = gw.wait_stderr(&format!("`{LISTENING}PORT`"), listening_port);
        if wait_servers {
            gw.wait_stderr("a started or failed line for every server", settled);
        }
        gw
    }

    /// Waits until `check` finds what it looks for in the stderr text so far (`what` names it
    /// in the failure message).
    fn wait_stderr<T>(&mut self, what: &str, check: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        let mut text = self.stderr.text.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(found) = check(&text) {
                return found;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                drop(text);
                std::thread::sleep(Duration::from_millis(50));
                panic!(
                    "the gateway exited ({status}) before printing {what}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(text);
                panic!(
                    "the gateway did not print {what} within {LISTEN_TIMEOUT:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            let wait = left.min(Duration::from_millis(100));
            text = self
                .stderr
                .grew
                .wait_timeout(text, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// The temporary directory holding the config; tests may put their own files there.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `<dir>/<name>`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`libc::SIGTERM`, `libc::SIGKILL`, ...) to the gateway.
    pub fn signal(&self, sig: i32) {
        procs::signal(self.pid(), sig);
    }

    /// Waits at most `timeout` for the gateway to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = wait_child(&mut self.child, timeout);
        }
        self.exit
    }

    /// [`GatewayProcess::wait_exit`] for async tests: polls without blocking the runtime.
    pub async fn wait_exit_async(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
            } else if Instant::now() >= deadline {
                break;
            } else {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.exit
    }

    /// `GET /health` as JSON.
    pub async fn health(&self) -> Value {
        let reply = crate::http::request("GET", &self.url("/health"), &[], "").await;
        // 503 when no server runs; the report is in the body either way.
        let report: Value = reply.json();
        let want = if report["status"] == "unhealthy" {
            503
        } else {
            200
        };
        assert_eq!(reply.status, want, "GET /health: {}", reply.text());
        report
    }

    /// Polls `/health` until `check` holds (at most `timeout`); returns the last report.
    pub async fn wait_health(&self, timeout: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let report = self.health().await;
            if check(&report) {
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "/health did not reach the expected state within {timeout:?}; last: {report:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `Some` once the start-up report has a line for every server it announced (`FlowGuard x —
/// N server(s) from ...`): ready, failed, still starting, or started per session.
fn settled(text: &str) -> Option<()> {
    let head = text.find(" server(s) from ")?;
    let count: usize = text[..head].rsplit(' ').next()?.parse().ok()?;
    let outcomes = text
        .lines()
        .filter(|l| {
            ["  ✓ ", "  ✗ ", "  … ", "  ◦ "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .count();
    (outcomes >= count).then_some(())
}

fn listening_port(text: &str) -> Option<u16> {
    let at = text.find(LISTENING)? + LISTENING.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    // The line may still be arriving: wait for what follows the digits.
    text[at + digits.len()..].chars().next()?;
    digits.parse().ok()
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if self.wait_exit(Duration::ZERO).is_none() {
            self.signal(libc::SIGTERM);
            if self.wait_exit(DROP_GRACE).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // Children die with the gateway (PR_SET_PDEATHSIG), but their own children may not:
        // whatever still carries this gateway's tag goes now.
        if let Some(tag) = &self.owner_tag {
            for pid in procs::with_env(OWNER_ENV, tag) {
                procs::signal(pid, libc::SIGKILL);
            }
        }
    }
}
