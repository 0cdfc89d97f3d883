#!/usr/bin/env bash
# bench/run.sh: FlowGuard's benchmark suite. Measures, side by side in one run and with every reply
# checked (fg-load, crates/flowguard-bench):
#   1. tools/call from HTTP to a shared stdio server (fg-echo) at 1, 32 and 256 connections:
#      FlowGuard, the minimal bridge `mcp-echo bridge`, supergateway, mcp-proxy (node), mcp-proxy (python);
#      then FlowGuard and the bridge in front of the kit's own `mcp-echo stdio`, for reference
#   2. HTTP-to-HTTP passthrough: `mcp-echo http` alone, behind FlowGuard, and behind nginx (reference)
#   3. unified tools/list over 10 servers x 100 tools, cold and warm
#   4. resident memory: idle with two stdio servers, then with 1,000 and 10,000 open sessions
#   5. session set-up rate and latency
# prints a table per section with the targets (✓/✗), and rewrites the "Latest run" section of
# docs/benchmarks.md (everything else in that file is kept). Exits non-zero if any reply was wrong
# or any server did not start.
#
#   BENCH_SECONDS=8   measured seconds per load row (after BENCH_WARMUP=2 seconds of warm-up)
#   BENCH_ROUNDS=15   paired rounds for the ratio targets (FlowGuard / bridge and / best peer, passthrough),
#   BENCH_ROUND_SECONDS=2   each side of a round measured this long after 1 s of warm-up
#   BENCH_PIN=1       in the paired rounds of section 1, run the gateways and their backend on CPU 0 and
#                     the load generator (one thread) on CPU 1 (taskset): CPU cost decides, not where
#                     the scheduler happens to place the backend's threads (docs/benchmarks.md)
#   BENCH_NO_DOC=1    do not write docs/benchmarks.md
#
# Needs the Rust toolchain, node/npm and python3; installs the peers (npm, PyPI), wrk and nginx (apt)
# if missing, into ${TMPDIR:-/tmp}/flowguard-bench. Builds mcp-echo from ../shared/bench (next to this
# repository). Listens on 127.0.0.1 only.
set -uo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
SHARED_REL="$(dirname "$0")/../../shared/bench"
if [ ! -f "$SHARED_REL/mcp-echo/Cargo.toml" ] || [ ! -f "$SHARED_REL/force-loopback.cjs" ]; then
  echo "error: the benchmark kit is missing: expected mcp-echo/ and force-loopback.cjs in $SHARED_REL" >&2
  echo "hint: the suite needs ../shared/bench next to the repository (the shared kit with mcp-echo)" >&2
  exit 2
fi
SHARED=$(cd "$SHARED_REL" && pwd)
cd "$ROOT" || exit 2

SECS=${BENCH_SECONDS:-8}
WARM=${BENCH_WARMUP:-2}
CACHE=${TMPDIR:-/tmp}/flowguard-bench
PEERS=$CACHE/peers
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/release
ECHO=$CACHE/target/release/mcp-echo
# Section 1's stdio backend: it answers as `mcp-echo stdio` does, on one thread with buffered I/O,
# so that it is never the bottleneck of the gateways compared in front of it (docs/benchmarks.md).
STDIO=$BIN/fg-echo
RUN=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-bench-run.XXXXXX")
T0=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMAND="bench/run.sh"
[ -n "${BENCH_SECONDS:-}" ] && COMMAND="BENCH_SECONDS=$BENCH_SECONDS $COMMAND"
[ -n "${BENCH_WARMUP:-}" ] && COMMAND="BENCH_WARMUP=$BENCH_WARMUP $COMMAND"
[ -n "${BENCH_ROUNDS:-}" ] && COMMAND="BENCH_ROUNDS=$BENCH_ROUNDS $COMMAND"
[ -n "${BENCH_ROUND_SECONDS:-}" ] && COMMAND="BENCH_ROUND_SECONDS=$BENCH_ROUND_SECONDS $COMMAND"
PIN_SERVER=(); PIN_LOAD=()
if [ -n "${BENCH_PIN:-}" ]; then
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1); COMMAND="BENCH_PIN=1 $COMMAND"
  else
    echo "warning: BENCH_PIN needs taskset and two CPUs; the paired rounds run unpinned" >&2
  fi
fi
# What start and load put in front of the command: set to the PIN_ arrays for the paired rounds.
START_PIN=(); LOAD_PIN=()

step() { printf '\n==> %s\n' "$*" >&2; }
die() { echo "error: $*" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# processes: every server runs in its own process group; all are stopped on exit

PIDS=()
declare -A STOPPED
alive() { # pid: running (not a zombie)
  local st
  st=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ]
}
stop() { # pid: TERM the process, up to 3 s later KILL its group, then reap it
  local pid=$1 i
  [ -n "${STOPPED[$pid]:-}" ] && return 0
  STOPPED[$pid]=1
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 30); do alive "$pid" || break; sleep 0.1; done
  # The leader is not reaped yet, so its group id cannot have been reused: end what is left.
  kill -KILL -- "-$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop "$p"; done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

# Servers get a process group of their own (so that stop can end a server with its children) but
# stay in this script's session. A new session (setsid) would also be a new scheduling autogroup
# (kernel.sched_autogroup_enabled=1 here), and the kernel would then share the CPUs equally among
# the load generator, the proxy and the backend as groups instead of among their threads: the
# process with the most work per request (the proxy) is held to a third of the machine while the
# direct measurement splits it in two, which cost the passthrough ratio about a tenth
# (docs/benchmarks.md).
start() { # logname cmd...: starts a server in a new process group; sets SPID
  "${START_PIN[@]}" python3 -c 'import os, sys; os.setpgid(0, 0); os.execvp(sys.argv[1], sys.argv[1:])' "${@:2}" \
    >"$RUN/$1.log" 2>&1 </dev/null &
  SPID=$!
  PIDS+=("$SPID")
}

