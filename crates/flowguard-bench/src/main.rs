//! fg-load: the load generator of FlowGuard's benchmark suite (`bench/run.sh`).
//!
//! Every reply is read to its end (JSON or SSE) and checked; any error makes the exit code 1.
//!
//!   fg-load call --url URL --conns N --duration 8s [--warmup 2s] [--session shared|per-conn|none]
//!   fg-load list --url URL --requests N [--method tools/list] [--expect-items N]
//!   fg-load sessions --url URL --count N [--conns 32] [--hold]

mod http;
mod procs;
mod stats;

use clap::{Args, Parser, Subcommand, ValueEnum};
use http::{Sender, Target};
use hyper::header::HeaderValue;
use serde_json::{json, Map, Value};
use stats::{ms, percentile, ErrorKind, Failure, Tally};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Load generator for MCP Streamable HTTP servers; checks every reply.
#[derive(Debug, Parser)]
#[command(name = "fg-load", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// The MCP endpoint, e.g. http://127.0.0.1:3000/mcp/echo.
    #[arg(long)]
    url: String,
    /// How requests are tied to sessions.
    #[arg(long, value_enum, default_value = "shared")]
    session: SessionMode,
    /// Longest time one request may take (counted as a transport error).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    timeout: Duration,
    /// Worker threads of the load generator [default: the number of CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// An `Authorization` header for every request, e.g. `Bearer <token>`.
    #[arg(long, env = "FG_LOAD_AUTHORIZATION", hide_env_values = true)]
    authorization: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SessionMode {
    /// One session (initialize + initialized once) used by every connection.
    Shared,
    /// A session per connection.
    PerConn,
    /// No initialize, no Mcp-Session-Id (stateless servers).
    None,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// tools/call throughput and latency over N keep-alive connections.
    Call {
        #[command(flatten)]
        common: Common,
        /// Concurrent connections (one task each).
        #[arg(long, default_value_t = 32)]
        conns: usize,
        /// Measured window.
        #[arg(long, value_parser = parse_duration, default_value = "8s")]
        duration: Duration,
        /// Load before the measured window (replies checked, not counted).
        #[arg(long, value_parser = parse_duration, default_value = "2s")]
        warmup: Duration,
        /// Tool to call.
        #[arg(long, default_value = "echo")]
        tool: String,
        /// The `message` argument, which the reply must echo back.
        #[arg(long, default_value = "hello world")]
        message: String,
        /// Also report the CPU time of this process and its descendants (repeatable).
        #[arg(long = "pid")]
        pids: Vec<u32>,
    },
    /// Sequential list requests on one connection: the first (cold) apart from the rest (warm).
    List {
        #[command(flatten)]
        common: Common,
        /// How many requests, the first included.
        #[arg(long, default_value_t = 1001)]
        requests: usize,
        /// The list method; the items are read from the result key named after it.
        #[arg(long, default_value = "tools/list")]
        method: String,
        /// Fail unless every reply has exactly this many items.
        #[arg(long)]
        expect_items: Option<usize>,
    },
    /// Opens N sessions (initialize + initialized each), each with its own Mcp-Session-Id.
    Sessions {
        #[command(flatten)]
        common: Common,
        /// Sessions to open.
        #[arg(long)]
        count: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        conns: usize,
        /// Then print READY and wait until stdin closes (sessions are never deleted).
        #[arg(long)]
        hold: bool,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: unit must be ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let common = match &cli.command {
        Command::Call { common, .. }
        | Command::List { common, .. }
        | Command::Sessions { common, .. } => common,
    };
    let threads = common.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let pool = Pool::new(threads.max(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut target = match Target::parse(&common.url, common.timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fg-load: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(a) = &common.authorization {
        match HeaderValue::from_str(a) {
            Ok(v) => target.authorization = Some(v),
            Err(_) => {
                eprintln!("fg-load: --authorization is not a valid header value");
                return ExitCode::from(2);
            }
        }
    }
    let ok = runtime.block_on(async move {
        match cli.command {
            Command::Call {
                common,
                conns,
                duration,
                warmup,
                tool,
                message,
                pids,
            } => {
                let cfg = CallCfg {
                    target,
                    session: common.session,
                    tool,
                    message,
                };
                call(
                    &pool,
                    cfg,
                    conns.max(1),
                    duration,
                    warmup,
                    &pids,
                    common.json,
                )
                .await
            }
            Command::List {
                common,
                requests,
                method,
                expect_items,
            } => {
                list(
                    target,
                    common.session,
                    requests.max(1),
                    &method,
                    expect_items,
                    common.json,
                )
                .await
            }
            Command::Sessions {
                common,
                count,
                conns,
                hold,
            } => sessions(&pool, target, count, conns.max(1), hold, common.json).await,
        }
    });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Worker threads, each with a single-threaded runtime, like wrk's threads: the connections
/// are spread over them round-robin and never move between threads.
struct Pool {
    handles: Vec<tokio::runtime::Handle>,
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Pool {
    fn new(threads: usize) -> Self {
        let mut handles = Vec::new();
        let mut stop = Vec::new();
        for i in 0..threads {
            let (htx, hrx) = std::sync::mpsc::channel();
            let (stx, srx) = tokio::sync::oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("fg-load-{i}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    let _ = htx.send(rt.handle().clone());
                    let _ = rt.block_on(srx);
                })
                .expect("a thread");
            handles.push(hrx.recv().expect("the worker's runtime"));
            stop.push(stx);
        }
        Pool {
            handles,
            _stop: stop,
        }
    }

    fn spawn<F>(&self, i: usize, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handles[i % self.handles.len()].spawn(f)
    }
}

/// Opens the shared session (if any) on a connection of its own.
async fn shared_session(
    target: &Target,
    mode: SessionMode,
) -> Result<Option<HeaderValue>, Failure> {
    if mode != SessionMode::Shared {
        return Ok(None);
    }
    http::with_connection(target, |mut s| async move {
        http::initialize(&mut s, target, 0).await
    })
    .await?
}

fn print_failure(what: &str, f: &Failure, as_json: bool) {
    if as_json {
        println!(
            "{}",
            json!({"mode": what, "errors": 1, format!("err_{}", f.kind.name()): 1,
                   "first_error": format!("{}: {}", f.kind.name(), f.detail)})
        );
    } else {
        println!("fg-load {what}: {}: {}", f.kind.name(), f.detail);
    }
}

// ---------------------------------------------------------------------------------------------
// call

struct CallCfg {
    target: Target,
    session: SessionMode,
    tool: String,
    message: String,
}

#[derive(Clone, Copy)]
struct Window {
    /// Replies completed in [start, end] count.
    start: Instant,
    end: Instant,
}

async fn call(
    pool: &Pool,
    cfg: CallCfg,
    conns: usize,
    duration: Duration,
    warmup: Duration,
    pids: &[u32],
    as_json: bool,
) -> bool {
    let shared = match shared_session(&cfg.target, cfg.session).await {
        Ok(s) => s,
        Err(f) => {
            print_failure("call", &f, as_json);
            return false;
        }
    };
    let cfg = Arc::new(cfg);
    let begin = Instant::now();
    let window = Window {
        start: begin + warmup,
        end: begin + warmup + duration,
    };
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            let (cfg, shared) = (cfg.clone(), shared.clone());
            pool.spawn(i, call_task(i as u64, cfg, shared, window))
        })
        .collect();
    tokio::time::sleep_until(window.start).await;
    let cpu_before = procs::tree_ticks(pids);
    let measured_start = Instant::now();
    tokio::time::sleep_until(window.end).await;
    let cpu_after = procs::tree_ticks(pids);
    let measured = measured_start
        .elapsed()
        .as_secs_f64()
        .max(duration.as_secs_f64());
    let mut tally = Tally::default();
    for t in tasks {
        match t.await {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(&Failure::new(ErrorKind::Transport, format!("task: {e}"))),
        }
    }
    tally.lat.sort_unstable();
    let n = tally.lat.len();
    let rps = n as f64 / measured;
    let cpu_us_per_req = (!pids.is_empty() && n > 0).then(|| {
        let ticks = cpu_after.0.saturating_sub(cpu_before.0);
        ticks as f64 * 1e6 / procs::clock_ticks() as f64 / n as f64
    });
    let p = |q| percentile(&tally.lat, q);
    if as_json {
        let mut o = Map::new();
        o.insert("mode".into(), json!("call"));
        o.insert("url".into(), json!(cfg.target.path));
        o.insert("conns".into(), json!(conns));
        o.insert("seconds".into(), json!(measured));
        o.insert("requests".into(), json!(n));
        o.insert("rps".into(), json!(rps));
        o.insert("p50_us".into(), json!(p(50.0)));
        o.insert("p90_us".into(), json!(p(90.0)));
        o.insert("p99_us".into(), json!(p(99.0)));
        o.insert(
            "max_us".into(),
            json!(tally.lat.last().copied().unwrap_or(0)),
        );
        if let Some(c) = cpu_us_per_req {
            o.insert("cpu_us_per_req".into(), json!(c));
            o.insert("cpu_processes".into(), json!(cpu_after.1));
        }
        tally.error_fields(&mut o);
        println!("{}", Value::Object(o));
    } else {
        println!(
            "fg-load call {} — {conns} connection(s), {:.1} s measured after {:.1} s warm-up",
            cfg.target.path,
            measured,
            warmup.as_secs_f64()
        );
        println!("  requests   {n}  ({rps:.0} req/s)");
        println!(
            "  latency    p50 {}  p90 {}  p99 {}  max {}",
            ms(p(50.0)),
            ms(p(90.0)),
            ms(p(99.0)),
            ms(tally.lat.last().copied().unwrap_or(0))
        );
        if let Some(c) = cpu_us_per_req {
            println!(
                "  cpu        {c:.1} µs/request ({} process(es) of {pids:?} and descendants)",
                cpu_after.1
            );
        }
        tally.print_errors();
    }
    tally.error_count() == 0 && n > 0
}

async fn call_task(
    index: u64,
    cfg: Arc<CallCfg>,
    shared: Option<HeaderValue>,
    window: Window,
) -> Tally {
    let mut tally = Tally::default();
    // Ids unique across tasks and below 2^53 (JavaScript servers).
    let mut next_id = (index + 1) * 1_000_000_000;
    while Instant::now() < window.end {
        let res = http::with_connection(&cfg.target, |sender| {
            call_loop(
                sender,
                &cfg,
                shared.clone(),
                window,
                &mut tally,
                &mut next_id,
            )
        })
        .await;
        if let Err(f) = res {
            tally.error(&f);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tally
}

/// Calls until the window ends or the connection must be replaced.
async fn call_loop(
    mut sender: Sender,
    cfg: &CallCfg,
    shared: Option<HeaderValue>,
    window: Window,
    tally: &mut Tally,
    next_id: &mut u64,
) {
    let session = match cfg.session {
        SessionMode::PerConn => {
            *next_id += 1;
            match http::initialize(&mut sender, &cfg.target, *next_id).await {
                Ok(s) => s,
                Err(f) => {
                    tally.error(&f);
                    return;
                }
            }
        }
        _ => shared,
    };
    // The body is {"jsonrpc":"2.0","id":<id>,<tail>: only the id changes.
    const HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
    let tail = format!(
        r#","method":"tools/call","params":{{"name":{},"arguments":{{"message":{}}}}}}}"#,
        json!(cfg.tool),
        json!(cfg.message)
    );
    while Instant::now() < window.end {
        *next_id += 1;
        let id = *next_id;
        let mut body = Vec::with_capacity(HEAD.len() + 20 + tail.len());
        body.extend_from_slice(HEAD);
        body.extend_from_slice(id.to_string().as_bytes());
        body.extend_from_slice(tail.as_bytes());
        let t0 = Instant::now();
        let res = http::post(&mut sender, &cfg.target, session.as_ref(), true, body)
            .await
            .and_then(|r| http::check_call(&r, id, &cfg.message).map(|()| r.done));
        match res {
            Ok(t1) => {
                tally.ok_total += 1;
                if t1 >= window.start && t1 <= window.end {
                    let us = (t1 - t0).as_micros().min(u128::from(u32::MAX)) as u32;
                    tally.lat.push(us);
                }
            }
            Err(f) => {
                tally.error(&f);
                // The connection may be unusable after a transport error or an unexpected
                // status: start a new one.
                if matches!(f.kind, ErrorKind::Transport | ErrorKind::HttpStatus) {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// list

async fn list(
    target: Target,
    mode: SessionMode,
    requests: usize,
    method: &str,
    expect: Option<usize>,
    as_json: bool,
) -> bool {
    let key = method.split('/').next().unwrap_or("tools").to_string();
    let mut tally = Tally::default();
    let mut items = 0usize;
    let res = http::with_connection(&target, |mut sender| {
        let (tally, items, key, target) = (&mut tally, &mut items, &key, &target);
        async move {
            let session = if mode == SessionMode::None {
                None
            } else {
                match http::initialize(&mut sender, target, 0).await {
                    Ok(s) => s,
                    Err(f) => return tally.error(&f),
                }
            };
            for i in 0..requests {
                let id = i as u64 + 1;
                let body = http::request_body(id, method, &json!({}));
                let t0 = Instant::now();
                let res = http::post(&mut sender, target, session.as_ref(), true, body)
                    .await
                    .and_then(|r| {
                        let us = (r.done - t0).as_micros().min(u128::from(u32::MAX)) as u32;
                        let msg = http::response(&r, id)?;
                        let result = http::result(&msg)?;
                        let n = result.get(key).and_then(Value::as_array).map(Vec::len);
                        match (n, expect) {
                            (None, _) => Err(Failure::new(
                                ErrorKind::WrongContent,
                                format!("no {key} array in the result"),
                            )),
                            (Some(n), Some(e)) if n != e => Err(Failure::new(
                                ErrorKind::WrongContent,
                                format!("expected {e} {key}, got {n}"),
                            )),
                            (Some(n), _) => Ok((n, us)),
                        }
                    });
                match res {
                    Ok((n, us)) => {
                        *items = n;
                        tally.lat.push(us);
                    }
                    Err(f) => {
                        let fatal = f.kind == ErrorKind::Transport;
                        tally.error(&f);
                        if fatal {
                            return;
                        }
                    }
                }
            }
        }
    })
    .await;
    if let Err(f) = res {
        tally.error(&f);
    }
    let cold = tally.lat.first().copied();
    let mut warm: Vec<u32> = tally.lat.iter().skip(1).copied().collect();
    warm.sort_unstable();
    let p = |q| percentile(&warm, q);
    if as_json {
        let mut o = Map::new();
        o.insert("mode".into(), json!("list"));
        o.insert("method".into(), json!(method));
        o.insert("requests".into(), json!(tally.lat.len()));
        o.insert("items".into(), json!(items));
        o.insert("cold_us".into(), json!(cold.unwrap_or(0)));
        o.insert("p50_us".into(), json!(p(50.0)));
        o.insert("p99_us".into(), json!(p(99.0)));
        o.insert("max_us".into(), json!(warm.last().copied().unwrap_or(0)));
        tally.error_fields(&mut o);
        println!("{}", Value::Object(o));
    } else {
        println!(
            "fg-load list {} {method} — {requests} sequential request(s)",
            target.path
        );
        println!("  items      {items}");
        println!("  cold       {}", ms(cold.unwrap_or(0)));
        println!(
            "  warm       p50 {}  p99 {}  max {}  ({} requests)",
            ms(p(50.0)),
            ms(p(99.0)),
            ms(warm.last().copied().unwrap_or(0)),
            warm.len()
        );
        tally.print_errors();
    }
    tally.error_count() == 0 && tally.lat.len() == requests
}

// ---------------------------------------------------------------------------------------------
// sessions

async fn sessions(
    pool: &Pool,
    target: Target,
    count: usize,
    conns: usize,
    hold: bool,
    as_json: bool,
) -> bool {
    let target = Arc::new(target);
    let next = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let tasks: Vec<_> = (0..conns.min(count.max(1)))
        .map(|i| {
            let (target, next) = (target.clone(), next.clone());
            pool.spawn(i, async move {
                let mut tally = Tally::default();
                while next.load(Ordering::Relaxed) < count as u64 {
                    let res = http::with_connection(&target, |mut sender| {
                        let (tally, next, target) = (&mut tally, &next, &target);
                        async move {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= count as u64 {
                                    return;
                                }
                                let t0 = Instant::now();
                                match http::initialize(&mut sender, target, i + 1).await {
                                    Ok(Some(_)) => {
                                        tally.ok_total += 1;
                                        let us = t0.elapsed().as_micros();
                                        tally.lat.push(us.min(u128::from(u32::MAX)) as u32);
                                    }
                                    Ok(None) => tally.error(&Failure::new(
                                        ErrorKind::NoSession,
                                        "initialize answered without an Mcp-Session-Id",
                                    )),
                                    Err(f) => {
                                        tally.error(&f);
                                        if matches!(
                                            f.kind,
                                            ErrorKind::Transport | ErrorKind::HttpStatus
                                        ) {
                                            return;
                                        }
                                    }
                                }
                            }
                        }
                    })
                    .await;
                    if let Err(f) = res {
                        // A connection that cannot be made costs one session, so that a server
                        // that is down ends the run instead of holding it forever.
                        next.fetch_add(1, Ordering::Relaxed);
                        tally.error(&f);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for t in tasks {
        match t.await {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(&Failure::new(ErrorKind::Transport, format!("task: {e}"))),
        }
    }
    let secs = begin.elapsed().as_secs_f64();
    tally.lat.sort_unstable();
    let p = |q| percentile(&tally.lat, q);
    let rate = tally.ok_total as f64 / secs;
    if as_json {
        let mut o = Map::new();
        o.insert("mode".into(), json!("sessions"));
        o.insert("count".into(), json!(count));
        o.insert("opened".into(), json!(tally.ok_total));
        o.insert("seconds".into(), json!(secs));
        o.insert("sessions_per_s".into(), json!(rate));
        o.insert("p50_us".into(), json!(p(50.0)));
        o.insert("p99_us".into(), json!(p(99.0)));
        o.insert(
            "max_us".into(),
            json!(tally.lat.last().copied().unwrap_or(0)),
        );
        tally.error_fields(&mut o);
        println!("{}", Value::Object(o));
    } else {
        println!(
            "fg-load sessions {} — {count} session(s) over {conns} connection(s)",
            target.path
        );
        println!(
            "  opened     {} in {secs:.2} s ({rate:.0}/s)",
            tally.ok_total
        );
        println!(
            "  set-up     p50 {}  p99 {}  max {}  (initialize + initialized)",
            ms(p(50.0)),
            ms(p(99.0)),
            ms(tally.lat.last().copied().unwrap_or(0))
        );
        tally.print_errors();
    }
    let ok = tally.error_count() == 0 && tally.ok_total == count as u64;
    if hold {
        use std::io::Write;
        println!("READY");
        let _ = std::io::stdout().flush();
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        })
        .await;
    }
    ok
}
