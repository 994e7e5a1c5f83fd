#!/usr/bin/env bash
# End-to-end test of reluvia-transform as a Meltano plugin, with a real Meltano and
# real Singer plugins from PyPI on the throwaway PostgreSQL of tests/pg.sh:
#
#  1. builds this repository's release wheel once (.ci/wheel: maturin, the prebuilt
#     binary inside);
#  2. creates a fresh Meltano project in a temporary directory (`meltano init`: no
#     dbt project, no copy of the marts), adds reluvia-transform from plugin.yml (its
#     pip_url pointed at that wheel, binary-only: `--no-index --find-links DIR
#     --only-binary=:all:`) and installs it with no cargo on PATH, timing the install
#     and a reinstall (`meltano install --clean`); validates meltano.yml and plugin.yml
#     against the JSON Schema of the `meltano` package; adds tap-jsonl (one extractor
#     per raw table, reading tests/meltano/fixtures/) and target-postgres as
#     meltano.yml declares it;
#  3. `meltano run <taps> target-postgres reluvia-transform` (the bare name, as a user
#     writes it) runs the project built into the plugin (announced in the log):
#     checks the landed raw types against the raw contract and the rows of every
#     mart, artifacts under .meltano/ and nothing else in the project changed; the
#     same with `reluvia-transform:build`; `meltano invoke reluvia-transform:init`
#     writes transform/, the next run uses it, a second init refuses; a broken model
#     that makes `meltano run` fail (exit 1) and `meltano invoke` return the plugin's
#     code; a column dropped from a landed table stops the next run at the source
#     check, marts untouched; `meltano invoke reluvia-transform:debug`; `meltano config list` (user and
#     dbname from PG_ANALYTICS_*, not missing);
#  4. checks the repository's own meltano.yml: its job and schedule, and that Meltano
#     installs reluvia-transform from its pip_url (this repository, built from source).
#
# Meltano's virtual environment is cached in $RELUVIA_MELTANO_CACHE (default
# /var/tmp/reluvia-meltano-cache) under a hash of requirements.txt, with uv's and
# pip's download caches; RELUVIA_MELTANO_CACHE=none uses an empty temporary one (a
# cold run). Network: PyPI only. Set RELUVIA_E2E_KEEP=1 to keep the temporary
# directory. Runs as part of `bash tests/run.sh`, or alone: `bash tests/meltano/e2e.sh`.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/tests/meltano"
started=$SECONDS
say() { echo "e2e [$((SECONDS - started))s]: $*" >&2; }
die() { echo "e2e: FAIL: $*" >&2; exit 1; }
# Every Meltano command is bounded.
limit="${RELUVIA_E2E_TIMEOUT:-900}"

# An outer Meltano project's variables (MELTANO_PROJECT_ROOT would point meltano at
# it) and settings from the caller's shell must not leak into the test project.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(MELTANO_|RELUVIA_TRANSFORM_|PG_ANALYTICS_|TAP_|TARGET_)' || true)
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false MELTANO_DISABLE_TRACKING=true \
  MELTANO_CLI_DISABLE_VERSION_CHECK=true NO_COLOR=1
# maturin must build with the installed toolchain, never download one.
export MATURIN_NO_INSTALL_RUST=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
command -v cargo >/dev/null || die "cargo is not on PATH: building the wheel needs a Rust toolchain"
# PATH without cargo, rustc or rustup: installing the plugin must not compile.
no_rust_path=""
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  if [ -e "$d/cargo" ] || [ -e "$d/rustc" ] || [ -e "$d/rustup" ]; then continue; fi
  no_rust_path="${no_rust_path:+$no_rust_path:}$d"
done
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)"

