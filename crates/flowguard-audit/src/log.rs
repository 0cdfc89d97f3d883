//! The writer: appends sealed lines in batches (one `fdatasync` per batch), checkpoints, rotates
//! and prunes. Synchronous; the gateway runs it on a thread of its own.

use crate::keys::{KeyError, SealState};
use crate::seal::{self, Link, GENESIS};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Options {
    /// The active log file. Rotated files are `<path>.<first seq, 12 digits>`; checkpoints go to
    /// `<path>.checkpoints`.
    pub path: PathBuf,
    /// The seal state (current key, checkpoint signing key): `<path>.seal` unless given.
    pub seal: PathBuf,
    /// Where the verification key is written at first use: `<path>.verify-key` unless given.
    pub verify_key: PathBuf,
    /// A checkpoint after this many records...
    pub checkpoint_records: u64,
    /// ...or this long after the last one, whichever comes first.
    pub checkpoint_every: Duration,
    /// Rotate when the active file is larger than this.
    pub rotate_bytes: u64,
    /// Keep at most this many rotated files (the oldest are pruned); `None` keeps all.
    pub keep_files: Option<usize>,
    /// Keep each checkpoint line for [`Log::take_made`] (to push them off the machine).
    pub keep_made: bool,
}

impl Options {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Options {
            seal: sibling(&path, "seal"),
            verify_key: sibling(&path, "verify-key"),
            path,
            checkpoint_records: 10_000,
            checkpoint_every: Duration::from_secs(60),
            rotate_bytes: 64 << 20,
            keep_files: None,
            keep_made: false,
        }
    }

    pub fn checkpoints(&self) -> PathBuf {
        sibling(&self.path, "checkpoints")
    }
}

/// `<path>.<suffix>`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {why}")]
    Io { path: String, why: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("audit log {path}: {why}")]
    Chain { path: String, why: String },
}

fn io(path: &Path, e: impl ToString) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

pub struct Log {
    opts: Options,
    state: SealState,
    tag_key: seal::TagKey,
    file: File,
    file_no: u64,
    file_first: u64,
    file_bytes: u64,
    seq: u64,
    prev: String,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    checkpoints: File,
    last_sig: String,
    /// What opening found and did, for the operator (a torn last line, new keys).
    /// Checkpoint lines made and not yet taken (with `Options::keep_made`).
    made: Vec<String>,
    pub notes: Vec<String>,
}

impl Log {
    /// Opens (or starts) the log, continuing its chain.
    pub fn open(opts: Options) -> Result<Log, AuditError> {
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let mut notes = Vec::new();
        let tail = last_line_anywhere(&opts)?;
        let mut state = if opts.seal.exists() {
            SealState::load(&opts.seal)?
        } else if tail.is_some() {
            return Err(AuditError::Chain {
                path: opts.path.display().to_string(),
                why: format!(
                    "the log exists but its seal state {} does not: the chain cannot go on. \
                     Restore the seal state, or move the old log files away to start a new chain",
                    opts.seal.display()
                ),
            });
        } else {
            let (s, v) = SealState::generate()?;
            let text = serde_json::to_string_pretty(&v).expect("a key serialises");
            crate::keys::write_private(&opts.verify_key, text.as_bytes())
                .map_err(|e| io(&opts.verify_key, e))?;
            s.save(&opts.seal)?;
            notes.push(format!(
                "new audit keys; the verification key is {} (keep a copy off this machine)",
                opts.verify_key.display()
            ));
            s
        };
        // Checkpoints: the last signature links the next one; a crash between a checkpoint and
        // saving the evolved key leaves the state one epoch behind, caught up here.
        let cp_path = opts.checkpoints();
        let (last_sig, next_epoch) = match read_last_line(&cp_path)? {
            Some((line, _)) => {
                let v: serde_json::Value =
                    serde_json::from_str(&line).map_err(|e| AuditError::Chain {
                        path: cp_path.display().to_string(),
                        why: format!(
                            "the last checkpoint is not JSON ({e}); run `flowguard audit verify`"
                        ),
                    })?;
                (
                    v.get("sig")
                        .and_then(|s| s.as_str())
                        .unwrap_or("")
                        .to_string(),
                    v.get("next_epoch").and_then(|e| e.as_u64()).unwrap_or(0),
                )
            }
            None => (String::new(), 0),
        };
        if next_epoch > state.epoch {
            while state.epoch < next_epoch {
                state.evolve();
            }
            state.save(&opts.seal)?;
        }
        let checkpoints = append_file(&cp_path)?;
        let (seq, prev, file_no, file_first, fresh) = match &tail {
            Some(t) => (t.seq, t.hash.clone(), t.file_no, t.file_first, !t.active),
            None => (0, GENESIS.to_string(), 0, 1, true),
        };
        if let Some(t) = &tail {
            if t.torn > 0 {
                notes.push(format!(
                    "the last line of {} was incomplete ({} bytes, a crash while writing); it was cut off",
                    opts.path.display(),
                    t.torn
                ));
            }
        }
        let file = append_file(&opts.path)?;
        let file_bytes = file.metadata().map_err(|e| io(&opts.path, e))?.len();
        let mut log = Log {
            opts,
            tag_key: seal::TagKey::new(&state.key),
            state,
            file,
            file_no,
            file_first,
            file_bytes,
            seq,
            prev,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            checkpoints,
            last_sig,
            notes,
            made: Vec::new(),
        };
        if fresh {
            log.start_file()?;
        }
        Ok(log)
    }

