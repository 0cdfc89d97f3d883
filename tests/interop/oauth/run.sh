#!/usr/bin/env bash
# tests/interop/oauth/run.sh: FlowGuard as an OAuth 2.1 resource server, against a real
# authorization server (oidc-provider, provider.mjs) and a real OAuth client (the Python MCP
# SDK's client-credentials provider, py_oauth_client.py). See README.md beside this file.
#
# Usage: tests/interop/oauth/run.sh FLOWGUARD_BIN [SERVER_CMD ARGS...]
#        tests/interop/oauth/run.sh --self-test        (FLOWGUARD_BIN = ./mock-flowguard, a
#                                                      stand-in that checks the harness itself)
#   SERVER_CMD: the MCP server behind the gateway as [servers.everything] (default:
#   node $EVERYTHING_JS stdio). Env: OAUTH_TOOL (default echo), OAUTH_TOOL_ARGS (default
#   {"message":"hi"}), OAUTH_TOOL_EXPECT (substring of the result, default "Echo: hi").
# Needs scripts/setup-interop.sh to have run (.interop/env.sh with OIDC_PROVIDER_DIR, PYTHON_MCP).
# Prints `PASS name` / `FAIL name: why` per check and `oauth: N passed, M failed`; exits 1 if any
# check failed, 2 if it could not start. Only 127.0.0.1; everything started here is stopped on
# exit (trap); the work directory is kept (and printed) when something failed or KEEP_WORK=1.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
ENV_SH=$ROOT/.interop/env.sh
[[ -f "$ENV_SH" ]] || { echo "oauth/run.sh: $ENV_SH missing: run scripts/setup-interop.sh first" >&2; exit 2; }
# shellcheck disable=SC1090
source "$ENV_SH"
for v in OIDC_PROVIDER_DIR PYTHON_MCP EVERYTHING_JS; do
  [[ -n "${!v:-}" ]] || { echo "oauth/run.sh: $v not set by $ENV_SH: rerun scripts/setup-interop.sh" >&2; exit 2; }
done
[[ -d "$OIDC_PROVIDER_DIR/node_modules/oidc-provider" ]] || { echo "oauth/run.sh: oidc-provider missing in $OIDC_PROVIDER_DIR: rerun scripts/setup-interop.sh" >&2; exit 2; }