work="$(mktemp -d "${TMPDIR:-/tmp}/reluvia-meltano-e2e.XXXXXX")"
# Its own database, unique per run (others may share the server), dropped at the end.
db="reluvia_meltano_e2e_$$"
pg_ready=""
cleanup() {
  local rc=$?
  if [ -n "$pg_ready" ]; then
    psql_admin -c "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  fi
  if [ "${RELUVIA_E2E_KEEP:-}" = 1 ] || [ $rc -ne 0 ]; then
    echo "e2e: logs and project kept in $work" >&2
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT

# ------------------------------------------------------------------ PostgreSQL
if [ -z "${RELUVIA_TEST_PGPORT:-}" ]; then
  # shellcheck source=tests/pg.sh
  source "$repo/tests/pg.sh"
fi
psql_bin="$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | tail -1)"
[ -x "$psql_bin" ] || die "psql not found"
psql_admin() { PGOPTIONS="-c client_min_messages=warning" "$psql_bin" -X -q -v ON_ERROR_STOP=1 -h "$RELUVIA_TEST_PGHOST" -p "$RELUVIA_TEST_PGPORT" -U "$RELUVIA_TEST_PGUSER" -d postgres "$@"; }
q() { "$psql_bin" -X -q -At -v ON_ERROR_STOP=1 -h "$RELUVIA_TEST_PGHOST" -p "$RELUVIA_TEST_PGPORT" -U "$RELUVIA_TEST_PGUSER" -d "$db" -c "$1"; }
psql_admin -c "drop database if exists $db with (force)" -c "create database $db"
pg_ready=1
say "database $db on $RELUVIA_TEST_PGHOST:$RELUVIA_TEST_PGPORT (server TimeZone $(q 'show timezone'))"

# ------------------------------------------------------------- Meltano's venv
cache="${RELUVIA_MELTANO_CACHE:-/var/tmp/reluvia-meltano-cache}"
[ "$cache" = none ] && cache="$work/cache"
mkdir -p "$cache"
python="${RELUVIA_E2E_PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$python is older than 3.10 (Meltano 4 needs 3.10+)"
key="$( { cat "$here/requirements.txt"; "$python" --version; } | sha256sum | cut -c1-16)"
venv="$cache/meltano-$key"
export UV_CACHE_DIR="$cache/uv" PIP_CACHE_DIR="$cache/pip"
(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    say "creating Meltano's virtual environment in $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    timeout "$limit" "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    touch "$venv/.complete"
  fi
) 9>"$cache/.lock"
export PATH="$venv/bin:$PATH"
meltano() { timeout "$limit" "$venv/bin/meltano" "$@"; }
meltano_version="$("$venv/bin/meltano" --version)"
say "$meltano_version"

# ------------------------------------------------------------- the wheel, once
say "building the release wheel (.ci/wheel, cargo target dir $CARGO_TARGET_DIR)"
timeout 3600 bash "$repo/.ci/wheel" "$work/dist" >"$work/wheel.log" 2>&1 \
  || { tail -30 "$work/wheel.log" >&2; die "the wheel did not build"; }
wheel="$(ls "$work"/dist/reluvia_transform-*.whl)"
case "$(basename "$wheel")" in
  *-py3-none-manylinux_*_x86_64.whl) ;;
  *) die "$(basename "$wheel") is not a manylinux x86_64 wheel" ;;
esac
say "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"

# ------------------------------------------------------------ the test project
proj="$work/project"
meltano init "$proj" --no_usage_stats >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; die "meltano init"; }
cd "$proj"
"$venv/bin/python" "$here/project.py" "$proj" "$repo" >"$work/taps.txt"
mapfile -t taps <"$work/taps.txt"
[ ! -e "$proj/transforms" ] && [ -z "$(ls -A "$proj/transform" 2>/dev/null | grep -v '^.gitkeep$')" ] \
  || die "meltano init left a dbt project in $proj"

# Secrets and connection facts in .env, as a user would keep them. The binary reads
# host and port from PG_ANALYTICS_*; user and dbname are Meltano settings whose
# defaults are $PG_ANALYTICS_USER and $PG_ANALYTICS_DBNAME; the password comes from
# RELUVIA_TRANSFORM_PASSWORD (trust authentication ignores passwords; target-postgres
# insists on one).
secret="e2e-secret-$$-never-in-meltano-yml"
cat >"$proj/.env" <<ENV
PG_ANALYTICS_HOST=$RELUVIA_TEST_PGHOST
PG_ANALYTICS_PORT=$RELUVIA_TEST_PGPORT
PG_ANALYTICS_USER=$RELUVIA_TEST_PGUSER
PG_ANALYTICS_PASSWORD=unused-with-trust-auth
PG_ANALYTICS_DBNAME=$db
RELUVIA_TRANSFORM_PASSWORD=$secret
ENV

# The plugin exactly as plugin.yml defines it, its pip_url the package and version
# from the folder of the built wheel, binary-only (as from PyPI once published).
grep -q "^pip_url: reluvia-transform==$version\$" "$repo/plugin.yml" || die "plugin.yml's pip_url is not reluvia-transform==$version"
pip_url="--no-index --find-links $work/dist --only-binary=:all: reluvia-transform==$version"
sed "s|^pip_url: .*|pip_url: \"$pip_url\"|" "$repo/plugin.yml" >"$work/plugin.yml"
say "meltano add --from-ref plugin.yml utility reluvia-transform (pip_url: $pip_url)"
meltano add --no-install --plugin-type utility --from-ref "$work/plugin.yml" reluvia-transform >"$work/add.log" 2>&1 \
  || { tail -30 "$work/add.log" >&2; die "meltano add reluvia-transform"; }
