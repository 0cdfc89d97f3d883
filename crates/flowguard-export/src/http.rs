//! The one HTTP call the exporters make: a POST, answered by a status code. [`Transport`] is the
//! seam; [`PlainHttp`] is a blocking HTTP/1.1 client on `std::net` for `http://` URLs, and the
//! gateway plugs in its TLS client for `https://`.
//!
//! Error messages name the target as `scheme://host:port/path` only: a URL's userinfo and query
//! string may hold credentials.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Sends one POST and returns the response's status code. `Err` means there was no HTTP answer
/// (no connection, a timeout, not HTTP); the message says why, without secrets from the URL.
pub trait Transport: Send + Sync + 'static {
    fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, String>;
}

/// HTTP/1.1 over plain TCP, one connection per request (`Connection: close`). `timeout` bounds
/// the whole exchange (name lookup excepted: std has no timeout for it). Credentials in the
/// URL's userinfo are sent as `Authorization: Basic` unless the headers have an Authorization.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainHttp;

/// Past this the response head is not HTTP we want to read.
const MAX_HEAD: usize = 64 << 10;
/// How much of a response body is read (and thrown away) before closing.
const MAX_DRAIN: usize = 1 << 20;

impl Transport for PlainHttp {
    fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<u16, String> {
        let fail = |why: String| format!("POST {}: {why}", describe(url));
        let u = Url::parse(url).map_err(fail)?;
        let request = u.request(content_type, headers, body).map_err(fail)?;
        let deadline = Instant::now() + timeout;
        let timed_out = || fail(format!("no answer within {timeout:?}"));
        let io_err = |what: &str, e: io::Error| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
            _ => fail(format!("{what}: {e}")),
        };

        let mut stream = connect(&u, deadline).map_err(|e| io_err("connect", e))?;
        let _ = stream.set_nodelay(true);
        let mut sent = 0;
        while sent < request.len() {
            set_timeouts(&stream, deadline).map_err(|e| io_err("send", e))?;
            match stream.write(&request[sent..]) {
                Ok(0) => return Err(fail("the server closed the connection".into())),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("send", e)),
            }
        }

        let mut buf = Vec::with_capacity(1024);
        loop {
            let head_end = loop {
                if let Some(i) = find(&buf, b"\r\n\r\n") {
                    break i + 4;
                }
                if buf.len() > MAX_HEAD {
                    return Err(fail("the response head is over 64 KiB".into()));
                }
                match read_some(&mut stream, &mut buf, deadline) {
                    Ok(0) if buf.is_empty() => {
                        return Err(fail(
                            "the server closed the connection without answering".into(),
                        ))
                    }
                    Ok(0) => return Err(fail("the response ended inside its head".into())),
                    Ok(_) => {}
                    Err(e) => return Err(io_err("receive", e)),
                }
            };
            let (status, body_len) = parse_head(&buf[..head_end])
                .ok_or_else(|| fail("the answer is not an HTTP/1.x response".into()))?;
            buf.drain(..head_end);
            if (100..200).contains(&status) && status != 101 {
                continue; // an interim answer (100 Continue): the real one follows
            }
            drain(&mut stream, buf.len(), body_len, deadline);
            return Ok(status);
        }
    }
}

/// `scheme://host:port/…` of a URL, for messages: no userinfo, query or fragment, and no path
/// either (a webhook's path is often its secret, as Slack's is).
pub fn describe(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a URL without a scheme)".into();
    };
    let scheme = scheme.to_ascii_lowercase();
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path_end = rest[end..].find(['?', '#']).map_or(rest.len(), |i| end + i);
    let path = if end == path_end {
        "/"
    } else {
        &rest[end..path_end]
    };
    match split_host_port(host_port) {
        Some((host, port)) => {
            let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
            format!("{scheme}://{}:{port}{}", bracket(host), hidden(path))
        }
        None => format!("{scheme}://(a bad host or port){}", hidden(path)),
    }
}

fn hidden(path: &str) -> &'static str {
    if path == "/" {
        "/"
    } else {
        "/…"
    }
}

/// A parsed `http://` URL.
struct Url<'a> {
    /// Without brackets, for the name lookup.
    host: &'a str,
    port: u16,
    /// Path and query, as sent in the request line.
    target: &'a str,
    userinfo: Option<&'a str>,
}

