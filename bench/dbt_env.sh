# Sourced by the benches that run dbt-core next to this binary.
# dbt_venv: prints the complete dbt-core venv of tests/dbt/run.sh's cache, or nothing
# (and says how to create it). dbt_profile DIR DB: writes DIR/profiles.yml with a
# profile `bench` on database DB of the test server (tests/pg.sh's variables).
dbt_venv() {
  local cache="${RELUVIA_DBT_CACHE:-/var/tmp/reluvia-dbt-cache}" v
  v=$(ls -d "$cache"/venv-*/ 2>/dev/null | while read -r v; do [ -f "$v/.complete" ] && [ -x "$v/bin/dbt" ] && echo "$v"; done | head -1)
  [ -n "$v" ] || echo "dbt-core: no venv in $cache; run bash tests/dbt/run.sh once to create it" >&2
  echo "$v"
}
dbt_profile() {
  mkdir -p "$1"
  cat > "$1/profiles.yml" <<YML
bench:
  target: dev
  outputs:
    dev: {type: postgres, host: "$RELUVIA_TEST_PGHOST", port: $RELUVIA_TEST_PGPORT, user: "$RELUVIA_TEST_PGUSER", password: "", dbname: $2, schema: analytics, threads: 4}
YML
  export DBT_SEND_ANONYMOUS_USAGE_STATS=false
}