"$venv/bin/python" "$here/check.py" meltano-schema "$proj/meltano.yml" "$repo/plugin.yml" "$venv" \
  || die "meltano.yml or plugin.yml does not validate against meltano's JSON Schema"
install_plugin() { # LOG [ARGS]: meltano install of the plugin alone, with no cargo on PATH; prints seconds
  local log="$work/$1.log" t0=$EPOCHREALTIME
  shift
  PATH="$no_rust_path" timeout "$limit" "$venv/bin/meltano" install "$@" utility reluvia-transform >"$log" 2>&1 \
    || { tail -30 "$log" >&2; die "meltano install $* reluvia-transform without cargo"; }
  echo "$EPOCHREALTIME $t0" | awk '{printf "%.1f", $1 - $2}'
}
PATH="$no_rust_path" command -v cargo >/dev/null && die "cargo is still on the PATH of the install"
install_s="$(install_plugin install_plugin)"
[ -x "$proj/.meltano/utilities/reluvia-transform/venv/bin/reluvia-transform" ] \
  || die "Meltano did not install the reluvia-transform executable into the plugin's venv"
reinstall_s="$(install_plugin reinstall_plugin --clean)"
say "meltano install utility reluvia-transform without cargo: ${install_s}s; meltano install --clean: ${reinstall_s}s"
meltano config set reluvia-transform threads 2 >>"$work/add.log" 2>&1 || die "meltano config set threads"
grep -q "$secret" "$proj/meltano.yml" && die "the password ended up in meltano.yml"
say "meltano install (tap-jsonl, target-postgres)"
meltano install >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; die "meltano install"; }

blocks=()
for t in "${taps[@]}"; do blocks+=("$t" target-postgres); done
"$proj/.meltano/utilities/reluvia-transform/venv/bin/reluvia-transform" --about --format json >"$work/about.json"
"$venv/bin/python" "$here/check.py" definitions "$repo" "$work/about.json" || die "plugin.yml / meltano.yml do not match the binary's settings"

# -------------------------------------------------------------- the checks
check_marts() {
  local got want
  got="$(q "select subscription_id, subscription_date, stripe_charge_id,
                   to_char(subscribed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
                   revenue, revenue_usd, currency, session_id, funnel_title, is_sandbox
            from analytics.mart_new_subscriptions order by subscription_id")"
  want="fs_1|2026-03-01|ch_paid|2026-03-01 10:15:00|19.99|19.99|USD|ses_1|Main quiz|f"
  [ "$got" = "$want" ] || die "mart_new_subscriptions: got
$got
want
$want"
  got="$(q "select session_id, session_date, converted, conversions, revenue_usd,
                   time_to_conversion_hours, had_purchase, activated_in_app, funnel_title
            from analytics.mart_funnel_conversions order by session_id")"
  want="ses_1|2026-03-01|1|1|19.99|1.25|t|t|Main quiz
ses_2|2026-03-01|0|0|||f|f|Main quiz
ses_3|2026-03-02|0|0|||f|t|Spring promo"
  [ "$got" = "$want" ] || die "mart_funnel_conversions: got
$got
want
$want"
  got="$(q "select date, sessions, converted_sessions, conversion_rate, new_subscriptions,
                   revenue_usd, ad_spend_usd, cac_usd, roas, failed_charges, top_failure_code
            from analytics.mart_daily_kpis order by date")"
  want="2026-03-01|2|1|0.5000|1|19.99|10.50|10.50|1.9038|0|
2026-03-02|1|0|0.0000|0|0.00|0.00|||1|card_declined"
  [ "$got" = "$want" ] || die "mart_daily_kpis: got
$got
want
$want"
}

check_raw() {
  q "select table_schema, table_name, column_name, data_type from information_schema.columns
     where table_schema like 'raw\_%' order by 1, 2, ordinal_position" >"$work/raw_columns.txt"
  "$venv/bin/python" "$here/check.py" raw-types "$work/raw_columns.txt" "$repo" \
    || die "the landed raw tables do not match the raw contract"
  # PGTZ=UTC: instants land as UTC wall-clock time although the server's TimeZone is not UTC.
  [ "$(q "select created from raw_stripe.charges where id = 'ch_failed'")" = "2026-03-02 23:50:00" ] \
    || die "raw_stripe.charges.created is not UTC wall-clock time (is PGTZ=UTC set on target-postgres?)"
  [ "$(q "select count(*) from raw_stripe.charges where _sdc_batched_at is not null and _sdc_deleted_at is null")" = 3 ] \
    || die "raw_stripe.charges: expected 3 live rows with _sdc_batched_at"
  [ "$(q "select string_agg(kcu.column_name, ',' order by kcu.ordinal_position)
          from information_schema.table_constraints tc
          join information_schema.key_column_usage kcu using (constraint_schema, constraint_name)
          where tc.table_schema = 'raw_facebook' and tc.table_name = 'ad_statistics'
            and tc.constraint_type = 'PRIMARY KEY'")" = "date_start,ad_id" ] \
    || die "raw_facebook.ad_statistics has no primary key (date_start, ad_id)"
}

run_meltano() { # LOG EXPECTED_RC ARGS...: runs meltano, checks its exit code
  local log="$1" want="$2" rc=0
  shift 2
  meltano "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" != "$want" ]; then
    tail -40 "$log" >&2
    die "meltano $* exited $rc, expected $want (log: $log)"
  fi
}

