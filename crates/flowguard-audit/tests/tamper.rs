//! The audit log against every tampering case of ROADMAP H1: each is named by `verify`, and an
//! untouched log passes across rotations and a restart.

use flowguard_audit::log::{rotated_files, sibling, Options};
use flowguard_audit::verify::{verify, Kind, Report};
use flowguard_audit::{Log, VerifyKey};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn options(dir: &Path) -> Options {
    let mut o = Options::new(dir.join("audit.jsonl"));
    o.checkpoint_records = 40;
    o.checkpoint_every = Duration::from_secs(3600);
    o.rotate_bytes = 16 * 1024;
    o
}

fn record(i: u64) -> String {
    format!(
        r#"{{"type":"record","timestamp":"t","method":"tools/call","tool_name":"echo","action":"pass","n":{i}}}"#
    )
}

/// 300 records in batches of 7, with a restart in the middle; returns the options.
fn write_log(dir: &Path) -> Options {
    let o = options(dir);
    let mut log = Log::open(o.clone()).unwrap();
    let mut n = 0;
    while n < 150 {
        let batch: Vec<String> = (n..n + 7).map(record).collect();
        log.append(&batch).unwrap();
        n += 7;
    }
    log.close().unwrap();
    let mut log = Log::open(o.clone()).unwrap();
    while n < 300 {
        let batch: Vec<String> = (n..n + 7).map(record).collect();
        log.append(&batch).unwrap();
        n += 7;
    }
    log.close().unwrap();
    o
}

fn files(o: &Options) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = rotated_files(&o.path)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    v.push(o.path.clone());
    v
}

fn check(o: &Options) -> Report {
    let key = VerifyKey::load(&o.verify_key).unwrap();
    verify(&files(o), Some(&o.checkpoints()), &key)
}

fn kinds(r: &Report) -> Vec<Kind> {
    r.findings.iter().map(|f| f.kind).collect()
}

fn edit_lines(path: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn untouched_log_verifies_across_rotation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    assert!(
        rotated_files(&o.path).unwrap().len() >= 2,
        "the log rotated"
    );
    let r = check(&o);
    assert!(r.ok(), "{:#?}", r.findings);
    assert_eq!(
        r.last_seq, r.covered_to,
        "the shutdown checkpoint covers everything"
    );
    // 301 records (43 batches of 7) and one header per file.
    assert_eq!(r.records, 301 + r.files as u64);
}

#[test]
fn an_edited_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    edit_lines(&o.path, |l| l[3] = l[3].replace("\"pass\"", "\"block\""));
    let r = check(&o);
    assert_eq!(r.findings[0].kind, Kind::Edited, "{:#?}", r.findings);
}

#[test]
fn a_deleted_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    edit_lines(&o.path, |l| {
        l.remove(5);
    });
    let r = check(&o);
    assert_eq!(r.findings[0].kind, Kind::Deleted, "{:#?}", r.findings);
}

#[test]
fn an_inserted_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    edit_lines(&o.path, |l| {
        let fake = l[4].replace("\"n\":", "\"n\":9");
        l.insert(5, fake);
    });
    let r = check(&o);
    assert_eq!(r.findings[0].kind, Kind::Inserted, "{:#?}", r.findings);
}

#[test]
fn a_reordered_pair_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    edit_lines(&o.path, |l| l.swap(6, 7));
    let r = check(&o);
    assert_eq!(kinds(&r), vec![Kind::Reordered], "{:#?}", r.findings);
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    let rotated = rotated_files(&o.path).unwrap();
    std::fs::remove_file(&rotated[1].1).unwrap();
    let r = check(&o);
    assert_eq!(r.findings[0].kind, Kind::MissingFile, "{:#?}", r.findings);
    // The first file gone, with no pruning record.
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    std::fs::remove_file(&rotated_files(&o.path).unwrap()[0].1).unwrap();
    assert_eq!(check(&o).findings[0].kind, Kind::MissingFile);
}

#[test]
fn a_cut_tail_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    edit_lines(&o.path, |l| l.truncate(l.len() - 3));
    let r = check(&o);
    assert_eq!(kinds(&r), vec![Kind::TailCut], "{:#?}", r.findings);
}

#[test]
fn a_record_resealed_with_a_later_key_is_named() {
    // Someone who took the current key rewrites an old record and tags it with that key.
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    let key = VerifyKey::load(&o.verify_key).unwrap();
    let k0 = key.key0_bytes().unwrap();
    let first = rotated_files(&o.path).unwrap()[0].1.clone();
    edit_lines(&first, |l| {
        let link = flowguard_audit::seal::Link::parse(&l[2]).unwrap();
        let stolen = flowguard_audit::keys::key_at(&k0, link.epoch + 2);
        let mut v = link.value.clone();
        let m = v.as_object_mut().unwrap();
        for k in ["seq", "epoch", "prev", "tag"] {
            m.remove(k);
        }
        m.insert("action".into(), "block".into());
        let fields = serde_json::to_string(&v).unwrap();
        l[2] = flowguard_audit::seal::seal(&fields, link.seq, link.epoch, &link.prev, &stolen);
    });
    let r = check(&o);
    assert_eq!(r.findings[0].kind, Kind::LaterKey, "{:#?}", r.findings);
}

#[test]
fn pruning_is_told_apart_from_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.keep_files = Some(1);
    let mut log = Log::open(o.clone()).unwrap();
    for n in 0..60 {
        let batch: Vec<String> = (n * 7..n * 7 + 7).map(record).collect();
        log.append(&batch).unwrap();
    }
    log.close().unwrap();
    assert_eq!(rotated_files(&o.path).unwrap().len(), 1);
    let r = check(&o);
    assert!(r.ok(), "{:#?}", r.findings);
    assert!(
        r.notes.iter().any(|n| n.contains("pruned")),
        "{:?}",
        r.notes
    );
}

#[test]
fn an_edited_checkpoint_and_a_missing_seal_state_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    let cp = o.checkpoints();
    edit_lines(&cp, |l| {
        l[1] = l[1].replace("\"reason\":\"", "\"reason\":\"x")
    });
    assert_eq!(check(&o).findings[0].kind, Kind::BadCheckpoint);
    std::fs::remove_file(&o.seal).unwrap();
    let e = Log::open(o.clone())
        .err()
        .expect("no seal state, no chain")
        .to_string();
    assert!(e.contains("seal state"), "{e}");
}

#[test]
fn a_torn_last_line_is_cut_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let o = write_log(dir.path());
    let mut text = std::fs::read(&o.path).unwrap();
    text.extend_from_slice(br#"{"type":"record","n":"half"#);
    std::fs::write(&o.path, text).unwrap();
    let mut log = Log::open(o.clone()).unwrap();
    assert!(
        log.notes.iter().any(|n| n.contains("incomplete")),
        "{:?}",
        log.notes
    );
    log.append(&[record(1000)]).unwrap();
    log.close().unwrap();
    let r = check(&o);
    assert!(r.ok(), "{:#?}", r.findings);
    assert!(sibling(&o.path, "seal").exists());
}
