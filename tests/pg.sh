#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL cluster for the test suite and exports
# RELUVIA_TEST_PGHOST / RELUVIA_TEST_PGPORT / RELUVIA_TEST_PGUSER for tests/common.
# Source it: `source tests/pg.sh`. Works as root (runs the server as `postgres`) and
# as an ordinary user. The cluster lives in $RELUVIA_TEST_PGDATA (default
# /tmp/reluvia-test-pg) and is reused while it runs; `bash tests/pg.sh stop` stops it.
set -euo pipefail

pg_bin="${RELUVIA_PG_BIN:-}"
if [ -z "$pg_bin" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pg_bin="$d"; done
fi
[ -x "$pg_bin/initdb" ] || { echo "tests/pg.sh: no PostgreSQL server binaries found (apt-get install postgresql)" >&2; return 1 2>/dev/null || exit 1; }

data="${RELUVIA_TEST_PGDATA:-/tmp/reluvia-test-pg}"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = stop ]; then
  [ -f "$data/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$data" -m fast stop >/dev/null || true
  exit 0
fi

# Reuse a running cluster only if it answers (a stale postmaster.pid whose PID was
# reused by another process would fool `pg_ctl status` alone).
running=false
if [ -f "$data/postmaster.pid" ] && as_pg "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  old_port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$data/postgresql.conf" | tail -1)
  "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$old_port" -t 5 && running=true
  $running || as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
fi
if ! $running; then
  rm -rf "$data"
  mkdir -p "$data"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; fi
  chmod 700 "$data"
  as_pg "$pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 \
    || { cat "$data.initdb.log" >&2; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >>"$data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'Pacific/Chatham'
log_min_messages = warning
CONF
  as_pg "$pg_bin/pg_ctl" -D "$data" -l "$data/server.log" -w start >/dev/null
fi
port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$data/postgresql.conf" | tail -1)
# Password authentication for members of pw_users (wrong-password tests); everyone
# else is trusted on loopback. Rewritten on every call so an old cluster follows.
cat >"$data/pg_hba.conf.new" <<HBA
local all all trust
host all +pw_users 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
HBA
if [ "$(id -u)" = 0 ]; then chown postgres: "$data/pg_hba.conf.new"; fi
mv "$data/pg_hba.conf.new" "$data/pg_hba.conf"
as_pg "$pg_bin/pg_ctl" -D "$data" reload >/dev/null
"$pg_bin/psql" -h "$data" -p "$port" -U postgres -d postgres -qAt -c \
  "do \$\$ begin if not exists (select from pg_roles where rolname = 'pw_users') then create role pw_users nologin; end if; end \$\$;" >/dev/null
export RELUVIA_TEST_PGHOST=127.0.0.1 RELUVIA_TEST_PGPORT="$port" RELUVIA_TEST_PGUSER=postgres
echo "tests/pg.sh: PostgreSQL on 127.0.0.1:$port (data $data)" >&2
