#!/usr/bin/env bash
# tests/interop/observe/run.sh: FlowGuard's metrics and traces checked by real parts: promtool,
# a real Prometheus scraping the gateway, and an OTLP/HTTP receiver decoding its trace exports
# with opentelemetry-proto (otlp_receiver.py). See README.md beside this file.
#
# Usage: tests/interop/observe/run.sh FLOWGUARD_BIN FAKE_BIN
#        tests/interop/observe/run.sh --self-test      (FLOWGUARD_BIN = ./mock-flowguard, a
#                                                      stand-in that checks the harness itself)
#   FAKE_BIN: the testkit's `fake` stdio server (tools `echo` and `meta`), as [servers.fake].
#   Env: OBSERVE_CALLS (echo calls counted, default 3), KEEP_WORK=1 (keep the work directory).
# Needs scripts/setup-interop.sh to have run (.interop/env.sh with OTEL_PYTHON, PROMETHEUS_BIN,
# PROMTOOL_BIN). Prints `PASS name` / `FAIL name: why` per check and `observe: N passed, M failed`;
# exits 1 if any check failed, 2 if it could not start. Only 127.0.0.1, free ports; a watchdog
# ends the run after 60 s; everything started here is stopped on exit (trap); the work directory
# is kept (and printed) when something failed or KEEP_WORK=1.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ENV_SH=$ROOT/.interop/env.sh
[[ -f "$ENV_SH" ]] || { echo "observe/run.sh: $ENV_SH missing: run scripts/setup-interop.sh first" >&2; exit 2; }
# shellcheck disable=SC1090
source "$ENV_SH"
for v in OTEL_PYTHON PROMETHEUS_BIN PROMTOOL_BIN; do
  [[ -n "${!v:-}" && -x "${!v}" ]] || { echo "observe/run.sh: $v not set by $ENV_SH or not executable: rerun scripts/setup-interop.sh" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "observe/run.sh: curl missing" >&2; exit 2; }

FG=${1:-} FAKE=${2:-}
if [[ "$FG" == "--self-test" ]]; then
  FG=$HERE/mock-flowguard FAKE=${FAKE:-/bin/false}   # the mock answers `echo` and `meta` itself
else
  [[ -n "$FG" && -n "$FAKE" ]] || { echo "usage: $0 FLOWGUARD_BIN FAKE_BIN | --self-test" >&2; exit 2; }
  [[ -x "$FAKE" ]] || { echo "observe/run.sh: $FAKE is not executable" >&2; exit 2; }
  FAKE=$(cd "$(dirname "$FAKE")" && pwd)/$(basename "$FAKE")
fi
[[ -x "$FG" ]] || { echo "observe/run.sh: $FG is not executable" >&2; exit 2; }
N=${OBSERVE_CALLS:-3}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "observe/run.sh: OBSERVE_CALLS=$N is not a positive number" >&2; exit 2; }
SERVICE=flowguard-interop
export NO_COLOR=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-observe.XXXXXX")
SECONDS=0
PASSED=0 FAILED=0
PIDS=()

pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() {  # fail NAME WHY [LOGFILE...]
  local name=$1 why=$2 f
  shift 2
  echo "FAIL $name: $why"
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    echo "  --- tail of $f"
    tail -n 12 "$f" | cut -c1-400 | sed 's/^/  | /'
  done
  FAILED=$((FAILED + 1))
}
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ -n "$s" && "$s" != Z* ]]; }
cleanup() {
  local p i
  trap - EXIT; trap "" INT TERM   # a second signal must not cut the clean-up short
  kill -TERM "$WATCHDOG" 2>/dev/null
  for p in "${PIDS[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if ((FAILED > 0)) || [[ -n "${KEEP_WORK:-}" ]]; then echo "observe: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "observe: interrupted" >&2; FAILED=$((FAILED + 1)); exit 130' INT TERM
# The whole run is bounded: a watchdog ends it (and the trap cleans up) after 60 s.
# (its `sleep` gets no stdout/stderr, so a pipe reading this script's output is not held open by it)
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  # shellcheck disable=SC2217  # stdin too: nothing of the caller's stays open in it
  sleep 60 </dev/null >/dev/null 2>&1 &
  sp=$!
  wait "$sp" || exit 0
  echo "observe/run.sh: watchdog: still running after 60 s, giving up" >&2
  kill -TERM $$
) &
WATCHDOG=$!
disown "$WATCHDOG"