    /// The last sequence number written.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// Appends records (each a JSON object's text without chain fields), synced once; then a
    /// checkpoint or a rotation when one is due.
    pub fn append<S: AsRef<str>>(&mut self, records: &[S]) -> Result<(), AuditError> {
        if records.is_empty() {
            return self.tick();
        }
        let mut buf = String::with_capacity(records.len() * 768);
        for r in records {
            self.seal_into(&mut buf, r.as_ref());
            buf.push('\n');
        }
        self.write(buf.as_bytes())?;
        self.since_checkpoint += records.len() as u64;
        if self.file_bytes >= self.opts.rotate_bytes {
            return self.rotate();
        }
        self.tick()
    }

    /// A checkpoint when enough records or time have passed.
    pub fn tick(&mut self) -> Result<(), AuditError> {
        if self.since_checkpoint >= self.opts.checkpoint_records {
            self.checkpoint("count", None)
        } else if self.since_checkpoint > 0
            && self.last_checkpoint.elapsed() >= self.opts.checkpoint_every
        {
            self.checkpoint("time", None)
        } else {
            Ok(())
        }
    }

    /// The last checkpoint, at shutdown.
    pub fn close(self) -> Result<(), AuditError> {
        self.close_taking().0
    }

    /// The last checkpoint, at shutdown, and the checkpoint lines not yet taken ([`Log::made`]).
    pub fn close_taking(mut self) -> (Result<(), AuditError>, Vec<String>) {
        let r = self.checkpoint("shutdown", None);
        (r, std::mem::take(&mut self.made))
    }

    /// The checkpoint lines made since the last call (kept only with `Options::keep_made`), to
    /// push off the machine.
    pub fn take_made(&mut self) -> Vec<String> {
        std::mem::take(&mut self.made)
    }

    fn seal_into(&mut self, out: &mut String, fields: &str) {
        self.seq += 1;
        self.prev = seal::seal_into(
            out,
            fields,
            self.seq,
            self.state.epoch,
            &self.prev,
            &self.tag_key,
        );
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        self.file
            .write_all(bytes)
            .map_err(|e| io(&self.opts.path, e))?;
        self.file.sync_data().map_err(|e| io(&self.opts.path, e))?;
        self.file_bytes += bytes.len() as u64;
        Ok(())
    }

    /// A new file's header: a link of the chain naming the file's number.
    fn start_file(&mut self) -> Result<(), AuditError> {
        self.file_no += 1;
        self.file_first = self.seq + 1;
        let header = format!(
            "{{\"type\":\"file\",\"file\":{},\"created\":\"{}\"}}",
            self.file_no,
            crate::time::now()
        );
        let mut line = String::new();
        self.seal_into(&mut line, &header);
        line.push('\n');
        self.write(line.as_bytes())
    }

    /// Signs (seq, hash) of the last record into the checkpoints file, then evolves the key.
    pub fn checkpoint(
        &mut self,
        reason: &str,
        pruned_before: Option<u64>,
    ) -> Result<(), AuditError> {
        let pruned = pruned_before
            .map(|p| format!(",\"pruned_before\":{p}"))
            .unwrap_or_default();
        let fields = format!(
            "{{\"type\":\"checkpoint\",\"seq\":{},\"hash\":\"{}\",\"epoch\":{},\"next_epoch\":{},\"file\":{},\"time\":\"{}\",\"reason\":\"{}\"{},\"prev_sig\":\"{}\"}}",
            self.seq,
            self.prev,
            self.state.epoch,
            self.state.epoch + 1,
            self.file_no,
            crate::time::now(),
            reason,
            pruned,
            self.last_sig
        );
        let line = seal::sign_checkpoint(&fields, |b| self.state.sign(b));
        let cp_path = self.opts.checkpoints();
        self.checkpoints
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| self.checkpoints.sync_data())
            .map_err(|e| io(&cp_path, e))?;
        if self.opts.keep_made {
            self.made.push(line.clone());
        }
        self.last_sig = line
            .rsplit("\"sig\":\"")
            .next()
            .unwrap_or("")
            .trim_end_matches("\"}")
            .to_string();
        self.state.evolve();
        self.tag_key = seal::TagKey::new(&self.state.key);
        self.state.save(&self.opts.seal)?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), AuditError> {
        self.checkpoint("rotation", None)?;
        let rotated = sibling(&self.opts.path, &format!("{:012}", self.file_first));
        std::fs::rename(&self.opts.path, &rotated).map_err(|e| io(&rotated, e))?;
        self.file = append_file(&self.opts.path)?;
        self.file_bytes = 0;
        self.start_file()?;
        if let Some(keep) = self.opts.keep_files {
            let mut old = rotated_files(&self.opts.path)?;
            if old.len() > keep {
                let cut = old.len() - keep;
                for (_, p) in old.drain(..cut) {
                    std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
                }
                let before = old.first().map_or(self.file_first, |(s, _)| *s);
                self.checkpoint("prune", Some(before))?;
            }
        }
        Ok(())
    }
}

