//! A lean HTTP/1.1 client for MCP's Streamable HTTP: POST with one write, keep-alive connections
//! kept in a small idle pool, responses read in place (Content-Length, chunked, or until close),
//! and bodies handed out chunk by chunk so SSE events flow through as they arrive. `https://`
//! URLs go through TLS (`tls.rs`); the request is still written in one piece.
//!
//! Why not hyper's pooled client: it hands every request to a per-connection task and back and
//! builds a header map for each response; on the gateway's hot path that cost as much as the
//! backend's whole request (docs/benchmarks.md). This client runs inside the caller's task.

use crate::tls::{Conn, Tls};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;
use std::thread::ThreadId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections kept per server; more concurrent requests open more connections, and the
/// surplus is closed when they finish.
const MAX_IDLE: usize = 64;
/// Longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Where to send: `http://host:port/path` or `https://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub tls: bool,
    pub addr: String,
    pub host: String,
    pub path: String,
}

impl Target {
    /// `http://host[:port]`, for same-origin checks and messages.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The whole URL, for messages.
    pub(crate) fn url(&self) -> String {
        format!("{}{}", self.origin(), self.path)
    }

    /// The host without port or IPv6 brackets: the name TLS checks the certificate against.
    pub(crate) fn host_name(&self) -> &str {
        let host = match self.host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !self.host.ends_with(']') => h,
            _ => &self.host,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }

    /// Resolves a URL a server sent (absolute, or a path relative to this target) to a path on
    /// the same origin. Anything else is refused: a server must not redirect the gateway's
    /// messages, and the credentials in them, to another host.
    pub(crate) fn same_origin_path(&self, reference: &str) -> Result<String, String> {
        let reference = reference.trim();
        if reference.contains("://") {
            let other = Target::parse(reference)?;
            return if other.host.eq_ignore_ascii_case(&self.host) && other.tls == self.tls {
                Ok(other.path)
            } else {
                Err(format!(
                    "the server named {reference} as its message endpoint, which is not on the \
                     same origin as {}; refusing to send messages there",
                    self.origin()
                ))
            };
        }
        if reference.starts_with("//") {
            return Err(format!(
                "the server named {reference} as its message endpoint, a network-path reference \
                 that may leave {}; refusing it",
                self.origin()
            ));
        }
        if reference.starts_with('/') {
            return Ok(reference.to_string());
        }
        // Relative to the directory of this target's path.
        let base = self.path.split('?').next().unwrap_or("/");
        let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
        Ok(format!("{dir}{reference}"))
    }

    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("{url}: expected an http:// or https:// URL")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url}: expected http(s)://host[:port]/path"));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            && !authority.ends_with(']');
        let addr = match (has_port, tls) {
            (true, _) => authority.to_string(),
            (false, false) => format!("{authority}:80"),
            (false, true) => format!("{authority}:443"),
        };
        Ok(Target {
            tls,
            addr,
            host: authority.to_string(),
            path,
        })
    }
}

pub(crate) struct Client {
    target: Target,
    /// For `https://` targets.
    tls: Option<Tls>,
    /// Idle connections with their read buffers, reused so a request allocates no buffer.
    idle: Mutex<Vec<Idle>>,
}

/// An idle connection, with the thread whose runtime it is registered with: it is reused only
/// there, so its readiness never has to wake another thread (each of the gateway's worker
/// threads runs a runtime of its own).
struct Idle {
    home: ThreadId,
    conn: Conn,
    buf: Vec<u8>,
}

/// A response whose head has been read; the body is read with [`Response::chunk`].
pub(crate) struct Response<'c> {
    pub status: u16,
    pub content_type: Option<String>,
    pub session_id: Option<String>,
    body: Body<'c>,
}

struct Body<'c> {
    client: &'c Client,
    home: ThreadId,
    stream: Option<Conn>,
    buf: Vec<u8>,
    pos: usize,
    framing: Framing,
    reusable: bool,
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(usize),
    /// Bytes left in the current chunk; `None` before a chunk-size line.
    Chunked(Option<usize>),
    UntilClose,
    Done,
}

