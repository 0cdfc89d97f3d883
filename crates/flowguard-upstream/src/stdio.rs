//! stdio children: spawn in their own process group (so the whole tree can be signalled), a
//! writer task that batches lines into stdin, a reader task with a line-size cap, a stderr task
//! that never blocks the child, and the stop sequence of DESIGN-NOTES §6.

use crate::link::Link;
use crate::orphans;
use crate::upstream::Inner;
use crate::UpstreamError;
use bytes::Bytes;
use flowguard_config::{EnvValue, ProcessSpec};
use flowguard_protocol::lines::{CappedLine, LineRead};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot};

/// Everything needed to start one child.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    /// Set for containers: the name to remove on stop.
    pub container: Option<(String, String)>,
}

impl CommandSpec {
    pub fn from_process(spec: &ProcessSpec) -> Self {
        let env = spec
            .env
            .iter()
            .filter_map(|(k, v)| match v {
                EnvValue::Set(v) => Some((k.clone(), v.clone())),
                // The child inherits the gateway's environment, so passthrough needs no action;
                // a missing host variable is reported at start so the cause is visible.
                EnvValue::Passthrough => {
                    if std::env::var_os(k).is_none() {
                        tracing::warn!("environment variable {k} is passed through but not set");
                    }
                    None
                }
            })
            .collect();
        CommandSpec {
            program: spec.command.clone(),
            args: spec.args.clone(),
            env,
            cwd: spec.working_directory.clone(),
            container: None,
        }
    }
}

/// A running child and the signal that its stdout closed.
pub(crate) struct Process {
    child: Child,
    pgid: Option<i32>,
    stdout_closed: Option<oneshot::Receiver<()>>,
    container: Option<(String, String)>,
}

/// How much of stdin's queue the writer gathers into one write.
const WRITE_BATCH: usize = 64 * 1024;
/// Longest stderr line kept; the rest of the line is dropped.
const STDERR_LINE_MAX: usize = 8 * 1024;
/// stderr lines logged per second per server before the rest are only counted.
const STDERR_LOG_RATE: u32 = 50;

pub(crate) async fn launch(inner: &Arc<Inner>, spec: CommandSpec) -> Result<Process, String> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(orphans::OWNER_ENV, &inner.settings.owner_tag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(dir) = &spec.cwd {
        cmd.current_dir(dir);
    }
    orphans::die_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        let hint = if spec.program.contains('/') {
            "check the path; a relative command is resolved against the config file's folder"
        } else {
            "is it installed and on PATH?"
        };
        format!("could not start `{}`: {e} ({hint})", spec.program)
    })?;
    let pgid = child.id().map(|p| p as i32);
    if inner.state.borrow().failures > 0 {
        tracing::debug!(server = %inner.id, pid = ?pgid, "started `{}` again", spec.program);
    } else {
        tracing::info!(server = %inner.id, pid = ?pgid, "started `{}`", spec.program);
    }
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = oneshot::channel();
    // These tasks end by themselves when the child's pipes close, which `Process::stop` ensures.
    tokio::spawn(write_lines(stdin, rx));
    tokio::spawn(read_stdout(
        inner.clone(),
        BufReader::new(stdout),
        closed_tx,
    ));
    tokio::spawn(read_stderr(inner.clone(), BufReader::new(stderr)));
    inner.set_link(Some(Link::Stdio(tx)));
    Ok(Process {
        child,
        pgid,
        stdout_closed: Some(closed_rx),
        container: spec.container,
    })
}

impl Process {
    pub(crate) async fn exited(&mut self) -> String {
        if let Some(closed) = self.stdout_closed.as_mut() {
            tokio::select! {
                status = self.child.wait() => return describe_exit(status),
                _ = closed => { self.stdout_closed = None; }
            }
        }
        // stdout closed: give the process a moment to exit so the status can be reported.
        match tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await {
            Ok(status) => describe_exit(status),
            Err(_) => "it closed its stdout".to_string(),
        }
    }

    /// Close stdin (already done by dropping the link), wait, SIGTERM the group, wait, SIGKILL
    /// the group, reap; then remove the container if there is one.
    pub(crate) async fn stop(&mut self, grace: Duration) {
        let first_wait = grace.min(Duration::from_secs(2));
        if tokio::time::timeout(first_wait, self.child.wait())
            .await
            .is_err()
        {
            if let Some(pgid) = self.pgid {
                orphans::signal_group(pgid, libc::SIGTERM);
            }
            let second_wait = grace.saturating_sub(first_wait).min(Duration::from_secs(3));
            if tokio::time::timeout(second_wait, self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.start_kill();
            }
        }
        // Grandchildren (npx → node) may outlive the leader: the group goes down with it.
        if let Some(pgid) = self.pgid {
            orphans::signal_group(pgid, libc::SIGKILL);
        }
        let _ = self.child.wait().await;
        if let Some((runtime, name)) = &self.container {
            crate::container::remove(runtime, name).await;
        }
    }
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("it exited with code {c}"),
            (None, Some(sig)) => format!("it was killed by signal {sig}"),
            _ => "it exited".to_string(),
        },
        Err(e) => format!("waiting for it failed: {e}"),
    }
}

