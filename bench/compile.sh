#!/usr/bin/env bash
# Compile speed on a Jinja-heavy project, against dbt-core's: generates a project of
# MODELS models (default 1,000; bench/compile_project.py: macros with loops, a
# dispatched macro, refs in loops, sources, vars, configs, incremental marts with
# is_incremental(), 2,550 YAML data tests), then times, on a database of the test
# server, this binary's `compile`, `parse` and `ls` (median of ROUNDS runs, default
# 5) and dbt-core 1.10's `parse` and `compile` (the venv of tests/dbt/run.sh; one
# run each, NO_DBT=1 leaves them out), and prints the ratios. The machine is
# usually shared: it also prints the load average and, unless NO_VALGRIND=1, the
# instructions our `compile` and `parse` execute (valgrind's cachegrind, all
# threads), which the load does not disturb.
# Usage: bash bench/compile.sh [MODELS]    (RELUVIA_BENCH_KEEP=1 keeps the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
models="${1:-1000}"
rounds="${ROUNDS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$CARGO_TARGET_DIR/release/reluvia-transform"
cargo build --release --quiet
source tests/pg.sh
source bench/dbt_env.sh
work=$(mktemp -d /tmp/reluvia-bench-compile.XXXXXX)
[ "${RELUVIA_BENCH_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT

python3 bench/compile_project.py "$work/project" "$models"
db=bench_compile
psql -h "$RELUVIA_TEST_PGHOST" -p "$RELUVIA_TEST_PGPORT" -U "$RELUVIA_TEST_PGUSER" -d postgres -q \
  -c "drop database if exists $db with (force)" -c "create database $db" >/dev/null
export PG_ANALYTICS_HOST="$RELUVIA_TEST_PGHOST" PG_ANALYTICS_PORT="$RELUVIA_TEST_PGPORT" \
  PG_ANALYTICS_USER="$RELUVIA_TEST_PGUSER" PG_ANALYTICS_DBNAME=$db

ms_of() { # command… → wall-clock ms of one run (fails the bench if the command fails)
  local s e
  s=$(date +%s%N)
  "$@" >"$work/last.log" 2>&1 || { tail -5 "$work/last.log" >&2; exit 1; }
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
}
median_ms() { # command… → median wall-clock ms over $rounds runs
  for _ in $(seq "$rounds"); do ms_of "$@"; done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
instructions() { # command… → instructions executed (millions), all threads
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 >/dev/null \
    | awk '/I *refs:/ {gsub(",", "", $NF); printf "%.0f", $NF / 1e6}'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
p="$work/project"
ours_compile=$(median_ms "$bin" compile --project-dir "$p")
grep -E "^.{10}Found" "$work/last.log" | cut -c11-
ours_parse=$(median_ms "$bin" parse --project-dir "$p")
ours_ls=$(median_ms "$bin" ls --project-dir "$p")
echo "reluvia-transform compile: $ours_compile ms, parse: $ours_parse ms, ls: $ours_ls ms (medians of $rounds)"
if [ "${NO_VALGRIND:-}" != 1 ] && command -v valgrind >/dev/null; then
  echo "reluvia-transform instructions: compile $(instructions "$bin" compile --project-dir "$p") M, parse $(instructions "$bin" parse --project-dir "$p") M"
fi

venv=""
[ "${NO_DBT:-}" = 1 ] || venv=$(dbt_venv)
if [ -n "$venv" ]; then
  cp -r "$p" "$work/dbt"; rm -rf "$work/dbt/target"
  dbt_profile "$work/profiles" $db
  cd "$work/dbt"
  # A full parse each time (no partial parsing), as ours always does.
  dbt_parse=$(ms_of "$venv/bin/dbt" parse --no-partial-parse --profiles-dir "$work/profiles")
  dbt_compile=$(ms_of "$venv/bin/dbt" compile --no-partial-parse --profiles-dir "$work/profiles")
  cd - >/dev/null
  echo "dbt-core parse: $dbt_parse ms, compile: $dbt_compile ms (one run each)"
  awk -v a="$ours_compile" -v b="$dbt_compile" -v c="$ours_parse" -v d="$dbt_parse" \
    'BEGIN {printf "ratios: compile %.0fx, parse %.0fx faster than dbt-core\n", b / a, d / c}'
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
