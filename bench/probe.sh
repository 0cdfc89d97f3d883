#!/usr/bin/env bash
# bench/probe.sh: FlowGuard against hostile and heavy clients, with its memory (VmRSS) sampled
# and an ordinary client served alongside (fg-probe, crates/flowguard-bench/src/bin/fg-probe.rs):
#   1. 16 connections sending tools/call without a session for 60 s (each call makes a
#      transparent session: gateway.max_sessions and auto_session_idle_timeout bound them)
#   2. 200 connections that send their headers and 1.5 MB of a 2 MB body, then stall
#      (gateway.body_timeout closes them with 408)
#   3. 20 concurrent 15 MB replies, and memory 12 s later
# Prints one line per phase; exits non-zero if an ordinary call failed, a stalled connection
# was not closed, a big reply was lost, or the gateway crashed. Not part of scripts/test.sh.
#
#   PROBE_SECONDS=60  length of phase 1      PROBE_BIN=target/release   where the binaries are
#   PROBE_BODY_TIMEOUT=30                    the gateway's body_timeout (seconds)
# Builds the release binaries it needs. Listens on 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${PROBE_BIN:-target/release}
SECS=${PROBE_SECONDS:-60}
BODY=${PROBE_BODY_TIMEOUT:-30}
if [[ "$BIN" == target/release ]]; then
  cargo build --release --locked -p flowguard -p flowguard-bench -p flowguard-testkit --bin flowguard --bin fg-probe --bin fake
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-probe.XXXXXX")
trap 'kill "${GW:-0}" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cat > "$WORK/probe.toml" <<TOML
[gateway]
body_timeout = "${BODY}s"
[servers.fake]
command = "$ROOT/$BIN/fake"
TOML
"$BIN/flowguard" -c "$WORK/probe.toml" -l 127.0.0.1:0 2>"$WORK/gw.log" &
GW=$!
for _ in $(seq 100); do
  URL=$(grep -o -m1 'Listening on http://127\.0\.0\.1:[0-9]*' "$WORK/gw.log" | sed 's/^Listening on //' || true)
  [[ -n "$URL" ]] && grep -q '✓ fake' "$WORK/gw.log" && break
  sleep 0.1
done
[[ -n "${URL:-}" ]] || { echo "probe: the gateway did not start:"; cat "$WORK/gw.log"; exit 2; }
echo "probe: FlowGuard $(git rev-parse --short HEAD) at $URL (pid $GW), defaults but body_timeout = ${BODY}s"
"$BIN/fg-probe" --url "$URL/mcp/fake" --pid "$GW" --seconds "$SECS" --body-timeout "$BODY"