impl Client {
    /// A client for `url`; `ca_file` replaces the system's roots for an `https://` URL.
    pub(crate) fn for_url(url: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let target = Target::parse(url)?;
        let tls = match target.tls {
            true => Some(Tls::new(target.host_name(), ca_file)?),
            false => None,
        };
        Ok(Client {
            target,
            tls,
            idle: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Sends a request to a path of the target's origin; `body` `None` sends no body (GET). A
    /// request that fails on a reused connection before any byte of a response arrived is sent
    /// again on a new one: the server had closed the idle connection and never saw it.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Response<'_>> {
        let request = self.encode(method, path, headers, body);
        let home = std::thread::current().id();
        loop {
            let (mut stream, mut buf, reused) = match self.take_idle(home) {
                Some(idle) => (idle.conn, idle.buf, true),
                // Boxed: a TLS handshake's future would otherwise enlarge every request's.
                None => (
                    Box::pin(self.connect()).await?,
                    Vec::with_capacity(8192),
                    false,
                ),
            };
            match self.exchange(&mut stream, &mut buf, &request).await {
                Ok(head_len) => return self.response(home, stream, buf, head_len),
                Err(_) if reused => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn encode(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut req = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        req.extend_from_slice(method.as_bytes());
        req.push(b' ');
        req.extend_from_slice(path.as_bytes());
        req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        req.extend_from_slice(self.target.host.as_bytes());
        for (k, v) in headers {
            req.extend_from_slice(b"\r\n");
            req.extend_from_slice(k.as_bytes());
            req.extend_from_slice(b": ");
            req.extend_from_slice(v.as_bytes());
        }
        match body {
            Some(body) => {
                // Written into the request's own buffer: no string allocated per request.
                let _ = write!(req, "\r\nContent-Length: {}\r\n\r\n", body.len());
                req.extend_from_slice(body);
            }
            None => req.extend_from_slice(b"\r\n\r\n"),
        }
        req
    }

    fn take_idle(&self, home: ThreadId) -> Option<Idle> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = idle.iter().rposition(|i| i.home == home)?;
        Some(idle.swap_remove(at))
    }

    fn put_idle(&self, home: ThreadId, conn: Conn, mut buf: Vec<u8>) {
        buf.clear();
        if buf.capacity() > 1024 * 1024 {
            buf = Vec::with_capacity(8192); // one huge reply should not pin its buffer
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle { home, conn, buf });
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        // No TCP_NODELAY: every request goes out in one write, which Nagle never holds back,
        // and setting it measured slower under load (docs/benchmarks.md).
        let tcp = TcpStream::connect(&self.target.addr).await?;
        match &self.tls {
            Some(tls) => Ok(Conn::Tls(Box::new(tls.connect(tcp).await?))),
            None => Ok(Conn::Plain(tcp)),
        }
    }

    /// Writes the request and reads until the response head is complete.
    async fn exchange(
        &self,
        stream: &mut Conn,
        buf: &mut Vec<u8>,
        request: &[u8],
    ) -> io::Result<usize> {
        stream.write_all(request).await?;
        stream.flush().await?;
        buf.clear();
        loop {
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(buf.capacity().max(4096));
            }
            let n = stream.read_buf(buf).await?;
            if n == 0 && buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
            if n == 0 {
                // Part of a response arrived: the server saw the request, so it is not safe to
                // send again blindly (`InvalidData` is never retried).
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "connection closed in the middle of the response head",
                ));
            }
            if let Some(end) = find_head_end(buf) {
                return Ok(end);
            }
            if buf.len() > MAX_HEAD {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response head too large",
                ));
            }
        }
    }

    fn response(
        &self,
        home: ThreadId,
        stream: Conn,
        buf: Vec<u8>,
        head_len: usize,
    ) -> io::Result<Response<'_>> {
        let mut headers = [httparse::EMPTY_HEADER; 48];
        let mut parsed = httparse::Response::new(&mut headers);
        parsed.parse(&buf[..head_len]).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad response head: {e}"),
            )
        })?;
        let status = parsed.code.unwrap_or(0);
        let (mut content_type, mut session_id, mut length, mut chunked, mut close) =
            (None, None, None, false, false);
        // Only the two values kept are copied; the rest are read in place.
        for h in parsed.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            let name = h.name;
            if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("mcp-session-id") {
                session_id = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .split(',')
                    .any(|c| c.trim().eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let no_body = status == 204 || status == 304 || (100..200).contains(&status);
        let framing = match (no_body, chunked, length) {
            (true, ..) => Framing::Done,
            (_, true, _) => Framing::Chunked(None),
            (_, _, Some(n)) => Framing::Length(n),
            _ => Framing::UntilClose,
        };
        let reusable =
            !close && !matches!(framing, Framing::UntilClose) && parsed.version == Some(1);
        let body = Body {
            client: self,
            home,
            stream: Some(stream),
            buf,
            pos: head_len,
            framing,
            reusable,
        };
        Ok(Response {
            status,
            content_type,
            session_id,
            body,
        })
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

impl Response<'_> {
    /// The next piece of the body, or `None` at its end (the connection then goes back to the
    /// pool when it can be reused).
    pub(crate) async fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.body.next().await
    }

    /// The whole body.
    pub(crate) async fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(c) = self.chunk().await? {
            if all.is_empty() {
                all = c;
            } else {
                all.extend_from_slice(&c);
            }
        }
        Ok(all)
    }
}

