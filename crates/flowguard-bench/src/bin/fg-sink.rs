//! fg-sink: a stand-in for an OTLP collector or a webhook receiver in benchmarks. It answers
//! `200` to every HTTP/1.1 POST on 127.0.0.1 (keep-alive, `Content-Length` bodies only), keeps
//! nothing, and costs next to no CPU, so that a benchmark measures the gateway rather than its
//! collector (a collector runs elsewhere in a deployment).
//!
//!   fg-sink PORT [COUNT_FILE]   prints nothing; writes the number of POSTs to COUNT_FILE
//!                               (at most every 100 ms) when one is given

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next().and_then(|p| p.parse().ok()) {
        Some(p) => p,
        None => {
            eprintln!("usage: fg-sink PORT [COUNT_FILE]");
            std::process::exit(2);
        }
    };
    let count_file = args.next();
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fg-sink: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(2);
        }
    };
    let posts = Arc::new(AtomicU64::new(0));
    if let Some(path) = count_file {
        let p = posts.clone();
        std::thread::spawn(move || {
            let mut last = u64::MAX;
            loop {
                std::thread::sleep(Duration::from_millis(100));
                let n = p.load(Ordering::Relaxed);
                if n != last {
                    let _ = std::fs::write(&path, n.to_string());
                    last = n;
                }
            }
        });
    }
    for conn in listener.incoming().flatten() {
        let p = posts.clone();
        std::thread::spawn(move || serve(conn, &p));
    }
}

/// Answers requests on one connection until it closes or sends something this sink does not
/// take (then it is closed).
fn serve(conn: TcpStream, posts: &AtomicU64) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::with_capacity(64 * 1024, conn);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        let mut length = 0usize;
        let mut first = true;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if first {
                if !l.starts_with("POST ") {
                    let _ = out.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    return;
                }
                first = false;
            } else if l.is_empty() {
                break;
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(length, 0);
        if r.read_exact(&mut body).is_err() {
            return;
        }
        posts.fetch_add(1, Ordering::Relaxed);
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
