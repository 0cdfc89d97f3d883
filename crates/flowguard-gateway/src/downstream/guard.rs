//! DNS-rebinding protection: the `Host` header must name this gateway and a browser's `Origin`
//! must be one of its own addresses (or configured). Runs before anything else, so a page on
//! another site cannot reach a local gateway through the victim's browser.

use std::net::SocketAddr;

use crate::error::Rejection;

#[derive(Debug, Clone)]
pub struct HostGuard {
    /// Accepted `Host` values (lower case, with and without port); empty = any.
    hosts: Vec<String>,
    origins: Vec<String>,
    any_origin: bool,
}

impl HostGuard {
    /// Loopback binds accept only loopback names; other binds accept any Host unless
    /// `allowed_hosts` is set, since their public name is not known here.
    pub fn new(listen: SocketAddr, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let port = listen.port();
        let mut hosts: Vec<String> = Vec::new();
        if listen.ip().is_loopback() {
            for name in ["127.0.0.1", "localhost", "[::1]"] {
                hosts.push(format!("{name}:{port}"));
                hosts.push(name.to_string());
            }
        }
        if !hosts.is_empty() || !allowed_hosts.is_empty() {
            hosts.extend(allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
        }
        HostGuard {
            hosts,
            origins: allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            any_origin: allowed_origins.iter().any(|o| o == "*"),
        }
    }

    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), Rejection> {
        if !self.hosts.is_empty() {
            let host = host.unwrap_or("");
            // `hosts` are lower case; no allocation on this per-request check.
            if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
                return Err(Rejection::Forbidden(format!(
                    "Host {host:?} is not this gateway's; add it to gateway.allowed_hosts if it is"
                )));
            }
        }
        if let Some(origin) = origin {
            let o = origin.trim_end_matches('/').to_ascii_lowercase();
            let host_part = o.split_once("://").map_or("", |(_, h)| h);
            let own = !self.hosts.is_empty() && self.hosts.iter().any(|h| h == host_part);
            if !(self.any_origin || own || self.origins.contains(&o)) {
                return Err(Rejection::Forbidden(format!(
                    "Origin {origin:?} is not allowed; add it to gateway.allowed_origins to let that page in"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_gateway_refuses_foreign_hosts_and_origins() {
        let g = HostGuard::new("127.0.0.1:3000".parse().unwrap(), &[], &[]);
        assert!(g.check(Some("127.0.0.1:3000"), None).is_ok());
        assert!(g
            .check(Some("localhost:3000"), Some("http://localhost:3000"))
            .is_ok());
        assert!(g.check(Some("evil.example.com"), None).is_err());
        assert!(g
            .check(Some("127.0.0.1:3000"), Some("http://evil.example.com"))
            .is_err());
        let g = HostGuard::new(
            "127.0.0.1:3000".parse().unwrap(),
            &[],
            &["https://app.example".into()],
        );
        assert!(g
            .check(Some("127.0.0.1:3000"), Some("https://app.example"))
            .is_ok());
    }

    #[test]
    fn public_bind_checks_hosts_only_when_configured() {
        let g = HostGuard::new("0.0.0.0:80".parse().unwrap(), &[], &[]);
        assert!(g.check(Some("anything"), None).is_ok());
        assert!(g.check(Some("anything"), Some("http://x")).is_err());
        let g = HostGuard::new("0.0.0.0:80".parse().unwrap(), &["mcp.example".into()], &[]);
        assert!(g
            .check(Some("mcp.example"), Some("http://mcp.example"))
            .is_ok());
        assert!(g.check(Some("other"), None).is_err());
    }
}
