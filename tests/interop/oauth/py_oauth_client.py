"""OAuth-protected MCP endpoint, reached by the Python MCP SDK (PyPI `mcp==2.3.0`) on its own.

Usage (run with $PYTHON_MCP from .interop/env.sh):
  py_oauth_client.py URL TOOL [ARGS_JSON] [--issuer ISSUER] [--client-id fg-test]
                     [--client-secret fg-test-secret] [--auth-method client_secret_basic|client_secret_post]
                     [--scope S] [--mode auto|legacy|2026-07-28] [--timeout S] [--allow-no-auth]

The SDK's own OAuth path does all the work: `mcp.client.auth.extensions.client_credentials.
ClientCredentialsOAuthProvider` (an httpx2.Auth) on the httpx2 client of the Streamable HTTP
transport. The first request goes out without a token; on the 401 the SDK reads
`resource_metadata` from WWW-Authenticate, fetches that RFC 9728 document (falling back to
/.well-known/oauth-protected-resource/<path> and the root form), picks the authorization
server from it, fetches the AS metadata (RFC 8414 URL first, then OpenID discovery), posts
grant_type=client_credentials with resource = the PRM's `resource` and scope = the challenge's
`scope`, and retries with the bearer token. Then this script initializes, lists tools and calls
TOOL with ARGS_JSON (default {}).

--issuer: the authorization server the client credentials belong to (the SDK then refuses to
send them to any other server the PRM might name); without it the SDK takes the PRM's first one.

Prints JSON lines on stdout, one per HTTP exchange and per step:
  {"event": "http", "method", "url", "status", "bearer": bool, ...}   (+ www_authenticate, body of
                                                                      metadata/token responses, form
                                                                      of token requests, secrets redacted)
  {"event": "token", "header": {...}, "claims": {...}}   the access token the SDK obtained, decoded
  {"event": "connected", "protocol": ..., "server": ...}
  {"event": "tools", "names": [...]}
  {"event": "call", "tool": ..., "result": {...}}
  {"event": "summary", "ok": bool, ...}
Exit 0 only when a 401 was answered by the OAuth flow (unless --allow-no-auth), a token was
obtained, the tool was listed and called, and its result is not isError. Else 1, reason on stderr.
"""
import argparse
import asyncio
import base64
import json
import sys
import warnings
from urllib.parse import parse_qsl, urlparse

import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken


def emit(**kw):
    print(json.dumps(kw), flush=True)


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


def decode_jwt(token: str):
    def part(s):
        return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    try:
        h, p, _ = token.split(".")
        return part(h), part(p)
    except Exception:  # noqa: BLE001 - an opaque token is reported as such
        return None, None