impl Body<'_> {
    async fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.framing {
                Framing::Done => {
                    self.release();
                    return Ok(None);
                }
                Framing::Length(0) => self.framing = Framing::Done,
                Framing::Length(left) => {
                    let data = self.take(left).await?;
                    if data.is_empty() {
                        return Err(eof());
                    }
                    self.framing = Framing::Length(left - data.len());
                    return Ok(Some(data));
                }
                Framing::UntilClose => {
                    let data = self.take(usize::MAX).await?;
                    if data.is_empty() {
                        self.framing = Framing::Done;
                    } else {
                        return Ok(Some(data));
                    }
                }
                Framing::Chunked(None) => {
                    let line = self.line().await?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        // Trailers, if any, end with an empty line.
                        while !self.line().await?.is_empty() {}
                        self.framing = Framing::Done;
                    } else {
                        self.framing = Framing::Chunked(Some(size));
                    }
                }
                Framing::Chunked(Some(0)) => {
                    self.line().await?; // the CRLF after a chunk
                    self.framing = Framing::Chunked(None);
                }
                Framing::Chunked(Some(left)) => {
                    let data = self.take(left).await?;
                    if data.is_empty() {
                        return Err(eof());
                    }
                    self.framing = Framing::Chunked(Some(left - data.len()));
                    return Ok(Some(data));
                }
            }
        }
    }

    /// Up to `max` buffered bytes, reading more only when none are buffered. Empty at EOF.
    async fn take(&mut self, max: usize) -> io::Result<Vec<u8>> {
        if self.pos == self.buf.len() && !self.fill().await? {
            return Ok(Vec::new());
        }
        let n = max.min(self.buf.len() - self.pos);
        let data = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(data)
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf[self.pos..].windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[self.pos..self.pos + i]).into_owned();
                self.pos += i + 2;
                return Ok(line);
            }
            if !self.fill().await? {
                return Err(eof());
            }
        }
    }

    /// Reads more into the buffer (dropping consumed bytes first); false at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        self.buf.drain(..self.pos);
        self.pos = 0;
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        Ok(stream.read_buf(&mut self.buf).await? > 0)
    }

    fn release(&mut self) {
        if let Some(stream) = self.stream.take() {
            if self.reusable && self.pos == self.buf.len() {
                self.client
                    .put_idle(self.home, stream, std::mem::take(&mut self.buf));
            }
        }
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed in the middle of a response",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn urls_become_targets() {
        let t = Target::parse("http://127.0.0.1:9000/mcp").unwrap();
        assert_eq!(
            (t.addr.as_str(), t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "127.0.0.1:9000", "/mcp")
        );
        assert_eq!(
            Target::parse("http://localhost").unwrap().addr,
            "localhost:80"
        );
        assert_eq!(Target::parse("http://h:1?x=1").unwrap().path, "/?x=1");
        assert_eq!(
            Target::parse("http://[::1]:8080/").unwrap().addr,
            "[::1]:8080"
        );
        let t = Target::parse("https://h/x").unwrap();
        assert!(t.tls);
        assert_eq!((t.addr.as_str(), t.host_name()), ("h:443", "h"));
        assert_eq!(
            Target::parse("https://[::1]:8443/").unwrap().host_name(),
            "::1"
        );
        assert!(Target::parse("ftp://h/").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn message_endpoints_resolve_on_the_same_origin_only() {
        let t = Target::parse("http://127.0.0.1:9000/mcp/sse").unwrap();
        assert_eq!(
            t.same_origin_path("/messages?sessionId=a").unwrap(),
            "/messages?sessionId=a"
        );
        assert_eq!(
            t.same_origin_path("message?sessionId=b").unwrap(),
            "/mcp/message?sessionId=b"
        );
        assert_eq!(
            t.same_origin_path("http://127.0.0.1:9000/m?s=1").unwrap(),
            "/m?s=1"
        );
        let err = t.same_origin_path("http://evil.example/m").unwrap_err();
        assert!(
            err.contains("not on the same origin as http://127.0.0.1:9000"),
            "{err}"
        );
        assert!(t.same_origin_path("http://127.0.0.1:9001/m").is_err());
        assert!(t.same_origin_path("//evil.example/m").is_err());
        assert!(t.same_origin_path("https://127.0.0.1:9000/m").is_err());
    }

    /// A one-shot server that answers each request on a connection with the next canned reply.
    async fn serve(replies: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for reply in replies {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(reply).await.unwrap();
            }
        });
        format!("http://{addr}/mcp")
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_and_reuses_the_connection() {
        let url = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: abc\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:\r\n3;x=y\r\n 1\n\r\n0\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let client = Client::for_url(&url, None).unwrap();
        let accept = [("Accept", "application/json")];
        let mut r = client
            .send("POST", "/mcp", &accept, Some(b"{}"))
            .await
            .unwrap();
        assert_eq!((r.status, r.session_id.as_deref()), (200, Some("abc")));
        assert_eq!(r.bytes().await.unwrap(), b"{\"a\":1}");
        let mut r = client.send("POST", "/mcp", &[], Some(b"{}")).await.unwrap();
        assert_eq!(r.content_type.as_deref(), Some("text/event-stream"));
        assert_eq!(r.bytes().await.unwrap(), b"data: 1\n");
        let mut r = client.send("POST", "/mcp", &[], Some(b"{}")).await.unwrap();
        assert_eq!(r.status, 202);
        assert!(r.bytes().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let url = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]).await;
        let client = Client::for_url(&url, None).unwrap();
        let mut r = client.send("POST", "/mcp", &[], Some(b"{}")).await.unwrap();
        assert!(r.bytes().await.is_err());
    }
}
