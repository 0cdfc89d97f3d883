#!/usr/bin/env bash
# tests/interop/run.sh: interoperability checks of the FlowGuard gateway against real MCP clients,
# servers and a container runtime.
#
#   1. conformance/*  MCP conformance suite 0.1.16 (active server scenarios): directly against the
#                     `fixture http` server, then through FlowGuard routed (/mcp/everything, the
#                     fixture as a stdio server) and unified (/mcp, tool_prefix = "conditional",
#                     the fake server configured too). Direct must give 40 passed / 0 failed, and
#                     both gateway runs exactly the direct count with 0 failed; also (remote) with
#                     the `fixture http` server as a remote Streamable HTTP server behind FlowGuard.
#   1b. conformance-next/*  the suite's 0.2.0 alpha with `--requirements 2025-11-25` and
#                     `--requirements 2026-07-28`, directly against `fixture http` and through
#                     FlowGuard routed and unified: every check (scenario/id, from the results
#                     json) that passes directly must pass through FlowGuard; both totals printed.
#                     (The fixture speaks only the handshake era, so FlowGuard, which bridges
#                     2026-07-28 clients to it, passes more 2026 checks than the fixture itself.)
#   2. python/*       Python SDK (mcp 2.3.0, py_client.py) through FlowGuard with the reference
#                     servers everything, filesystem and memory as stdio servers: routed list and
#                     real tool calls with checked results, unified prefixed list and calls,
#                     progress notifications, sampling and elicitation round trips, auto and
#                     legacy protocol modes; a virtual server (`/mcp/picked`: three tools of
#                     the three servers, one renamed) listed and called, also in 2026-07-28 mode.
#   3. inspector/*    MCP Inspector 2.x CLI (inspector.sh): tools/list and tools/call for each of
#                     the three servers (routed) and one unified call; and over the old HTTP+SSE
#                     transport (/mcp/<server>/sse and /sse).
#   4. container/*    The fake server in podman (`localhost/flowguard-fake:test`), from TOML and
#                     from JSON on --config-stdin: `env` passthrough of FG_TOKEN and `echo`; no
#                     container survives `POST /close`; the container of a gateway killed with
#                     SIGKILL is removed by the next gateway started with the same config;
#                     `isolation = "session"`: two sessions run two containers, an ENV_FG_TOKEN
#                     header reaches only its session's container, DELETE removes each.
#   5. stdio/*        `flowguard wrap -- node server-everything stdio` launched by the Python SDK's
#                     stdio client, as a Claude-Desktop-style server entry: list, call, progress.
#   6. remote-sse/*   server-everything in `sse` mode (the 2024-11-05 HTTP+SSE transport) as a
#                     remote `type = "sse"` server: list and call, progress, sampling.
#   7. pyservers/*    real Python servers from PyPI (mcp-server-time, mcp-server-git against a
#                     throwaway repo, mcp-server-fetch fetching only a page served on 127.0.0.1)
#                     plus server-everything, as stdio servers behind one gateway. The Python SDK
#                     client in each mode (auto, legacy, 2026-07-28) lists and calls, routed
#                     (/mcp/time) and unified (/mcp, time___*); each check also requires the era
#                     the mode should give (auto and 2026-07-28: the client settles on 2026-07-28
#                     and the gateway serves the call statelessly, no session; legacy: a
#                     handshake session). The same through `flowguard wrap -- mcp-server-time`
#                     (py_stdio_client.py) and through the npm stdio-to-HTTP bridge mcp-remote
#                     (`node mcp-remote URL --transport http-only`), routed and unified.
#   8. oauth/*        FlowGuard as an OAuth 2.1 resource server (tests/interop/oauth/run.sh): a real
#                     oidc-provider issues JWT access tokens; the 401 challenge and RFC 9728
#                     metadata; the Python SDK's client-credentials OAuth client completes the
#                     flow and calls a tool; wrong audience, expired, forged and query-string
#                     tokens refused; insufficient scope gives 403; a rotated signing key is
#                     picked up without a restart.
#   9. observe/*      metrics and traces (tests/interop/observe/run.sh) with the fake server: after
#                     N tools/call echo, /metrics passes `promtool check metrics` and counts them in
#                     flowguard_tool_calls_total, and a real Prometheus scraping the gateway gives
#                     the same sum; a call with a `traceparent` header is exported over OTLP/HTTP
#                     (otlp_receiver.py, opentelemetry-proto) as a `tools/call*` span whose parent
#                     is the caller's span, with a child span; the trace context reaches the stdio
#                     server in params._meta (the fake's `meta` tool).
#
# Usage: tests/interop/run.sh [BIN_DIR]
#   BIN_DIR holds flowguard, fixture and fake (default: $FLOWGUARD_BIN_DIR, else target/debug).
#   Needs scripts/setup-interop.sh to have run (.interop/env.sh). Only 127.0.0.1, free ports.
# Prints `PASS name` or `FAIL name: why` (plus log tails) per check, then the run time and
# `interop: N passed, M failed, K known failing`; exits 1 if anything failed (2 if it could not
# start at all). A check named in KNOWN_FAILING (below) that fails prints `XFAIL name: why` and
# counts as known failing, neither passed nor failed; one that passes prints a note to take it
# off the list.
# Every gateway and server started here is stopped on exit, including on failure or Ctrl-C;
# the work directory is kept (and printed) when something failed.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=${1:-${FLOWGUARD_BIN_DIR:-$ROOT/target/debug}}
ENV_SH=$ROOT/.interop/env.sh
if [[ ! -f "$ENV_SH" ]]; then
  echo "run.sh: $ENV_SH missing: run scripts/setup-interop.sh first" >&2
  exit 2
fi
# shellcheck disable=SC1090
source "$ENV_SH"
for v in CONFORMANCE_JS CONFORMANCE_NEXT_JS EVERYTHING_JS FILESYSTEM_JS MEMORY_JS INSPECTOR_BIN PYTHON_MCP FAKE_IMAGE CONTAINERS_CONF \
  TIME_SERVER GIT_SERVER FETCH_SERVER MCP_REMOTE_JS; do
  if [[ -z "${!v:-}" ]]; then
    echo "run.sh: $v not set by $ENV_SH: rerun scripts/setup-interop.sh" >&2
    exit 2
  fi
done
[[ -d "$BIN_DIR" ]] || { echo "run.sh: no directory $BIN_DIR (give BIN_DIR holding flowguard, fixture, fake)" >&2; exit 2; }
BIN_DIR=$(cd "$BIN_DIR" && pwd)
FG=$BIN_DIR/flowguard FIXTURE=$BIN_DIR/fixture FAKE=$BIN_DIR/fake
for b in "$FG" "$FIXTURE" "$FAKE"; do
  [[ -x "$b" ]] || { echo "run.sh: $b missing: cargo build --workspace (or pass BIN_DIR)" >&2; exit 2; }
done
NODE=$(command -v node) || { echo "run.sh: node not on PATH after sourcing $ENV_SH" >&2; exit 2; }
PY_CLIENT=$ROOT/tests/interop/py_client.py
CONF_COMPARE=$ROOT/tests/interop/conformance_compare.py
INSPECTOR=$ROOT/tests/interop/inspector.sh
export NO_COLOR=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-interop.XXXXXX")
WORK=$(cd "$WORK" && pwd -P)   # the filesystem server compares resolved paths
SECONDS=0
PASSED=0 FAILED=0 XFAILED=0

# Checks that fail today because of a known, open gateway bug. A FAIL of one of these prints
# `XFAIL name: why` and is counted as known failing (not passed, not failed); when one passes,
# a note says to take it off. Empty the list as the fixes land; never add a check for good.
KNOWN_FAILING=(
)
PIDS=()      # every background process started here (gateways, fixture)
GW_PIDS=()   # the gateways among them (their pids name their containers)
CUR_PID=""   # the client run by `bounded` right now, if any

# ------------------------------------------------------------------ helpers
known_failing() {  # known_failing NAME: is NAME listed in KNOWN_FAILING?
  local k
  for k in "${KNOWN_FAILING[@]}"; do [[ "$k" == "$1" ]] && return 0; done
  return 1
}

# pass "NAME[: details | (details)]"
pass() {
  local name=${1%% *}
  echo "PASS $1"
  PASSED=$((PASSED + 1))
  name=${name%:}
  if known_failing "$name"; then
    echo "   note: $name passed but is listed in KNOWN_FAILING in $0: take it off the list"
  fi
}

