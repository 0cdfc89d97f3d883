//! How often the detectors are right (`flowguard inspect corpus`), on the labelled corpus
//! (`corpus/*.jsonl`, built by `scripts/build-corpus.py`; docs/inspection.md).
//!
//! Each case has a group (`poison`, `inject`, `secret`), a channel (`description`,
//! `argument`, `result`), a family and a label. The group's detector runs on its text; a
//! malicious case it flags is a true positive, a benign one a false positive. Benign twins
//! (`twin_of`) sit in their malicious case's family, so a family's precision counts them.

use crate::{inject::Injection, poison, secrets::Secrets};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default, Clone, Copy)]
struct Count {
    tp: u32,
    fp: u32,
    tn: u32,
    fn_: u32,
}

impl Count {
    fn add(&mut self, malicious: bool, flagged: bool) {
        match (malicious, flagged) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn recall(&self) -> Option<f64> {
        let n = self.tp + self.fn_;
        (n > 0).then(|| f64::from(self.tp) / f64::from(n))
    }
    fn precision(&self) -> Option<f64> {
        let n = self.tp + self.fp;
        (n > 0).then(|| f64::from(self.tp) / f64::from(n))
    }
    fn fp_rate(&self) -> Option<f64> {
        let n = self.fp + self.tn;
        (n > 0).then(|| f64::from(self.fp) / f64::from(n))
    }
}

fn fmt(x: Option<f64>) -> String {
    x.map_or("—".into(), |x| format!("{x:.3}"))
}

/// Evaluates the corpus in `dir`, printing the tables (and, with `misses`, every case a
/// detector got wrong); `Ok(false)` when a target is missed.
pub fn evaluate(dir: &Path, misses: bool) -> Result<bool, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "{}: {e} (give the corpus directory, e.g. `corpus`)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{} holds no .jsonl files", dir.display()));
    }
    let scan = poison::PoisonScan::new();
    let inj = Injection::new();
    let sec = Secrets::new(None)?;
    let mut by_family: BTreeMap<(String, String), Count> = BTreeMap::new();
    let mut by_channel: BTreeMap<(String, String), Count> = BTreeMap::new();
    let mut by_group: BTreeMap<String, Count> = BTreeMap::new();
    let mut cases = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let c: Value = serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: not JSON: {e}", f.display(), n + 1))?;
            let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            let (group, channel, family, label, body) = (
                field("group"),
                field("channel"),
                field("family"),
                field("label"),
                field("text"),
            );
            let malicious = match label {
                "malicious" => true,
                "benign" => false,
                other => {
                    return Err(format!(
                        "{}:{}: label {other:?} is not malicious or benign",
                        f.display(),
                        n + 1
                    ))
                }
            };
            let flagged = match group {
                "poison" => {
                    let item = serde_json::json!({"name": "tool", "description": body});
                    scan.item(poison::Item::Tool, &item, &[]).flagged()
                }
                "inject" => inj.text(body).flagged,
                "secret" => !sec.scan(body).is_empty(),
                other => {
                    return Err(format!(
                        "{}:{}: group {other:?} is not poison, inject or secret",
                        f.display(),
                        n + 1
                    ))
                }
            };
            cases += 1;
            if misses && malicious != flagged {
                println!(
                    "{} {}: {} {}",
                    if malicious {
                        "missed"
                    } else {
                        "false positive"
                    },
                    field("id"),
                    family,
                    body.chars()
                        .take(100)
                        .collect::<String>()
                        .replace('\n', " ")
                );
            }
            by_family
                .entry((group.into(), family.into()))
                .or_default()
                .add(malicious, flagged);
            by_channel
                .entry((group.into(), channel.into()))
                .or_default()
                .add(malicious, flagged);
            by_group
                .entry(group.into())
                .or_default()
                .add(malicious, flagged);
        }
    }
    println!(
        "{cases} cases from {} file(s) in {}",
        files.len(),
        dir.display()
    );
    println!();
    println!("| group | family | malicious | benign | recall | precision | false positives |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut ok = true;
    let mut fails = Vec::new();
    for ((g, fam), c) in &by_family {
        println!(
            "| {g} | {fam} | {} | {} | {} | {} | {} |",
            c.tp + c.fn_,
            c.fp + c.tn,
            fmt(c.recall()),
            fmt(c.precision()),
            c.fp
        );
        if matches!(g.as_str(), "poison" | "inject") && c.recall().is_some_and(|r| r < 0.9) {
            fails.push(format!("{g}/{fam}: recall {} < 0.9", fmt(c.recall())));
        }
        if fam == "benign-reference" && c.fp_rate().is_some_and(|r| r > 0.02) {
            fails.push(format!(
                "{g}/{fam}: false-positive rate {} > 0.02",
                fmt(c.fp_rate())
            ));
        }
        if fam == "hard-negative" && c.fp > 0 {
            fails.push(format!("{g}/{fam}: {} false positive(s)", c.fp));
        }
    }
    println!();
    println!("| group | channel | recall | precision | false-positive rate |");
    println!("|---|---|---:|---:|---:|");
    for ((g, ch), c) in &by_channel {
        println!(
            "| {g} | {ch} | {} | {} | {} |",
            fmt(c.recall()),
            fmt(c.precision()),
            fmt(c.fp_rate())
        );
    }
    if let Some(c) = by_group.get("secret") {
        if c.recall().is_some_and(|r| r < 0.95) {
            fails.push(format!("secret: recall {} < 0.95", fmt(c.recall())));
        }
    }
    println!();
    if fails.is_empty() {
        println!("every target met (docs/inspection.md)");
    } else {
        ok = false;
        for f in &fails {
            println!("target missed: {f}");
        }
    }
    Ok(ok)
}
