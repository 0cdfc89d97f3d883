#!/usr/bin/env bash
# inspector.sh: one MCP request through the MCP Inspector 2.x CLI (Streamable HTTP), JSON output.
#
# Usage: tests/interop/inspector.sh URL METHOD [args...]
#   tools/list:  inspector.sh http://127.0.0.1:PORT/mcp tools/list
#   tools/call:  inspector.sh URL tools/call TOOL [key=value ...]     (each key=value -> --tool-arg)
#   anything starting with "--" is passed to the Inspector as is, e.g.
#                --header "X-Test: 1"  --protocol-era legacy|auto|modern  --tool-args-json '{...}'
# Needs scripts/setup-interop.sh to have run (sources .interop/env.sh for Node 22 + $INSPECTOR_BIN).
# Exit codes are the Inspector's: 0 ok, 1 usage, 3 auth required, 4 unreachable, 5 tool error.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '4,9p' "$0" >&2
  exit 1
fi
if [[ -z "${INSPECTOR_BIN:-}" ]]; then
  ENV_SH="$(dirname "$0")/../../.interop/env.sh"
  [[ -f "$ENV_SH" ]] || { echo "inspector.sh: $ENV_SH missing: run scripts/setup-interop.sh first" >&2; exit 1; }
  # shellcheck disable=SC1090
  source "$ENV_SH"
fi

URL=$1 METHOD=$2; shift 2
ARGS=()
if [[ "$METHOD" == tools/call && $# -gt 0 && "$1" != --* ]]; then
  ARGS+=(--tool-name "$1"); shift
fi
while [[ $# -gt 0 ]]; do
  case "$1" in
    --*=*) ARGS+=("$1") ;;
    --*) ARGS+=("$1")  # takes the next word as its value unless that is --x or key=value
         if [[ $# -gt 1 && "$2" != --* && ! "$2" =~ ^[A-Za-z_][A-Za-z0-9_.-]*= ]]; then ARGS+=("$2"); shift; fi ;;
    *=*) ARGS+=(--tool-arg "$1") ;;
    *)   echo "inspector.sh: unexpected argument '$1' (want key=value or --option)" >&2; exit 1 ;;
  esac
  shift
done
exec "$INSPECTOR_BIN" --cli "$URL" --transport "${INSPECTOR_TRANSPORT:-http}" --method "$METHOD" ${ARGS[@]+"${ARGS[@]}"} --format json
