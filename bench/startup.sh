#!/usr/bin/env bash
# Start-up time and memory of the release binary: medians of N runs of
# `--version` and of `compile` on a 3-model project, and the peak resident memory
# (GNU time's "Maximum resident set size") of `--version`, `compile` and a `run`
# of that project against the test server. Usage: bash bench/startup.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-21}"
bin="${CARGO_TARGET_DIR:-target}/release/reluvia-transform"
[ -x "$bin" ] || cargo build --release --quiet
source tests/pg.sh
set +e

proj=$(mktemp -d)
trap 'rm -rf "$proj"' EXIT
mkdir -p "$proj/models"
printf 'name: bench\nmodels:\n  bench:\n    +materialized: table\n' >"$proj/dbt_project.yml"
echo "select generate_series(1, 1000) as id" >"$proj/models/a.sql"
echo "select id, id * 2 as twice from {{ ref('a') }}" >"$proj/models/b.sql"
echo "select count(*) as n, sum(twice) as s from {{ ref('b') }}" >"$proj/models/c.sql"
psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -qc "drop database if exists bench_startup" -qc "create database bench_startup" >/dev/null 2>&1
export PG_ANALYTICS_HOST=127.0.0.1 PG_ANALYTICS_PORT="$RELUVIA_TEST_PGPORT" PG_ANALYTICS_USER=postgres PG_ANALYTICS_DBNAME=bench_startup

median_ms() { # command… → median wall-clock in ms over $n runs
  local t=()
  for _ in $(seq "$n"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    t+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f ms (min %.2f, max %.2f)", a[int((NR+1)/2)]/1000, a[1]/1000, a[NR]/1000}'
}
peak_kib() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }

echo "runs per figure: $n"
echo "--version            median $(median_ms "$bin" --version)"
echo "compile (3 models)   median $(median_ms "$bin" compile --project-dir "$proj")"
echo "run (3 models)       median $(median_ms "$bin" run --project-dir "$proj")"
echo "peak RSS --version   $(peak_kib "$bin" --version) KiB"
echo "peak RSS compile     $(peak_kib "$bin" compile --project-dir "$proj") KiB"
echo "peak RSS run         $(peak_kib "$bin" run --project-dir "$proj") KiB"
psql -h 127.0.0.1 -p "$RELUVIA_TEST_PGPORT" -U postgres -qc "drop database if exists bench_startup" >/dev/null 2>&1