impl<'a> Url<'a> {
    fn parse(url: &'a str) -> Result<Url<'a>, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("the endpoint is not a URL (expected http://host:port/path)")?;
        if scheme.eq_ignore_ascii_case("https") {
            return Err(
                "https:// needs the gateway's TLS transport; this plain HTTP client \
                        only speaks http://"
                    .into(),
            );
        }
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!(
                "unsupported scheme {:?} (expected http:// or https://)",
                scheme.chars().take(16).collect::<String>()
            ));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(host_port)
            .filter(|(h, _)| !h.is_empty())
            .ok_or("the URL has no valid host[:port]")?;
        let target = if target.is_empty() { "/" } else { target };
        if target.bytes().any(|c| c <= b' ' || c == 0x7f) {
            return Err(
                "the URL's path has spaces or control characters; percent-encode them".into(),
            );
        }
        Ok(Url {
            host,
            port: port.unwrap_or(80),
            target,
            userinfo,
        })
    }

    fn request(
        &self,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        // `http://host?q` has no path: the request target is then `/?q`.
        let slash = if self.target.starts_with('/') {
            ""
        } else {
            "/"
        };
        let mut head = format!(
            "POST {slash}{} HTTP/1.1\r\nHost: {}",
            self.target,
            bracket(self.host)
        );
        if self.port != 80 {
            head += &format!(":{}", self.port);
        }
        head += &format!(
            "\r\nUser-Agent: flowguard/{}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        check_header("Content-Type", content_type)?;
        let mut has_auth = false;
        for (name, value) in headers {
            check_header(name, value)?;
            has_auth |= name.eq_ignore_ascii_case("authorization");
            head += &format!("{name}: {value}\r\n");
        }
        if let (Some(u), false) = (self.userinfo, has_auth) {
            head += &format!("Authorization: Basic {}\r\n", base64(&percent_decode(u)));
        }
        head += "\r\n";
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        Ok(out)
    }
}

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("header name {name:?} is not a valid HTTP token"));
    }
    if value.bytes().any(|c| c == b'\r' || c == b'\n' || c == 0) {
        // The value may be a secret: name the header only.
        return Err(format!(
            "the value of header {name} has a line break or NUL; remove it"
        ));
    }
    Ok(())
}

/// `host` / `host:port` / `[v6]` / `[v6]:port` → (host without brackets, port).
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
    };
    Some((host, port))
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

fn connect(u: &Url<'_>, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in (u.host, u.port).to_socket_addrs()? {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(left)
}

fn set_timeouts(s: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = remaining(deadline)?;
    s.set_read_timeout(Some(left))?;
    s.set_write_timeout(Some(left))
}

fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> io::Result<usize> {
    let mut chunk = [0u8; 4096];
    loop {
        set_timeouts(s, deadline)?;
        match s.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Status code and Content-Length (`None`: until close, or chunked) of a response head.
fn parse_head(head: &[u8]) -> Option<(u16, Option<usize>)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let rest = status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    if !code.bytes().all(|c| c.is_ascii_digit()) || rest.len() > 3 && !rest[3..].starts_with(' ') {
        return None;
    }
    let status = code.parse().ok()?;
    let mut len = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
    Some((status, len))
}

/// Reads and discards the body (already `have` bytes of it), so the server sees a clean close.
/// Best effort: the status is already known, so errors and the deadline just stop it.
fn drain(s: &mut TcpStream, mut have: usize, len: Option<usize>, deadline: Instant) {
    let want = len.unwrap_or(MAX_DRAIN).min(MAX_DRAIN);
    let mut sink = Vec::new();
    while have < want {
        sink.clear();
        match read_some(s, &mut sink, deadline) {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = u32::from(c[0]) << 16
            | u32::from(*c.get(1).unwrap_or(&0)) << 8
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testserver::{Reply, Server};

    const T: Duration = Duration::from_secs(5);

    fn post(url: &str, timeout: Duration) -> Result<u16, String> {
        PlainHttp.post(url, "text/plain", &[("X-Token", "abc")], b"hello", timeout)
    }

    #[test]
    fn posts_and_returns_the_status() {
        let srv = Server::start(|_| Reply::Status(200));
        assert_eq!(post(&srv.url("/v1/traces?k=v"), T), Ok(200));
        assert_eq!(post(&srv.url("?k=v#f"), T), Ok(200));
        assert_eq!(post(&srv.url(""), T), Ok(200));
        let reqs = srv.requests();
        assert_eq!(reqs[1].line, "POST /?k=v HTTP/1.1");
        assert_eq!(reqs[2].line, "POST / HTTP/1.1");
        let r = &reqs[0];
        assert_eq!(r.line, "POST /v1/traces?k=v HTTP/1.1");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("content-length"), Some("5"));
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.header("x-token"), Some("abc"));
        assert_eq!(r.header("host"), Some(srv.host_port().as_str()));
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn a_server_error_is_a_status_not_an_err() {
        let srv = Server::start(|_| Reply::Status(500));
        assert_eq!(post(&srv.url("/"), T), Ok(500));
        // An interim 100 Continue is skipped; a body with Content-Length is read.
        let srv = Server::start(|_| {
            Reply::Raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nabc".to_vec())
        });
        assert_eq!(post(&srv.url("/"), T), Ok(202));
        // Without Content-Length the body runs to the close.
        let srv = Server::start(|_| Reply::Raw(b"HTTP/1.0 204 No Content\r\n\r\n".to_vec()));
        assert_eq!(post(&srv.url("/"), T), Ok(204));
    }

    #[test]
    fn garbage_answers_are_errors() {
        let srv = Server::start(|_| Reply::Raw(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()));
        let e = post(&srv.url("/"), T).unwrap_err();
        assert!(e.contains("not an HTTP/1.x response"), "{e}");
        let srv = Server::start(|_| Reply::Raw(Vec::new()));
        let e = post(&srv.url("/"), T).unwrap_err();
        assert!(e.contains("closed the connection without answering"), "{e}");
    }

    #[test]
    fn connection_refused_is_an_err() {
        // Bind, note the port, close: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = post(&format!("http://127.0.0.1:{port}/v1/traces"), T).unwrap_err();
        assert!(
            e.starts_with(&format!("POST http://127.0.0.1:{port}/…: connect: ")),
            "{e}"
        );
    }

    #[test]
    fn a_slow_server_times_out() {
        let srv = Server::start(|_| Reply::Stall(Duration::from_secs(3)));
        let t = Instant::now();
        let e = post(&srv.url("/slow"), Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("no answer within 300ms"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn https_needs_the_tls_transport() {
        let e = post("https://collector.example:4318/v1/traces?token=s3cret", T).unwrap_err();
        assert!(
            e.contains("https:// needs the gateway's TLS transport"),
            "{e}"
        );
        assert!(
            e.starts_with("POST https://collector.example:4318/…: "),
            "{e}"
        );
        assert!(!e.contains("s3cret"));
    }

    #[test]
    fn secrets_in_the_url_stay_out_of_errors() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://alice:hunter2@127.0.0.1:{port}/hook?sig=topsecret#frag");
        let e = post(&url, T).unwrap_err();
        assert!(
            !e.contains("hunter2") && !e.contains("alice") && !e.contains("topsecret"),
            "{e}"
        );
        assert!(
            e.starts_with(&format!("POST http://127.0.0.1:{port}/…: ")),
            "{e}"
        );
        for bad in [
            "ftp://u:pw@h/x?q=pw",
            "http://u:pw@/x?q=pw",
            "http://u:pw@h:99999/?q=pw",
        ] {
            let e = post(bad, T).unwrap_err();
            assert!(!e.contains("pw"), "{e}");
        }
        let e = post("nonsense", T).unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
    }

    #[test]
    fn userinfo_becomes_basic_auth() {
        let srv = Server::start(|_| Reply::Status(200));
        let url = srv
            .url("/")
            .replace("http://", "http://Aladdin:open%20sesame@");
        assert_eq!(post(&url, T), Ok(200));
        let r = &srv.requests()[0];
        assert_eq!(
            r.header("authorization"),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        // An explicit Authorization header wins.
        let h = [("Authorization", "Bearer t")];
        assert_eq!(PlainHttp.post(&url, "a/b", &h, b"", T), Ok(200));
        assert_eq!(srv.requests()[1].header("authorization"), Some("Bearer t"));
    }

    #[test]
    fn header_injection_is_refused() {
        let h = [("X-A", "1\r\nX-Injected: 2")];
        let e = PlainHttp
            .post("http://127.0.0.1:9/", "a/b", &h, b"", T)
            .unwrap_err();
        assert!(e.contains("header X-A has a line break"), "{e}");
        assert!(!e.contains("Injected"));
        let e = PlainHttp
            .post("http://127.0.0.1:9/", "a/b", &[("X A", "1")], b"", T)
            .unwrap_err();
        assert!(e.contains("not a valid HTTP token"), "{e}");
    }

    #[test]
    fn describing_urls() {
        assert_eq!(describe("http://h/p?q#f"), "http://h:80/…");
        assert_eq!(describe("HTTPS://u:p@h"), "https://h:443/");
        assert_eq!(
            describe("http://[::1]:4318/v1/traces"),
            "http://[::1]:4318/…"
        );
        assert_eq!(describe("http://h:x/p"), "http://(a bad host or port)/…");
        assert_eq!(describe("h/p"), "(a URL without a scheme)");
    }

    #[test]
    fn base64_and_percent_decoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(percent_decode("a%3Ab%2"), b"a:b%2");
        assert_eq!(percent_decode("%"), b"%");
        assert_eq!(percent_decode("%zz%41"), b"%zzA");
    }
}