# 1. The bare name: Meltano starts the binary with no arguments; under Meltano
#    (MELTANO_PROJECT_ROOT set) that is `build`, of the project built into the plugin
#    (the Meltano project has none). Nothing outside .meltano/ changes.
listing() { (cd "$proj" && find . -path ./.meltano -prune -o -print | grep -v '^./meltano.yml$' | sort); }
listing >"$work/files_before.txt"
say "meltano run <8 taps> target-postgres reluvia-transform (the built-in project)"
t0=$SECONDS
run_meltano "$work/run_bare.log" 0 run "${blocks[@]}" reluvia-transform
run_s=$((SECONDS - t0))
grep -q "Completed successfully" "$work/run_bare.log" || die "no 'Completed successfully' from reluvia-transform in $work/run_bare.log"
[ "$(grep -c "Using the project built into reluvia-transform $version: reluvia_analytics" "$work/run_bare.log")" = 1 ] \
  || die "the run did not announce the built-in project once"
listing | diff "$work/files_before.txt" - || die "the run changed files outside .meltano/"
"$venv/bin/python" - "$proj/.meltano/transformers/reluvia-transform/target/run_results.json" <<'PY' || die "run_results.json of the bare run is not a successful build"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["args"]["which"] == "build", r["args"]
ids = [x["unique_id"] for x in r["results"]]
assert any(i.startswith("test.") for i in ids), "build ran no test"
assert len([i for i in ids if i.startswith("model.")]) == 4, ids  # the 3 marts and int_app_activity
# The shipped project's exposure (the executive report) is a no-op in build, as in dbt.
assert all(
    x["status"] in ("success", "pass")
    or (x["status"] == "no-op" and x["unique_id"].startswith("exposure."))
    for x in r["results"]
), [(x["unique_id"], x["status"]) for x in r["results"]]
PY
check_raw
check_marts
say "bare run (${run_s}s for 8 taps, the loader and the build): raw types match the contract, every mart has its rows"

# 2. The same with the command spelled out; the taps land the same rows again.
say "meltano run <8 taps> target-postgres reluvia-transform:build"
run_meltano "$work/run_build.log" 0 run "${blocks[@]}" reluvia-transform:build
grep -q "Completed successfully" "$work/run_build.log" || die "no 'Completed successfully' in $work/run_build.log"
[ "$(q "select count(*) from raw_stripe.charges")" = 3 ] || die "the second load did not upsert raw_stripe.charges"
check_marts

# 3. init writes the built-in project to transform/; the next run uses it; a second
#    init overwrites nothing.
say "meltano invoke reluvia-transform:init"
run_meltano "$work/init.log" 0 invoke reluvia-transform:init
[ -f "$proj/transform/dbt_project.yml" ] && [ -f "$proj/transform/models/marts/mart_daily_kpis.sql" ] \
  || die "init did not write the project to transform/"
