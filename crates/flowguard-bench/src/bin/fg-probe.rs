//! `fg-probe`: hostile and heavy clients against a running FlowGuard, with the gateway's memory
//! (VmRSS) sampled throughout, and an ordinary client served alongside. Prints figures; it
//! judges only what a user would call broken (an ordinary call failing, a stalled connection
//! left open, a crash). `bench/probe.sh` starts a gateway in front of the `fake` server and
//! runs it; docs/benchmarks.md keeps the figures.
//!
//! Phases (each one's flags name its size):
//! 1. `sessionless`: `--conns` connections send `tools/call` without a session for
//!    `--seconds` (every call makes a transparent session; the cap and their short life
//!    must hold memory).
//! 2. `stalled`: `--stalled` connections send their headers and part of a large body, then
//!    stall; each must get 408 and be closed by `body_timeout`.
//! 3. `big`: `--big` concurrent calls of the fake's `big` tool with `--big-mb` MB replies;
//!    memory at the peak and `--settle` seconds later.

#[path = "../http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../stats.rs"]
#[allow(dead_code)]
mod stats;

use clap::Parser;
use http::Target;
use serde_json::json;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser, Debug)]
struct Opts {
    /// The routed endpoint of the fake server, e.g. http://127.0.0.1:3000/mcp/fake.
    #[arg(long)]
    url: String,
    /// The gateway's pid (its VmRSS is sampled).
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 16)]
    conns: usize,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 200)]
    stalled: usize,
    /// The gateway's body_timeout, in seconds (how long stalled connections may stay open).
    #[arg(long, default_value_t = 30)]
    body_timeout: u64,
    #[arg(long, default_value_t = 20)]
    big: usize,
    #[arg(long, default_value_t = 15)]
    big_mb: u64,
    #[arg(long, default_value_t = 12)]
    settle: u64,
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib * 1024.0 / 1e6
}

/// Samples VmRSS every 100 ms while `busy` is set; returns the peak.
fn sample_peak(pid: u32, busy: Arc<AtomicBool>) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let mut peak = rss_mb(pid);
        while busy.load(Ordering::Relaxed) {
            peak = peak.max(rss_mb(pid));
            std::thread::sleep(Duration::from_millis(100));
        }
        peak.max(rss_mb(pid))
    })
}