free_port() { "$OTEL_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_line FILE REGEX SECONDS PID: first line of FILE matching REGEX (grep -E -i), while PID lives
wait_line() {
  local i line
  for ((i = 0; i < $3 * 10; i++)); do
    line=$(grep -E -i -m1 "$2" "$1" 2>/dev/null) && { echo "$line"; return 0; }
    alive "$4" || return 1
    sleep 0.1
  done
  return 1
}
jq_() { "$OTEL_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }   # hex BYTES: random lowercase hex

# http NAME METHOD URL [curl args...]: sets CODE, writes $WORK/NAME.body and $WORK/NAME.headers
http() {
  local name=$1 method=$2 url=$3
  shift 3
  CODE=$(curl -s -m 15 -X "$method" -o "$WORK/$name.body" -D "$WORK/$name.headers" -w '%{http_code}' "$@" "$url" 2>/dev/null)
  [[ -n "$CODE" ]] || CODE=000
}
header() { grep -i "^$2:" "$WORK/$1.headers" 2>/dev/null | head -n 1 | tr -d '\r' | sed 's/^[^:]*: *//'; }   # header NAME FIELD

# mcp NAME JSON [curl args...]: POST a JSON-RPC message to $MCP_URL (with the session id and
# protocol version once known); sets CODE; rpc_msg NAME then prints the JSON-RPC response
SESSION="" PROTO=""
mcp() {
  local name=$1 body=$2
  shift 2
  local h=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
  [[ -n "$SESSION" ]] && h+=(-H "Mcp-Session-Id: $SESSION")
  [[ -n "$PROTO" ]] && h+=(-H "MCP-Protocol-Version: $PROTO")
  http "$name" POST "$MCP_URL" "${h[@]}" "$@" --data "$body"
}
# rpc_msg NAME: the JSON-RPC response (with result or error) in $WORK/NAME.body, a JSON body or
# an SSE stream, as one JSON line; exit 1 when there is none
rpc_msg() {
  "$OTEL_PYTHON" - "$WORK/$1.body" <<'EOF'
import json, sys
raw = open(sys.argv[1], encoding="utf-8", errors="replace").read()
msgs = []
if raw.lstrip().startswith(("{", "[")):
    d = json.loads(raw)
    msgs = d if isinstance(d, list) else [d]
else:  # text/event-stream: events separated by blank lines, payload in `data:` lines
    data = []
    for line in raw.splitlines() + [""]:
        if line.startswith("data:"):
            v = line[5:]
            data.append(v[1:] if v.startswith(" ") else v)
        elif line == "" and data:
            try:
                msgs.append(json.loads("\n".join(data)))
            except ValueError:
                pass
            data = []
resp = [m for m in msgs if isinstance(m, dict) and ("result" in m or "error" in m)]
if not resp:
    sys.exit(1)
print(json.dumps(resp[-1]))
EOF
}
# call_text NAME: the text of the first content item of a successful tools/call reply, else exit 1
call_text() {
  rpc_msg "$1" | jq_ 'd["result"]["content"][0]["text"] if "result" in d and not d["result"].get("isError") else exit(1)' 2>/dev/null
}
tool_call() {  # tool_call NAME ID TOOL ARGS_JSON [curl args...]
  local name=$1 id=$2 tool=$3 args=$4
  shift 4
  mcp "$name" "{\"jsonrpc\":\"2.0\",\"id\":$id,\"method\":\"tools/call\",\"params\":{\"name\":\"$tool\",\"arguments\":$args}}" "$@"
}
# metric_sum FILE: sum of flowguard_tool_calls_total{server="fake",tool="echo",decision="allow"}
# over every other label in a Prometheus text exposition, then the matching series
metric_sum() {
  "$OTEL_PYTHON" - "$1" <<'EOF'
import re, sys
want = {"server": "fake", "tool": "echo", "decision": "allow"}
label = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
total, series = 0.0, []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    line = line.strip()
    m = re.match(r"flowguard_tool_calls_total\s*(\{(.*?)\})?\s+(\S+)(\s+\S+)?$", line)
    if not m:
        continue
    labels = dict(label.findall(m.group(2) or ""))
    if all(labels.get(k) == v for k, v in want.items()):
        total += float(m.group(3))
        series.append(line)
print("%g" % total, "; ".join(series) or "no matching series")
EOF
}

# ------------------------------------------------------------------ the parts
GPORT=$(free_port) PPORT=$(free_port)
while [[ "$GPORT" == "$PPORT" ]]; do PPORT=$(free_port); done
GW=http://127.0.0.1:$GPORT
MCP_URL=$GW/mcp/fake
PROM=http://127.0.0.1:$PPORT
SPANS=$WORK/spans.jsonl

# OTLP receiver (port 0: it prints the one it got)
"$OTEL_PYTHON" "$HERE/otlp_receiver.py" "$SPANS" 0 >"$WORK/receiver.out" 2>"$WORK/receiver.log" </dev/null &
RECV_PID=$!
PIDS+=("$RECV_PID")
if ! RPORT=$(wait_line "$WORK/receiver.out" '^[0-9]+$' 10 "$RECV_PID"); then
  fail receiver/start "otlp_receiver.py did not print its port within 10 s" "$WORK/receiver.log"
  exit 1
fi
OTLP=http://127.0.0.1:$RPORT/v1/traces
pass "receiver/start ($OTLP)"

# Prometheus, scraping the gateway's port every second (its first scrapes fail until it listens)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: flowguard
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$GPORT"]
EOF
"$PROMETHEUS_BIN" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PPORT" >"$WORK/prometheus.out" 2>"$WORK/prometheus.log" </dev/null &
PROM_PID=$!
PIDS+=("$PROM_PID")

# the gateway
CFG=$WORK/flowguard.toml
cat >"$CFG" <<EOF
[gateway]
listen = "127.0.0.1:$GPORT"

[servers.fake]
command = "$FAKE"

[metrics]

[tracing]
otlp_endpoint = "$OTLP"
service_name = "$SERVICE"
EOF
"$FG" --config "$CFG" >"$WORK/gw.out" 2>"$WORK/gw.log" </dev/null &
GW_PID=$!
PIDS+=("$GW_PID")
if ! wait_line "$WORK/gw.log" "listening on http://127\.0\.0\.1:$GPORT" 30 "$GW_PID" >/dev/null; then
  if alive "$GW_PID"; then why="did not print 'Listening on http://127.0.0.1:$GPORT' within 30 s"; else why="exited before listening"; fi
  fail gateway/start "$FG $why (config $CFG)" "$WORK/gw.log"
  exit 1
fi
pass "gateway/start ($GW, config $CFG)"

ready=0
for ((i = 0; i < 150; i++)); do
  [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$PROM/-/ready" 2>/dev/null)" == 200 ]] && { ready=1; break; }
  alive "$PROM_PID" || break
  sleep 0.1
done
if ((ready)); then
  pass "prometheus/start ($PROM, $("$PROMETHEUS_BIN" --version 2>&1 | head -n 1 | cut -d' ' -f1-3))"
else
  fail prometheus/start "$PROMETHEUS_BIN not ready on $PROM within 15 s" "$WORK/prometheus.log"
fi

# ------------------------------------------------------------------ MCP session: N echo calls
mcp init '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"observe-curl","version":"0"}}}'
SESSION=$(header init mcp-session-id)
PROTO=$(rpc_msg init | jq_ 'd["result"]["protocolVersion"]' 2>/dev/null)
if [[ "$CODE" != 200 || -z "$PROTO" ]]; then
  fail mcp/initialize "POST $MCP_URL initialize: HTTP $CODE, $(head -c 300 "$WORK/init.body" 2>/dev/null)" "$WORK/gw.log"
  exit 1
fi
mcp initialized '{"jsonrpc":"2.0","method":"notifications/initialized"}'
[[ "$CODE" == 202 || "$CODE" == 200 ]] || fail mcp/initialized "notifications/initialized: want 202, got HTTP $CODE" "$WORK/gw.log"
ok=0
for ((i = 1; i <= N; i++)); do
  tool_call "echo-$i" $((i + 1)) echo '{"message":"hi"}'
  [[ "$CODE" == 200 && "$(call_text "echo-$i")" == hi ]] && ok=$((ok + 1))
done
if ((ok == N)); then
  pass "mcp/echo-calls ($N tools/call echo through $MCP_URL, protocol $PROTO, session ${SESSION:-none})"
else
  fail mcp/echo-calls "only $ok of $N echo calls answered \"hi\"; last: HTTP $CODE $(head -c 300 "$WORK/echo-$N.body")" "$WORK/gw.log"
fi

# ------------------------------------------------------------------ (a) /metrics and promtool
# (the counter may be bumped just after the reply went out: a few seconds' grace)
start=$SECONDS
while :; do
  http metrics GET "$GW/metrics"
  read -r got series < <(metric_sum "$WORK/metrics.body")
  if [[ "$CODE" == 200 && "$got" == "$N" ]] || ((SECONDS - start >= 5)); then break; fi
  sleep 0.3
done
if [[ "$CODE" == 200 && "$got" == "$N" ]]; then
  pass "metrics/tool-calls-counter (sum = $N: $series)"
else
  fail metrics/tool-calls-counter "GET $GW/metrics: HTTP $CODE, flowguard_tool_calls_total{server=\"fake\",tool=\"echo\",decision=\"allow\"} sums to ${got:-?}, want $N ($series)" "$WORK/metrics.body" "$WORK/gw.log"
fi
if [[ "$CODE" == 200 ]]; then
  "$PROMTOOL_BIN" check metrics <"$WORK/metrics.body" >"$WORK/promtool.out" 2>&1
  rc=$?
  if ((rc == 0)); then
    pass "metrics/promtool-check ($(grep -c '^# TYPE' "$WORK/metrics.body") metric families, $(grep -vc '^#' "$WORK/metrics.body") samples, Content-Type $(header metrics content-type))"
  else
    fail metrics/promtool-check "promtool check metrics exit $rc: $(tr '\n' ' ' <"$WORK/promtool.out" | cut -c1-600)" "$WORK/promtool.out"
  fi
else
  fail metrics/promtool-check "no /metrics output to check (HTTP $CODE)"
fi

# ------------------------------------------------------------------ (b) a real Prometheus scrapes it
if ((ready)); then
  query='sum(flowguard_tool_calls_total{server="fake",tool="echo"})'
  val="" start=$SECONDS
  while ((SECONDS - start < 20)); do
    CODE=$(curl -s -m 5 -G -o "$WORK/query.body" -w '%{http_code}' --data-urlencode "query=$query" "$PROM/api/v1/query" 2>/dev/null)
    val=$(jq_ '("%g" % float(d["data"]["result"][0]["value"][1])) if d["status"] == "success" and d["data"]["result"] else ""' <"$WORK/query.body" 2>/dev/null)
    [[ "$val" == "$N" ]] && break
    sleep 0.5
  done
  if [[ "$val" == "$N" ]]; then
    pass "metrics/prometheus-scrape ($query = $val after $((SECONDS - start)) s)"
  else
    curl -s -m 5 -o "$WORK/targets.body" "$PROM/api/v1/targets" 2>/dev/null
    tgt=$(jq_ '"; ".join("%s health=%s lastError=%r" % (t["scrapeUrl"], t["health"], t["lastError"]) for t in d["data"]["activeTargets"])' <"$WORK/targets.body" 2>/dev/null)
    grep -E 'level=(warn|error)' "$WORK/prometheus.log" >"$WORK/prometheus.problems" 2>/dev/null
    fail metrics/prometheus-scrape "$query: want $N within 20 s, got '${val:-no result}' (HTTP $CODE $(head -c 200 "$WORK/query.body")); targets: ${tgt:-?}" "$WORK/prometheus.problems"
  fi
else
  fail metrics/prometheus-scrape "Prometheus did not start"
fi

# ------------------------------------------------------------------ (c) traces over OTLP
TRACE_ID=$(hex 16) CLIENT_SPAN=$(hex 8)
TP="00-$TRACE_ID-$CLIENT_SPAN-01"
tool_call traced 100 echo '{"message":"hi"}' -H "traceparent: $TP"
[[ "$CODE" == 200 && "$(call_text traced)" == hi ]] ||
  fail traces/call "tools/call echo with traceparent $TP: HTTP $CODE $(head -c 300 "$WORK/traced.body")" "$WORK/gw.log"
# span_check: status line `ok ROOT_NAME|ROOT_SPAN|SERVICE|CHILDREN` or `wait WHAT WE SEE`
span_check() {
  "$OTEL_PYTHON" - "$SPANS" "$TRACE_ID" "$CLIENT_SPAN" <<'EOF'
import json, sys
path, tid, sid = sys.argv[1:4]
spans = []
for line in open(path, encoding="utf-8"):
    try:
        spans.append(json.loads(line))
    except ValueError:
        pass
mine = [s for s in spans if s.get("trace_id") == tid]
roots = [s for s in mine if s.get("name", "").startswith("tools/call") and s.get("parent_span_id") == sid]
for r in roots:
    kids = [s for s in mine if s.get("parent_span_id") == r["span_id"]]
    if kids:
        print("ok %s|%s|%s|%s" % (r["name"], r["span_id"], r.get("resource", {}).get("service.name", ""),
                                  ", ".join("%s (%s)" % (k["name"], k["span_id"]) for k in kids)))
        sys.exit(0)
print("wait %d span(s) received, %d with trace id %s: %s" % (len(spans), len(mine), tid,
      "; ".join("%s span %s parent %s" % (s.get("name"), s.get("span_id"), s.get("parent_span_id") or "-") for s in mine)[:600] or "none"))
EOF
}
st="" start=$SECONDS
while ((SECONDS - start < 10)); do
  st=$(span_check)
  [[ "$st" == ok\ * ]] && break
  sleep 0.5
done
if [[ "$st" == ok\ * ]]; then
  IFS='|' read -r root_name root_id svc kids <<<"${st#ok }"
  pass "traces/otlp-spans (trace $TRACE_ID: root '$root_name' span $root_id, parent $CLIENT_SPAN = the client's; children: $kids; after $((SECONDS - start)) s)"
  if [[ "$svc" == "$SERVICE" ]]; then
    pass "traces/service-name (resource service.name = $svc)"
  else
    fail traces/service-name "the root span's resource service.name is '$svc', want $SERVICE"
  fi
else
  fail traces/otlp-spans "within 10 s, want a span of trace $TRACE_ID named tools/call* with parent $CLIENT_SPAN and a child of it; ${st#wait }" "$WORK/receiver.log" "$WORK/gw.log"
fi

# ------------------------------------------------------------------ (d) trace context reaches the stdio server
tool_call meta 101 meta '{}' -H "traceparent: $TP"
text=$(call_text meta)
if [[ "$CODE" == 200 && "$text" == *"$TRACE_ID"* ]]; then
  pass "traces/stdio-meta (the fake server's params._meta: $(cut -c1-300 <<<"$text"))"
elif [[ -n "$text" ]]; then
  fail traces/stdio-meta "tools/call meta with traceparent $TP: want params._meta naming trace $TRACE_ID, got HTTP $CODE, text '$(cut -c1-300 <<<"$text")'" "$WORK/gw.log"
else
  fail traces/stdio-meta "tools/call meta with traceparent $TP: want a text naming trace $TRACE_ID, got HTTP $CODE $(head -c 300 "$WORK/meta.body")" "$WORK/gw.log"
fi

echo "observe: ${SECONDS}s"
echo "observe: $PASSED passed, $FAILED failed"
((FAILED == 0))