async fn write_lines(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    let mut buf = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = rx.recv().await {
        buf.clear();
        buf.extend_from_slice(&first);
        buf.push(b'\n');
        while buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => {
                    buf.extend_from_slice(&more);
                    buf.push(b'\n');
                }
                Err(_) => break,
            }
        }
        if stdin.write_all(&buf).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
}

/// One line of at most `max` bytes into `buf`; a longer one is skipped, keeping its ends
/// (`LineRead::TooLong`). The framing itself is `flowguard_protocol::lines`, where it is fuzzed.
pub async fn read_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut line = CappedLine::new(max);
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(line.finish(buf));
        }
        let (used, done) = line.feed(buf, avail);
        r.consume(used);
        if let Some(read) = done {
            return Ok(read);
        }
    }
}

/// The numeric id of an oversized reply (at either end), so its request can be failed at once.
fn sniff_id(kept: &[u8]) -> Option<u64> {
    flowguard_protocol::lines::sniff_reply_id(kept)
}

async fn read_stdout<R: AsyncBufRead + Unpin>(
    inner: Arc<Inner>,
    mut r: R,
    closed: oneshot::Sender<()>,
) {
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        match read_capped(&mut r, &mut buf, inner.settings.max_line_bytes).await {
            Ok(LineRead::Line) => {
                if !buf.iter().all(u8::is_ascii_whitespace) {
                    inner.handle_message(&buf);
                }
            }
            Ok(LineRead::TooLong) => {
                let max = inner.settings.max_line_bytes;
                tracing::error!(server = %inner.id, "dropped a message longer than max_line_bytes ({max})");
                if let Some(id) = sniff_id(&buf) {
                    let detail = format!("its reply was larger than max_line_bytes ({max} bytes)");
                    inner.fail_pending(
                        id,
                        UpstreamError::BadReply {
                            server: inner.id.to_string(),
                            detail,
                        },
                    );
                }
            }
            Ok(LineRead::Eof) | Err(_) => break,
        }
        if buf.capacity() > 1024 * 1024 {
            buf = Vec::with_capacity(8 * 1024); // don't keep a huge buffer after one big reply
        }
    }
    let _ = closed.send(());
}

async fn read_stderr<R: AsyncBufRead + Unpin>(inner: Arc<Inner>, mut r: R) {
    let mut buf = Vec::new();
    let mut window = Instant::now();
    let (mut logged, mut suppressed) = (0u32, 0u64);
    loop {
        match read_capped(&mut r, &mut buf, STDERR_LINE_MAX).await {
            Ok(LineRead::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if window.elapsed() >= Duration::from_secs(1) {
            if suppressed > 0 {
                tracing::info!(server = %inner.id, "{suppressed} more stderr lines (kept in the ring buffer, not logged)");
            }
            window = Instant::now();
            (logged, suppressed) = (0, 0);
        }
        if inner.state.borrow().failures > 0 {
            // A server failing to start again: its first failure was logged with these
            // lines; repeating them at every retry would bury everything else.
            tracing::debug!(server = %inner.id, "stderr: {line}");
        } else if logged < STDERR_LOG_RATE {
            logged += 1;
            tracing::info!(server = %inner.id, "stderr: {line}");
        } else {
            suppressed += 1;
        }
        inner
            .stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn capped_reader_skips_long_lines_and_keeps_going() {
        let data = format!("short\n{}\nnext\nlast", "x".repeat(5000));
        let mut r = BufReader::with_capacity(64, data.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(
            read_capped(&mut r, &mut buf, 100).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"short");
        assert_eq!(
            read_capped(&mut r, &mut buf, 100).await.unwrap(),
            LineRead::TooLong
        );
        assert_eq!(
            read_capped(&mut r, &mut buf, 100).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"next");
        assert_eq!(
            read_capped(&mut r, &mut buf, 100).await.unwrap(),
            LineRead::Line
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_capped(&mut r, &mut buf, 100).await.unwrap(),
            LineRead::Eof
        );
    }

    #[tokio::test]
    async fn an_oversized_reply_with_its_id_last_is_failed_by_id() {
        // The TypeScript SDK writes {"result":…,"jsonrpc":"2.0","id":N}.
        let big = format!(
            r#"{{"result":"{}","jsonrpc":"2.0","id":31}}"#,
            "x".repeat(5000)
        );
        let data = format!("{big}\n");
        let mut r = BufReader::with_capacity(64, data.as_bytes());
        let mut buf = Vec::new();
        let read = read_capped(&mut r, &mut buf, 1000).await.unwrap();
        assert_eq!((read, sniff_id(&buf)), (LineRead::TooLong, Some(31)));
    }

    #[test]
    fn ids_are_sniffed_from_oversized_replies() {
        assert_eq!(
            sniff_id(br#"{"jsonrpc":"2.0","id": 42,"result":{"content":"xxxx"#),
            Some(42)
        );
        assert_eq!(sniff_id(br#"{"jsonrpc":"2.0","method":"x""#), None);
    }
}
