"""NOT the gateway: a stand-in with the behaviour run.sh expects, for `run.sh --self-test`.

    $OTEL_PYTHON mock_gateway.py --config FILE

Reads [gateway] listen and [tracing] otlp_endpoint / service_name from the TOML config (the
[servers.*] commands are not run: it answers the `fake` tools `echo` and `meta` itself). Serves
POST /mcp/<server> (initialize with an Mcp-Session-Id, notifications -> 202, tools/call answered
as an SSE stream), GET /metrics (flowguard_tool_calls_total in the Prometheus text format), and
POST /close. Each tools/call with a valid `traceparent` header makes a root span `tools/call
TOOL` (its parent: the caller's span) and a child `upstream tools/call`, exported as OTLP/HTTP
protobuf about 1 s later (as a batching exporter would); `meta` answers the JSON of the
`params._meta` it would forward ({"traceparent": "00-TRACE-ROOTSPAN-01"}).
MOCK_BREAK=metrics,promtool,traces,meta (any of them) breaks that part, to see the harness fail.
"""

import json
import os
import re
import secrets
import sys
import threading
import time
import tomllib
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

BREAK = set(filter(None, os.environ.get("MOCK_BREAK", "").split(",")))
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def kv(key, value):
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


class Gateway:
    def __init__(self, cfg):
        self.listen = cfg["gateway"]["listen"]
        tracing = cfg.get("tracing", {})
        self.endpoint = tracing.get("otlp_endpoint")
        self.service = tracing.get("service_name", "flowguard")
        self.calls = {}
        self.lock = threading.Lock()

    def count(self, server, tool):
        key = (server, tool, "allow", "observe-curl")
        with self.lock:
            self.calls[key] = self.calls.get(key, 0) + 1

    def metrics(self):
        name = "flowguard_tool_calls" if "promtool" in BREAK else "flowguard_tool_calls_total"
        out = [f"# HELP {name} Tool calls through the gateway, by decision.", f"# TYPE {name} counter"]
        with self.lock:
            for (server, tool, decision, client), n in sorted(self.calls.items()):
                if "metrics" in BREAK:
                    n += 1
                out.append(f'{name}{{client="{client}",decision="{decision}",server="{server}",tool="{tool}"}} {n}')
        return ("\n".join(out) + "\n").encode()

    def export(self, spans):
        if not self.endpoint or "traces" in BREAK:
            return
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(kv("service.name", self.service))
        ss = rs.scope_spans.add()
        ss.scope.name = "mock-flowguard"
        ss.spans.extend(spans)
        time.sleep(1)
        try:
            r = urllib.request.urlopen(urllib.request.Request(
                self.endpoint, data=req.SerializeToString(), method="POST",
                headers={"Content-Type": "application/x-protobuf"}), timeout=5)
            print(f"mock-flowguard: exported {len(spans)} spans: HTTP {r.status}", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001 - a test stand-in: report and go on
            print(f"mock-flowguard: export failed: {e}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body=b"", ctype="application/json", headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/metrics":
            self.reply(200, GW.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self.reply(404, b"")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/close":
            self.reply(200, b"")
            threading.Thread(target=SRV.shutdown, daemon=True).start()
            return
        m = re.match(r"^/mcp/([^/?]+)$", self.path)
        if not m:
            self.reply(404, b"")
            return
        server = m.group(1)
        msg = json.loads(body)
        method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
        if mid is None:
            self.reply(202, b"")
            return
        if method == "initialize":
            result = {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                      "capabilities": {"tools": {}}, "serverInfo": {"name": "mock-flowguard", "version": "0"}}
            self.reply(200, json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}).encode(),
                       headers=[("Mcp-Session-Id", secrets.token_hex(16))])
            return
        if method != "tools/call":
            self.reply(200, json.dumps({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no"}}).encode())
            return
        tool, args = params.get("name"), params.get("arguments") or {}
        start = time.time_ns()
        tp = TRACEPARENT.match(self.headers.get("traceparent", ""))
        trace_id, parent = (bytes.fromhex(tp.group(1)), bytes.fromhex(tp.group(2))) if tp else (secrets.token_bytes(16), b"")
        root_id, child_id = secrets.token_bytes(8), secrets.token_bytes(8)
        meta = dict(params.get("_meta") or {})
        meta["traceparent"] = f"00-{trace_id.hex()}-{child_id.hex()}-01"
        if "meta" in BREAK:
            meta = {}
        GW.count(server, tool)
        if tool == "echo":
            text = str(args.get("message", ""))
        elif tool == "meta":
            text = json.dumps(meta)
        else:
            text = f"unknown tool {tool}"
        reply = {"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": text}]}}
        self.reply(200, f"event: message\ndata: {json.dumps(reply)}\n\n".encode(), "text/event-stream")
        end = time.time_ns()
        root = Span(trace_id=trace_id, span_id=root_id, parent_span_id=parent, name=f"tools/call {tool}",
                    kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=start, end_time_unix_nano=end,
                    attributes=[kv("mcp.server", server), kv("mcp.tool", tool)])
        root.status.code = Status.STATUS_CODE_OK
        child = Span(trace_id=trace_id, span_id=child_id, parent_span_id=root_id, name="upstream tools/call",
                     kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start + 1, end_time_unix_nano=end - 1)
        threading.Thread(target=GW.export, args=([root, child],), daemon=True).start()


def main():
    args = sys.argv[1:]
    cfg_path = None
    for i, a in enumerate(args):
        if a in ("--config", "-c") and i + 1 < len(args):
            cfg_path = args[i + 1]
    if not cfg_path:
        print("usage: mock_gateway.py --config FILE", file=sys.stderr)
        sys.exit(2)
    with open(cfg_path, "rb") as f:
        cfg = tomllib.load(f)
    global GW, SRV
    GW = Gateway(cfg)
    host, port = GW.listen.rsplit(":", 1)
    SRV = ThreadingHTTPServer((host, int(port)), Handler)
    SRV.daemon_threads = True
    print(f"mock-flowguard (NOT the gateway); MOCK_BREAK={','.join(sorted(BREAK)) or 'none'}", file=sys.stderr)
    print(f"Listening on http://{host}:{SRV.server_address[1]}", file=sys.stderr, flush=True)
    SRV.serve_forever()


GW = SRV = None
if __name__ == "__main__":
    main()