/// The rotated files of a log, by first sequence number.
pub fn rotated_files(path: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io(dir, e))?.flatten() {
        let n = e.file_name();
        let Some(n) = n.to_str() else { continue };
        if let Some(num) = n.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
            if num.len() == 12 && num.bytes().all(|b| b.is_ascii_digit()) {
                out.push((num.parse().unwrap_or(0), e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn append_file(path: &Path) -> Result<File, AuditError> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map_err(|e| io(path, e))
}

/// Where the chain stands: the last line of the active file, or of the newest rotated file.
struct Tail {
    seq: u64,
    hash: String,
    file_no: u64,
    file_first: u64,
    /// Found in the active file (else the next line starts a new file).
    active: bool,
    torn: u64,
}

fn last_line_anywhere(opts: &Options) -> Result<Option<Tail>, AuditError> {
    let mut candidates = vec![(opts.path.clone(), true)];
    if let Some((_, p)) = rotated_files(&opts.path)?.pop() {
        candidates.push((p, false));
    }
    for (path, active) in candidates {
        let torn = cut_torn_line(&path)?;
        let Some((line, _)) = read_last_line(&path)? else {
            continue;
        };
        let bad = |why: &str| AuditError::Chain {
            path: path.display().to_string(),
            why: format!(
                "{why}; run `flowguard audit verify` and move the log away to start a new chain"
            ),
        };
        let link = Link::parse(&line).ok_or_else(|| bad("the last line is not a sealed record"))?;
        let first = first_line(&path)?
            .and_then(|l| Link::parse(&l))
            .ok_or_else(|| bad("the first line is not a file header"))?;
        let file_no = first
            .value
            .get("file")
            .and_then(|f| f.as_u64())
            .ok_or_else(|| bad("the first line is not a file header"))?;
        return Ok(Some(Tail {
            seq: link.seq,
            hash: link.hash,
            file_no,
            file_first: first.seq,
            active,
            torn,
        }));
    }
    Ok(None)
}

/// Cuts an incomplete last line (a crash mid-write); returns how many bytes went.
fn cut_torn_line(path: &Path) -> Result<u64, AuditError> {
    let Ok(mut f) = OpenOptions::new().read(true).write(true).open(path) else {
        return Ok(0);
    };
    let len = f.metadata().map_err(|e| io(path, e))?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1)).map_err(|e| io(path, e))?;
    f.read_exact(&mut last).map_err(|e| io(path, e))?;
    if last[0] == b'\n' {
        return Ok(0);
    }
    let keep = match read_last_line(path)? {
        Some((_, start)) => start,
        None => 0,
    };
    f.set_len(keep).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))?;
    Ok(len - keep)
}

/// The last complete line and where the line after it starts; with no trailing newline, the
/// last complete line is the one before the incomplete one.
fn read_last_line(path: &Path) -> Result<Option<(String, u64)>, AuditError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, e)),
    };
    let len = f.metadata().map_err(|e| io(path, e))?.len();
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start)).map_err(|e| io(path, e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| io(path, e))?;
        // Complete lines end with '\n'.
        let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                return Ok(None);
            }
            window *= 4;
            continue;
        };
        let body = &buf[..end];
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                let line = String::from_utf8_lossy(&body[i + 1..]).into_owned();
                return Ok(Some((line, start + end as u64 + 1)));
            }
            None if start == 0 => {
                let line = String::from_utf8_lossy(body).into_owned();
                return Ok(Some((line, end as u64 + 1)));
            }
            None => window *= 4,
        }
    }
}

fn first_line(path: &Path) -> Result<Option<String>, AuditError> {
    let f = File::open(path).map_err(|e| io(path, e))?;
    let mut r = std::io::BufReader::new(f);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut r, &mut line).map_err(|e| io(path, e))?;
    Ok((!line.is_empty()).then(|| line.trim_end_matches('\n').to_string()))
}