/// Ordinary calls, one at a time on one session, while `busy` is set: (ok, failed, worst ms).
async fn ordinary_client(target: Target, busy: Arc<AtomicBool>) -> (u64, u64, f64) {
    let tref = &target;
    let run = http::with_connection(tref, |mut s| async move {
        let target = tref;
        let session = match http::initialize(&mut s, target, 1).await {
            Ok(sid) => sid,
            Err(e) => {
                eprintln!("ordinary client: initialize failed: {e:?}");
                return (0, 1, 0.0);
            }
        };
        let (mut ok, mut failed, mut worst) = (0u64, 0u64, 0f64);
        let mut id = 2;
        while busy.load(Ordering::Relaxed) {
            let msg = format!("ordinary {id}");
            let body = http::request_body(
                id,
                "tools/call",
                &json!({"name": "echo", "arguments": {"message": msg}}),
            );
            let t = Instant::now();
            match http::post(&mut s, target, session.as_ref(), true, body).await {
                Ok(r) if http::check_call(&r, id, &msg).is_ok() => ok += 1,
                _ => failed += 1,
            }
            worst = worst.max(t.elapsed().as_secs_f64() * 1000.0);
            id += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (ok, failed, worst)
    });
    run.await.unwrap_or((0, 1, 0.0))
}

async fn sessionless(o: &Opts, target: &Target) -> bool {
    let before = rss_mb(o.pid);
    let busy = Arc::new(AtomicBool::new(true));
    let peak = sample_peak(o.pid, busy.clone());
    let (ok, refused, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let end = Instant::now() + Duration::from_secs(o.seconds);
    let ordinary = tokio::spawn(ordinary_client(target.clone(), busy.clone()));
    let mut tasks = Vec::new();
    for c in 0..o.conns {
        let (target, ok, refused, other) =
            (target.clone(), ok.clone(), refused.clone(), other.clone());
        tasks.push(tokio::spawn(async move {
            let tref = &target;
            let _ = http::with_connection(tref, |mut s| async move {
                let target = tref;
                let mut id = (c as u64) << 40;
                while Instant::now() < end {
                    id += 1;
                    let body = http::request_body(
                        id,
                        "tools/call",
                        &json!({"name": "echo", "arguments": {"message": "x"}}),
                    );
                    match http::post(&mut s, target, None, false, body).await {
                        Ok(r) if r.status.is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(r) if r.status.as_u16() == 503 => {
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
            .await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    busy.store(false, Ordering::Relaxed);
    let (o_ok, o_failed, o_worst) = ordinary.await.unwrap_or((0, 1, 0.0));
    let peak = peak.join().unwrap_or(0.0);
    let sessions = health_sessions(target).await;
    println!(
        "sessionless: {} conns x {} s: {} calls ok, {} refused (503), {} other errors; sessions after: {sessions}; VmRSS {before:.1} MB before, {peak:.1} MB peak, {:.1} MB after",
        o.conns, o.seconds, ok.load(Ordering::Relaxed), refused.load(Ordering::Relaxed), other.load(Ordering::Relaxed), rss_mb(o.pid)
    );
    println!(
        "  ordinary client meanwhile: {o_ok} calls ok, {o_failed} failed, slowest {o_worst:.1} ms"
    );
    o_failed == 0 && other.load(Ordering::Relaxed) == 0
}

async fn health_sessions(target: &Target) -> String {
    let mut t = target.clone();
    t.path = "/health".into();
    let host = t.host.clone();
    let got = http::with_connection(&t, |mut s| async move {
        use http_body_util::BodyExt;
        let req = hyper::Request::get("/health")
            .header(hyper::header::HOST, host)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .ok()?;
        s.ready().await.ok()?;
        let resp = s.send_request(req).await.ok()?;
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        Some(v["sessions"].to_string())
    })
    .await;
    got.ok().flatten().unwrap_or_else(|| "?".into())
}

async fn stalled(o: &Opts, target: &Target) -> bool {
    let before = rss_mb(o.pid);
    let busy = Arc::new(AtomicBool::new(true));
    let peak = sample_peak(o.pid, busy.clone());
    let ordinary = tokio::spawn(ordinary_client(target.clone(), busy.clone()));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.stalled {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(target.addr).await.ok()?;
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 2000000\r\n\r\n",
                target.path,
                target.host.to_str().unwrap_or("127.0.0.1")
            );
            s.write_all(head.as_bytes()).await.ok()?;
            // A large part of the body, then nothing.
            let part = vec![b' '; 1_500_000];
            s.write_all(&part).await.ok()?;
            let mut answer = Vec::new();
            let limit = Duration::from_secs(300);
            match tokio::time::timeout(limit, s.read_to_end(&mut answer)).await.ok()? {
                Ok(_) => {}
                // Closed with part of the body unread: the kernel may reset the connection
                // before the answer is read. Closed all the same.
                Err(_) if answer.is_empty() => return Some(("reset".to_string(), t0.elapsed())),
                Err(_) => {}
            }
            let status = answer.get(9..12).map(|s| String::from_utf8_lossy(s).into_owned());
            Some((status.unwrap_or_default(), t0.elapsed()))
        }));
    }
    let (mut closed_408, mut refused_503, mut other, mut slowest) = (0, 0, 0, Duration::ZERO);
    for t in tasks {
        match t.await.ok().flatten() {
            Some((status, at)) if status == "408" => {
                closed_408 += 1;
                slowest = slowest.max(at);
            }
            Some((status, at)) if status == "503" || status == "reset" => {
                refused_503 += 1;
                slowest = slowest.max(at);
            }
            _ => other += 1,
        }
    }
    busy.store(false, Ordering::Relaxed);
    let (o_ok, o_failed, o_worst) = ordinary.await.unwrap_or((0, 1, 0.0));
    let peak = peak.join().unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(o.settle)).await;
    println!(
        "stalled: {} connections with 1.5 MB of a 2 MB body: {closed_408} got 408 (body_timeout), {refused_503} got 503 (body budget; or a reset, closed before the answer was read), all closed (the last after {:.1} s), {other} other; VmRSS {before:.1} MB before, {peak:.1} MB peak, {:.1} MB {} s after",
        o.stalled, slowest.as_secs_f64(), rss_mb(o.pid), o.settle
    );
    println!(
        "  ordinary client meanwhile: {o_ok} calls ok, {o_failed} failed, slowest {o_worst:.1} ms"
    );
    other == 0 && o_failed == 0 && slowest < Duration::from_secs(o.body_timeout + 10)
}

async fn big(o: &Opts, target: &Target) -> bool {
    let before = rss_mb(o.pid);
    let busy = Arc::new(AtomicBool::new(true));
    let peak = sample_peak(o.pid, busy.clone());
    let bytes = o.big_mb * 1_000_000;
    let mut tasks = Vec::new();
    for i in 0..o.big {
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let tref = &target;
            http::with_connection(tref, |mut s| async move {
                let target = tref;
                let sid = http::initialize(&mut s, target, 1).await.ok()?;
                let body = http::request_body(
                    2 + i as u64,
                    "tools/call",
                    &json!({"name": "big", "arguments": {"bytes": bytes}}),
                );
                let r = http::post(&mut s, target, sid.as_ref(), true, body)
                    .await
                    .ok()?;
                Some(r.body.len() as u64 >= bytes)
            })
            .await
            .ok()
            .flatten()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.ok().flatten() == Some(true) {
            ok += 1;
        }
    }
    busy.store(false, Ordering::Relaxed);
    let peak = peak.join().unwrap_or(0.0);
    let right_after = rss_mb(o.pid);
    tokio::time::sleep(Duration::from_secs(o.settle)).await;
    println!(
        "big: {} concurrent {} MB replies: {ok} complete; VmRSS {before:.1} MB before, {peak:.1} MB peak, {right_after:.1} MB right after, {:.1} MB {} s after",
        o.big, o.big_mb, rss_mb(o.pid), o.settle
    );
    ok == o.big
}

fn main() -> ExitCode {
    let o = Opts::parse();
    let target = match Target::parse(&o.url, Duration::from_secs(120)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fg-probe: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let ok = rt.block_on(async {
        let a = sessionless(&o, &target).await;
        let b = stalled(&o, &target).await;
        let c = big(&o, &target).await;
        a && b && c
    });
    if std::fs::metadata(format!("/proc/{}", o.pid)).is_err() {
        println!("the gateway is gone: it crashed");
        return ExitCode::FAILURE;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        println!("fg-probe: something a user would call broken happened (see above)");
        ExitCode::FAILURE
    }
}
