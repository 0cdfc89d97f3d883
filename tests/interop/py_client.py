"""Scripted MCP client over Streamable HTTP (PyPI `mcp==2.3.0`), for gateway interop tests.

Usage (run with $PYTHON_MCP from .interop/env.sh):
  py_client.py URL [--mode auto|legacy|2026-07-28] [--header 'K: V']... [--timeout S]
               [--list] [--call NAME [--args JSON]]
               [--sampling-reply TEXT] [--elicitation-accept JSON] [--progress]
Prints one JSON line per action: --list -> ["tool", ...];
--call -> {"content": [...], "isError": bool[, "structuredContent": ...][, "progress": [[p, total, msg], ...]]}.
A tool result with isError=true still exits 0 (it is in the JSON); any transport/protocol
failure prints "py_client: error: ..." on stderr and exits 1.
Once connected it prints "py_client: protocol VERSION (server NAME)" on stderr: the era the
client really settled on (with --mode auto: 2026-07-28 after a server/discover answer, else the
initialize handshake's version).
--sampling-reply / --elicitation-accept declare the client capabilities `sampling` /
`elicitation` (server-everything only lists trigger-sampling-request /
trigger-elicitation-request when they are declared).
"""
import argparse
import asyncio
import json
import sys

import mcp_types as types
from mcp import Client


def parse_args(argv, target_help=None):
    """Parse the shared options; with target_help, also a positional `target` (the URL)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if target_help:
        p.add_argument("target", help=target_help)
    p.add_argument("--mode", default="auto", help="auto | legacy | 2026-07-28")
    p.add_argument("--header", action="append", default=[], help="'Name: value' (HTTP only)")
    p.add_argument("--timeout", type=float, default=60.0, help="overall seconds")
    p.add_argument("--list", action="store_true", help="print tool names")
    p.add_argument("--call", metavar="NAME", help="call this tool")
    p.add_argument("--args", default="{}", help="tool arguments as a JSON object")
    p.add_argument("--sampling-reply", metavar="TEXT", help="answer sampling requests with TEXT")
    p.add_argument("--elicitation-accept", metavar="JSON", help="accept elicitations with this content")
    p.add_argument("--progress", action="store_true", help="record progress notifications")
    o = p.parse_args(argv)
    if not o.list and not o.call:
        p.error("nothing to do: give --list and/or --call NAME")
    return o


def client_kwargs(o):
    """Callbacks (and thereby client capabilities) requested on the command line."""
    kw = {"mode": o.mode}
    if o.sampling_reply is not None:
        async def sampling(ctx, params):
            print(f"py_client: sampling request: {len(params.messages)} message(s)", file=sys.stderr)
            return types.CreateMessageResult(
                role="assistant", model="py_client",
                content=types.TextContent(type="text", text=o.sampling_reply))
        kw["sampling_callback"] = sampling
    if o.elicitation_accept is not None:
        content = json.loads(o.elicitation_accept)

        async def elicitation(ctx, params):
            print(f"py_client: elicitation request: {params.message!r}", file=sys.stderr)
            return types.ElicitResult(action="accept", content=content)
        kw["elicitation_callback"] = elicitation
    return kw


async def run_actions(client, o):
    if o.list:
        tools = await client.list_tools()
        print(json.dumps([t.name for t in tools.tools]), flush=True)
    if o.call:
        progress = []

        async def on_progress(p, total, msg):
            progress.append([p, total, msg])
        res = await client.call_tool(o.call, json.loads(o.args),
                                     progress_callback=on_progress if o.progress else None)
        out = {"content": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in res.content],
               "isError": bool(res.is_error)}
        if res.structured_content is not None:
            out["structuredContent"] = res.structured_content
        if o.progress:
            out["progress"] = progress
        print(json.dumps(out), flush=True)


def describe(e):
    """Flatten (nested) exception groups into one readable line."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    return f"{type(e).__name__}: {e}"


def main_with(server_factory, o):
    async def go():
        async with server_factory() as server:
            async with Client(server, **client_kwargs(o)) as client:
                info = client.server_info
                print(f"py_client: protocol {client.protocol_version} (server {info.name if info else '?'})",
                      file=sys.stderr, flush=True)
                await run_actions(client, o)
    try:
        asyncio.run(asyncio.wait_for(go(), o.timeout))
    except (TimeoutError, asyncio.TimeoutError):
        sys.exit(f"py_client: error: timed out after {o.timeout}s")
    except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - report everything
        sys.exit(f"py_client: error: {describe(e)}")


def main():
    import contextlib

    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    o = parse_args(sys.argv[1:], "server URL, e.g. http://127.0.0.1:3001/mcp")
    headers = {}
    for h in o.header:
        k, sep, v = h.partition(":")
        if not sep:
            sys.exit(f"py_client: error: --header wants 'Name: value', got {h!r}")
        headers[k.strip()] = v.strip()

    @contextlib.asynccontextmanager
    async def server():
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
            yield streamable_http_client(o.target, http_client=http)
    main_with(server, o)


if __name__ == "__main__":
    main()
