//! A throwaway HTTP server on 127.0.0.1 for the tests: records each request, answers as told,
//! and stops by itself (when dropped, and in any case 30 s after it started).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const LIFETIME: Duration = Duration::from_secs(30);

pub enum Reply {
    Status(u16),
    Raw(Vec<u8>),
    /// Read the request, then hold the connection this long without answering.
    Stall(Duration),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// `reply` gets the 0-based number of the request.
    pub fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (st, reqs, reply) = (stop.clone(), requests.clone(), Arc::new(reply));
        thread::spawn(move || {
            let born = Instant::now();
            let count = Arc::new(AtomicUsize::new(0));
            while !st.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (st, reqs, reply, count) =
                            (st.clone(), reqs.clone(), reply.clone(), count.clone());
                        thread::spawn(move || serve(conn, &st, &reqs, &*reply, &count, born));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            stop,
            requests,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (up to `limit`) until `done` holds for the requests so far.
    pub fn wait_for(&self, limit: Duration, done: impl Fn(&[Request]) -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if done(&self.requests.lock().unwrap()) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    mut conn: TcpStream,
    stop: &AtomicBool,
    reqs: &Mutex<Vec<Request>>,
    reply: &(dyn Fn(usize) -> Reply + Send + Sync),
    count: &AtomicUsize,
    born: Instant,
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    reqs.lock().unwrap().push(req);
    match reply(count.fetch_add(1, Ordering::SeqCst)) {
        Reply::Status(code) => {
            let text = format!(
                "HTTP/1.1 {code} Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
            let _ = conn.write_all(text.as_bytes());
        }
        Reply::Raw(bytes) => {
            let _ = conn.write_all(&bytes);
        }
        Reply::Stall(d) => {
            let t = Instant::now();
            while t.elapsed() < d && !stop.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end - 4].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        line,
        headers,
        body,
    })
}