diff -r "$repo/transforms/models" "$proj/transform/models" >/dev/null || die "transform/ is not the shipped project"
echo "-- edited" >>"$proj/transform/models/marts/mart_daily_kpis.sql"
run_meltano "$work/init_again.log" 2 invoke reluvia-transform:init
grep -q "already exist; nothing was written" "$work/init_again.log" || die "a second init did not refuse"
tail -1 "$proj/transform/models/marts/mart_daily_kpis.sql" | grep -q -- "-- edited" || die "a second init overwrote transform/"
run_meltano "$work/run_init.log" 0 run reluvia-transform
grep -q "built into" "$work/run_init.log" && die "the run after init still used the built-in project"
grep -q -- "-- edited" "$proj/.meltano/transformers/reluvia-transform/target/compiled/reluvia_analytics/models/marts/mart_daily_kpis.sql" \
  || die "the run after init did not compile transform/"
check_marts

# 4. A failing model: `meltano run` fails (1); the marts that built keep their rows.
cat >"$proj/transform/models/marts/mart_broken.sql" <<'SQL'
{{ config(materialized='table') }}
select 1 / 0 as boom
SQL
say "a broken model: meltano run reluvia-transform:build must fail"
run_meltano "$work/run_broken.log" 1 run reluvia-transform:build
grep -q "division by zero" "$work/run_broken.log" || die "the plugin's error is not in the meltano run log"
check_marts
# `meltano invoke` returns the plugin's own code: 2 for a compile error.
echo "select * from {{ ref('no_such_model') }}" >"$proj/transform/models/marts/mart_broken.sql"
run_meltano "$work/invoke_broken.log" 2 invoke reluvia-transform:build
run_meltano "$work/run_broken2.log" 1 run reluvia-transform:build
grep -q "no_such_model" "$work/invoke_broken.log" || die "the compile error is not reported"
rm "$proj/transform/models/marts/mart_broken.sql"

