#!/usr/bin/env bash
# Session benchmark: kizuna-sessions vs PostgreSQL 15 (Debian), same sessions, same lookups, same
# run; answers checked identical. Writes bench/out/sessions.md and prints it.
#
#   bench/sessions/run.sh [--sessions N (10000000)] [--lookups M (1000000)] [--seed S]
#
# PostgreSQL runs from its own data directory under bench/out/sessions/pgdata on a loopback
# port, as the postgres user, and is stopped at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/bench/out"
DATA="$OUT/sessions"
VENV="$OUT/venv"
PG=/usr/lib/postgresql/15/bin
PORT="${PGPORT_BENCH:-55432}"
CONNS="${PG_CONNECTIONS:-2}"
mkdir -p "$DATA"

if [ ! -x "$PG/postgres" ]; then
    apt-get install -y -qq postgresql-15 >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import psycopg' 2>/dev/null; then
    "$VENV/bin/pip" install -q 'psycopg[binary]==3.2.3'
fi

cd "$ROOT"
# SESSIONS_BENCH_BIN: an already built target/release/examples/sessions_bench (when another
# build holds cargo's lock).
if [ -n "${SESSIONS_BENCH_BIN:-}" ]; then
    "$SESSIONS_BENCH_BIN" "$DATA" "$@"
else
    cargo run --release -q -p kizuna-sessions --example sessions_bench -- "$DATA" "$@"
fi

PGDATA="$DATA/pgdata"
# A server left by an interrupted earlier run would hold the port: stop it first.
if [ -f "$PGDATA/postmaster.pid" ]; then
    runuser -u postgres -- "$PG/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$PGDATA"
mkdir -p "$PGDATA"
chown postgres: "$PGDATA"
chmod o+rx "$OUT" "$DATA"
runuser -u postgres -- "$PG/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGDATA'
shared_buffers = '4GB'
effective_cache_size = '8GB'
max_parallel_maintenance_workers = 2
fsync = off
synchronous_commit = off
full_page_writes = off
jit = off
CONF
runuser -u postgres -- "$PG/pg_ctl" -D "$PGDATA" -l "$PGDATA/postgres.log" -w start >/dev/null
trap 'runuser -u postgres -- "$PG/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null || true' EXIT
chmod o+r "$DATA"/sessions.tsv "$DATA"/lookups.tsv
"$VENV/bin/python" "$ROOT/bench/sessions/pg_bench.py" "$DATA" "host=127.0.0.1 port=$PORT user=postgres dbname=postgres" "$CONNS" "$OUT/sessions.md"
