//! `flowguard audit verify`: reads the log files and the checkpoints and names what is wrong.

use crate::keys::{evolve, VerifyKey};
use crate::seal::{checkpoint_ok, Link, TagKey, GENESIS};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A line that is not a sealed record at all.
    Unreadable,
    /// A record whose content changed after it was sealed.
    Edited,
    /// Records missing inside a file.
    Deleted,
    /// A line the gateway did not write (or wrote once and was copied).
    Inserted,
    /// Two records in the wrong order.
    Reordered,
    /// A whole file missing: at the start without a signed pruning record, or between files.
    MissingFile,
    /// Records a signed checkpoint covers are gone from the end.
    TailCut,
    /// A tag made with the key of a later epoch than the record's own (re-sealed).
    LaterKey,
    /// A checkpoint whose signature fails, or one missing from the checkpoint chain.
    BadCheckpoint,
    /// A record that is not the one a checkpoint signed.
    CheckpointMismatch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unreadable => "unreadable",
            Kind::Edited => "edited",
            Kind::Deleted => "deleted",
            Kind::Inserted => "inserted",
            Kind::Reordered => "reordered",
            Kind::MissingFile => "missing-file",
            Kind::TailCut => "tail-cut",
            Kind::LaterKey => "later-key",
            Kind::BadCheckpoint => "bad-checkpoint",
            Kind::CheckpointMismatch => "checkpoint-mismatch",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: Kind,
    pub seq: Option<u64>,
    /// `file:line`.
    pub place: String,
    pub detail: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// What is not an error: pruning a signed checkpoint records, records not yet covered.
    pub notes: Vec<String>,
    pub records: u64,
    pub files: usize,
    pub checkpoints: usize,
    pub first_seq: u64,
    pub last_seq: u64,
    pub covered_to: u64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

struct Line {
    place: String,
    text: String,
    file: usize,
}

struct Checkpoint {
    seq: u64,
    hash: String,
    next_epoch: u64,
    pruned_before: Option<u64>,
}

/// Keys by epoch, evolved from the first as far as needed.
struct Keys {
    keys: Vec<[u8; 32]>,
    tag_keys: Vec<TagKey>,
}

impl Keys {
    fn at(&mut self, epoch: u64) -> &TagKey {
        while self.keys.len() as u64 <= epoch {
            let next = evolve(self.keys.last().expect("key 0"));
            self.keys.push(next);
        }
        while self.tag_keys.len() < self.keys.len() {
            self.tag_keys
                .push(TagKey::new(&self.keys[self.tag_keys.len()]));
        }
        &self.tag_keys[epoch as usize]
    }
}

