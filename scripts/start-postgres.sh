#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests and print its URL.
# Installs Debian's server package when no initdb is found. Needs root (runs the server
# as the `postgres` user). Reuses a server already running in the same directory.
set -euo pipefail

dir="${PGTEST_DIR:-/tmp/agent-fleet-pg}"
port="${PGTEST_PORT:-55432}"
url="postgresql+psycopg://fleet:fleet@127.0.0.1:${port}/fleet"

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$bin" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
fi

if [ -f "$dir/postmaster.pid" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    echo "$url"
    exit 0
fi
rm -rf "$dir"
install -d -o postgres -g postgres "$dir"
runuser -u postgres -- "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k /tmp -c fsync=off -c max_connections=200" start >/dev/null
psql="psql -h 127.0.0.1 -p $port -U postgres -q"
$psql -c "CREATE ROLE fleet LOGIN PASSWORD 'fleet' CREATEDB" postgres
$psql -c "CREATE DATABASE fleet OWNER fleet" postgres
echo "$url"
