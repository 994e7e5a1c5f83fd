#!/usr/bin/env bash
# The marts at scale: generates DAYS x SESSIONS_PER_DAY of raw data (default
# 90 x 1112 ≈ 100k sessions and >1M app events) into a database of the test
# server, builds the shipped project with the release binary (wall-clock and peak
# memory), and prints EXPLAIN (ANALYZE) of the two heavy marts.
# Usage: bash bench/marts.sh [DAYS] [SESSIONS_PER_DAY]
set -euo pipefail
cd "$(dirname "$0")/.."
days="${1:-90}"; spd="${2:-1112}"
bin="${CARGO_TARGET_DIR:-target}/release/reluvia-transform"
[ -x "$bin" ] || cargo build --release --quiet
source tests/pg.sh
set +e
db=bench_marts
psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -qc "drop database if exists $db" -qc "create database $db" >/dev/null 2>&1
export PG_ANALYTICS_HOST=127.0.0.1 PG_ANALYTICS_PORT="$RELUVIA_TEST_PGPORT" PG_ANALYTICS_USER=postgres PG_ANALYTICS_DBNAME=$db
target=$(mktemp -d)
trap 'rm -rf "$target"' EXIT

s=$(date +%s%N)
"$bin" generate --days "$days" --sessions-per-day "$spd" 2>&1 | tail -10
e=$(date +%s%N); echo "generate + load: $(( (e - s) / 1000000 )) ms"

psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -d $db -At -c \
  "select 'sessions', count(*) from raw_funnelfox.sessions union all select 'events', count(*) from raw_amplitude.events"

s=$(date +%s%N)
/usr/bin/time -f 'peak RSS of run: %M KiB' "$bin" run --project-dir transforms --target-path "$target" 2>&1 | grep -E "OK created|ERROR|peak RSS|Finished"
e=$(date +%s%N); echo "run (3 marts, 1 intermediate model): $(( (e - s) / 1000000 )) ms wall-clock"

s=$(date +%s%N)
"$bin" build --project-dir transforms --target-path "$target" 2>&1 | grep -E "Finished|Done\."
e=$(date +%s%N); echo "build (4 models + 33 tests): $(( (e - s) / 1000000 )) ms wall-clock"

for m in mart_new_subscriptions mart_funnel_conversions; do
  echo; echo "===== EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $m"
  { echo "set TimeZone = 'UTC';"; echo "explain (analyze, costs off, timing off, summary on)"; cat "$target/compiled/reluvia_analytics/models/marts/$m.sql"; echo ";"; } \
    | psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -d $db -q
done
