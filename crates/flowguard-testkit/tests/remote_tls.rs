//! `https://` remote servers: a TLS-terminating proxy in the test, with a throwaway CA and
//! certificate made by the `openssl` CLI, in front of a second FlowGuard (so both Streamable
//! HTTP and HTTP+SSE run over TLS). With `ca_file` the calls work; without it the server fails
//! with an error naming the server, the URL and the certificate problem.

use flowguard_testkit::client::tool_text;
use flowguard_testkit::config::{fixture_server, quote};
use flowguard_testkit::{GatewayProcess, McpClient};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed to make test certificates (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=FlowGuard test CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec![
        "req",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "srv.csr",
    ];
    csr.extend(ec);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "cert.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// Terminates TLS on a free port of 127.0.0.1 and forwards the plain bytes to the port
/// `backend` holds once set, on a thread of its own (starting a gateway blocks the test's
/// thread). Returns the port.
fn tls_proxy(cert: &Path, key: &Path, backend: Arc<AtomicU16>) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return; // a client that refused our certificate
                    };
                    let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    });
    port
}

/// The backend: a second FlowGuard with the fixture, accepting the proxy's `Host`; and the
/// proxy in front of it.
fn backend_behind_tls(cert: &Path, key: &Path) -> (GatewayProcess, u16) {
    let backend_port = Arc::new(AtomicU16::new(0));
    let port = tls_proxy(cert, key, backend_port.clone());
    let config = format!(
        "[gateway]\nallowed_hosts = [\"127.0.0.1:{port}\"]\n\n{}",
        fixture_server("everything")
    );
    let backend = GatewayProcess::start(&config, "toml", &[]);
    backend_port.store(backend.port(), Ordering::SeqCst);
    (backend, port)
}

fn servers(port: u16, ca: Option<&Path>) -> String {
    let ca = ca.map_or(String::new(), |p| {
        format!("ca_file = {}\n", quote(&p.display().to_string()))
    });
    format!(
        "[servers.secure]\nurl = \"https://127.0.0.1:{port}/mcp/everything\"\n{ca}\n\
         [servers.secure_sse]\ntype = \"sse\"\nurl = \"https://127.0.0.1:{port}/mcp/everything/sse\"\n{ca}\n"
    )
}

#[tokio::test]
async fn https_remotes_work_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let (_backend, port) = backend_behind_tls(&cert, &key);
    let gw = GatewayProcess::start(&servers(port, Some(&ca)), "toml", &[]);
    for server in ["secure", "secure_sse"] {
        let client = McpClient::connect(&gw.url(&format!("/mcp/{server}")), json!({})).await;
        let reply = client.call_tool("test_simple_text", json!({})).await;
        assert!(
            tool_text(&reply).contains("simple text"),
            "{server}: {reply}"
        );
        let msgs = client
            .request(
                "tools/call",
                json!({"name": "test_tool_with_progress", "_meta": {"progressToken": 5}}),
            )
            .await;
        let progress = msgs
            .iter()
            .filter(|m| m["method"] == "notifications/progress");
        assert_eq!(progress.count(), 3, "{server}: {msgs:?}");
    }
}

#[tokio::test]
async fn an_unknown_ca_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = make_certs(dir.path());
    let (_backend, port) = backend_behind_tls(&cert, &key);
    let gw = GatewayProcess::start(&servers(port, None), "toml", &[]);
    let health = gw
        .wait_health(Duration::from_secs(15), |h| {
            h.to_string().matches("UnknownIssuer").count() >= 2
        })
        .await;
    let text = health.to_string();
    assert!(
        text.contains(&format!("https://127.0.0.1:{port}/mcp/everything")),
        "{text}"
    );
    assert!(text.contains("set `ca_file`"), "{text}");
    let log = gw.stderr_text();
    assert!(
        log.contains("secure") && log.contains("invalid peer certificate"),
        "{log}"
    );
}