# fail NAME WHY [LOGFILE...]: report a failed check with the tail of each log (XFAIL if known)
fail() {
  local name=$1 why=$2 f
  shift 2
  if known_failing "$name"; then
    echo "XFAIL $name: $why"
    XFAILED=$((XFAILED + 1))
    return
  fi
  echo "FAIL $name: $why"
  for f in "$@"; do
    [[ -s "$f" ]] || continue
    echo "  --- tail of $f"
    tail -n 12 "$f" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/  | /' | cut -c1-400
  done
  FAILED=$((FAILED + 1))
}

alive() {  # running and not a zombie
  local s
  s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n "$s" && "$s" != Z* ]]
}

wait_gone() {  # wait_gone PID SECONDS: 0 once PID has exited (and reaps it)
  local pid=$1 i
  for ((i = 0; i < $2 * 10; i++)); do
    if ! alive "$pid"; then wait "$pid" 2>/dev/null; return 0; fi
    sleep 0.1
  done
  return 1
}

# containers (any state) whose name belongs to the gateway with pid $1
containers_of() {
  timeout 30 podman ps -a --format '{{.Names}}' 2>/dev/null | grep -E "^flowguard-$1\." || true
}

# start_gw NAME [flowguard args...]: start a gateway on a free port. Reads its stdin from
# $GW_STDIN (default /dev/null). Sets GW_PID, GW_URL, GW_LOG; returns 1 if it is not listening
# within $GW_WAIT seconds (default 60).
start_gw() {
  local name=$1 i
  shift
  GW_LOG=$WORK/gw-$name.log GW_URL="" GW_PID=""
  "$FG" -l 127.0.0.1:0 "$@" <"${GW_STDIN:-/dev/null}" >"$WORK/gw-$name.out" 2>"$GW_LOG" &
  GW_PID=$!
  PIDS+=("$GW_PID")
  GW_PIDS+=("$GW_PID")
  for ((i = 0; i < ${GW_WAIT:-60} * 10; i++)); do
    GW_URL=$(grep -o -m1 'Listening on http://127\.0\.0\.1:[0-9]*' "$GW_LOG" 2>/dev/null | sed 's/^Listening on //')
    [[ -n "$GW_URL" ]] && return 0
    alive "$GW_PID" || { wait "$GW_PID" 2>/dev/null; return 1; }
    sleep 0.1
  done
  return 1
}

# stop_gw PID URL: POST /close, then wait for the process to exit (TERM/KILL after 15 s).
# Returns 0 when it exited on its own after /close.
stop_gw() {
  local pid=$1 url=$2
  alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  [[ -n "$url" ]] && curl -s -m 15 -X POST "$url/close" >/dev/null 2>&1
  wait_gone "$pid" 15 && return 0
  kill -TERM "$pid" 2>/dev/null
  wait_gone "$pid" 5 || { kill -KILL "$pid" 2>/dev/null; wait_gone "$pid" 5; }
  return 1
}

