//! Checks of single values: server ids, listen addresses, URLs, headers, mounts.
//!
//! Each returns a plain message; the caller adds the config path and the file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::Mount;

/// Ids that cannot be servers because the gateway uses them for its own endpoints.
pub(crate) const RESERVED_IDS: [&str; 2] = ["health", "close"];

/// An id is used in URLs (`/mcp/<id>`) and tool prefixes, so it is kept to `[A-Za-z0-9_-]+`.
pub(crate) fn check_server_id(id: &str, separator: &str) -> Result<(), String> {
    check_endpoint_name("server id", id, separator)
}

/// The rules of server ids for any name that becomes `/mcp/<name>`; `what` names it in
/// messages ("server id", "virtual server name").
pub(crate) fn check_endpoint_name(what: &str, id: &str, separator: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} is empty; use letters, digits, `_` and `-`"));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "{what} `{id}` contains `{bad}`; only letters, digits, `_` and `-` are allowed"
        ));
    }
    if id.contains(separator) {
        return Err(format!(
            "{what} `{id}` contains the tool name separator `{separator}`; rename it or change \
             gateway separator"
        ));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(format!(
            "{what} `{id}` is reserved for the gateway's own endpoint; choose another name"
        ));
    }
    Ok(())
}

/// `host:port` with an IP address (IPv6 in brackets); `localhost:PORT` means 127.0.0.1.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let expected = "expected host:port with an IP address, like \"127.0.0.1:3000\", \
                    \"localhost:3000\" or \"[::1]:3000\"";
    if let Some(port) = text.strip_prefix("localhost:") {
        let port: u16 = port
            .parse()
            .map_err(|_| format!("invalid port in \"{text}\"; {expected}"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse()
        .map_err(|_| format!("invalid listen address \"{text}\"; {expected}"))
}

/// The address for the mcpServers shape's `port` and optional `domain`.
pub(crate) fn listen_from_port(port: u64, domain: Option<&str>) -> Result<SocketAddr, String> {
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range 0-65535"))?;
    let ip = match domain {
        None | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(domain) => domain
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("domain \"{domain}\" is not an IP address or `localhost`"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// `http://` or `https://` with a non-empty host and, if given, a numeric port.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("\"{url}\" is not an http:// or https:// URL"))?;
    if url.chars().any(char::is_whitespace) {
        return Err(format!("\"{url}\" contains whitespace"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return Err(format!("\"{url}\" has an unclosed `[` in its host")),
        },
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    if host.is_empty() {
        return Err(format!("\"{url}\" has no host"));
    }
    if let Some(port) = port {
        port.parse::<u16>()
            .map_err(|_| format!("\"{url}\" has an invalid port `{port}`"))?;
    }
    Ok(())
}

/// Header names are HTTP tokens; values must not contain line breaks (header injection).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("`{name}` is not a valid HTTP header name"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(format!(
            "the value of header `{name}` contains a line break or NUL"
        ));
    }
    Ok(())
}

/// Environment variable names must be non-empty and free of `=` and NUL.
pub(crate) fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(format!("`{name}` is not a valid environment variable name"));
    }
    Ok(())
}

/// `host:container[:mode]`, both absolute, mode `ro` (the default: safer) or `rw`.
pub(crate) fn parse_mount(spec: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, mode) = match parts.as_slice() {
        [host, container] => (*host, *container, "ro"),
        [host, container, mode] => (*host, *container, *mode),
        _ => {
            return Err(format!(
                "mount \"{spec}\" is not \"/host/path:/container/path[:ro|rw]\""
            ))
        }
    };
    for (what, path) in [("host", host), ("container", container)] {
        if !Path::new(path).is_absolute() {
            return Err(format!(
                "mount \"{spec}\": the {what} path `{path}` must be absolute"
            ));
        }
    }
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        other => {
            return Err(format!(
                "mount \"{spec}\": mode `{other}` is not `ro` or `rw`"
            ))
        }
    };
    Ok(Mount {
        host: PathBuf::from(host),
        container: PathBuf::from(container),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_are_restricted() {
        assert!(check_server_id("git-hub_2", "___").is_ok());
        assert!(check_server_id("", "___").unwrap_err().contains("empty"));
        assert!(check_server_id("a.b", "___").unwrap_err().contains("`.`"));
        assert!(check_server_id("a___b", "___")
            .unwrap_err()
            .contains("separator"));
        assert!(check_server_id("a-b", "-")
            .unwrap_err()
            .contains("separator"));
        assert!(check_server_id("health", "___")
            .unwrap_err()
            .contains("reserved"));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("localhost:3000").unwrap(),
            "127.0.0.1:3000".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(parse_listen("example.com:80").is_err());
        assert!(parse_listen("127.0.0.1").is_err());
        assert_eq!(
            listen_from_port(8000, None).unwrap(),
            "127.0.0.1:8000".parse().unwrap()
        );
        assert_eq!(
            listen_from_port(80, Some("0.0.0.0")).unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            listen_from_port(80, Some("[::1]")).unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(listen_from_port(70000, None).is_err());
        assert!(listen_from_port(80, Some("example.com")).is_err());
    }

    #[test]
    fn urls_and_headers() {
        assert!(check_url("http://127.0.0.1:9000/mcp").is_ok());
        assert!(check_url("https://user@[::1]/mcp?x=1").is_ok());
        assert!(check_url("ftp://x").unwrap_err().contains("http://"));
        assert!(check_url("http:///mcp").unwrap_err().contains("no host"));
        assert!(check_url("http://h:port/").unwrap_err().contains("port"));
        assert!(check_header("Authorization", "Bearer x").is_ok());
        assert!(check_header("Bad Name", "x").is_err());
        assert!(check_header("X", "a\r\nInjected: 1").is_err());
    }

    #[test]
    fn mounts_parse_with_read_only_default() {
        let mount = parse_mount("/data:/srv/data").unwrap();
        assert!(mount.read_only);
        assert_eq!(mount.host, PathBuf::from("/data"));
        assert!(!parse_mount("/a:/b:rw").unwrap().read_only);
        assert!(parse_mount("data:/b")
            .unwrap_err()
            .contains("host path `data` must be absolute"));
        assert!(parse_mount("/a:b").unwrap_err().contains("container path"));
        assert!(parse_mount("/a:/b:rx").unwrap_err().contains("mode `rx`"));
        assert!(parse_mount("/a").unwrap_err().contains("/host/path"));
        assert!(parse_mount("/a:/b:ro:x").is_err());
    }
}
