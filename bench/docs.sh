#!/usr/bin/env bash
# The docs site at scale, against dbt-core's: generates a project of MODELS models
# (default 2,000; bench/docs_project.py: 10 domains of staging, intermediate and
# mart views over 50 source tables, 5 documented columns and 2 tests each), builds
# it as views in a database of the test server, then runs `docs generate` of this
# binary and of dbt-core 1.10 (dbt-postgres 1.9, the venv of tests/dbt/run.sh) on
# the same project and database, and prints the wall-clock times and the sizes of
# both sites. Then headless Chromium (the ignored test bench_docs_site of
# tests/it/docs.rs) measures load and search times of both.
# Usage: bash bench/docs.sh [MODELS]    (RELUVIA_BENCH_KEEP=1 keeps the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
models="${1:-2000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$CARGO_TARGET_DIR/release/reluvia-transform"
cargo build --release --quiet
source tests/pg.sh
source bench/dbt_env.sh
work=$(mktemp -d /tmp/reluvia-bench-docs.XXXXXX)
[ "${RELUVIA_BENCH_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
size() { du -sb "$@" | awk '{s += $1} END {printf "%.1f MB", s / 1e6}'; }

python3 bench/docs_project.py "$work/project" "$models"
db=bench_docs
psql -h "$RELUVIA_TEST_PGHOST" -p "$RELUVIA_TEST_PGPORT" -U "$RELUVIA_TEST_PGUSER" -d postgres -q \
  -c "drop database if exists $db with (force)" -c "create database $db" >/dev/null
psql -h "$RELUVIA_TEST_PGHOST" -p "$RELUVIA_TEST_PGPORT" -U "$RELUVIA_TEST_PGUSER" -d $db -q -f "$work/project/sources.sql" >/dev/null
export PG_ANALYTICS_HOST="$RELUVIA_TEST_PGHOST" PG_ANALYTICS_PORT="$RELUVIA_TEST_PGPORT" \
  PG_ANALYTICS_USER="$RELUVIA_TEST_PGUSER" PG_ANALYTICS_DBNAME=$db

s=$(date +%s%N)
"$bin" run --project-dir "$work/project" --threads 4 > "$work/run.log" 2>&1 || { tail -5 "$work/run.log"; exit 1; }
grep -E "Done\." "$work/run.log"
echo "build of $models views: $(ms "$s") ms"

s=$(date +%s%N)
"$bin" docs generate --project-dir "$work/project" 2>&1 | grep -E "Wrote|error"
echo "reluvia-transform docs generate: $(ms "$s") ms"
ours="$work/project/target"
echo "reluvia-transform site: index.html $(size "$ours/index.html"), all pages $(size "$ours/index.html" "$ours/nodes") in $(( $(ls "$ours/nodes" | wc -l) + 1 )) files (catalog.json $(size "$ours/catalog.json"), manifest.json $(size "$ours/manifest.json"), not read by the site)"

dbt_site=""
venv=$(dbt_venv)
if [ -n "$venv" ]; then
  cp -r "$work/project" "$work/dbt"; rm -rf "$work/dbt/target"
  dbt_profile "$work/profiles" $db
  s=$(date +%s%N)
  (cd "$work/dbt" && "$venv/bin/dbt" -q docs generate --profiles-dir "$work/profiles" >/dev/null)
  echo "dbt-core docs generate: $(ms "$s") ms"
  s=$(date +%s%N)
  (cd "$work/dbt" && "$venv/bin/dbt" -q docs generate --static --profiles-dir "$work/profiles" >/dev/null)
  echo "dbt-core docs generate --static: $(ms "$s") ms"
  d="$work/dbt/target"
  echo "dbt-core site: index.html + manifest.json + catalog.json $(size "$d/index.html" "$d/manifest.json" "$d/catalog.json") (index.html $(size "$d/index.html"), manifest.json $(size "$d/manifest.json"), catalog.json $(size "$d/catalog.json")); static_index.html $(size "$d/static_index.html")"
  dbt_site="$d"
fi

echo "headless Chromium (load: navigation start to the load event; ours: median of 5 loads and of 5 searches per term; dbt: median of 3 loads, one search):"
RELUVIA_BENCH_SITE="$ours" RELUVIA_BENCH_DBT_SITE="$dbt_site" \
  cargo test --release --quiet --test it bench_docs_site -- --ignored --nocapture 2>&1 \
  | grep -E "^(bench|test result)" || true