cleanup() {
  local p c
  trap - EXIT INT TERM
  if [[ -n "$CUR_PID" ]] && alive "$CUR_PID"; then   # a client still running: timeout passes TERM on
    kill -TERM "$CUR_PID" 2>/dev/null
    wait_gone "$CUR_PID" 5 || kill -KILL "$CUR_PID" 2>/dev/null
  fi
  for p in "${PIDS[@]}"; do
    alive "$p" && kill -TERM "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    wait_gone "$p" 10 || { kill -KILL "$p" 2>/dev/null; wait_gone "$p" 5; }
  done
  if [[ ${#GW_PIDS[@]} -gt 0 ]] && command -v podman >/dev/null; then
    for p in "${GW_PIDS[@]}"; do
      for c in $(containers_of "$p"); do timeout 30 podman rm -f -t 0 "$c" >/dev/null 2>&1; done
    done
  fi
  if [[ $FAILED -eq 0 ]]; then rm -rf "$WORK"; else echo "interop: logs kept in $WORK"; fi
}
summary() {
  echo "interop: run time ${SECONDS}s"
  echo "interop: $PASSED passed, $FAILED failed, $XFAILED known failing"
}
on_signal() {
  echo "FAIL interrupted: got SIG$1 during the run; stopping everything"
  FAILED=$((FAILED + 1))
  cleanup
  summary
  exit 130
}
# fds 3/4 keep the script's own stdout/stderr: a trap may run inside a redirected function
exec 3>&1 4>&2
trap 'cleanup >&3 2>&4' EXIT
trap 'on_signal INT >&3 2>&4' INT
trap 'on_signal TERM >&3 2>&4' TERM

has() { grep -qF -- "$2" "$1"; }   # has FILE TEXT

# bounded SECS CMD...: `timeout SECS CMD...` run as a background job and waited for, so that
# Ctrl-C / TERM reach the traps at once (bash defers traps while a foreground job runs).
bounded() {
  local rc
  timeout "$@" &
  CUR_PID=$!
  wait "$CUR_PID"
  rc=$?
  CUR_PID=""
  return $rc
}

# py NAME URL ARGS...: run py_client.py (bounded), output in $WORK/NAME.{out,err}; returns its rc
py() {
  local name=$1 url=$2
  shift 2
  bounded 90 "$PYTHON_MCP" "$PY_CLIENT" "$url" --timeout 75 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
}

# insp NAME URL METHOD ARGS...: run inspector.sh (bounded), output in $WORK/NAME.{out,err}
insp() {
  local name=$1
  shift
  bounded 90 "$INSPECTOR" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null
}

# ------------------------------------------------------------------ 1. conformance
echo "== 1. conformance suite $("$NODE" -p "require('$(dirname "$(dirname "$CONFORMANCE_JS")")/package.json').version" 2>/dev/null) (active server scenarios)"
CONF_EXPECT=40

# conformance NAME URL: sets CP / CF (passed / failed counts, empty if no Total line)
conformance() {
  local log=$WORK/conformance-$1.log line
  bounded 240 "$NODE" "$CONFORMANCE_JS" server --url "$2" -o "$WORK/conformance-$1" >"$log" 2>&1
  line=$(grep -E '^Total: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  CP=$(sed -E 's/^Total: ([0-9]+) passed.*/\1/' <<<"$line")
  CF=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
}

# failed scenarios of a conformance log, for the FAIL line
conf_failures() { grep -E '^✗' "$1" | head -n 8 | tr '\n' ' '; }

# conformance 0.2.0 alpha, per requirement set
NEXT_REQS=(2025-11-25 2026-07-28)
# conf_next NAME URL: runs the alpha suite for each requirement set into $WORK/next-NAME-REQ
conf_next() {
  local req
  for req in "${NEXT_REQS[@]}"; do
    bounded 300 "$NODE" "$CONFORMANCE_NEXT_JS" server --url "$2" --requirements "$req" \
      -o "$WORK/next-$1-$req" >"$WORK/next-$1-$req.log" 2>&1
  done
}
next_total() { grep -E '^Total: ' "$1" 2>/dev/null | tail -n 1; }
# conf_next_gateway NAME URL: runs the alpha suite through a gateway, compares check by check
# (conformance_compare.py: checks by scenario/id; the suite's own `Total:` counts differ a little)
conf_next_gateway() {
  local req out rc msg pd pb lost gained fb
  conf_next "$1" "$2"
  for req in "${NEXT_REQS[@]}"; do
    out=$("$PYTHON_MCP" "$CONF_COMPARE" "$WORK/next-direct-$req" "$WORK/next-$1-$req" 2>&1)
    rc=$?
    read -r pd pb lost gained fb < <(sed -n 's/^counts: //p' <<<"$out")
    if [[ $rc -eq 0 && -n "$fb" ]]; then
      msg="every check that passes directly ($pd) passes through FlowGuard"
      if ((gained + fb > 0)); then
        msg+="; $((gained + fb)) checks fail directly"
        if [[ $req == 2026-07-28 ]]; then
          msg+=" (the fixture speaks only the handshake era)"
        else
          msg+=" (failing in the fixture itself)"
        fi
        msg+=": $gained of them pass through FlowGuard, $fb fail both ways"
      fi
      pass "conformance-next/$req/$1: $msg"
    elif [[ -n "$lost" ]]; then
      fail "conformance-next/$req/$1" "$lost of the $pd checks that pass directly do not pass through FlowGuard: $(grep '^lost: ' <<<"$out" | sed 's/^lost: //' | tr '\n' ' ' | head -c 800)" "$WORK/next-$1-$req.log" "$GW_LOG"
    else
      fail "conformance-next/$req/$1" "no comparison (compare exit $rc): $(tr '\n' ' ' <<<"$out" | head -c 600)" "$WORK/next-$1-$req.log" "$GW_LOG"
    fi
  done
}

# (a) direct
"$FIXTURE" http 0 >"$WORK/fixture-http.out" 2>"$WORK/fixture-http.log" </dev/null &
FIX_PID=$!
PIDS+=("$FIX_PID")
FIX_URL=""
for ((i = 0; i < 100; i++)); do
  FIX_URL=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*/mcp' "$WORK/fixture-http.log" 2>/dev/null)
  [[ -n "$FIX_URL" ]] && break
  alive "$FIX_PID" || break
  sleep 0.1
done
DIRECT_P=""
if [[ -z "$FIX_URL" ]]; then
  fail conformance/direct "fixture http 0 did not print its URL within 10 s" "$WORK/fixture-http.log"
else
  conformance direct "$FIX_URL"
  DIRECT_P=$CP
  if [[ -z "$CP" ]]; then
    fail conformance/direct "no 'Total:' line from the suite (rc or crash)" "$WORK/conformance-direct.log"
  elif [[ "$CP" != "$CONF_EXPECT" || "$CF" != 0 ]]; then
    fail conformance/direct "$CP passed, $CF failed; want $CONF_EXPECT passed, 0 failed: $(conf_failures "$WORK/conformance-direct.log")" "$WORK/conformance-direct.log"
  else
    pass "conformance/direct ($CP passed, $CF failed)"
  fi
  conf_next direct "$FIX_URL"
  for req in "${NEXT_REQS[@]}"; do
    echo "   conformance-next/$req/direct (the reference run, not a check): suite says '$(next_total "$WORK/next-direct-$req.log")'"
  done
fi

# conf_gateway NAME URL: run the suite through a gateway and compare with the direct run
conf_gateway() {
  conformance "$1" "$2"
  if [[ -z "$CP" ]]; then
    fail "conformance/$1" "no 'Total:' line from the suite" "$WORK/conformance-$1.log" "$GW_LOG"
  elif [[ "$CF" != 0 || "$CP" != "${DIRECT_P:-$CONF_EXPECT}" ]]; then
    fail "conformance/$1" "$CP passed, $CF failed; direct run passed ${DIRECT_P:-?}: $(conf_failures "$WORK/conformance-$1.log")" "$WORK/conformance-$1.log" "$GW_LOG"
  else
    pass "conformance/$1 ($CP passed, $CF failed, same as direct)"
  fi
}

# (b) routed
cat >"$WORK/conf-routed.toml" <<EOF
[servers.everything]
command = "$FIXTURE"
args = ["stdio"]
EOF
if start_gw conf-routed -c "$WORK/conf-routed.toml"; then
  conf_gateway routed "$GW_URL/mcp/everything"
  conf_next_gateway routed "$GW_URL/mcp/everything"
else
  fail conformance/routed "gateway did not start" "$GW_LOG"
fi
stop_gw "$GW_PID" "$GW_URL"

# (c) unified, conditional prefixes, a second server configured
cat >"$WORK/conf-unified.toml" <<EOF
[gateway]
tool_prefix = "conditional"

[servers.everything]
command = "$FIXTURE"
args = ["stdio"]

[servers.fake]
command = "$FAKE"
EOF
if start_gw conf-unified -c "$WORK/conf-unified.toml"; then
  conf_gateway unified "$GW_URL/mcp"
  conf_next_gateway unified "$GW_URL/mcp"
else
  fail conformance/unified "gateway did not start" "$GW_LOG"
fi
stop_gw "$GW_PID" "$GW_URL"

# (d) the fixture as a remote Streamable HTTP server behind FlowGuard
if [[ -n "$FIX_URL" ]]; then
  cat >"$WORK/conf-remote.toml" <<EOF
[servers.remote]
url = "$FIX_URL"
EOF
  if start_gw conf-remote -c "$WORK/conf-remote.toml"; then
    conf_gateway remote "$GW_URL/mcp/remote"
  else
    fail conformance/remote "gateway did not start" "$GW_LOG"
  fi
  stop_gw "$GW_PID" "$GW_URL"
fi
kill -TERM "$FIX_PID" 2>/dev/null
wait_gone "$FIX_PID" 5 || kill -KILL "$FIX_PID" 2>/dev/null

# ------------------------------------------------------------------ 2. python SDK + 3. inspector
echo "== 2. Python SDK (mcp $("$PYTHON_MCP" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null)) through FlowGuard"
FSDIR=$WORK/fsroot
mkdir -p "$FSDIR"
FS_TOKEN="interop-file-$RANDOM$RANDOM"
printf '%s\n' "$FS_TOKEN" >"$FSDIR/hello.txt"
cat >"$WORK/ref.toml" <<EOF
[servers.everything]
command = "$NODE"
args = ["$EVERYTHING_JS", "stdio"]

[servers.filesystem]
command = "$NODE"
args = ["$FILESYSTEM_JS", "$FSDIR"]

[servers.memory]
command = "$NODE"
args = ["$MEMORY_JS"]
env = { MEMORY_FILE_PATH = "$WORK/memory.jsonl" }

[virtual_servers.picked]
tools = ["everything/echo", { server = "filesystem", tool = "read_text_file", name = "read_file" }, "memory/read_graph"]
EOF

PY_CHECKS=(python/everything/routed python/filesystem/routed python/memory/routed python/unified/everything
  python/unified/filesystem python/unified/memory python/progress python/sampling python/elicitation python/modes
  python/2026/routed python/2026/unified python/2026/sampling python/virtual python/2026/virtual)
INSP_CHECKS=(inspector/everything inspector/filesystem inspector/memory inspector/unified inspector/sse-routed inspector/sse-unified)

# (The stateless requests' debug lines show which era the Python SDK really used.)
if ! FLOWGUARD_LOG="info,flowguard_gateway::downstream::modern=debug" start_gw ref -c "$WORK/ref.toml"; then
  fail "${PY_CHECKS[0]}" "gateway with everything/filesystem/memory did not start" "$GW_LOG"
  for c in "${PY_CHECKS[@]:1}" "${INSP_CHECKS[@]}"; do fail "$c" "gateway did not start (see ${PY_CHECKS[0]})"; done
else
  U=$GW_URL REF_PID=$GW_PID REF_LOG=$GW_LOG

  py_ok() {  # py_ok NAME TEXT...: each TEXT must appear in NAME.out
    local n=$1 t
    shift
    for t in "$@"; do has "$WORK/$n.out" "$t" || return 1; done
  }
  py_report() {  # py_report CHECK RUNNAME RC TEXT...
    local check=$1 n=$2 rc=$3
    shift 3
    if [[ $rc -ne 0 ]]; then
      fail "$check" "py_client exit $rc: $(tail -n 1 "$WORK/$n.err")" "$WORK/$n.err" "$REF_LOG"
    elif ! py_ok "$n" "$@"; then
      fail "$check" "output lacks one of: $*; got: $(head -c 600 "$WORK/$n.out")" "$REF_LOG"
    else
      pass "$check"
    fi
  }

  # routed: list + one real call per server
  py py-everything "$U/mcp/everything" --list --call echo --args '{"message":"interop-hi"}'
  py_report python/everything/routed py-everything $? '"echo"' '"get-sum"' 'Echo: interop-hi'

  py py-filesystem "$U/mcp/filesystem" --list --call read_text_file --args "{\"path\":\"$FSDIR/hello.txt\"}"
  py_report python/filesystem/routed py-filesystem $? '"read_text_file"' '"list_directory"' "$FS_TOKEN"

  MEM_NAME="interop_entity_$RANDOM"
  py py-memory-create "$U/mcp/memory" --list --call create_entities \
    --args "{\"entities\":[{\"name\":\"$MEM_NAME\",\"entityType\":\"test\",\"observations\":[\"made by run.sh\"]}]}"
  rc=$?
  if [[ $rc -ne 0 ]] || ! py_ok py-memory-create '"create_entities"' '"read_graph"' "$MEM_NAME"; then
    py_report python/memory/routed py-memory-create $rc '"create_entities"' '"read_graph"' "$MEM_NAME"
  else
    py py-memory-read "$U/mcp/memory" --call read_graph
    py_report python/memory/routed py-memory-read $? "$MEM_NAME" 'made by run.sh'
  fi

  # unified: prefixed names listed, prefixed call works (one per server)
  py py-uni-everything "$U/mcp" --list --call everything___echo --args '{"message":"uni-hi"}'
  py_report python/unified/everything py-uni-everything $? '"everything___echo"' '"filesystem___read_text_file"' '"memory___read_graph"' 'Echo: uni-hi'
  py py-uni-filesystem "$U/mcp" --call filesystem___list_directory --args "{\"path\":\"$FSDIR\"}"
  py_report python/unified/filesystem py-uni-filesystem $? 'hello.txt'
  py py-uni-memory "$U/mcp" --call memory___read_graph
  py_report python/unified/memory py-uni-memory $? "$MEM_NAME"

  # progress notifications relayed (>= 2)
  py py-progress "$U/mcp/everything" --call trigger-long-running-operation --args '{"duration":2,"steps":4}' --progress
  rc=$?
  if [[ $rc -ne 0 ]]; then
    fail python/progress "py_client exit $rc: $(tail -n 1 "$WORK/py-progress.err")" "$WORK/py-progress.err" "$REF_LOG"
  else
    n=$(jq -r 'if .isError then "error" else (.progress | length) end' "$WORK/py-progress.out" 2>/dev/null)
    if [[ "$n" =~ ^[0-9]+$ && $n -ge 2 ]]; then
      pass "python/progress ($n notifications)"
    else
      fail python/progress "want >= 2 progress notifications and no error, got: $(head -c 600 "$WORK/py-progress.out")" "$REF_LOG"
    fi
  fi

  # sampling: the server's sampling/createMessage reaches the client and the reply comes back
  py py-sampling "$U/mcp/everything" --list --call trigger-sampling-request \
    --args '{"prompt":"say hi","maxTokens":10}' --sampling-reply 'sampled-through-flowguard'
  py_report python/sampling py-sampling $? '"trigger-sampling-request"' 'sampled-through-flowguard'

  # elicitation: accepted content comes back in the tool result
  py py-elicitation "$U/mcp/everything" --call trigger-elicitation-request \
    --elicitation-accept '{"name":"Ada Interop","check":true,"integer":7}'
  py_report python/elicitation py-elicitation $? 'Name: Ada Interop' 'Favorite Integer: 7'

  # protocol modes
  modes_bad=""
  for m in auto legacy; do
    py "py-mode-$m" "$U/mcp/everything" --mode "$m" --list --call get-sum --args '{"a":2,"b":3}'
    rc=$?
    if [[ $rc -ne 0 ]] || ! py_ok "py-mode-$m" '"echo"' 'The sum of 2 and 3 is 5'; then
      modes_bad+="$m (rc $rc: $(tail -n 1 "$WORK/py-mode-$m.err") $(head -c 300 "$WORK/py-mode-$m.out")) "
    fi
  done
  if [[ -z "$modes_bad" ]]; then pass "python/modes (auto, legacy)"; else fail python/modes "failed: $modes_bad" "$REF_LOG"; fi

  # The stateless 2026-07-28 revision (--mode 2026-07-28: no initialize, no fallback). Each
  # check also needs the gateway's own word that it served the calls statelessly and started
  # no session meanwhile.
  # py_2026 CHECK NAME URL TEXT... -- PY_CLIENT_ARGS...
  py_2026() {
    local check=$1 n=$2 url=$3 want=() rc calls0 sessions0 calls sessions
    shift 3
    while [[ $# -gt 0 && "$1" != "--" ]]; do want+=("$1"); shift; done
    shift
    calls0=$(grep -c 'stateless request method="tools/call"' "$REF_LOG")
    sessions0=$(grep -c 'session started' "$REF_LOG")
    py "$n" "$url" --mode 2026-07-28 "$@"
    rc=$?
    calls=$(( $(grep -c 'stateless request method="tools/call"' "$REF_LOG") - calls0 ))
    sessions=$(( $(grep -c 'session started' "$REF_LOG") - sessions0 ))
    if [[ $rc -eq 0 ]] && py_ok "$n" "${want[@]}" && [[ $calls -ge 1 && $sessions -eq 0 ]]; then
      pass "$check ($calls stateless tools/call, no session)"
    elif [[ $rc -eq 0 ]] && py_ok "$n" "${want[@]}"; then
      fail "$check" "worked, but not on the 2026 path: $calls stateless tools/call, $sessions sessions started" "$REF_LOG"
    else
      py_report "$check" "$n" "$rc" "${want[@]}"
    fi
  }
  py_2026 python/2026/routed py-2026-routed "$U/mcp/everything" '"get-sum"' 'The sum of 2 and 3 is 5' -- \
    --list --call get-sum --args '{"a":2,"b":3}'
  py_2026 python/2026/unified py-2026-unified "$U/mcp" '"memory___read_graph"' 'Echo: modern-uni' -- \
    --list --call everything___echo --args '{"message":"modern-uni"}'
  # server-everything's sampling request becomes an input-required result and the SDK's retry
  py_2026 python/2026/sampling py-2026-sampling "$U/mcp/everything" 'sampled-statelessly' -- \
    --call trigger-sampling-request --args '{"prompt":"say hi","maxTokens":10}' --sampling-reply 'sampled-statelessly'

  # virtual server: exactly the three chosen tools (one renamed), calls reach their servers
  py py-virtual "$U/mcp/picked" --list --call read_file --args "{\"path\":\"$FSDIR/hello.txt\"}"
  rc=$?
  if [[ $rc -eq 0 ]] && { has "$WORK/py-virtual.out" '"get-sum"' || has "$WORK/py-virtual.out" '"read_text_file"'; }; then
    fail python/virtual "lists tools it should not: $(head -c 600 "$WORK/py-virtual.out")" "$REF_LOG"
  else
    py_report python/virtual py-virtual $rc '["echo", "read_file", "read_graph"]' "$FS_TOKEN"
  fi
  py_2026 python/2026/virtual py-2026-virtual "$U/mcp/picked" '"read_file"' 'Echo: modern-virtual' -- \
    --list --call echo --args '{"message":"modern-virtual"}'

  # ---------------------------------------------------------------- 3. inspector
  echo "== 3. MCP Inspector CLI ($("$INSPECTOR_BIN" --version 2>/dev/null | tail -n 1)) through FlowGuard"
  # insp_report CHECK LIST-NAME CALL-NAME TEXT-IN-LIST TEXT-IN-CALL
  insp_report() {
    local check=$1 l=$2 c=$3 want_l=$4 want_c=$5
    if [[ -n "$l" ]] && ! has "$WORK/$l.out" "$want_l"; then
      fail "$check" "tools/list lacks $want_l: $(head -c 400 "$WORK/$l.out")" "$WORK/$l.err" "$REF_LOG"
    elif ! has "$WORK/$c.out" "$want_c"; then
      fail "$check" "tools/call result lacks $want_c: $(head -c 400 "$WORK/$c.out")" "$WORK/$c.err" "$REF_LOG"
    else
      pass "$check"
    fi
  }
  insp insp-everything-list "$U/mcp/everything" tools/list
  insp insp-everything-call "$U/mcp/everything" tools/call echo message=inspector-hi
  insp_report inspector/everything insp-everything-list insp-everything-call '"name":"echo"' 'Echo: inspector-hi'

  insp insp-filesystem-list "$U/mcp/filesystem" tools/list
  insp insp-filesystem-call "$U/mcp/filesystem" tools/call list_directory "path=$FSDIR"
  insp_report inspector/filesystem insp-filesystem-list insp-filesystem-call '"name":"list_directory"' 'hello.txt'

  INSP_MEM="inspector_entity_$RANDOM"
  insp insp-memory-list "$U/mcp/memory" tools/list
  insp insp-memory-create "$U/mcp/memory" tools/call create_entities \
    --tool-args-json "{\"entities\":[{\"name\":\"$INSP_MEM\",\"entityType\":\"test\",\"observations\":[\"via inspector\"]}]}"
  insp insp-memory-call "$U/mcp/memory" tools/call search_nodes "query=$INSP_MEM"
  if ! has "$WORK/insp-memory-create.out" "$INSP_MEM"; then
    fail inspector/memory "create_entities result lacks $INSP_MEM: $(head -c 400 "$WORK/insp-memory-create.out")" "$WORK/insp-memory-create.err" "$REF_LOG"
  else
    insp_report inspector/memory insp-memory-list insp-memory-call '"name":"read_graph"' 'via inspector'
  fi

  insp insp-unified-call "$U/mcp" tools/call filesystem___read_text_file "path=$FSDIR/hello.txt"
  insp_report inspector/unified "" insp-unified-call "" "$FS_TOKEN"

  # The old HTTP+SSE transport (2024-11-05), routed and unified.
  INSPECTOR_TRANSPORT=sse insp insp-sse-routed "$U/mcp/everything/sse" tools/call echo message=legacy-sse
  insp_report inspector/sse-routed "" insp-sse-routed "" "legacy-sse"
  INSPECTOR_TRANSPORT=sse insp insp-sse-unified "$U/sse" tools/call filesystem___read_text_file "path=$FSDIR/hello.txt"
  insp_report inspector/sse-unified "" insp-sse-unified "" "$FS_TOKEN"

  if stop_gw "$REF_PID" "$U"; then :; else echo "  (note: reference gateway needed TERM/KILL after POST /close)"; fi
fi

# ------------------------------------------------------------------ 4. container
echo "== 4. container server via podman ($FAKE_IMAGE)"
CT_CHECKS=(container/toml container/json container/close container/orphan container/isolation)
export FG_TOKEN="host-token-$RANDOM$RANDOM"
podman_why=""
if ! command -v podman >/dev/null; then
  podman_why="podman not on PATH"
elif ! timeout 60 podman image exists "$FAKE_IMAGE" 2>"$WORK/podman-smoke.err"; then
  podman_why="image $FAKE_IMAGE missing: run scripts/setup-interop.sh $BIN_DIR/fake"
else
  out=$(echo '{"jsonrpc":"2.0","id":1,"method":"ping"}' |
    timeout 60 podman run --rm -i --network none "$FAKE_IMAGE" /bin/fake 2>"$WORK/podman-smoke.err")
  [[ "$out" == *'"result":{}'* ]] || podman_why="podman run of $FAKE_IMAGE failed (got '${out:0:200}'): $(tail -n 3 "$WORK/podman-smoke.err" | tr '\n' ' ')"
fi

if [[ -n "$podman_why" ]]; then
  for c in "${CT_CHECKS[@]}"; do fail "$c" "podman cannot run containers here: $podman_why"; done
else
  cat >"$WORK/container.toml" <<EOF
[gateway]
container_runtime = "podman"

[servers.box]
container = "$FAKE_IMAGE"
entrypoint = "/bin/fake"
network = "none"
env = { FG_TOKEN = "" }
EOF
  cat >"$WORK/container.json" <<EOF
{ "mcpServers": { "box": { "type": "local", "container": "$FAKE_IMAGE", "entrypointArgs": ["/bin/fake"],
                           "network": "none", "env": { "FG_TOKEN": "" } } },
  "gateway": { "containerRuntime": "podman" } }
EOF

  # ct_check CHECK NAME: env passthrough + echo through the running gateway $GW_URL/mcp/box
  ct_check() {
    local check=$1 n=$2 rc
    py "$n-env" "$GW_URL/mcp/box" --list --call env --args '{"name":"FG_TOKEN"}'
    rc=$?
    if [[ $rc -ne 0 ]]; then
      fail "$check" "env call: py_client exit $rc: $(tail -n 1 "$WORK/$n-env.err")" "$WORK/$n-env.err" "$GW_LOG"
      return
    fi
    if ! has "$WORK/$n-env.out" "\"text\": \"$FG_TOKEN\""; then
      fail "$check" "env FG_TOKEN: want the host value $FG_TOKEN, got: $(tail -n 1 "$WORK/$n-env.out" | head -c 300)" "$GW_LOG"
      return
    fi
    py "$n-echo" "$GW_URL/mcp/box" --call echo --args '{"message":"from-the-box"}'
    rc=$?
    if [[ $rc -ne 0 ]] || ! has "$WORK/$n-echo.out" '"text": "from-the-box"'; then
      fail "$check" "echo: rc $rc, got: $(head -c 300 "$WORK/$n-echo.out") $(tail -n 1 "$WORK/$n-echo.err")" "$GW_LOG"
      return
    fi
    pass "$check"
  }

  # TOML form; then POST /close must leave no container of this gateway
  if ! start_gw ct-toml -c "$WORK/container.toml"; then
    fail container/toml "gateway did not start" "$GW_LOG"
    fail container/close "gateway did not start" "$GW_LOG"
  else
    ct_check container/toml ct-toml
    pid=$GW_PID
    before=$(containers_of "$pid")
    if stop_gw "$pid" "$GW_URL"; then
      left=$(containers_of "$pid")
      if [[ -z "$before" ]]; then
        fail container/close "no flowguard-$pid.* container was listed while the gateway ran" "$GW_LOG"
      elif [[ -n "$left" ]]; then
        fail container/close "after POST /close and exit, still listed: $left" "$GW_LOG"
      else
        pass "container/close (container $before gone after POST /close)"
      fi
    else
      fail container/close "gateway did not exit within 15 s of POST /close" "$GW_LOG"
    fi
  fi

  # JSON on --config-stdin
  if ! GW_STDIN=$WORK/container.json start_gw ct-json --config-stdin; then
    fail container/json "gateway (--config-stdin) did not start" "$GW_LOG"
  else
    ct_check container/json ct-json
  fi
  stop_gw "$GW_PID" "$GW_URL"

  # orphan: SIGKILL a gateway, see what podman did with its container, then the next gateway
  # with the same config must remove every container named after the dead one. podman usually
  # removes the real one by itself (the fake exits on stdin EOF, --rm), so a still-running
  # container with the dead gateway's tag is planted too, as a server ignoring EOF would leave.
  if ! start_gw ct-killed -c "$WORK/container.toml"; then
    fail container/orphan "first gateway did not start" "$GW_LOG"
  else
    dead=$GW_PID dead_log=$GW_LOG
    # the gateway listens before podman has created the container: wait for it to be listed
    running=""
    for ((i = 0; i < 300; i++)); do
      running=$(containers_of "$dead")
      [[ -n "$running" ]] && break
      sleep 0.1
    done
    { kill -KILL "$dead"; wait "$dead"; } 2>/dev/null   # (wait also hides bash's "Killed" notice)
    listed_at_kill=$(containers_of "$dead")
    sleep 1
    after_kill=$(containers_of "$dead")
    tag=$(sed -E 's/^flowguard-([0-9]+\.[0-9]+)-.*/\1/' <<<"${running%%$'\n'*}")
    planted="flowguard-$tag-box-planted"
    if [[ -z "$running" ]]; then
      fail container/orphan "no flowguard-$dead.* container listed within 30 s of the first gateway's start" "$dead_log"
    elif ! timeout 60 podman run -d -i --network none --name "$planted" "$FAKE_IMAGE" /bin/fake >/dev/null 2>"$WORK/plant.err"; then
      fail container/orphan "could not plant $planted" "$WORK/plant.err"
    else
      if [[ -n "$after_kill" ]]; then state="still listed 1 s after kill -9"
      elif [[ -n "$listed_at_kill" ]]; then state="listed right after kill -9, removed by podman (--rm) within 1 s"
      else state="already gone right after kill -9 (podman --rm)"; fi
      # poll from the start of the next gateway until nothing of the dead one is listed
      ( t0=$(date +%s%N)
        for ((i = 0; i < 300; i++)); do
          [[ -z "$(containers_of "$dead")" ]] && { echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$WORK/orphan-gone-ms"; exit 0; }
          sleep 0.1
        done ) &
      POLL_PID=$!
      PIDS+=("$POLL_PID")
      ORPHAN_LIMIT_MS=5000    # removal of a stale container must not hold start-up
      if ! start_gw ct-next -c "$WORK/container.toml"; then
        fail container/orphan "second gateway did not start; real container $state" "$GW_LOG"
      else
        wait_gone "$POLL_PID" 35
        gone_ms=$(cat "$WORK/orphan-gone-ms" 2>/dev/null)
        if [[ -z "$gone_ms" ]]; then
          fail container/orphan "real container $state; 30 s after starting the next gateway still listed: $(containers_of "$dead" | tr '\n' ' ')" "$GW_LOG"
        elif ((gone_ms > ORPHAN_LIMIT_MS)); then
          fail container/orphan "real container $state; $planted removed only $((gone_ms / 1000)).$((gone_ms % 1000 / 100)) s after starting the next gateway (limit $((ORPHAN_LIMIT_MS / 1000)) s)" "$GW_LOG"
        else
          pass "container/orphan (real container $state; planted running $planted removed by the next gateway $((gone_ms / 1000)).$((gone_ms % 1000 / 100)) s after its start)"
        fi
        stop_gw "$GW_PID" "$GW_URL"
      fi
    fi
  fi
  # isolation: one container per session, its own ENV_ variable, removed on DELETE
  cat >"$WORK/container-iso.toml" <<EOF
[gateway]
container_runtime = "podman"

[servers.box]
container = "$FAKE_IMAGE"
entrypoint = "/bin/fake"
network = "none"
isolation = "session"
env_from_headers = ["FG_TOKEN"]
EOF
  # mcp_post URL BODY [curl args...]: POST one JSON-RPC message; headers and body on stdout
  mcp_post() {
    local url=$1 body=$2
    shift 2
    timeout 60 curl -s -i -H 'content-type: application/json' \
      -H 'accept: application/json, text/event-stream' "$@" -d "$body" "$url" | tr -d '\r'
  }
  if ! start_gw ct-iso -c "$WORK/container-iso.toml"; then
    fail container/isolation "gateway did not start" "$GW_LOG"
  else
    pid=$GW_PID
    init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"interop","version":"0"}}}'
    call='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"env","arguments":{"name":"FG_TOKEN"}}}'
    s1=$(mcp_post "$GW_URL/mcp/box" "$init" -H 'ENV_FG_TOKEN: token-one' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
    s2=$(mcp_post "$GW_URL/mcp/box" "$init" | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')
    env1=$(mcp_post "$GW_URL/mcp/box" "$call" -H "mcp-session-id: $s1")
    env2=$(mcp_post "$GW_URL/mcp/box" "$call" -H "mcp-session-id: $s2")
    listed=$(containers_of "$pid" | wc -l)
    for s in "$s1" "$s2"; do
      timeout 30 curl -s -o /dev/null -X DELETE -H "mcp-session-id: $s" "$GW_URL/mcp/box"
    done
    left="x"
    for ((i = 0; i < 300; i++)); do
      left=$(containers_of "$pid")
      [[ -z "$left" ]] && break
      sleep 0.1
    done
    if [[ -z "$s1" || -z "$s2" ]]; then
      fail container/isolation "initialize gave no session ids ('$s1', '$s2')" "$GW_LOG"
    elif [[ "$listed" -ne 2 ]]; then
      fail container/isolation "two sessions should run two containers, podman listed $listed" "$GW_LOG"
    elif [[ "$env1" != *'"text":"token-one"'* || "$env2" != *'"text":"<unset>"'* ]]; then
      fail container/isolation "ENV_FG_TOKEN should reach only session 1: got '${env1: -120}' and '${env2: -120}'" "$GW_LOG"
    elif [[ -n "$left" ]]; then
      fail container/isolation "30 s after DELETE still listed: $(tr '\n' ' ' <<<"$left")" "$GW_LOG"
    else
      pass "container/isolation (2 sessions, 2 containers, env per session, none left after DELETE)"
    fi
    stop_gw "$GW_PID" "$GW_URL"
  fi
fi

# ------------------------------------------------------------------ 5. stdio (wrap)
echo "== 5. flowguard wrap as a stdio server entry (Python SDK stdio client)"
PY_STDIO="$(dirname "$PY_CLIENT")/py_stdio_client.py"
# As Claude Desktop would run it: the client launches `flowguard wrap -- <server>` itself.
bounded 90 "$PYTHON_MCP" "$PY_STDIO" --list --call echo --args '{"message":"wrapped hello"}' \
  "$FG" wrap -- "$NODE" "$EVERYTHING_JS" stdio >"$WORK/wrap-everything.out" 2>"$WORK/wrap-everything.err"
rc=$?
if [[ $rc -eq 0 ]] && grep -q '"echo"' "$WORK/wrap-everything.out" && grep -q 'wrapped hello' "$WORK/wrap-everything.out"; then
  pass "stdio/wrap-everything"
else
  fail stdio/wrap-everything "rc=$rc; want the tool list with echo and the echoed text" "$WORK/wrap-everything.out" "$WORK/wrap-everything.err"
fi
bounded 90 "$PYTHON_MCP" "$PY_STDIO" --progress --call trigger-long-running-operation --args '{"duration":1,"steps":3}' \
  "$FG" wrap -- "$NODE" "$EVERYTHING_JS" stdio >"$WORK/wrap-progress.out" 2>"$WORK/wrap-progress.err"
rc=$?
n=$(jq -r 'if .isError then "error" else (.progress | length) end' "$WORK/wrap-progress.out" 2>/dev/null)
if [[ $rc -eq 0 && "$n" =~ ^[0-9]+$ && $n -ge 2 ]]; then
  pass "stdio/wrap-progress ($n notifications)"
else
  fail stdio/wrap-progress "rc=$rc; want >= 2 progress notifications, got: $n" "$WORK/wrap-progress.out" "$WORK/wrap-progress.err"
fi

# ------------------------------------------------------------------ 6. remote HTTP+SSE server
echo "== 6. server-everything in sse mode (2024-11-05 HTTP+SSE) as a remote server behind FlowGuard"
SSE_CHECKS=(remote-sse/list-call remote-sse/progress remote-sse/sampling)
SSE_PORT=$("$PYTHON_MCP" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# loopback.cjs keeps express's app.listen(PORT) on 127.0.0.1.
: >"$WORK/everything-sse.log"
PORT=$SSE_PORT "$NODE" --require "$ROOT/tests/interop/loopback.cjs" "$EVERYTHING_JS" sse >"$WORK/everything-sse.log" 2>&1 &
SSE_PID=$!
PIDS+=("$SSE_PID")
for ((i = 0; i < 100; i++)); do
  has "$WORK/everything-sse.log" "running on port" && break
  sleep 0.1
done
printf '[servers.everything]\ntype = "sse"\nurl = "http://127.0.0.1:%s/sse"\n' "$SSE_PORT" >"$WORK/remote-sse.toml"
if ! has "$WORK/everything-sse.log" "running on port"; then
  for c in "${SSE_CHECKS[@]}"; do fail "$c" "server-everything sse did not start" "$WORK/everything-sse.log"; done
elif ! start_gw remote-sse -c "$WORK/remote-sse.toml"; then
  for c in "${SSE_CHECKS[@]}"; do fail "$c" "gateway in front of the sse server did not start" "$GW_LOG"; done
else
  SSE_U=$GW_URL REF_LOG=$GW_LOG
  sse_report() {  # sse_report CHECK RUNNAME RC TEXT...: rc 0 and every TEXT in RUNNAME.out
    local check=$1 n=$2 rc=$3 t
    shift 3
    if [[ $rc -ne 0 ]]; then
      fail "$check" "py_client exit $rc: $(tail -n 1 "$WORK/$n.err")" "$WORK/$n.err" "$REF_LOG"
      return
    fi
    for t in "$@"; do
      has "$WORK/$n.out" "$t" || { fail "$check" "output lacks $t: $(head -c 600 "$WORK/$n.out")" "$REF_LOG"; return; }
    done
    pass "$check"
  }
  py sse-list-call "$SSE_U/mcp/everything" --list --call echo --args '{"message":"over-old-sse"}'
  sse_report remote-sse/list-call sse-list-call $? '"trigger-long-running-operation"' 'Echo: over-old-sse'
  py sse-progress "$SSE_U/mcp/everything" --call trigger-long-running-operation --args '{"duration":1,"steps":3}' --progress
  rc=$?
  n=$(jq -r 'if .isError then "error" else (.progress | length) end' "$WORK/sse-progress.out" 2>/dev/null)
  if [[ $rc -eq 0 && "$n" =~ ^[0-9]+$ && $n -ge 2 ]]; then
    pass "remote-sse/progress ($n notifications)"
  else
    fail remote-sse/progress "rc=$rc; want >= 2 progress notifications, got: $n" "$WORK/sse-progress.err" "$REF_LOG"
  fi
  py sse-sampling "$SSE_U/mcp/everything" --call trigger-sampling-request \
    --args '{"prompt":"say hi","maxTokens":10}' --sampling-reply 'sampled-over-old-sse'
  sse_report remote-sse/sampling sse-sampling $? 'sampled-over-old-sse'
  stop_gw "$GW_PID" "$SSE_U"
fi
kill -TERM "$SSE_PID" 2>/dev/null
wait_gone "$SSE_PID" 5 || kill -KILL "$SSE_PID" 2>/dev/null

# ------------------------------------------------------------------ 7. Python servers from PyPI
pys_versions=$("$(dirname "$TIME_SERVER")/python" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("mcp-server-time", "mcp-server-git", "mcp-server-fetch", "mcp")))' 2>/dev/null)
echo "== 7. Python servers from PyPI ($pys_versions) through FlowGuard, flowguard wrap and mcp-remote $("$NODE" -p "require('$(dirname "$(dirname "$MCP_REMOTE_JS")")/package.json').version" 2>/dev/null)"
PY_MODES=(auto legacy 2026-07-28)
PYS_CHECKS=()
for m in "${PY_MODES[@]}"; do PYS_CHECKS+=("pyservers/time/routed/$m" "pyservers/time/unified/$m"); done
PYS_CHECKS+=(pyservers/git/routed pyservers/git/unified pyservers/fetch/routed)
for m in "${PY_MODES[@]}"; do PYS_CHECKS+=("pyservers/mcp-remote/routed/$m" "pyservers/mcp-remote/unified/$m" "pyservers/mcp-remote/everything/$m"); done
PYS_CHECKS+=(pyservers/mcp-remote/protocol-auto)

# A throwaway repository for mcp-server-git: one commit, one untracked file.
PYS_TOKEN="pys$RANDOM$RANDOM"
REPO=$WORK/gitrepo
git init -q "$REPO" &&
  printf 'hello\n' >"$REPO/a.txt" &&
  git -C "$REPO" add a.txt &&
  git -C "$REPO" -c user.name="FlowGuard interop" -c user.email=interop@localhost -c commit.gpgsign=false \
    commit -q -m "interop commit $PYS_TOKEN" &&
  printf 'x\n' >"$REPO/untracked-$PYS_TOKEN.txt"
REPO_OK=$?
# A page for mcp-server-fetch, served on 127.0.0.1 only (it is never let out to the network).
mkdir -p "$WORK/www"
printf '<html><head><title>interop</title></head><body><h1>Interop page</h1><p>fetched %s through FlowGuard</p></body></html>\n' \
  "$PYS_TOKEN" >"$WORK/www/page.html"
WWW_PORT=$("$PYTHON_MCP" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PYTHON_MCP" -m http.server -b 127.0.0.1 -d "$WORK/www" "$WWW_PORT" >"$WORK/www.log" 2>&1 </dev/null &
WWW_PID=$!
PIDS+=("$WWW_PID")
PAGE_URL="http://127.0.0.1:$WWW_PORT/page.html"

cat >"$WORK/pyservers.toml" <<TOML
[servers.time]
command = "$TIME_SERVER"

[servers.git]
command = "$GIT_SERVER"
args = ["--repository", "$REPO"]

[servers.fetch]
command = "$FETCH_SERVER"
args = ["--ignore-robots-txt", "--allow-private-ips"]

[servers.everything]
command = "$NODE"
args = ["$EVERYTHING_JS", "stdio"]
TOML
# mcp-remote keeps its state (OAuth client info, tokens: none here) in this directory
export MCP_REMOTE_CONFIG_DIR=$WORK/mcp-auth

# jq programs over the client's output (slurped: first = tool list, last = call result)
JQ_NOW_UTC='last | (.isError | not) and (.content[0].text | fromjson | .timezone == "UTC"
  and ((.datetime | sub("\\+00:00$"; "Z") | fromdateiso8601) - now | . > -300 and . < 300))'
JQ_TOKYO='last | (.isError | not) and (.content[0].text | fromjson | .source.timezone == "UTC"
  and .source.datetime[11:] == "12:00:00+00:00" and .target.timezone == "Asia/Tokyo"
  and .target.datetime[11:] == "21:00:00+09:00")'
UTC_ARGS='{"timezone":"UTC"}'
TOKYO_ARGS='{"source_timezone":"UTC","time":"12:00","target_timezone":"Asia/Tokyo"}'
UNIFIED_WANT='["time___get_current_time","time___convert_time","git___git_log","git___git_status","fetch___fetch","everything___echo"]'

# pys_check CHECK RUN ERA WANT_TOOLS CALL_JQ CMD...: run CMD (bounded; a py_client or
# py_stdio_client command line) into $WORK/RUN.{out,err}, then require exit 0, every name of
# the JSON array WANT_TOOLS in the tool list (skipped when ""), CALL_JQ true on the call result,
# and the era ERA:
#   2026       the client settled on 2026-07-28 ("py_client: protocol" line)
#   handshake  the client settled on a handshake version (initialize)
#   2026-gw    2026, and the gateway ($PYS_LOG) served >= 1 tools/call statelessly, no session
#   handshake-gw  handshake, and the gateway started a session, served no stateless tools/call
#   stateless-gw  the gateway served >= 1 tools/call statelessly (whatever the client settled on)
#   any        no requirement (the PASS line still says what happened)
pys_check() {
  local check=$1 n=$2 era=$3 want=$4 callq=$5 rc proto calls0=0 sess0=0 calls=0 sess=0 why="" missing info
  shift 5
  if [[ -n "${PYS_LOG:-}" ]]; then
    calls0=$(grep -c 'stateless request method="tools/call"' "$PYS_LOG")
    sess0=$(grep -c 'session started' "$PYS_LOG")
  fi
  bounded 90 "$@" >"$WORK/$n.out" 2>"$WORK/$n.err"
  rc=$?
  if [[ -n "${PYS_LOG:-}" ]]; then
    calls=$(($(grep -c 'stateless request method="tools/call"' "$PYS_LOG") - calls0))
    sess=$(($(grep -c 'session started' "$PYS_LOG") - sess0))
  fi
  proto=$(sed -n 's/^py_client: protocol \([^ ]*\).*/\1/p' "$WORK/$n.err" | tail -n 1)
  info="client on ${proto:-?}"
  [[ -n "${PYS_LOG:-}" ]] && info+="; gateway: $calls stateless tools/call, $sess new sessions"
  missing=""
  if [[ $rc -eq 0 && -n "$want" ]]; then
    missing=$(jq -sr --argjson want "$want" '$want - first | join(", ")' "$WORK/$n.out" 2>/dev/null) ||
      missing="everything (no tool list in the output)"
  fi
  if [[ $rc -ne 0 ]]; then
    # the client's error (a pydantic error spans lines), without the server's log lines
    why="client exit $rc: $(sed -n '/^py_client: error/,+8p' "$WORK/$n.err" | grep -vE '^(20[0-9]{2}-|\[[0-9]+\]| *For further)' |
      tr '\n' ' ' | tr -s ' ' | cut -c1-600)"
    [[ "$why" == "client exit $rc: " ]] && why+=$(tail -n 1 "$WORK/$n.err" | cut -c1-400)
  elif [[ -n "$missing" ]]; then
    why="tool list lacks $missing: $(head -n 1 "$WORK/$n.out" | cut -c1-300)"
  elif ! jq -se "$callq" "$WORK/$n.out" >/dev/null 2>&1; then
    why="unexpected call result: $(tail -n 1 "$WORK/$n.out" | cut -c1-500)"
  else
    case $era in
      2026 | 2026-gw) [[ "$proto" == 2026-07-28 ]] || why="worked, but the client settled on '${proto:-?}', not 2026-07-28" ;;
      handshake | handshake-gw)
        [[ "$proto" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ && "$proto" != 2026-07-28 ]] ||
          why="worked, but the client settled on '${proto:-?}', not a handshake version" ;;
    esac
    if [[ -z "$why" ]]; then
      case $era in
        2026-gw) [[ $calls -ge 1 && $sess -eq 0 ]] || why="worked, but not on the 2026 path: $info" ;;
        handshake-gw) [[ $calls -eq 0 && $sess -ge 1 ]] || why="worked, but not in a handshake session: $info" ;;
        stateless-gw) [[ $calls -ge 1 ]] || why="worked, but the gateway served no tools/call statelessly: $info" ;;
      esac
    fi
  fi
  if [[ -z "$why" ]]; then
    pass "$check ($info)"
  else
    fail "$check" "$why" "$WORK/$n.err" ${PYS_LOG:+"$PYS_LOG"}
  fi
}
era_of() { case $1 in legacy) echo handshake ;; *) echo 2026 ;; esac; }  # auto picks 2026 after server/discover
PY_STDIO="$(dirname "$PY_CLIENT")/py_stdio_client.py"

