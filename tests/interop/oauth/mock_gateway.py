"""A stand-in for FlowGuard's OAuth resource-server mode, to test the test harness itself.

NOT the gateway. It implements the behaviour tests/interop/oauth/run.sh expects from FlowGuard,
so that run.sh, provider.mjs, token.mjs and py_oauth_client.py can be shown to work before the
gateway does (`run.sh --self-test`). Invoked like the gateway (through the `mock-flowguard`
wrapper): `mock-flowguard -c cfg.toml [--listen 127.0.0.1:PORT]`; prints
`listening on http://127.0.0.1:PORT` on stderr.

From the config it reads [gateway] listen, [auth.oauth] resource / authorization_servers /
scopes / leeway, and [servers.NAME] command + args: each server whose args end in "stdio"
(server-everything) is started instead in its `streamableHttp` mode on a free loopback port, and
/mcp/NAME is proxied to its /mcp. Behaviour:
  /.well-known/oauth-protected-resource[/mcp[/NAME]]  RFC 9728 JSON: resource,
        authorization_servers, scopes_supported, bearer_methods_supported ["header"]
  /mcp/NAME without a bearer token -> 401, WWW-Authenticate: Bearer
        resource_metadata="http://HOST/.well-known/oauth-protected-resource/mcp/NAME", scope="..."
  access_token in the query string -> 400 error="invalid_request"
  bad token (signature / unknown kid / aud / iss / exp with `leeway`) -> 401 error="invalid_token"
  token lacking a required scope -> 403 error="insufficient_scope", scope="..."
  JWKS: from the issuer's discovery document (RFC 8414 URL, then OpenID), refetched on an
        unknown kid (at most once a second), so a key rotation needs no restart.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
HOP = {"host", "authorization", "content-length", "connection", "transfer-encoding", "keep-alive"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jwks:
    """Keys of one issuer by kid; refetched on an unknown kid, at most once a second."""

    def __init__(self, url):
        self.url, self.keys, self.fetched, self.lock = url, {}, 0.0, threading.Lock()
        self.fetch()

    def fetch(self):
        with urllib.request.urlopen(self.url, timeout=5) as r:
            jwk_set = jwt.PyJWKSet.from_dict(json.load(r))
        self.keys = {k.key_id: k for k in jwk_set.keys}
        self.fetched = time.monotonic()

    def key_for(self, token):
        kid = jwt.get_unverified_header(token).get("kid")
        with self.lock:
            if kid not in self.keys and time.monotonic() - self.fetched > 1.0:
                self.fetch()
            if kid not in self.keys:
                raise jwt.InvalidKeyError(f"unknown kid {kid}")
            return self.keys[kid]


def parse_duration(v):
    if v is None:
        return 30.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(v).strip())
    if not m:
        raise SystemExit(f"mock_gateway: bad duration {v!r}")
    n, unit = float(m.group(1)), m.group(2) or "s"
    return n / 1000 if unit == "ms" else n * 60 if unit == "m" else n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-c", "--config", required=True)
    p.add_argument("--listen")
    o = p.parse_args()
    with open(o.config, "rb") as f:
        cfg = tomllib.load(f)
    listen = o.listen or cfg.get("gateway", {}).get("listen", "127.0.0.1:0")
    host, _, port = listen.rpartition(":")
    oauth = cfg.get("auth", {}).get("oauth")
    if not oauth:
        raise SystemExit("mock_gateway: no [auth.oauth]")
    resource = oauth["resource"]
    servers_as = oauth["authorization_servers"]
    scopes = oauth.get("scopes", [])
    leeway = parse_duration(oauth.get("leeway"))

    # JWKS clients, one per authorization server, found through discovery.
    jwks_clients = {}
    for iss in servers_as:
        base = iss.rstrip("/")
        meta = None
        for url in (f"{base}/.well-known/oauth-authorization-server", f"{base}/.well-known/openid-configuration"):
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    meta = json.load(r)
                    break
            except OSError:
                continue
        if not meta:
            raise SystemExit(f"mock_gateway: no metadata for {iss}")
        jwks_clients[meta["issuer"]] = Jwks(meta["jwks_uri"])

    # Upstreams: stdio servers re-started in their Streamable HTTP mode.
    procs, upstreams = [], {}
    for name, srv in cfg.get("servers", {}).items():
        args = list(srv.get("args", []))
        if not args or args[-1] != "stdio":
            raise SystemExit(f"mock_gateway: server {name}: only `... stdio` servers (server-everything) supported")
        up = free_port()
        cmd = [srv["command"], "--require", os.path.join(HERE, "..", "loopback.cjs"), *args[:-1], "streamableHttp"]
        procs.append(subprocess.Popen(cmd, env={**os.environ, "PORT": str(up)}, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
        upstreams[name] = up
    for up in upstreams.values():
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", up), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit(f"mock_gateway: upstream on {up} did not start")
                time.sleep(0.1)

    def stop(*_):
        for pr in procs:
            try:
                os.killpg(pr.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    class H(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            print("mock_gateway: " + fmt % a, file=sys.stderr, flush=True)

        def origin(self):
            return f"http://{self.headers.get('Host') or listen}"

        def send_json(self, code, body, extra=None):
            data = json.dumps(body).encode()
            self.send_response(code)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def challenge(self, code, path, error=None, desc=None):
            parts = []
            if error:
                parts.append(f'error="{error}"')
            if desc:
                parts.append(f'error_description="{desc}"')
            parts.append(f'resource_metadata="{self.origin()}/.well-known/oauth-protected-resource{path}"')
            if scopes:
                parts.append(f'scope="{" ".join(scopes)}"')
            body = {"error": error or "unauthorized"}
            self.send_json(code, body, {"WWW-Authenticate": "Bearer " + ", ".join(parts)})

        def handle_any(self):
            u = urlsplit(self.path)
            path = u.path
            if path == "/.well-known/oauth-protected-resource" or path.startswith("/.well-known/oauth-protected-resource/mcp"):
                if self.command != "GET":
                    return self.send_json(405, {"error": "method not allowed"})
                return self.send_json(200, {"resource": resource, "authorization_servers": servers_as,
                                            "scopes_supported": scopes, "bearer_methods_supported": ["header"]})
            m = re.fullmatch(r"/mcp/([^/]+)(/.*)?", path)
            if not m or m.group(1) not in upstreams:
                return self.send_json(404, {"error": "not found"})
            if "access_token" in parse_qs(u.query):
                return self.challenge(400, path, "invalid_request", "access tokens are not accepted in the query string")
            authz = self.headers.get("Authorization", "")
            if not authz.lower().startswith("bearer "):
                return self.challenge(401, path)
            token = authz[7:].strip()
            try:
                iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
                if iss not in jwks_clients:
                    raise jwt.InvalidIssuerError(f"unknown issuer {iss}")
                key = jwks_clients[iss].key_for(token)
                claims = jwt.decode(token, key.key, algorithms=["RS256", "PS256", "ES256"], audience=resource,
                                    issuer=iss, leeway=leeway, options={"require": ["exp", "aud", "iss"]})
            except (jwt.PyJWTError, OSError) as e:
                return self.challenge(401, path, "invalid_token", type(e).__name__)
            have = set(str(claims.get("scope", "")).split())
            if not set(scopes) <= have:
                return self.challenge(403, path, "insufficient_scope", "missing scope")
            self.proxy(upstreams[m.group(1)], "/mcp" + (m.group(2) or "") + (f"?{u.query}" if u.query else ""))

        def proxy(self, up, target):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn = http.client.HTTPConnection("127.0.0.1", up, timeout=300)
            conn.request(self.command, target, body=body, headers=headers)
            r = conn.getresponse()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in HOP:
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                while True:
                    chunk = r.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except OSError:
                pass
            finally:
                conn.close()
                self.close_connection = True

        do_GET = do_POST = do_DELETE = do_PUT = handle_any

    srv = ThreadingHTTPServer((host, int(port)), H)
    srv.daemon_threads = True
    print(f"listening on http://{host}:{srv.server_address[1]}", file=sys.stderr, flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