/// Verifies `logs` (in any order) against `checkpoints` with the verification key.
pub fn verify(logs: &[PathBuf], checkpoints: Option<&Path>, key: &VerifyKey) -> Report {
    let mut r = Report::default();
    let (Ok(key0), Ok(pk)) = (key.key0_bytes(), key.public_key_bytes()) else {
        r.findings.push(Finding {
            kind: Kind::Unreadable,
            seq: None,
            place: "verification key".into(),
            detail: "the verification key is malformed".into(),
        });
        return r;
    };
    let mut keys = Keys {
        keys: vec![key0],
        tag_keys: Vec::new(),
    };
    let cps = read_checkpoints(checkpoints, &pk, &mut r);
    let max_epoch = cps.iter().map(|c| c.next_epoch).max().unwrap_or(0);
    let lines = read_logs(logs, &mut r);
    let Some(first) = lines.first() else {
        r.notes.push("no records".into());
        return r;
    };
    let first_link = Link::parse(&first.text);
    r.first_seq = first_link.as_ref().map_or(0, |l| l.seq);
    let pruned = cps.iter().filter_map(|c| c.pruned_before).max();
    let mut prev_hash: Option<String> = None;
    if r.first_seq == 1 {
        prev_hash = Some(GENESIS.to_string());
    } else if r.first_seq > 1 {
        match pruned {
            Some(p) if p >= r.first_seq => r.notes.push(format!(
                "records before seq {} were pruned (a signed checkpoint records it)",
                r.first_seq
            )),
            _ => r.findings.push(Finding {
                kind: Kind::MissingFile,
                seq: Some(r.first_seq),
                place: first.place.clone(),
                detail: format!(
                    "the log starts at seq {}: the files before it are missing, and no signed checkpoint records their pruning",
                    r.first_seq
                ),
            }),
        }
    }
    let links: Vec<Option<Link>> = lines.iter().map(|l| Link::parse(&l.text)).collect();
    let mut by_seq: HashMap<u64, String> = HashMap::new();
    let mut expected = r.first_seq.max(1);
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let Some(l) = &links[i] else {
            r.findings.push(Finding {
                kind: Kind::Unreadable,
                seq: Some(expected),
                place: line.place.clone(),
                detail: "not a sealed record (changed or damaged)".into(),
            });
            prev_hash = None;
            expected += 1;
            i += 1;
            continue;
        };
        let next = links.get(i + 1).and_then(|n| n.as_ref());
        // Two records swapped.
        if l.seq == expected + 1 && next.is_some_and(|n| n.seq == expected) {
            r.findings.push(Finding {
                kind: Kind::Reordered,
                seq: Some(expected),
                place: line.place.clone(),
                detail: format!("seq {} comes before seq {expected}", expected + 1),
            });
            prev_hash = Some(l.hash.clone());
            expected += 2;
            i += 2;
            continue;
        }
        if l.seq < expected {
            r.findings.push(Finding {
                kind: Kind::Inserted,
                seq: Some(l.seq),
                place: line.place.clone(),
                detail: format!(
                    "seq {} appears again after seq {} (a line added or copied)",
                    l.seq,
                    expected - 1
                ),
            });
            i += 1;
            continue;
        }
        if l.seq > expected {
            let at_file_start = l.kind() == "file" && i > 0 && lines[i - 1].file != line.file;
            let (kind, what) = if at_file_start {
                (Kind::MissingFile, "a whole file is missing")
            } else {
                (Kind::Deleted, "deleted")
            };
            r.findings.push(Finding {
                kind,
                seq: Some(expected),
                place: line.place.clone(),
                detail: format!("records seq {expected}..{} are missing: {what}", l.seq - 1),
            });
            prev_hash = None;
        }
        if !l.tag_ok(keys.at(l.epoch)) {
            let later = (l.epoch + 1..=max_epoch.max(l.epoch + 1)).find(|e| l.tag_ok(keys.at(*e)));
            let inserted = next.is_some_and(|n| {
                n.seq == l.seq && prev_hash.as_deref().is_some_and(|p| n.prev == p)
            });
            if inserted {
                r.findings.push(Finding {
                    kind: Kind::Inserted,
                    seq: Some(l.seq),
                    place: line.place.clone(),
                    detail: format!("a line the gateway did not write, before seq {}", l.seq),
                });
                i += 1;
                continue;
            }
            let (kind, detail) = match later {
                Some(e) => (
                    Kind::LaterKey,
                    format!(
                        "seq {} of epoch {} is tagged with the key of epoch {e}: re-sealed after its key was erased",
                        l.seq, l.epoch
                    ),
                ),
                None => (Kind::Edited, format!("seq {} was changed after it was written", l.seq)),
            };
            r.findings.push(Finding {
                kind,
                seq: Some(l.seq),
                place: line.place.clone(),
                detail,
            });
            prev_hash = None;
        } else if let Some(p) = &prev_hash {
            if *p != l.prev {
                r.findings.push(Finding {
                    kind: Kind::Edited,
                    seq: Some(l.seq.saturating_sub(1)),
                    place: line.place.clone(),
                    detail: format!(
                        "the line before seq {} is not the one seq {} was chained to",
                        l.seq, l.seq
                    ),
                });
            }
            prev_hash = Some(l.hash.clone());
        } else {
            prev_hash = Some(l.hash.clone());
        }
        by_seq.insert(l.seq, l.hash.clone());
        r.last_seq = r.last_seq.max(l.seq);
        r.records += 1;
        expected = l.seq + 1;
        i += 1;
    }
    for c in &cps {
        if c.seq == 0 {
            continue;
        }
        if c.seq > r.last_seq {
            r.findings.push(Finding {
                kind: Kind::TailCut,
                seq: Some(r.last_seq + 1),
                place: "checkpoints".into(),
                detail: format!(
                    "a signed checkpoint covers up to seq {} but the log ends at seq {}: records {}..{} were cut off",
                    c.seq,
                    r.last_seq,
                    r.last_seq + 1,
                    c.seq
                ),
            });
            break;
        }
        if c.seq >= r.first_seq && by_seq.get(&c.seq).is_some_and(|h| *h != c.hash) {
            r.findings.push(Finding {
                kind: Kind::CheckpointMismatch,
                seq: Some(c.seq),
                place: "checkpoints".into(),
                detail: format!("seq {} is not the record the checkpoint signed", c.seq),
            });
        }
    }
    r.covered_to = cps.iter().map(|c| c.seq).max().unwrap_or(0);
    if r.last_seq > r.covered_to && r.findings.iter().all(|f| f.kind != Kind::TailCut) {
        r.notes.push(format!(
            "records {}..{} come after the last checkpoint: not yet signed (the gateway is running, or stopped without its shutdown checkpoint); a cut there would not show",
            r.covered_to + 1,
            r.last_seq
        ));
    }
    r.findings.sort_by_key(|f| f.seq.unwrap_or(u64::MAX));
    r
}