PYS_LOG=""
if [[ $REPO_OK -ne 0 ]]; then
  for c in "${PYS_CHECKS[@]}"; do fail "$c" "could not make the throwaway git repository $REPO"; done
elif ! FLOWGUARD_LOG="info,flowguard_gateway::downstream::modern=debug" start_gw pyservers -c "$WORK/pyservers.toml"; then
  for c in "${PYS_CHECKS[@]}"; do fail "$c" "gateway with time/git/fetch/everything did not start" "$GW_LOG"; done
else
  PYS_U=$GW_URL PYS_LOG=$GW_LOG
  # the Python SDK over HTTP, every client mode, routed and unified
  for m in "${PY_MODES[@]}"; do
    pys_check "pyservers/time/routed/$m" "pys-routed-$m" "$(era_of "$m")-gw" '["get_current_time","convert_time"]' "$JQ_NOW_UTC" \
      "$PYTHON_MCP" "$PY_CLIENT" "$PYS_U/mcp/time" --timeout 75 --mode "$m" --list --call get_current_time --args "$UTC_ARGS"
    pys_check "pyservers/time/unified/$m" "pys-unified-$m" "$(era_of "$m")-gw" "$UNIFIED_WANT" "$JQ_TOKYO" \
      "$PYTHON_MCP" "$PY_CLIENT" "$PYS_U/mcp" --timeout 75 --mode "$m" --list --call time___convert_time --args "$TOKYO_ARGS"
  done
  pys_check pyservers/git/routed pys-git-log 2026-gw '["git_log","git_status"]' \
    "last | (.isError | not) and (.content[0].text | contains(\"interop commit $PYS_TOKEN\"))" \
    "$PYTHON_MCP" "$PY_CLIENT" "$PYS_U/mcp/git" --timeout 75 --list --call git_log --args "{\"repo_path\":\"$REPO\"}"
  pys_check pyservers/git/unified pys-git-status 2026-gw "" \
    "last | (.isError | not) and (.content[0].text | contains(\"untracked-$PYS_TOKEN.txt\"))" \
    "$PYTHON_MCP" "$PY_CLIENT" "$PYS_U/mcp" --timeout 75 --call git___git_status --args "{\"repo_path\":\"$REPO\"}"
  pys_check pyservers/fetch/routed pys-fetch 2026-gw '["fetch"]' \
    "last | (.isError | not) and (.content[0].text | contains(\"Interop page\") and contains(\"fetched $PYS_TOKEN through FlowGuard\"))" \
    "$PYTHON_MCP" "$PY_CLIENT" "$PYS_U/mcp/fetch" --timeout 75 --list --call fetch --args "{\"url\":\"$PAGE_URL\"}"

  # mcp-remote, launched by the SDK's stdio client as a desktop host would (`npx mcp-remote URL`):
  # it relays the client's own requests, so every client mode reaches the gateway in its own era.
  for m in "${PY_MODES[@]}"; do
    pys_check "pyservers/mcp-remote/routed/$m" "pys-remote-routed-$m" any '["get_current_time","convert_time"]' "$JQ_NOW_UTC" \
      "$PYTHON_MCP" "$PY_STDIO" --timeout 75 --mode "$m" --list --call get_current_time --args "$UTC_ARGS" \
      "$NODE" "$MCP_REMOTE_JS" "$PYS_U/mcp/time" --transport http-only
    pys_check "pyservers/mcp-remote/unified/$m" "pys-remote-unified-$m" any "$UNIFIED_WANT" "$JQ_TOKYO" \
      "$PYTHON_MCP" "$PY_STDIO" --timeout 75 --mode "$m" --list --call time___convert_time --args "$TOKYO_ARGS" \
      "$NODE" "$MCP_REMOTE_JS" "$PYS_U/mcp" --transport http-only
    # the Node reference server (server-everything) through mcp-remote too
    pys_check "pyservers/mcp-remote/everything/$m" "pys-remote-everything-$m" any '["echo"]' \
      "last | (.isError | not) and (.content[0].text | contains(\"via mcp-remote $m\"))" \
      "$PYTHON_MCP" "$PY_STDIO" --timeout 75 --mode "$m" --list --call echo --args "{\"message\":\"via mcp-remote $m\"}" \
      "$NODE" "$MCP_REMOTE_JS" "$PYS_U/mcp/everything" --transport http-only
  done
  # `--protocol auto`: mcp-remote itself probes server/discover and, FlowGuard answering it,
  # speaks 2026-07-28 to the gateway for a legacy (initialize) client.
  pys_check pyservers/mcp-remote/protocol-auto pys-remote-proto-auto stateless-gw "$UNIFIED_WANT" "$JQ_NOW_UTC" \
    "$PYTHON_MCP" "$PY_STDIO" --timeout 75 --mode legacy --list --call time___get_current_time --args "$UTC_ARGS" \
    "$NODE" "$MCP_REMOTE_JS" "$PYS_U/mcp" --transport http-only --protocol auto
  stop_gw "$GW_PID" "$PYS_U"