# 4b. The landing contract: a column dropped from a landed table stops the next run
#     at the source check (exit 1), naming the table and the column; no mart is
#     touched. `source check` says the same. The column comes back afterwards.
say "a column dropped from raw_stripe.charges: the next run stops at the source check"
marts_before="$(q "select string_agg(c.relname || ':' || c.relfilenode, ',' order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics' and c.relname like 'mart\_%'")"
q "alter table raw_stripe.charges drop column failure_code"
run_meltano "$work/run_landing.log" 1 run reluvia-transform
grep -Eq "raw_stripe +charges +failure_code +text +no such column" "$work/run_landing.log" \
  || { tail -20 "$work/run_landing.log" >&2; die "the run did not name raw_stripe.charges.failure_code"; }
grep -q "differ from the project's source declarations in 1 place; nothing was built" "$work/run_landing.log" \
  || die "the run did not stop at the source check"
grep -q "START sql" "$work/run_landing.log" && die "a model started although the source check failed"
[ "$(q "select string_agg(c.relname || ':' || c.relfilenode, ',' order by c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'analytics' and c.relname like 'mart\_%'")" = "$marts_before" ] \
  || die "a mart was touched although the source check failed"
run_meltano "$work/source_check.log" 1 invoke reluvia-transform:source-check
grep -Eq "raw_stripe +charges +failure_code +text +no such column" "$work/source_check.log" || die "source check did not name the column"
q "alter table raw_stripe.charges add column failure_code text"
run_meltano "$work/source_check_ok.log" 0 invoke reluvia-transform:source-check
check_marts

# 5. debug: settings from meltano.yml, .env and PG_ANALYTICS_*, password masked.
say "meltano invoke reluvia-transform:debug"
run_meltano "$work/debug.log" 0 invoke reluvia-transform:debug
for pattern in "Connection: OK" \
  "host +$RELUVIA_TEST_PGHOST +env PG_ANALYTICS_HOST" \
  "port +$RELUVIA_TEST_PGPORT +env PG_ANALYTICS_PORT" \
  "dbname +$db +env RELUVIA_TRANSFORM_DBNAME" \
  "user +$RELUVIA_TEST_PGUSER +env RELUVIA_TRANSFORM_USER" \
  "password +\*\*\*\*\*\*\*\* +env RELUVIA_TRANSFORM_PASSWORD" \
  "threads +2 +env RELUVIA_TRANSFORM_THREADS" \
  "project_dir +$proj/transform +transform/ of the Meltano project"; do
  grep -Eq "$pattern" "$work/debug.log" || { cat "$work/debug.log" >&2; die "debug output lacks /$pattern/"; }
done
if grep -rq "$secret" "$work"/*.log "$proj/.meltano/transformers/reluvia-transform/target"; then die "the password was printed or written"; fi

# 6. config list: required and configured settings by default, every one with --all;
#    user and dbname have their values from PG_ANALYTICS_* (not missing).
say "meltano config list reluvia-transform"
run_meltano "$work/config_list.log" 0 config list reluvia-transform
grep -q "Required settings: dbname, user" "$work/config_list.log" || die "config list: no required settings line"
grep -q "user \[env: RELUVIA_TRANSFORM_USER\] current value: '$RELUVIA_TEST_PGUSER' (default: '\$PG_ANALYTICS_USER')" "$work/config_list.log" \
  || { cat "$work/config_list.log" >&2; die "config list: user does not show PG_ANALYTICS_USER's value"; }
grep -q "dbname \[env: RELUVIA_TRANSFORM_DBNAME, RELUVIA_TRANSFORM_DATABASE\] current value: '$db' (default: '\$PG_ANALYTICS_DBNAME')" "$work/config_list.log" \
  || { cat "$work/config_list.log" >&2; die "config list: dbname does not show PG_ANALYTICS_DBNAME's value"; }
run_meltano "$work/config_list_all.log" 0 config list --all reluvia-transform
"$venv/bin/python" "$here/check.py" config-list "$work/config_list_all.log" "$work/about.json" \
  || die "meltano config list --all does not list every setting with its description"
grep -q "$secret" "$work/config_list.log" "$work/config_list_all.log" && die "config list printed the password"

# 7. --log-format json: one JSON object per event, each on its own line of Meltano's log.
run_meltano "$work/compile_json.log" 0 invoke reluvia-transform:compile --log-format json
"$venv/bin/python" - "$work/compile_json.log" <<'PY' || die "reluvia-transform --log-format json did not log one JSON object per line"
import json, re, sys
events = []
for line in open(sys.argv[1]):
    m = re.match(r"\S+ \[\w+\s*\] \S+\s+(\{.*)$", line.rstrip("\n"))
    if m:
        obj = json.loads(m.group(1))
        assert {"ts", "level", "event", "msg"} <= obj.keys(), obj
        events.append(obj["event"])
assert "compiled" in events, events
PY

# 8. The demo works from the pip-installed binary alone (no repository beside it).
if "$proj/.meltano/utilities/reluvia-transform/venv/bin/reluvia-transform" --help | grep -Eq '^ +demo '; then
  say "meltano invoke reluvia-transform:demo"
  run_meltano "$work/demo.log" 0 invoke reluvia-transform:demo
else
  say "this binary has no demo command yet: skipping meltano invoke reluvia-transform:demo"
fi

# ------------------------------------------------- the repository's meltano.yml
say "the repository's meltano.yml: job, schedule, install from pip_url (source build)"
ship="$work/shipped"
mkdir -p "$ship"
if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xf - -C "$ship"
else
  (cd "$repo" && tar --exclude=./target --exclude=./transforms/target -cf - .) | tar -xf - -C "$ship"
fi
cd "$ship"
run_meltano "$work/ship_job.log" 0 job list
grep -q "daily_refresh: \['tap-stripe target-postgres tap-facebook target-postgres tap-amplitude target-postgres tap-funnelfox target-postgres reluvia-transform:build'\]" "$work/ship_job.log" \
  || die "meltano.yml: job daily_refresh is not every extractor then reluvia-transform:build"
run_meltano "$work/ship_schedule.log" 0 schedule list
grep -q "job daily_refresh" "$work/ship_schedule.log" || die "meltano.yml: no schedule for daily_refresh"
run_meltano "$work/ship_install.log" 0 install utility reluvia-transform
run_meltano "$work/ship_version.log" 0 invoke reluvia-transform --version
version="$(tail -1 "$work/ship_version.log")"
[ "$version" = "reluvia-transform $(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)" ] \
  || die "installed from meltano.yml's pip_url, the binary says '$version'"
cd "$proj"

plugin_versions() { "$venv/bin/uv" pip list --python "$1/venv/bin/python" 2>/dev/null | grep -Ei "^($2) " | tr -s ' ' | tr '\n' ' '; }
say "versions: $meltano_version; $(plugin_versions "$proj/.meltano/extractors/tap-jsonl" 'tap-jsonl|singer-sdk'); $(plugin_versions "$proj/.meltano/loaders/target-postgres" 'meltanolabs-target-postgres|singer-sdk')"
say "passed in $((SECONDS - started))s; install without cargo ${install_s}s, reinstall ${reinstall_s}s, first run ${run_s}s"
echo "meltano-e2e: 1 passed, 0 failed"