def describe(e):
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="MCP endpoint, e.g. http://127.0.0.1:G/mcp/everything")
    p.add_argument("tool")
    p.add_argument("args", nargs="?", default="{}", help="tool arguments, a JSON object")
    p.add_argument("--issuer")
    p.add_argument("--client-id", default="fg-test")
    p.add_argument("--client-secret", default="fg-test-secret")
    p.add_argument("--auth-method", default="client_secret_basic",
                   choices=["client_secret_basic", "client_secret_post"])
    p.add_argument("--scope", help="scope to ask for when the challenge names none (the challenge's wins)")
    p.add_argument("--mode", default="auto", help="auto | legacy | 2026-07-28")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--allow-no-auth", action="store_true", help="succeed even if the server never asked for a token")
    o = p.parse_args()
    tool_args = json.loads(o.args)

    seen = {"got_401": False, "www_authenticate": None, "prm_urls": [], "asm_urls": [],
            "token_requests": 0, "bearer_requests": 0}
    storage = MemoryStorage()

    async def on_request(req: httpx2.Request):
        bearer = req.headers.get("authorization", "").lower().startswith("bearer ")
        seen["bearer_requests"] += bearer
        path = req.url.path
        if "/.well-known/oauth-protected-resource" in path:
            seen["prm_urls"].append(str(req.url))
        elif "/.well-known/" in path:
            seen["asm_urls"].append(str(req.url))
        if req.method == "POST" and req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            seen["token_requests"] += 1
            form = {k: ("<redacted>" if "secret" in k else v) for k, v in parse_qsl(req.content.decode())}
            basic = req.headers.get("authorization", "").lower().startswith("basic ")
            emit(event="token_request", url=str(req.url), form=form, basic_auth=basic)

    async def on_response(resp: httpx2.Response):
        req = resp.request
        rec = {"event": "http", "method": req.method, "url": str(req.url), "status": resp.status_code,
               "bearer": req.headers.get("authorization", "").lower().startswith("bearer ")}
        if resp.status_code in (401, 403):
            rec["www_authenticate"] = resp.headers.get("www-authenticate")
            if resp.status_code == 401 and not seen["got_401"]:
                seen["got_401"] = True
                seen["www_authenticate"] = rec["www_authenticate"]
        ctype = resp.headers.get("content-type", "")
        is_token = req.method == "POST" and req.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded")
        if ("/.well-known/" in req.url.path or is_token) and ctype.startswith("application/json"):
            await resp.aread()
            try:
                body = resp.json()
                if isinstance(body, dict) and "access_token" in body:
                    body = {**body, "access_token": body["access_token"][:16] + "..."}
                if "/.well-known/" in req.url.path and "/oauth-protected-resource" not in req.url.path:
                    keep = ("issuer", "token_endpoint", "jwks_uri", "registration_endpoint", "scopes_supported",
                            "grant_types_supported", "token_endpoint_auth_methods_supported")
                    body = {k: body[k] for k in keep if k in body}
                rec["body"] = body
            except ValueError:
                pass
        emit(**rec)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MCPDeprecationWarning when --issuer is omitted
        auth = ClientCredentialsOAuthProvider(
            server_url=o.url, storage=storage, client_id=o.client_id, client_secret=o.client_secret,
            token_endpoint_auth_method=o.auth_method, scope=o.scope, issuer=o.issuer)

    result = {}

    async def go():
        async with httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(15, read=60),
                                      event_hooks={"request": [on_request], "response": [on_response]}) as http:
            async with Client(streamable_http_client(o.url, http_client=http), mode=o.mode) as client:
                info = client.server_info
                emit(event="connected", protocol=client.protocol_version, server=info.name if info else None)
                if storage.tokens is not None:
                    header, claims = decode_jwt(storage.tokens.access_token)
                    emit(event="token", token_type=storage.tokens.token_type, scope=storage.tokens.scope,
                         expires_in=storage.tokens.expires_in, header=header, claims=claims)
                tools = await client.list_tools()
                names = [t.name for t in tools.tools]
                emit(event="tools", names=names)
                result["listed"] = o.tool in names
                res = await client.call_tool(o.tool, tool_args)
                out = {"content": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in res.content],
                       "isError": bool(res.is_error)}
                emit(event="call", tool=o.tool, result=out)
                result["call_ok"] = not res.is_error

    error = None
    try:
        asyncio.run(asyncio.wait_for(go(), o.timeout))
    except (TimeoutError, asyncio.TimeoutError):
        error = f"timed out after {o.timeout}s"
    except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - report everything
        error = describe(e)

    problems = []
    if error:
        problems.append(error)
    if not o.allow_no_auth and not seen["got_401"]:
        problems.append("the server never answered 401: no OAuth flow happened")
    if not o.allow_no_auth and storage.tokens is None:
        problems.append("no access token obtained")
    if not error and not result.get("listed"):
        problems.append(f"tool {o.tool!r} not listed")
    if not error and not result.get("call_ok"):
        problems.append(f"tool {o.tool!r} returned isError")
    emit(event="summary", ok=not problems, problems=problems, got_401=seen["got_401"],
         www_authenticate=seen["www_authenticate"], prm_urls=seen["prm_urls"], asm_urls=seen["asm_urls"],
         token_requests=seen["token_requests"], bearer_requests=seen["bearer_requests"],
         host=urlparse(o.url).netloc)
    if problems:
        print(f"py_oauth_client: error: {'; '.join(problems)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
