"""A minimal OTLP/HTTP trace receiver for the interop tests (tests/interop/observe/run.sh).

    $OTEL_PYTHON otlp_receiver.py OUT.jsonl [PORT]

Listens on 127.0.0.1:PORT (default 0: a free port) and prints the port, alone on one line, on
stdout once it accepts connections. POST /v1/traces with Content-Type application/x-protobuf
(optionally Content-Encoding gzip, Content-Length or chunked): the body is decoded as an
opentelemetry.proto ExportTraceServiceRequest, one JSON line per span is appended to OUT.jsonl
    {"trace_id": hex, "span_id": hex, "parent_span_id": hex or "", "name": str, "kind": int,
     "start": ns, "end": ns, "attributes": {key: str|int|bool|float|list|dict}, "status": int,
     "resource": {"service.name": ..., ...}, "scope": str}
and the answer is 200 with an empty ExportTraceServiceResponse (protobuf). A body that does not
decode gets 400 (a line on stderr says why); another Content-Type 415; another path 404. One
line per request on stderr. Stops on SIGTERM / SIGINT.
"""

import gzip
import json
import signal
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MAX_BODY = 64 * 1024 * 1024


def log(msg):
    print(f"otlp_receiver: {msg}", file=sys.stderr, flush=True)


def any_value(v):
    """An AnyValue as a JSON value (str / int / bool / float; arrays and kvlists nested)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def span_lines(req):
    for rs in req.resource_spans:
        resource = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for sp in ss.spans:
                yield {
                    "trace_id": sp.trace_id.hex(),
                    "span_id": sp.span_id.hex(),
                    "parent_span_id": sp.parent_span_id.hex(),
                    "name": sp.name,
                    "kind": int(sp.kind),
                    "start": sp.start_time_unix_nano,
                    "end": sp.end_time_unix_nano,
                    "attributes": attrs(sp.attributes),
                    "status": int(sp.status.code),
                    "resource": resource,
                    "scope": ss.scope.name,
                }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as OTLP exporters expect; every reply has a length
    server_version = "flowguard-otlp-receiver"

    def log_message(self, fmt, *args):  # the default logs every request again; ours is enough
        pass

    def reply(self, code, body=b"", ctype="application/x-protobuf"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n)

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        try:
            body = self.read_body()
        except (ValueError, OSError) as e:
            log(f"POST {path}: unreadable body: {e}")
            self.close_connection = True
            self.reply(400, f"unreadable body: {e}\n".encode(), "text/plain")
            return
        if path != "/v1/traces":
            log(f"POST {path}: 404 (only /v1/traces)")
            self.reply(404, b"not found\n", "text/plain")
            return
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-protobuf":
            log(f"POST {path}: 415 Content-Type {ctype!r} (only application/x-protobuf)")
            self.reply(415, b"only application/x-protobuf\n", "text/plain")
            return
        enc = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            if enc == "gzip":
                body = gzip.decompress(body)
            elif enc == "deflate":
                body = zlib.decompress(body)
            elif enc not in ("", "identity"):
                raise ValueError(f"unsupported Content-Encoding {enc!r}")
            req = ExportTraceServiceRequest.FromString(body)
        except (DecodeError, ValueError, OSError, EOFError, zlib.error) as e:
            log(f"POST {path}: 400: body ({len(body)} bytes) is not an ExportTraceServiceRequest: {e}")
            self.reply(400, b"not an ExportTraceServiceRequest\n", "text/plain")
            return
        lines = list(span_lines(req))
        with self.server.out_lock:
            with open(self.server.out_path, "a", encoding="utf-8") as f:
                for line in lines:
                    f.write(json.dumps(line, sort_keys=True) + "\n")
        log(f"POST {path}: {len(lines)} span(s): " + ", ".join(f"{s['name']!r}" for s in lines)[:300])
        self.reply(200, ExportTraceServiceResponse().SerializeToString())

    def do_GET(self):
        self.reply(405 if self.path.split("?", 1)[0] == "/v1/traces" else 404, b"", "text/plain")


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: otlp_receiver.py OUT.jsonl [PORT]", file=sys.stderr)
        sys.exit(2)
    out_path = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 0
    open(out_path, "a").close()
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.out_path = out_path
    srv.out_lock = threading.Lock()

    def stop(signum, _frame):
        log(f"signal {signum}: stopping")
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(srv.server_address[1], flush=True)
    log(f"listening on http://127.0.0.1:{srv.server_address[1]}/v1/traces, spans to {out_path}")
    srv.serve_forever()
    srv.server_close()


if __name__ == "__main__":
    main()
