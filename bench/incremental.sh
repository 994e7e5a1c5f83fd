#!/usr/bin/env bash
# An increment against a rebuild: a source of ROWS rows (default 10M) and three
# models on it with the same SQL — a table, an incremental model (append) and an
# incremental model (merge on a unique key) — built once; then 1% new rows land in
# the source and each model is refreshed, timed side by side (wall-clock of the
# binary, best of RUNS, default 3, each run on the same 1%: the increment's rows
# are deleted again between runs).
# Usage: bash bench/incremental.sh [ROWS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-10000000}"; runs="${2:-3}"
new=$(( rows / 100 ))
bin="${CARGO_TARGET_DIR:-target}/release/reluvia-transform"
cargo build --release --quiet  # the figures are for the code checked out
source tests/pg.sh
db=bench_incremental
q() { psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -d "$db" -qAt "$@"; }
psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -qc "drop database if exists $db" -qc "create database $db" >/dev/null 2>&1
export PG_ANALYTICS_HOST=127.0.0.1 PG_ANALYTICS_PORT="$RELUVIA_TEST_PGPORT" PG_ANALYTICS_USER=postgres PG_ANALYTICS_DBNAME=$db
dir=$(mktemp -d)
trap 'rm -rf "$dir"; psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -qc "drop database if exists $db" >/dev/null 2>&1' EXIT

q -c "create schema raw; create table raw.events as
        select i as id, i % 1000 as user_id, md5(i::text) as payload, timestamp '2024-01-01' + i * interval '1 second' as at
        from generate_series(1, $rows) i;
      analyze raw.events;"
mkdir -p "$dir/models"
echo "name: bench" > "$dir/dbt_project.yml"
printf 'version: 2\nsources:\n  - name: raw\n    tables:\n      - name: events\n' > "$dir/models/sources.yml"
body="select id, user_id, payload, at from {{ source('raw', 'events') }}"
filter="{% if is_incremental() %} where at > (select max(at) from {{ this }}) {% endif %}"
echo "{{ config(materialized='table') }} $body" > "$dir/models/as_table.sql"
echo "{{ config(materialized='incremental') }} $body $filter" > "$dir/models/as_append.sql"
echo "{{ config(materialized='incremental', incremental_strategy='merge', unique_key='id') }} $body $filter" > "$dir/models/as_merge.sql"

s=$(date +%s%N)
"$bin" run --project-dir "$dir" --target-path "$dir/target" 2>&1 | grep -E "ERROR creating|error:|Done\." || true
e=$(date +%s%N); echo "first build of the three models ($rows rows each): $(( (e - s) / 1000000 )) ms"

q -c "insert into raw.events select i, i % 1000, md5(i::text), timestamp '2024-01-01' + i * interval '1 second'
      from generate_series($rows + 1, $rows + $new) i; analyze raw.events;"
echo "then $new new source rows (1%); best of $runs runs:"
for model in as_table as_append as_merge; do
  best=
  for _ in $(seq "$runs"); do
    [ "$model" = as_table ] || q -c "delete from analytics.$model where id > $rows" -c "vacuum analytics.$model"
    s=$(date +%s%N)
    "$bin" run --project-dir "$dir" --target-path "$dir/target" --select "$model" 2>&1 | grep -E "ERROR creating|error:" || true
    e=$(date +%s%N)
    ms=$(( (e - s) / 1000000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
  done
  n=$(q -c "select count(*) from analytics.$model")
  printf '  %-10s %8d ms  (%s rows)\n' "$model" "$best" "$n"
done