fi
PYS_LOG=""

# flowguard wrap as the stdio server entry, every client mode
for m in "${PY_MODES[@]}"; do
  pys_check "pyservers/wrap/$m" "pys-wrap-$m" "$(era_of "$m")" '["get_current_time","convert_time"]' "$JQ_NOW_UTC" \
    "$PYTHON_MCP" "$PY_STDIO" --timeout 75 --mode "$m" --list --call get_current_time --args "$UTC_ARGS" \
    "$FG" wrap -- "$TIME_SERVER"
done
kill -TERM "$WWW_PID" 2>/dev/null
wait_gone "$WWW_PID" 5 || kill -KILL "$WWW_PID" 2>/dev/null

# ------------------------------------------------------------------ 8. OAuth resource server
echo "== 8. OAuth 2.1 resource server: oidc-provider and the Python SDK's OAuth client (tests/interop/oauth)"
OAUTH_OUT=$WORK/oauth.out
timeout 100 "$ROOT/tests/interop/oauth/run.sh" "$FG" >"$OAUTH_OUT" 2>&1
oauth_rc=$?
while IFS= read -r line; do
  case "$line" in
    "PASS "*) pass "oauth/${line#PASS }" ;;
    "FAIL "*) rest=${line#FAIL }; fail "oauth/${rest%%:*}" "${rest#*: }" ;;
  esac
done <"$OAUTH_OUT"
if [[ $oauth_rc -ne 0 ]] && ! grep -q '^FAIL ' "$OAUTH_OUT"; then
  fail oauth/run "tests/interop/oauth/run.sh exited $oauth_rc without a FAIL line" "$OAUTH_OUT"
fi

# ------------------------------------------------------------------ 9. metrics and traces
echo "== 9. metrics and traces: promtool, a real Prometheus and an OTLP receiver (tests/interop/observe)"
OBSERVE_OUT=$WORK/observe.out
timeout 80 "$ROOT/tests/interop/observe/run.sh" "$FG" "$FAKE" >"$OBSERVE_OUT" 2>&1
observe_rc=$?
while IFS= read -r line; do
  case "$line" in
    "PASS "*) pass "observe/${line#PASS }" ;;
    "FAIL "*) rest=${line#FAIL }; fail "observe/${rest%%:*}" "${rest#*: }" ;;
  esac
done <"$OBSERVE_OUT"
if [[ $observe_rc -ne 0 ]] && ! grep -q '^FAIL ' "$OBSERVE_OUT"; then
  fail observe/run "tests/interop/observe/run.sh exited $observe_rc without a FAIL line" "$OBSERVE_OUT"
fi

# ------------------------------------------------------------------ summary
cleanup
summary
[[ $FAILED -eq 0 ]] || exit 1