FG=${1:-}
[[ "$FG" == "--self-test" ]] && FG=$HERE/mock-flowguard
[[ -n "$FG" ]] || { echo "usage: $0 FLOWGUARD_BIN [SERVER_CMD ARGS...] | --self-test" >&2; exit 2; }
[[ -x "$FG" ]] || { echo "oauth/run.sh: $FG is not executable" >&2; exit 2; }
shift
if (($# > 0)); then SERVER_CMD=("$@"); else SERVER_CMD=(node "$EVERYTHING_JS" stdio); fi
TOOL=${OAUTH_TOOL:-echo}
TOOL_ARGS=${OAUTH_TOOL_ARGS:-'{"message":"hi"}'}
TOOL_EXPECT=${OAUTH_TOOL_EXPECT:-Echo: hi}
export NO_COLOR=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/flowguard-oauth.XXXXXX")
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
  if ((FAILED > 0)) || [[ -n "${KEEP_WORK:-}" ]]; then echo "oauth: work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'echo "oauth: interrupted" >&2; FAILED=$((FAILED + 1)); exit 130' INT TERM
# The whole run is bounded: a watchdog ends it (and the trap cleans up) after 85 s.
# (its `sleep` gets no stdout/stderr, so a pipe reading this script's output is not held open by it)
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep 85 </dev/null >/dev/null 2>&1 &
  sp=$!
  wait "$sp" || exit 0
  echo "oauth/run.sh: watchdog: still running after 85 s, giving up" >&2
  kill -TERM $$
) &
WATCHDOG=$!
disown "$WATCHDOG"

free_port() { "$PYTHON_MCP" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
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
tok() { timeout 15 node "$HERE/token.mjs" --issuer "$ISS" "$@" 2>>"$WORK/token.err"; }
claims() { timeout 15 node -e '
  const [h, p] = process.argv[1].split(".").slice(0, 2).map((s) => JSON.parse(Buffer.from(s, "base64url")));
  console.log(JSON.stringify({ header: h, payload: p }));' "$1"; }
jq_() { "$PYTHON_MCP" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
# http NAME METHOD URL [curl args...]: sets CODE, writes $WORK/NAME.body and $WORK/NAME.headers
http() {
  local name=$1 method=$2 url=$3
  shift 3
  CODE=$(curl -s -m 10 -X "$method" -o "$WORK/$name.body" -D "$WORK/$name.headers" -w '%{http_code}' "$@" "$url" 2>/dev/null)
  [[ -n "$CODE" ]] || CODE=000
}
www_auth() { grep -i '^www-authenticate:' "$WORK/$1.headers" | head -1 | tr -d '\r' | sed 's/^[^:]*: *//'; }
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}'
post_mcp() {  # post_mcp NAME URL [TOKEN]: POST initialize, with `Authorization: Bearer TOKEN` if given
  local name=$1 url=$2 token=${3:-}
  local h=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' --data "$INIT")
  [[ -n "$token" ]] && h+=(-H "Authorization: Bearer $token")
  http "$name" POST "$url" "${h[@]}"
}
# expect_reject CHECK NAME TOKEN: a POST with TOKEN is refused with 401 and error="invalid_token"
expect_reject() {
  local check=$1 name=$2 token=$3 wa
  [[ -n "$token" ]] || { fail "$check" "no token to send (see $WORK/token.err)" "$WORK/token.err"; return; }
  post_mcp "$name" "$MCP_URL" "$token"
  wa=$(www_auth "$name")
  if [[ "$CODE" == 401 && "$wa" == *'error="invalid_token"'* ]]; then
    pass "$check ($CODE, $wa)"
  else
    fail "$check" "want 401 with error=\"invalid_token\", got $CODE, WWW-Authenticate: ${wa:-none}" "$WORK/$name.body" "$WORK/gw.log"
  fi
}

# ------------------------------------------------------------------ provider
PPORT=$(free_port) GPORT=$(free_port)
while [[ "$GPORT" == "$PPORT" ]]; do GPORT=$(free_port); done
ISS=http://127.0.0.1:$PPORT
RES=http://127.0.0.1:$GPORT/mcp           # the gateway's canonical resource = required audience
RES2=$RES-other                            # also accepted by the provider: the wrong audience
MCP_URL=http://127.0.0.1:$GPORT/mcp/everything
PRM_URL=http://127.0.0.1:$GPORT/.well-known/oauth-protected-resource/mcp/everything
ROTATE=$WORK/rotate
node "$HERE/provider.mjs" --port "$PPORT" --keys "$WORK/keys.json" --resource "$RES" --ttl 600 --short-ttl 1 \
  --rotate-file "$ROTATE" >"$WORK/provider.out" 2>"$WORK/provider.log" </dev/null &
PPID_=$!
PIDS+=("$PPID_")
if ! wait_line "$WORK/provider.out" '^ready ' 15 "$PPID_" >/dev/null; then
  fail provider/start "provider.mjs did not print ready within 15 s" "$WORK/provider.log"
  exit 1
fi
pass "provider/start ($ISS)"

# discovery, both well-known forms
ok=1
for wk in oauth-authorization-server openid-configuration; do
  http "asm-$wk" GET "$ISS/.well-known/$wk"
  iss_got=$(jq_ 'd["issuer"]' <"$WORK/asm-$wk.body" 2>/dev/null)
  [[ "$CODE" == 200 && "$iss_got" == "$ISS" ]] || { ok=0; fail "provider/discovery-$wk" "HTTP $CODE issuer ${iss_got:-?}" "$WORK/asm-$wk.body"; }
done
((ok)) && pass "provider/discovery (RFC 8414 and OIDC URLs, issuer $ISS)"

# a token for the gateway's resource: JWT, aud = resource, kid = the JWKS's first key, scope
T_OK=$(tok --resource "$RES" --scope mcp:tools)
KID0=$(jq_ 'd["keys"][0]["kid"]' <"$WORK/keys.json" 2>/dev/null)
if [[ -n "$T_OK" ]]; then
  C=$(claims "$T_OK"); echo "$C" >"$WORK/token-ok.json"
  got=$(jq_ '"%s|%s|%s|%s|%s" % (d["header"]["typ"], d["header"]["kid"], d["payload"]["aud"], d["payload"]["iss"], d["payload"].get("scope"))' <<<"$C")
  if [[ "$got" == "at+jwt|$KID0|$RES|$ISS|mcp:tools" ]]; then
    pass "provider/token ($C)"
  else
    fail provider/token "want at+jwt|$KID0|$RES|$ISS|mcp:tools, got $got" "$WORK/token.err"
  fi
else
  fail provider/token "no token" "$WORK/token.err" "$WORK/provider.log"
fi
# an unknown resource is refused (RFC 8707 invalid_target)
if tok --resource "$RES/everything" --scope mcp:tools >/dev/null; then
  fail provider/invalid-target "a token was issued for $RES/everything"
elif grep -q invalid_target "$WORK/token.err"; then
  pass "provider/invalid-target (only $RES and $RES2 are resources)"
else
  fail provider/invalid-target "no invalid_target error" "$WORK/token.err"
fi
# the short-lived token for the expiry check, taken now so the wait overlaps the other checks
T_SHORT=$(tok --resource "$RES" --scope mcp:tools --client fg-test-short)
T_SHORT_AT=$SECONDS

# ------------------------------------------------------------------ gateway
CFG=$WORK/flowguard.toml
{
  echo '[gateway]'
  echo "listen = \"127.0.0.1:$GPORT\""
  echo '[auth.oauth]'
  echo "resource = \"$RES\""
  echo "authorization_servers = [\"$ISS\"]"
  echo 'scopes = ["mcp:tools"]'
  echo 'leeway = "0s"'
  echo '[servers.everything]'
  echo "command = \"${SERVER_CMD[0]}\""
  printf 'args = ['
  sep=""
  for a in "${SERVER_CMD[@]:1}"; do printf '%s"%s"' "$sep" "$a"; sep=", "; done
  echo ']'
} >"$CFG"
"$FG" -c "$CFG" --listen "127.0.0.1:$GPORT" >"$WORK/gw.out" 2>"$WORK/gw.log" </dev/null &
GW_PID=$!
PIDS+=("$GW_PID")
if ! wait_line "$WORK/gw.log" "listening on http://127\.0\.0\.1:$GPORT" 30 "$GW_PID" >/dev/null; then
  fail gateway/start "$FG did not print 'listening on http://127.0.0.1:$GPORT' within 30 s (config $CFG)" "$WORK/gw.log"
  exit 1
fi
pass "gateway/start (127.0.0.1:$GPORT)"

# (a) no token: 401 + the RFC 9728 challenge
post_mcp no-token "$MCP_URL"
WA=$(www_auth no-token)
want_rm="resource_metadata=\"$PRM_URL\""
if [[ "$CODE" == 401 && "$WA" == Bearer\ * && "$WA" == *"$want_rm"* && "$WA" == *'scope="mcp:tools"'* ]]; then
  pass "gateway/401-challenge ($WA)"
else
  fail gateway/401-challenge "want 401 with WWW-Authenticate: Bearer $want_rm, scope=\"mcp:tools\"; got $CODE, ${WA:-no WWW-Authenticate}" "$WORK/no-token.body" "$WORK/gw.log"
fi

# (b) protected resource metadata, path form and root form
for form in path root; do
  url=$PRM_URL
  [[ $form == root ]] && url=http://127.0.0.1:$GPORT/.well-known/oauth-protected-resource
  http "prm-$form" GET "$url"
  got=$(jq_ '"%s|%s" % (d["resource"], ",".join(s.rstrip("/") for s in d["authorization_servers"]))' <"$WORK/prm-$form.body" 2>/dev/null)
  if [[ "$CODE" == 200 && "$got" == "$RES|$ISS" ]]; then
    pass "gateway/prm-$form ($url: $(tr -d '\n' <"$WORK/prm-$form.body" | cut -c1-300))"
  else
    fail "gateway/prm-$form" "GET $url: want 200 with resource $RES and authorization_servers [$ISS], got $CODE ${got:-$(head -c 200 "$WORK/prm-$form.body" 2>/dev/null)}" "$WORK/gw.log"
  fi
done

# a valid token is accepted (the baseline the rejections below are measured against)
post_mcp valid "$MCP_URL" "$T_OK"
if [[ "$CODE" == 200 ]]; then pass "gateway/valid-token (200)"; else fail gateway/valid-token "want 200, got $CODE $(head -c 200 "$WORK/valid.body")" "$WORK/gw.log"; fi

# (c) the Python SDK does the whole flow from the 401 alone
sdk_flow() {  # sdk_flow CHECK: py_oauth_client.py's JSON lines go to $WORK/<CHECK with / as ->.jsonl
  local check=$1 rc out err
  out=$WORK/${check//\//-}.jsonl err=$WORK/${check//\//-}.err
  timeout 40 "$PYTHON_MCP" "$HERE/py_oauth_client.py" "$MCP_URL" "$TOOL" "$TOOL_ARGS" --issuer "$ISS" \
    >"$out" 2>"$err"
  rc=$?
  local summary token_line
  summary=$(grep '"event": "summary"' "$out" | tail -1)
  token_line=$(grep '"event": "token"' "$out" | tail -1)
  SDK_KID=$(jq_ 'd["header"]["kid"]' <<<"$token_line" 2>/dev/null)
  if [[ $rc == 0 ]] && grep -q '"event": "call"' "$out" && grep -qF "$TOOL_EXPECT" "$out"; then
    pass "$check (token kid $SDK_KID, aud $(jq_ 'd["claims"]["aud"]' <<<"$token_line" 2>/dev/null); $(jq_ '"prm %s, asm %s" % (d["prm_urls"], d["asm_urls"])' <<<"$summary" 2>/dev/null))"
  else
    fail "$check" "py_oauth_client.py exit $rc: $(tail -1 "$err")" "$out" "$WORK/gw.log"
  fi
}
sdk_flow python/sdk-client-credentials

# Tokens for the rejection checks, all signed by the first key: taken before the rotation, so
# that each is refused for its own reason, not for a kid the gateway has not fetched yet.
T_AUD2=$(tok --resource "$RES2" --scope mcp:tools)
T_ADMIN=$(tok --resource "$RES" --scope mcp:admin)

# (e) key rotation, part 1: new kid, token carries it, the JWKS lists new then old.
touch "$ROTATE"
T_NEW="" KID1=""
if KID1=$(wait_line "$WORK/provider.out" '^rotated ' 10 "$PPID_"); then
  KID1=${KID1#rotated }
  ROTATED_AT=$SECONDS
  T_NEW=$(tok --resource "$RES" --scope mcp:tools)
  new_kid=$(claims "$T_NEW" | jq_ 'd["header"]["kid"]' 2>/dev/null)
  http jwks GET "$ISS/jwks"
  kids=$(jq_ '",".join(k["kid"] for k in d["keys"])' <"$WORK/jwks.body" 2>/dev/null)
  if [[ -n "$KID1" && "$new_kid" == "$KID1" && "$KID1" != "$KID0" && "$kids" == "$KID1,$KID0" ]]; then
    pass "provider/rotation (kid $KID0 -> $KID1, JWKS [$kids])"
  else
    fail provider/rotation "want a new token kid $KID1 != $KID0 and JWKS [$KID1,$KID0], got kid $new_kid, JWKS [$kids]" "$WORK/provider.log"
  fi
else
  fail provider/rotation "no 'rotated' line within 10 s of creating $ROTATE" "$WORK/provider.log"
fi

# (d) rejections: wrong audience, token in the query string, expired (forged key: at the end)
expect_reject gateway/wrong-audience wrong-aud "$T_AUD2"
http query-token POST "$MCP_URL?access_token=$T_OK" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' --data "$INIT"
if [[ "$CODE" == 401 || "$CODE" == 400 ]]; then
  pass "gateway/query-token ($CODE, $(www_auth query-token))"
else
  fail gateway/query-token "a token in ?access_token= without a header: want 401 or 400, got $CODE" "$WORK/query-token.body" "$WORK/gw.log"
fi

# (f) valid token without the required scope: 403 insufficient_scope naming the scope
post_mcp scope "$MCP_URL" "$T_ADMIN"
WA=$(www_auth scope)
if [[ "$CODE" == 403 && "$WA" == *'error="insufficient_scope"'* && "$WA" == *'scope="mcp:tools"'* ]]; then
  pass "gateway/insufficient-scope ($WA)"
else
  fail gateway/insufficient-scope "token with scope mcp:admin: want 403 with error=\"insufficient_scope\", scope=\"mcp:tools\", got $CODE, ${WA:-no WWW-Authenticate}" "$WORK/scope.body" "$WORK/gw.log"
fi

# expired (1 s token, leeway 0 s): at least 3 s after it was issued
while ((SECONDS - T_SHORT_AT < 3)); do sleep 0.2; done
if [[ -n "$T_SHORT" ]]; then
  life=$(claims "$T_SHORT" | jq_ 'd["payload"]["exp"] - d["payload"]["iat"]')
  [[ "$life" == 1 ]] || fail provider/short-ttl "fg-test-short token lives ${life}s, not 1s"
fi
expect_reject gateway/expired-token expired "$T_SHORT"

# (e) key rotation, part 2: the gateway accepts the new kid without a restart. A gateway may
# debounce JWKS refetches on unknown kids (FlowGuard: at most every 10 s, counting its start-up
# fetch), so the new token is retried every 0.5 s for up to ROTATE_WAIT s (default 15) after
# the rotation; the PASS line says how long it took.
if [[ -n "$T_NEW" ]]; then
  while :; do
    post_mcp rotated "$MCP_URL" "$T_NEW"
    [[ "$CODE" == 200 ]] && break
    ((SECONDS - ROTATED_AT >= ${ROTATE_WAIT:-15})) && break
    sleep 0.5
  done
  if [[ "$CODE" == 200 ]]; then
    pass "gateway/key-rotation (token of new kid $KID1 accepted $((SECONDS - ROTATED_AT)) s after the rotation, no restart)"
  else
    fail gateway/key-rotation "token of new kid $KID1: want 200 within ${ROTATE_WAIT:-15} s, got $CODE, $(www_auth rotated)" "$WORK/rotated.body" "$WORK/gw.log"
  fi
  post_mcp old-key "$MCP_URL" "$T_OK"
  if [[ "$CODE" == 200 ]]; then
    pass "gateway/old-key-still-valid (token of kid $KID0, still in the JWKS, accepted)"
  else
    fail gateway/old-key-still-valid "token of kid $KID0 (still published): want 200, got $CODE, $(www_auth old-key)" "$WORK/gw.log"
  fi
  sdk_flow python/sdk-after-rotation
  if [[ -n "$SDK_KID" && "$SDK_KID" != "$KID1" ]]; then
    fail python/sdk-after-rotation-kid "the SDK's token has kid $SDK_KID, not the new $KID1"
  fi
fi

# last, since its unknown kid may start a gateway's refetch debounce
expect_reject gateway/forged-key forged "$(tok --resource "$RES" --scope mcp:tools --forge)"

echo "oauth: ${SECONDS}s"
echo "oauth: $PASSED passed, $FAILED failed"
((FAILED == 0))
