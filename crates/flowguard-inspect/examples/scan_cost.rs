//! `cargo run --release -p flowguard-inspect --example scan_cost`: what the detectors cost on
//! one large tool result (plain prose with a few findings), at 256 KiB, 1 MiB and 4 MiB, to show
//! the cost grows linearly with the size (docs/benchmarks.md, "Inspection: a large result").

use flowguard_inspect::{inject::Injection, poison, schema, secrets::Secrets};
use std::time::Instant;

fn text(bytes: usize) -> String {
    let para = "The quarterly report lists revenue by region, with notes on churn and the new \
                pricing tiers. Contact the finance team for the spreadsheet; figures are \
                rounded to the nearest thousand. Version 2.4.1 shipped on 2026-11-30 with \
                build 8f3a9c1d2e. ";
    let mut s = String::with_capacity(bytes + para.len());
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(para);
        i += 1;
        if i % 500 == 0 {
            s.push_str("Reach me at jane.doe@example.com or +1 415-555-0132. ");
        }
    }
    s.truncate(bytes);
    s
}

fn time<T>(f: impl Fn() -> T) -> (f64, T) {
    let _ = f();
    let n = 5;
    let start = Instant::now();
    let mut out = f();
    for _ in 1..n {
        out = f();
    }
    (start.elapsed().as_secs_f64() * 1000.0 / n as f64, out)
}

fn main() {
    let secrets = Secrets::new(None)
        .expect("the rules compile")
        .with_max_bytes(8 << 20);
    let mut inj = Injection::new();
    inj.max_bytes = 8 << 20;
    let scan = poison::PoisonScan::new();
    println!("| size | secrets and PII | injection | poisoning scan | JSON parse + schema |");
    println!("|---:|---:|---:|---:|---:|");
    for kib in [256usize, 1024, 4096] {
        let t = text(kib * 1024);
        let (s_ms, found) = time(|| secrets.scan(&t).len());
        let (i_ms, _) = time(|| inj.text(&t).score);
        let item = serde_json::json!({"name": "t", "description": t});
        let (p_ms, _) = time(|| scan.item(poison::Item::Tool, &item, &[]).findings.len());
        let doc = serde_json::json!({"text": t}).to_string();
        let sch = serde_json::json!({"type": "object", "properties": {"text": {"type": "string", "maxLength": 100_000_000}}});
        let (j_ms, _) = time(|| {
            let v: serde_json::Value = serde_json::from_str(&doc).expect("JSON");
            schema::validate(&sch, &v, false).len()
        });
        println!("| {kib} KiB | {s_ms:.1} ms ({found} found) | {i_ms:.1} ms | {p_ms:.1} ms | {j_ms:.1} ms |");
    }
}