fn read_checkpoints(path: Option<&Path>, pk: &[u8], r: &mut Report) -> Vec<Checkpoint> {
    let mut out = Vec::new();
    let Some(path) = path else {
        r.notes
            .push("no checkpoints file: only the chain is checked".into());
        return out;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            r.findings.push(Finding {
                kind: Kind::BadCheckpoint,
                seq: None,
                place: path.display().to_string(),
                detail: format!("cannot read the checkpoints: {e}"),
            });
            return out;
        }
    };
    let mut last_sig = String::new();
    for (n, line) in text.lines().enumerate() {
        let place = format!("{}:{}", path.display(), n + 1);
        let Some(v) = checkpoint_ok(line, pk) else {
            r.findings.push(Finding {
                kind: Kind::BadCheckpoint,
                seq: None,
                place,
                detail: "the checkpoint's signature does not verify (changed or forged)".into(),
            });
            continue;
        };
        let get = |k: &str| v.get(k).and_then(|x| x.as_u64());
        let prev_sig = v.get("prev_sig").and_then(|s| s.as_str()).unwrap_or("");
        if prev_sig != last_sig {
            r.findings.push(Finding {
                kind: Kind::BadCheckpoint,
                seq: get("seq"),
                place: place.clone(),
                detail: "the checkpoint before this one is missing or out of order".into(),
            });
        }
        last_sig = v
            .get("sig")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        out.push(Checkpoint {
            seq: get("seq").unwrap_or(0),
            hash: v
                .get("hash")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string(),
            next_epoch: get("next_epoch").unwrap_or(0),
            pruned_before: get("pruned_before"),
        });
        r.checkpoints += 1;
    }
    out
}

fn read_logs(paths: &[PathBuf], r: &mut Report) -> Vec<Line> {
    let mut files: Vec<(u64, PathBuf, String)> = Vec::new();
    for p in paths {
        match std::fs::read_to_string(p) {
            Ok(text) => {
                let first = text
                    .lines()
                    .next()
                    .and_then(Link::parse)
                    .map_or(u64::MAX, |l| l.seq);
                files.push((first, p.clone(), text));
            }
            Err(e) => r.findings.push(Finding {
                kind: Kind::MissingFile,
                seq: None,
                place: p.display().to_string(),
                detail: format!("cannot read it: {e}"),
            }),
        }
    }
    files.sort_by_key(|f| f.0);
    r.files = files.len();
    let mut out = Vec::new();
    for (fi, (_, p, text)) in files.iter().enumerate() {
        for (n, l) in text.lines().enumerate() {
            out.push(Line {
                place: format!("{}:{}", p.display(), n + 1),
                text: l.to_string(),
                file: fi,
            });
        }
    }
    out
}