# Below the ephemeral range (32768-60999 here), where the load generator's own connections
# can hold a port in TIME_WAIT and make a server's bind fail.
NEXT_PORT=21400
port() { # sets PORT to a free loopback port
  while (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

wait_port() { # port pid [seconds]: until the port accepts connections; fails if the process died
  local i limit=$(( ${3:-30} * 10 ))
  for i in $(seq 1 "$limit"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    alive "$2" || return 1
    sleep 0.1
  done
  return 1
}

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---------------------------------------------------------------------------------------------
# numbers

jf() { # field json: a number (or string) field of fg-load's flat JSON
  local v
  v=$(sed -n "s/.*\"$1\":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p" <<<"$2")
  [ -n "$v" ] || v=$(sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2")
  echo "${v:-}"
}
int() { awk -v x="${1:-0}" 'BEGIN{printf "%d", x + 0.5}'; }
thousands() { awk -v x="${1:-0}" 'BEGIN{ s = sprintf("%d", x + 0.5); n = ""; while (length(s) > 3) { n = "," substr(s, length(s) - 2) n; s = substr(s, 1, length(s) - 3) } printf "%s%s", s, n }'; }
msec() { awk -v x="${1:-0}" 'BEGIN{ v = x / 1000; if (v < 1) printf "%.3f ms", v; else if (v < 100) printf "%.2f ms", v; else printf "%.0f ms", v }'; }
mb() { awk -v k="${1:-0}" 'BEGIN{printf "%.1f MB", k * 1024 / 1e6}'; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
ok() { # awk condition with a and b → ✓ or ✗
  awk -v a="${2:-0}" -v b="${3:-0}" "BEGIN{ if ($1) print \"✓\"; else print \"✗\" }"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ROUNDS=${BENCH_ROUNDS:-15}
# Paired rounds are short and many, so that the two sides of a ratio see the same machine: this
# VM's speed drifts by a quarter within a minute, and section 1c's backend (mcp-echo stdio, whose
# stdin and stdout go through tokio's blocking threads) swings between about 3k and 17k req/s from
# one window to the next, behind any gateway.
RSECS=${BENCH_ROUND_SECONDS:-2}; RWARM=1
round_load() { # url pid...: one side of a paired round, 32 connections; fg-load's JSON
  local url=$1 a=() p; shift
  for p in "$@"; do a+=(--pid "$p"); done
  load $((RSECS + RWARM + 60)) call --url "$url" --conns 32 --duration "${RSECS}s" --warmup "${RWARM}s" "${a[@]}"
}
in_turn() { # round first second: odd rounds run first then second, even rounds the other way, so
  # that a drift within rounds favours neither side of the median
  if [ $(($1 % 2)) = 1 ]; then "$2"; "$3"; else "$3"; "$2"; fi
}
msecs() { local x out=; for x in "$@"; do out="$out${out:+; }$(msec "$x")"; done; echo "$out"; }

TOTAL_ERRORS=0
FAILED_ROWS=()
note_errors() { # row-name errors
  if [ "${2:-1}" != 0 ]; then
    TOTAL_ERRORS=$((TOTAL_ERRORS + ${2:-1}))
    FAILED_ROWS+=("$1")
  fi
}

# fg-load with a hard time limit; its JSON on stdout, its complaints in the run log
load() { # seconds-limit args...
  local limit=$1; shift
  local threads=(); [ ${#LOAD_PIN[@]} = 0 ] || threads=(--threads 1)
  timeout -k 5 "$limit" "${LOAD_PIN[@]}" "$BIN/fg-load" "$@" "${threads[@]}" --json 2>>"$RUN/fg-load.err"
}

# ---------------------------------------------------------------------------------------------
step "prerequisites"
command -v cargo >/dev/null || die "cargo is missing (https://rustup.rs)"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are missing (Node 18 or later)"
command -v python3 >/dev/null || die "python3 is missing"
if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt)" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  { $SUDO apt-get install -y -qq wrk >/dev/null 2>&1 || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq wrk >/dev/null 2>&1; }; } \
    || die "wrk is missing and could not be installed: apt-get install -y wrk"
fi
# nginx: the reference reverse proxy of section 2. Debian starts the system's nginx on install;
# it is stopped again (this script runs its own, on a loopback port).
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (apt), the reference proxy of section 2" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  if { $SUDO apt-get install -y -qq nginx >/dev/null 2>&1 || { $SUDO apt-get update -qq >/dev/null 2>&1 && $SUDO apt-get install -y -qq nginx >/dev/null 2>&1; }; }; then
    $SUDO service nginx stop >/dev/null 2>&1 || true
  else
    echo "nginx could not be installed (apt-get install -y nginx); section 2 runs without its reference row" >&2
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

step "build (cargo build --release --workspace)"
cargo build --release --workspace || die "the build failed"
for b in flowguard fg-load fg-echo; do [ -x "$BIN/$b" ] || die "$BIN/$b was not built"; done

step "build mcp-echo from $SHARED/mcp-echo"
mkdir -p "$CACHE"
CARGO_TARGET_DIR=$CACHE/target cargo build -q --release --manifest-path "$SHARED/mcp-echo/Cargo.toml" \
  || die "building mcp-echo failed"

step "install the peers into $PEERS (skipped when present)"
mkdir -p "$PEERS"
SG=$PEERS/npm-sg/node_modules/.bin/supergateway
MPN=$PEERS/npm-mcpproxy/node_modules/.bin/mcp-proxy
MPY=$PEERS/venv-sparf/bin/mcp-proxy
[ -x "$SG" ] || (mkdir -p "$PEERS/npm-sg" && cd "$PEERS/npm-sg" && npm i -s supergateway@4.0.0 >/dev/null 2>&1) \
  || echo "warning: installing supergateway@4.0.0 from npm failed" >&2
[ -x "$MPN" ] || (mkdir -p "$PEERS/npm-mcpproxy" && cd "$PEERS/npm-mcpproxy" && npm i -s mcp-proxy@6.7.19 >/dev/null 2>&1) \
  || echo "warning: installing mcp-proxy@6.7.19 from npm failed" >&2
[ -x "$MPY" ] || (python3 -m venv "$PEERS/venv-sparf" && "$PEERS/venv-sparf/bin/pip" install -q mcp-proxy==0.13.0 >/dev/null 2>&1) \
  || echo "warning: installing mcp-proxy==0.13.0 from PyPI failed" >&2
export NODE_OPTIONS="--require $SHARED/force-loopback.cjs"

BENCH_T0=$(date +%s)
OUT=$RUN/tables.md
: >"$OUT"
emit() { printf '%s\n' "$@" | tee -a "$OUT"; }

nginx_config() { # file port backend-port: nginx as a plain keep-alive reverse proxy, 2 workers
  cat >"$1" <<NGINX
worker_processes 2;
pid nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path tmp-body;
  proxy_temp_path tmp-proxy;
  fastcgi_temp_path tmp-fastcgi;
  uwsgi_temp_path tmp-uwsgi;
  scgi_temp_path tmp-scgi;
  upstream backend { server 127.0.0.1:$3; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:$2;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
}
fg_config() { # file servers...: each server "id|command|arg,arg" or "id|url"
  local file=$1; shift
  {
    printf '[gateway]\nshutdown_grace = "2s"\n'
    local s id rest
    for s in "$@"; do
      id=${s%%|*}; rest=${s#*|}
      printf '\n[servers.%s]\n' "$id"
      case $rest in
        http://*) printf "url = '%s'\n" "$rest" ;;
        *) local cmd=${rest%%|*} args=${rest#*|}
           printf "command = '%s'\nargs = [" "$cmd"
           local first=1 a
           IFS=, read -ra A <<<"$args"
           for a in "${A[@]}"; do [ $first = 1 ] || printf ', '; printf "'%s'" "$a"; first=0; done
           printf ']\n' ;;
      esac
    done
  } >"$file"
}

# ---------------------------------------------------------------------------------------------
# 1. tools/call HTTP → shared stdio server

step "1. tools/call, HTTP → one shared stdio server (${SECS}s per row after ${WARM}s warm-up)"
declare -A RPS P99
CONNS_LIST=(1 32 256)
S1_ROWS=()
run_calls() { # label url pid
  local label=$1 url=$2 pid=$3 c j e
  for c in "${CONNS_LIST[@]}"; do
    j=$(load $((SECS + WARM + 60)) call --url "$url" --conns "$c" --duration "${SECS}s" --warmup "${WARM}s" --pid "$pid")
    if [ -z "$j" ]; then
      S1_ROWS+=("| $label | $c | failed (no result) | | | | 1 |")
      note_errors "$label @ $c" 1
      continue
    fi
    e=$(jf errors "$j")
    RPS["$label@$c"]=$(jf rps "$j"); P99["$label@$c"]=$(jf p99_us "$j")
    S1_ROWS+=("| $label | $c | $(thousands "$(jf rps "$j")") | $(msec "$(jf p50_us "$j")") | $(msec "$(jf p99_us "$j")") | $(int "$(jf cpu_us_per_req "$j")") | $e |")
    note_errors "$label @ $c" "$e"
    [ "$e" = 0 ] || echo "  $label @ $c: $(jf first_error "$j")" >&2
    echo "  $label @ $c connections: $(int "$(jf rps "$j")") req/s, p99 $(msec "$(jf p99_us "$j")"), errors $e" >&2
  done
}
WRK_ROWS=()
run_wrk() { # label url: wrk at 32 connections with one session, as ../shared/bench/peers.sh does
  local label=$1 url=$2 sid out
  sid=$("$SHARED/session.sh" "$url" 2>/dev/null) || { WRK_ROWS+=("| $label | session failed | | |"); return; }
  out=$(MCP_SESSION=$sid timeout -k 5 $((SECS + 30)) wrk -t2 -c32 -d"${SECS}s" --latency -s "$SHARED/call.lua" "$url" 2>&1)
  WRK_ROWS+=("| $label | $(thousands "$(awk '/Requests\/sec/{print $2}' <<<"$out")") | $(awk '$1=="50%"{print $2}' <<<"$out") | $(awk '$1=="99%"{print $2}' <<<"$out") | $(awk '/Non-2xx|Socket errors/{printf "%s ", $0}' <<<"$out") |")
}
calls_row() { # label logname url-path pid-var-set-by-caller... (server already started as SPID on PORT)
  local label=$1 path=$2
  if wait_port "$PORT" "$SPID" 60; then
    run_calls "$label" "http://127.0.0.1:$PORT$path" "$SPID"
    [ "$label" = "$FG" ] && FG_RSS_AFTER=$(rss_kib "$SPID")
    [ "${3:-}" = wrk ] && run_wrk "$label" "http://127.0.0.1:$PORT$path"
  else
    S1_ROWS+=("| $label | — | did not start | | | | 1 |")
    note_errors "$label: did not start" 1
    echo "  $label did not start: $(tail -n 5 "$RUN/$label.log" 2>/dev/null)" >&2
  fi
  stop "$SPID"
}

FG="FlowGuard (routed)"; BR="mcp-echo bridge"; PSG="supergateway 4.0.0"; PMN="mcp-proxy 6.7.19 (node)"; PMP="mcp-proxy 0.13.0 (python)"
fg_config "$RUN/echo.toml" "echo|$STDIO|"
port; start "$FG" "$BIN/flowguard" -c "$RUN/echo.toml" -l "127.0.0.1:$PORT"; calls_row "$FG" /mcp/echo wrk
port; start "$BR" "$ECHO" bridge "$PORT" "$STDIO"; calls_row "$BR" / wrk
start_peer() { # label logname port: starts a peer gateway in front of fg-echo (SPID)
  case $1 in
    "$PSG") start "$2" "$SG" --stdio "$STDIO" --outputTransport streamableHttp --stateful --sessionTimeout 600000 --port "$3" --logLevel none ;;
    "$PMN") start "$2" "$MPN" --host 127.0.0.1 --port "$3" --server stream -- "$STDIO" ;;
    "$PMP") start "$2" "$MPY" --host 127.0.0.1 --port "$3" --log-level WARNING -- "$STDIO" ;;
  esac
}
PEER_MISSING=0
for p in "$PSG:$SG" "$PMN:$MPN" "$PMP:$MPY"; do
  label=${p%%:*}; exe=${p#*:}
  if [ -x "$exe" ]; then
    port; start_peer "$label" "$label" "$PORT"; calls_row "$label" /mcp
  else S1_ROWS+=("| $label | — | not installed | | | | |"); PEER_MISSING=1; fi
done
BEST_PEER=; BEST_RPS=0
for p in "$PSG" "$PMN" "$PMP"; do
  r=${RPS["$p@32"]:-0}
  if awk -v a="$r" -v b="$BEST_RPS" 'BEGIN{exit !(a > b)}'; then BEST_RPS=$r; BEST_PEER=$p; fi
done

# The three targets are judged on paired rounds: FlowGuard, the bridge and the fastest peer of the
# table all running, measured in turn $ROUNDS times (BENCH_ROUNDS) at 32 connections, medians of
# the per-round ratios (this VM's speed drifts by a quarter within a minute, more than the margins
# being checked).
PIN_NOTE=
[ ${#PIN_SERVER[@]} = 0 ] || PIN_NOTE=" (pinned: servers on CPU 0, fg-load with one thread on CPU 1)"
step "1b. FlowGuard, the bridge and ${BEST_PEER:-no peer}, 32 connections, $ROUNDS alternating rounds$PIN_NOTE"
START_PIN=("${PIN_SERVER[@]}"); LOAD_PIN=("${PIN_LOAD[@]}")
port; FGPORT=$PORT; start "$FG paired" "$BIN/flowguard" -c "$RUN/echo.toml" -l "127.0.0.1:$FGPORT"; FGPID=$SPID
port; BRPORT=$PORT; start "$BR paired" "$ECHO" bridge "$BRPORT" "$STDIO"; BRPID=$SPID
PPID_=; PPORT=
if [ -n "$BEST_PEER" ]; then
  port; PPORT=$PORT; start_peer "$BEST_PEER" "$BEST_PEER paired" "$PPORT"; PPID_=$SPID
  wait_port "$PPORT" "$PPID_" 60 || { note_errors "$BEST_PEER (paired): did not start" 1; PPID_=; }
fi
load_br() { jb=$(round_load "http://127.0.0.1:$BRPORT/" "$BRPID"); }
load_fg() { jg=$(round_load "http://127.0.0.1:$FGPORT/mcp/echo" "$FGPID"); }
paired_rounds() { # what: FlowGuard (FGPORT, FGPID), the bridge (BRPORT, BRPID) and, when PPID_ is
  # set, the peer (PPORT) measured in turn ROUNDS times; fills PAIR_ROWS, PAIR_RPS, PAIR_P99,
  # PAIR_PEER, PAIR_FG and PAIR_BR (req/s of each side), sets PAIR_OK and the medians MED_RPS,
  # MED_P99, MED_PEER, MED_FG and MED_BR (0, and 99 for the p99 ratio, if the rounds did not run)
  local round eb eg ep jp PEER_CELL
  PAIR_ROWS=(); PAIR_RPS=(); PAIR_P99=(); PAIR_PEER=(); PAIR_FG=(); PAIR_BR=(); PAIR_OK=0
  MED_RPS=0; MED_P99=99; MED_PEER=0; MED_FG=0; MED_BR=0
  if ! { wait_port "$FGPORT" "$FGPID" 60 && wait_port "$BRPORT" "$BRPID" 60; }; then
    note_errors "paired rounds ($1): a server did not start" 1
    return
  fi
  PAIR_OK=1
  for round in $(seq 1 "$ROUNDS"); do
    in_turn "$round" load_br load_fg
    eb=$(jf errors "$jb"); eb=${eb:-1}; eg=$(jf errors "$jg"); eg=${eg:-1}
    note_errors "$BR (paired round $round, $1)" "$eb"; note_errors "$FG (paired round $round, $1)" "$eg"
    PAIR_FG+=("$(jf rps "$jg")"); PAIR_BR+=("$(jf rps "$jb")")
    PAIR_RPS+=("$(ratio "$(jf rps "$jg")" "$(jf rps "$jb")")")
    PAIR_P99+=("$(ratio "$(jf p99_us "$jg")" "$(jf p99_us "$jb")")")
    PEER_CELL="—"
    if [ -n "$PPID_" ]; then
      jp=$(round_load "http://127.0.0.1:$PPORT/mcp" "$PPID_")
      ep=$(jf errors "$jp"); ep=${ep:-1}; note_errors "$BEST_PEER (paired round $round, $1)" "$ep"
      PAIR_PEER+=("$(ratio "$(jf rps "$jg")" "$(jf rps "$jp")")")
      PEER_CELL="$(thousands "$(jf rps "$jg")") / $(thousands "$(jf rps "$jp")") = ${PAIR_PEER[-1]}×"
      eg="$eg / $ep"
    fi
    PAIR_ROWS+=("| $round | $(thousands "$(jf rps "$jg")") / $(thousands "$(jf rps "$jb")") = ${PAIR_RPS[-1]}× | $(msec "$(jf p99_us "$jg")") / $(msec "$(jf p99_us "$jb")") = ${PAIR_P99[-1]}× | $PEER_CELL | $eg / $eb |")
  done
  MED_RPS=$(median "${PAIR_RPS[@]}"); MED_P99=$(median "${PAIR_P99[@]}")
  MED_FG=$(median "${PAIR_FG[@]}"); MED_BR=$(median "${PAIR_BR[@]}")
  [ ${#PAIR_PEER[@]} = 0 ] || MED_PEER=$(median "${PAIR_PEER[@]}")
}
paired_rounds fg-echo
PAIR_R=$MED_RPS; PAIR_P=$MED_P99; PAIR_PR=$MED_PEER; PAIR_FG_OWN=$MED_FG; PAIR_BR_OWN=$MED_BR
stop "$FGPID"; stop "$BRPID"; [ -n "$PPID_" ] && stop "$PPID_"
START_PIN=(); LOAD_PIN=()
FG32=${RPS["$FG@32"]:-0}; BR32=${RPS["$BR@32"]:-0}
FGP99=${P99["$FG@32"]:-0}; BRP99=${P99["$BR@32"]:-0}
R_BR=$(ratio "$FG32" "$BR32"); R_PEER=$(ratio "$FG32" "$BEST_RPS"); R_P99=$(ratio "$FGP99" "$BRP99")
PEER_MARK=$(ok 'a >= 5 && b > 0' "$PAIR_PR" "$PAIR_OK"); [ "$PEER_MISSING" = 0 ] || PEER_MARK="✗ (a peer is missing)"

emit "" "### 1. tools/call, HTTP → one shared stdio server" "" \
  "Every server fronts the same backend, \`fg-echo\` (crates/flowguard-bench): the replies of \`mcp-echo stdio\` from one thread with buffered I/O, so that the backend is not the bottleneck (section 1c measures the pair in front of \`mcp-echo stdio\` itself). One session shared by all connections; ${SECS} s measured after ${WARM} s of warm-up per row; CPU is that of the server's process tree (gateway + backend) per request." "" \
  "| server | connections | req/s | p50 | p99 | CPU µs/req | errors |" "|---|---:|---:|---:|---:|---:|---:|" "${S1_ROWS[@]}" "" \
  "FlowGuard's VmRSS right after its three rows: $(mb "${FG_RSS_AFTER:-0}")." "" \
  "| target (32 connections) | measured | ✓/✗ |" "|---|---|:-:|" \
  "| FlowGuard req/s ≥ bridge (median of the paired rounds below) | rounds ${PAIR_RPS[*]:-n/a} → ${PAIR_R}× (table rows: ${R_BR}×) | $(ok 'a >= 1 && b > 0' "$PAIR_R" "$PAIR_OK") |" \
  "| FlowGuard req/s ≥ 5 × best peer (${BEST_PEER:-none}; median of the paired rounds) | rounds ${PAIR_PEER[*]:-n/a} → ${PAIR_PR}× (table rows: $(thousands "$FG32") / $(thousands "$BEST_RPS") = ${R_PEER}×) | $PEER_MARK |" \
  "| FlowGuard p99 ≤ 1.5 × bridge p99 (median of the paired rounds) | rounds ${PAIR_P99[*]:-n/a} → ${PAIR_P}× (table rows: ${R_P99}×) | $(ok 'a <= 1.5 && b > 0' "$PAIR_P" "$PAIR_OK") |" "" \
  "Paired rounds$PIN_NOTE (all three running, measured in turn, ${RSECS} s each after ${RWARM} s of warm-up; odd rounds the bridge first, even rounds FlowGuard first, the peer last; errors: FlowGuard / peer / bridge):" "" \
  "| round | req/s FlowGuard / bridge | p99 FlowGuard / bridge | req/s FlowGuard / ${BEST_PEER:-peer} | errors |" "|---:|---|---|---|---|" "${PAIR_ROWS[@]}" "" \
  "Cross-check with wrk (\`../shared/bench/call.lua\`, 2 threads, 32 connections, ${SECS} s; status codes only, replies not checked):" "" \
  "| server | req/s | p50 | p99 | wrk errors |" "|---|---:|---:|---:|---|" "${WRK_ROWS[@]}"

# ---------------------------------------------------------------------------------------------
# 1c. The same pair in front of the kit's mcp-echo stdio, reported, not judged: that server is
# slower alone than either gateway, so in front of it both measure the backend.

step "1c. FlowGuard and the bridge in front of mcp-echo stdio, 32 connections, $ROUNDS alternating rounds$PIN_NOTE"
CALLS=$RUN/calls.jsonl; NCALLS=20000
awk -v n=$NCALLS 'BEGIN{ for (i = 1; i <= n; i++) printf "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"message\":\"hello world\"}}}\n", i }' >"$CALLS"
alone_rate() { # var cmd...: sets var to the calls per second of a stdio server fed $CALLS with no
  # gateway (median of 3 runs; 0, counted as an error, if a reply is missing)
  local var=$1 i t0 t1 got rates=(); shift
  for i in 1 2 3; do
    t0=$(date +%s%N)
    got=$(timeout -k 5 60 "$@" <"$CALLS" | grep -c '"result"')
    t1=$(date +%s%N)
    if [ "$got" != "$NCALLS" ]; then
      note_errors "$* alone: $got of $NCALLS replies" 1; printf -v "$var" 0; return
    fi
    rates+=("$(awk -v n=$NCALLS -v ns=$((t1 - t0)) 'BEGIN{printf "%.0f", n * 1e9 / ns}')")
  done
  printf -v "$var" '%s' "$(median "${rates[@]}")"
}
alone_rate KIT_ALONE "$ECHO" stdio; alone_rate OWN_ALONE "$STDIO"
START_PIN=("${PIN_SERVER[@]}"); LOAD_PIN=("${PIN_LOAD[@]}")
fg_config "$RUN/kit.toml" "echo|$ECHO|stdio"
port; FGPORT=$PORT; start "$FG kit" "$BIN/flowguard" -c "$RUN/kit.toml" -l "127.0.0.1:$FGPORT"; FGPID=$SPID
port; BRPORT=$PORT; start "$BR kit" "$ECHO" bridge "$BRPORT" "$ECHO" stdio; BRPID=$SPID
PPID_=
paired_rounds "mcp-echo stdio"
stop "$FGPID"; stop "$BRPID"
START_PIN=(); LOAD_PIN=()
KIT_R=$MED_RPS; KIT_P=$MED_P99; KIT_FG=$MED_FG; KIT_BR=$MED_BR
[ "$PAIR_OK" = 1 ] || { KIT_R=n/a; KIT_P=n/a; }
emit "" "### 1c. For reference: FlowGuard and the bridge in front of \`mcp-echo stdio\`" "" \
  "\`mcp-echo stdio\` (../shared/bench) sends each reply through tokio's blocking threads. Fed $(thousands "$NCALLS") calls from a file with no gateway at all, it answered $(thousands "$KIT_ALONE") calls a second (median of 3; \`fg-echo\` the same way: $(thousands "$OWN_ALONE")); in front of it FlowGuard ran at $(thousands "$KIT_FG") and the bridge at $(thousands "$KIT_BR") (medians of the rounds), against $(thousands "${PAIR_FG_OWN:-0}") and $(thousands "${PAIR_BR_OWN:-0}") in front of \`fg-echo\` (section 1). Where both gateways run at about the backend's own rate they measure the backend, whose speed on this VM depends on where the scheduler puts its threads (docs/benchmarks.md, \"Why section 1's stdio backend is fg-echo\"): reported, not judged." "" \
  "| measure (32 connections) | rounds | median |" "|---|---|---:|" \
  "| req/s FlowGuard / bridge | ${PAIR_RPS[*]:-n/a} | ${KIT_R}× |" \
  "| p99 FlowGuard / bridge | ${PAIR_P99[*]:-n/a} | ${KIT_P}× |" "" \
  "| round | req/s FlowGuard / bridge | p99 FlowGuard / bridge | peer | errors FlowGuard / bridge |" "|---:|---|---|---|---|" "${PAIR_ROWS[@]}"

# ---------------------------------------------------------------------------------------------
# 2. HTTP → HTTP

step "2. HTTP → HTTP passthrough (32 connections, $ROUNDS alternating rounds)"
# The backend alone and behind FlowGuard, measured in turn $ROUNDS times with both running: this
# VM's speed drifts by a quarter within a minute, so each round's ratio compares neighbours, and
# the target uses the median round.
port; BPORT=$PORT; start "mcp-echo-http" "$ECHO" http "$BPORT"; BPID=$SPID
S2_ROWS=(); RATIOS=(); PT_ALL=(); BE_ALL=(); NGINX_RATIOS=(); S2_OK=1
load_be() { jbe=$(round_load "http://127.0.0.1:$BPORT/" "$BPID"); }
load_pt() { jpt=$(round_load "http://127.0.0.1:$FPORT/mcp/echo" "$FPID" "$BPID"); }
if wait_port "$BPORT" "$BPID" 30; then
  fg_config "$RUN/http.toml" "echo|http://127.0.0.1:$BPORT/"
  port; FPORT=$PORT; start "FlowGuard-http" "$BIN/flowguard" -c "$RUN/http.toml" -l "127.0.0.1:$FPORT"; FPID=$SPID
  NPID=; NPORT=
  if [ -x "$NGINX" ]; then
    port; NPORT=$PORT; nginx_config "$RUN/nginx.conf" "$NPORT" "$BPORT"
    start "nginx" "$NGINX" -p "$RUN" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" -g "daemon off;"; NPID=$SPID
    wait_port "$NPORT" "$NPID" 10 || { echo "  nginx did not start (reference row left out):" >&2; tail -n 5 "$RUN/nginx-error.log" >&2; NPID=; }
    NGINX_VERSION=$("$NGINX" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
  fi
  if wait_port "$FPORT" "$FPID" 30; then
    for round in $(seq 1 "$ROUNDS"); do
      in_turn "$round" load_be load_pt
      j=$jbe; e=$(jf errors "$j"); e=${e:-1}; BE=$(jf rps "$j")
      S2_ROWS+=("| $round | mcp-echo http alone | $(thousands "$BE") | $(msec "$(jf p50_us "$j")") | $(msec "$(jf p99_us "$j")") | $(int "$(jf cpu_us_per_req "$j")") | $e |")
      note_errors "mcp-echo http (round $round)" "$e"
      j=$jpt; e=$(jf errors "$j"); e=${e:-1}; PT=$(jf rps "$j")
      S2_ROWS+=("| $round | FlowGuard → mcp-echo http | $(thousands "$PT") | $(msec "$(jf p50_us "$j")") | $(msec "$(jf p99_us "$j")") | $(int "$(jf cpu_us_per_req "$j")") | $e |")
      note_errors "FlowGuard → http (round $round)" "$e"
      [ "$e" = 0 ] || echo "  FlowGuard → http: $(jf first_error "$j")" >&2
      RATIOS+=("$(ratio "$PT" "$BE")"); PT_ALL+=("$PT"); BE_ALL+=("$BE")
      if [ -n "$NPID" ]; then
        j=$(round_load "http://127.0.0.1:$NPORT/" "$NPID" "$BPID")
        e=$(jf errors "$j"); e=${e:-1}; NX=$(jf rps "$j")
        S2_ROWS+=("| $round | nginx $NGINX_VERSION → mcp-echo http (reference) | $(thousands "$NX") | $(msec "$(jf p50_us "$j")") | $(msec "$(jf p99_us "$j")") | $(int "$(jf cpu_us_per_req "$j")") | $e |")
        if [ "$e" = 0 ]; then NGINX_RATIOS+=("$(ratio "$NX" "$BE")"); else echo "  nginx (reference, not counted): $(jf first_error "$j")" >&2; fi
      fi
    done
  else
    S2_ROWS+=("| | FlowGuard → mcp-echo http | did not start | | | | 1 |"); note_errors "FlowGuard → http: did not start" 1; S2_OK=0
    tail -n 20 "$RUN/FlowGuard-http.log" >&2
  fi
  stop "$FPID"; [ -n "$NPID" ] && stop "$NPID"
else
  S2_ROWS+=("| | mcp-echo http alone | did not start | | | | 1 |"); note_errors "mcp-echo http: did not start" 1; S2_OK=0
fi
stop "$BPID"
R_MED=0; [ "$S2_OK" = 1 ] && R_MED=$(median "${RATIOS[@]}")
emit "" "### 2. HTTP → HTTP passthrough" "" \
  "\`mcp-echo http\` (JSON replies) alone and behind FlowGuard (\`url = \"http://127.0.0.1:PORT/\"\`, routed at /mcp/echo), all running, measured in turn for ${ROUNDS} rounds of ${RSECS} s each (after ${RWARM} s of warm-up; odd rounds the backend alone first, even rounds FlowGuard first, nginx last); 32 connections, one session; CPU of the proxy and the backend together. For reference, each round also measures nginx as a plain keep-alive reverse proxy (2 workers, no MCP parsing) in front of the same backend: what any proxy on this machine can reach." "" \
  "| round | server | req/s | p50 | p99 | CPU µs/req | errors |" "|---:|---|---:|---:|---:|---:|---:|" "${S2_ROWS[@]}" "" \
  "| target | measured | ✓/✗ |" "|---|---|:-:|" \
  "| passthrough ≥ 0.5 × backend alone (median round) | rounds ${RATIOS[*]:-n/a} → ${R_MED}× | $(ok 'a >= 0.5 && b > 0' "$R_MED" "$S2_OK") |" \
  "| reference: nginx / backend alone (median round; not a target) | rounds ${NGINX_RATIOS[*]:-n/a} → $( [ ${#NGINX_RATIOS[@]} -gt 0 ] && median "${NGINX_RATIOS[@]}" || echo n/a)× | |"

# ---------------------------------------------------------------------------------------------
# 3. unified tools/list over 10 servers x 100 tools

# Five fresh starts, medians: latency over one connection moves with any slow spell of the VM
# (one run of three starts gave 2.7 ms where replays gave 0.6-0.7 ms).
LIST_STARTS=5
step "3. unified tools/list, 10 servers × 100 tools ($LIST_STARTS fresh starts)"
SERVERS=(); for i in $(seq 0 9); do SERVERS+=("s$i|$ECHO|stdio,--tools,100"); done
fg_config "$RUN/list.toml" "${SERVERS[@]}"
COLD=(); W50=(); W99=(); ITEMS=(); STARTUP=(); S3_ERR=0
for n in $(seq 1 "$LIST_STARTS"); do
  port; t_start=$(date +%s%N)
  start "FlowGuard-list-$n" "$BIN/flowguard" -c "$RUN/list.toml" -l "127.0.0.1:$PORT"
  if wait_port "$PORT" "$SPID" 60; then
    STARTUP+=($(( ($(date +%s%N) - t_start) / 1000 )))
    j=$(load 120 list --url "http://127.0.0.1:$PORT/mcp" --requests 1001 --expect-items 1000)
    e=$(jf errors "$j"); e=${e:-1}
    COLD+=("$(jf cold_us "$j")"); W50+=("$(jf p50_us "$j")"); W99+=("$(jf p99_us "$j")"); ITEMS+=("$(jf items "$j")")
    note_errors "tools/list start $n" "$e"; S3_ERR=$((S3_ERR + e))
    [ "$e" = 0 ] || echo "  tools/list: $(jf first_error "$j")" >&2
  else
    note_errors "tools/list start $n: did not start" 1; S3_ERR=$((S3_ERR + 1))
    COLD+=(0); W50+=(0); W99+=(0); ITEMS+=(0); STARTUP+=(0)
  fi
  stop "$SPID"
done
C_MED=$(median "${COLD[@]}"); W50_MED=$(median "${W50[@]}"); W99_MED=$(median "${W99[@]}")
ITEMS_MIN=$(printf '%s\n' "${ITEMS[@]}" | sort -n | head -1)
emit "" "### 3. Unified tools/list, 10 servers × 100 tools" "" \
  "FlowGuard with servers s0…s9 (\`mcp-echo stdio --tools 100\`), unified endpoint /mcp, default prefixing; $LIST_STARTS fresh starts, each: initialize, then 1,001 sequential tools/list on one connection (the first is cold, the other 1,000 warm); medians of the $LIST_STARTS starts." "" \
  "| measure | value | per start | target | ✓/✗ |" "|---|---:|---|---|:-:|" \
  "| start-up until listening (10 servers ready) | $(msec "$(median "${STARTUP[@]}")") | $(msecs "${STARTUP[@]}") | — | |" \
  "| cold: first tools/list | $(msec "$C_MED") | $(msecs "${COLD[@]}") | — | |" \
  "| warm p50 | $(msec "$W50_MED") | $(msecs "${W50[@]}") | < 1 ms | $(ok 'a < 1000 && a > 0' "$W50_MED") |" \
  "| warm p99 | $(msec "$W99_MED") | $(msecs "${W99[@]}") | — | |" \
  "| tools in every reply | $(thousands "$ITEMS_MIN") | | 1,000 | $(ok 'a == 1000' "$ITEMS_MIN") |" \
  "| errors | $S3_ERR | | 0 | $(ok 'a == 0' "$S3_ERR") |"

# ---------------------------------------------------------------------------------------------
# 4. + 5. resident memory and session set-up

step "4. resident memory and 5. session set-up"
fg_config "$RUN/two.toml" "a|$ECHO|stdio" "b|$ECHO|stdio"
port; start "FlowGuard-rss" "$BIN/flowguard" -c "$RUN/two.toml" -l "127.0.0.1:$PORT"; FPID=$SPID
IDLE=0; R1K=0; R10K=0; S5_ROWS=()
sessions_run() { # label count → sets J
  J=$(load 300 sessions --url "http://127.0.0.1:$PORT/mcp" --count "$2" --conns 32)
  local e; e=$(jf errors "$J"); e=${e:-1}
  S5_ROWS+=("| $1 | $(thousands "$(jf opened "$J")") | $(thousands "$(jf sessions_per_s "$J")") | $(msec "$(jf p50_us "$J")") | $(msec "$(jf p99_us "$J")") | $(msec "$(jf max_us "$J")") | $e |")
  note_errors "sessions: $1" "$e"
  [ "$e" = 0 ] || echo "  sessions $1: $(jf first_error "$J")" >&2
}
if wait_port "$PORT" "$FPID" 30; then
  sleep 2; IDLE=$(rss_kib "$FPID")
  sessions_run "sessions 1–1,000" 1000; sleep 1; R1K=$(rss_kib "$FPID")
  sessions_run "sessions 1,001–10,000" 9000; sleep 1; R10K=$(rss_kib "$FPID")
  alive "$FPID" || { note_errors "FlowGuard exited during the session runs" 1; R10K=0; }
else
  note_errors "FlowGuard (two servers): did not start" 1
fi
stop "$FPID"
D1K=$((R1K - IDLE)); D10K=$((R10K - IDLE))
emit "" "### 4. Resident memory" "" \
  "VmRSS of the flowguard process alone (not its servers), configured with two stdio servers (\`mcp-echo stdio\`): idle 2 s after start-up, then with 1,000 and 10,000 sessions open (initialize + initialized each on /mcp, never deleted). MB = 10⁶ bytes." "" \
  "| state | VmRSS | added | target | ✓/✗ |" "|---|---:|---:|---|:-:|" \
  "| idle, two stdio servers | $(mb "$IDLE") | | ≤ 15 MB | $(ok 'a > 0 && a * 1024 <= 15e6' "$IDLE") |" \
  "| 1,000 sessions open | $(mb "$R1K") | +$(mb "$D1K") | | |" \
  "| 10,000 sessions open | $(mb "$R10K") | +$(mb "$D10K") | ≤ +150 MB | $(ok 'b > 0 && a * 1024 <= 150e6' "$D10K" "$R10K") |"
emit "" "### 5. Session set-up" "" \
  "The same runs as section 4: 32 connections, each session one initialize and one notifications/initialized (set-up latency covers both)." "" \
  "| run | sessions | sessions/s | p50 | p99 | max | errors |" "|---|---:|---:|---:|---:|---:|---:|" "${S5_ROWS[@]}"

# ---------------------------------------------------------------------------------------------
# summary and docs/benchmarks.md

BENCH_SECS=$(( $(date +%s) - BENCH_T0 ))
if [ "$TOTAL_ERRORS" = 0 ]; then
  VERDICT="No errors: every reply was checked (id, result, isError, echoed text or item count, session id)."
else
  VERDICT="**ERRORS: $TOTAL_ERRORS** in: $(printf '%s; ' "${FAILED_ROWS[@]}")"
fi
emit "" "$VERDICT"

if [ -z "${BENCH_NO_DOC:-}" ]; then
  COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -n "$(git status --porcelain 2>/dev/null)" ] && COMMIT="$COMMIT (dirty: uncommitted changes)"
  CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
  MEM=$(awk '/^MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
  SECTION=$RUN/section.md
  {
    echo "## Latest run"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs ($CPU), $MEM memory, Linux $(uname -r); load average before the run: $LOAD_BEFORE"
    echo "- commit: $COMMIT"
    echo "- command: \`$COMMAND\` (measuring took ${BENCH_SECS} s; $(rustc --version 2>/dev/null | cut -d' ' -f1-2), node $(node --version), $(python3 --version))"
    cat "$OUT"
    echo
  } >"$SECTION"
  DOC=docs/benchmarks.md
  mkdir -p docs
  if [ ! -f "$DOC" ]; then
    {
      echo "# Benchmarks"
      echo
      echo "\`bench/run.sh\` measures FlowGuard side by side with a minimal stdio bridge (\`mcp-echo bridge\` from"
      echo "\`../shared/bench\`) and three peer gateways (supergateway, mcp-proxy for Node and for Python), all in front"
      echo "of the same stdio backend, in one run on one machine; only ratios between rows of the same run are"
      echo "meaningful. The load generator, \`fg-load\` (crates/flowguard-bench), checks every reply. The script"
      echo "rewrites the \"Latest run\" section below; the rest of this file is kept."
      echo
      cat "$SECTION"
    } >"$DOC"
  elif grep -q '^## Latest run' "$DOC"; then
    awk -v new="$SECTION" '
      /^## Latest run/ { while ((getline line < new) > 0) print line; skip = 1; next }
      skip && /^## / { skip = 0 }
      !skip { print }' "$DOC" >"$RUN/doc.md" && cat "$RUN/doc.md" >"$DOC"
  elif grep -q '^## History' "$DOC"; then
    awk -v new="$SECTION" '
      /^## History/ && !done { while ((getline line < new) > 0) print line; done = 1 }
      { print }' "$DOC" >"$RUN/doc.md" && cat "$RUN/doc.md" >"$DOC"
  else
    { echo; cat "$SECTION"; } >>"$DOC"
  fi
  echo "wrote $DOC" >&2
fi
echo "measuring took ${BENCH_SECS} s (whole run $(( $(date +%s) - T0 )) s)" >&2
[ "$TOTAL_ERRORS" = 0 ] || exit 1
exit 0
