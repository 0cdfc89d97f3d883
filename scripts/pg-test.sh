#!/usr/bin/env bash
# pg-test.sh: a throwaway PostgreSQL cluster for the Rust storage tests.
#
#   scripts/pg-test.sh start DIR   makes a new cluster in DIR (which must be missing or empty),
#                                  starts it and prints ONE line on stdout, its URL:
#                                    postgres://postgres@127.0.0.1:PORT/flowguard_test
#                                  (also written to DIR/url). Exit 0 once the database
#                                  `flowguard_test` exists; else non-zero, the log tail on stderr
#                                  and nothing left running.
#   scripts/pg-test.sh stop DIR    stops it (pg_ctl stop -m immediate) and removes DIR. Safe to
#                                  repeat; refuses a DIR that start did not make.
#
# The cluster: initdb with trust auth for everyone (superuser `postgres`), listening on
# 127.0.0.1 only, on a free port, its unix socket in DIR (not /var/run/postgresql); fsync off
# (data is thrown away). As root, initdb/pg_ctl run as the `postgres` OS user (runuser), DIR is
# chowned to it, and every directory above DIR must be searchable by that user (e.g. chmod 711
# on a mktemp -d parent). Binaries: $PG_BIN if it holds initdb and pg_ctl, else the newest
# /usr/lib/postgresql/<ver>/bin (Debian's postgresql package; scripts/setup-interop.sh installs
# it and exports PG_BIN in .interop/env.sh). Copies elsewhere on PATH are not used.
set -euo pipefail

MADE=""                   # set once `start` has made DIR: failures then say how to remove it
die() {
  echo "pg-test.sh: $*" >&2
  [[ -z "$MADE" ]] || echo "pg-test.sh: nothing left running; logs kept in $DIR (remove it with: $0 stop $DIR)" >&2
  exit 1
}
usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
CMD=$1 DIR=$2
[[ -n "$DIR" && "$DIR" != / ]] || usage
MARK=.flowguard-pg-test   # marks a DIR that `start` made, so `stop` never removes anything else
START_WAIT=30             # seconds pg_ctl -w waits for the server to accept connections

find_pg_bin() {
  local d best="" bestv=""
  if [[ -n "${PG_BIN:-}" && -x "$PG_BIN/initdb" && -x "$PG_BIN/pg_ctl" ]]; then
    echo "$PG_BIN"; return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] || continue
    local v=${d#/usr/lib/postgresql/}; v=${v%/bin}
    if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$bestv" "$v" | sort -V | tail -n 1)" == "$v" ]]; then
      best=$d bestv=$v
    fi
  done
  [[ -n "$best" ]] || return 1
  echo "$best"
}

# as_pg CMD...: run CMD as the postgres OS user when we are root (initdb refuses root), from DIR
as_pg() {
  if [[ $(id -u) == 0 ]]; then
    (cd "$DIR" && runuser -u postgres -- "$@")
  else
    (cd "$DIR" && "$@")
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

log_tail() {
  local f
  for f in "$DIR/initdb.log" "$DIR/postgres.log" "$DIR/createdb.log"; do
    [[ -s "$f" ]] || continue
    echo "  --- tail of $f" >&2
    tail -n 15 "$f" | sed 's/^/  | /' >&2
  done
}

stop_cluster() {  # quietly; 0 when nothing is left running
  local pid
  [[ -f "$DIR/data/postmaster.pid" ]] || return 0
  as_pg "$PG_BIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t 30 >/dev/null 2>&1 && return 0
  # pg_ctl could not stop it (or the pid file is stale): kill the postmaster if it still runs
  pid=$(head -n 1 "$DIR/data/postmaster.pid" 2>/dev/null || true)
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
    kill -0 "$pid" 2>/dev/null && return 1
  fi
  return 0
}

PG_BIN=$(find_pg_bin) || die "no PostgreSQL found (want /usr/lib/postgresql/<ver>/bin/{initdb,pg_ctl} or PG_BIN): run scripts/setup-interop.sh (apt-get install postgresql)"

case "$CMD" in
start)
  if [[ -e "$DIR" ]]; then
    [[ -d "$DIR" && -z "$(ls -A "$DIR")" ]] || die "$DIR exists and is not empty (stop it first: $0 stop $DIR)"
  fi
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd -P)
  touch "$DIR/$MARK"
  MADE=1
  if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the cluster as (it comes with Debian's postgresql package)"
    chown postgres: "$DIR"
    runuser -u postgres -- test -w "$DIR" -a -x "$DIR" ||
      die "the postgres user cannot write $DIR: every directory above it must be searchable by others (chmod o+x)"
  fi
  # initdb: trust auth, superuser postgres, C locale (no locale packages needed)
  if ! as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
    >"$DIR/initdb.log" 2>&1; then
    log_tail
    die "initdb failed ($PG_BIN/initdb)"
  fi
  URL=""
  for attempt in 1 2 3; do   # a free port can be taken between the probe and the bind: retry
    PORT=$(free_port)
    cat >>"$DIR/data/postgresql.conf" <<EOF

# scripts/pg-test.sh (attempt $attempt)
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    if as_pg "$PG_BIN/pg_ctl" start -D "$DIR/data" -l "$DIR/postgres.log" -w -t "$START_WAIT" >/dev/null 2>&1; then
      URL=postgres://postgres@127.0.0.1:$PORT/flowguard_test
      break
    fi
    stop_cluster || true
    grep -qiE 'could not bind|address already in use|could not create any TCP/IP sockets' "$DIR/postgres.log" 2>/dev/null || break
  done
  if [[ -z "$URL" ]]; then
    log_tail
    die "pg_ctl start failed or the server did not accept connections within ${START_WAIT}s"
  fi
  if ! as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres flowguard_test >"$DIR/createdb.log" 2>&1; then
    log_tail
    stop_cluster || true
    die "createdb flowguard_test failed"
  fi
  echo "$URL" >"$DIR/url"
  echo "$URL"
  ;;
stop)
  [[ -e "$DIR" ]] || exit 0
  [[ -f "$DIR/$MARK" ]] || die "$DIR was not made by '$0 start' (no $MARK in it): not touching it"
  DIR=$(cd "$DIR" && pwd -P)
  stop_cluster || die "could not stop the server of $DIR/data (see $DIR/postgres.log)"
  rm -rf "$DIR"
  ;;
*) usage ;;
esac
