#!/usr/bin/env bash
# The marts at scale, side by side in one run: for each size, the time to read
# every raw table once (the floor), the same models as plain SQL through psql
# (`SQL alone`: each model's compiled SQL as `create table … as` with its indexes
# and session settings, one after the other, bench/sql_floor.py — what the SQL
# costs without our engine), our `run` (the 3 marts and int_app_activity)
# and `build` (models and their data tests) from scratch (`--full-refresh`), the
# same two as a daily refresh (`daily run`, `daily build`: after a day of app
# events lands — a copy of the last day's events a day later, 2% of them
# late-arriving a week back, and 0.05% of the older events soft-deleted by the
# loader; the models are rebuilt from the raw tables), and dbt-core's `build
# --full-refresh` of the same project, as medians of ROUNDS interleaved rounds,
# with the ratios to the floor and the peak memory of our binary and of the
# server. The landed day is taken back out after each daily step (the next step
# is a rebuild), so the database stays as generated.
#
# The server is the benchmarks' own stock, durable cluster
# (`reluvia-test-cluster bench-env`: PostgreSQL's defaults, shared_buffers 128 MB,
# work_mem 4 MB, fsync on, default time zone America/New_York), one database per
# size with an ICU en-US collation, generated once and kept for the next run.
#
# Usage: bash bench/scale.sh [SIZE…]   SIZE = DAYSxSESSIONS_PER_DAY, default
#   90x1112 (≈100k sessions, 1.2M events) and 360x2778 (≈1M sessions, 14M events).
#   SIZE `year` is a year of days (10M sessions: 365x27397) scaled down to what the
#   disk holds: a generated database takes about 7 KB per session, and the year is
#   given at most 40% of the free space of the cluster's disk.
# ROUNDS=3 by default; NO_DBT=1 skips dbt-core; KEEP_OUTPUT=DIR keeps logs.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
rounds="${ROUNDS:-3}"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(90x1112 360x2778)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release --quiet --workspace
bin="$CARGO_TARGET_DIR/release/reluvia-transform"
eval "$("$CARGO_TARGET_DIR/release/reluvia-test-cluster" bench-env)"
host=$RELUVIA_TEST_PGHOST port=$RELUVIA_TEST_PGPORT user=$RELUVIA_TEST_PGUSER
psql_db() { psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" -d "$1" "${@:2}"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dbt_bin=""
if [ "${NO_DBT:-}" != 1 ]; then
  # dbt-core's virtual environment, as the differential test makes it.
  venv=$(ls -d "${RELUVIA_DBT_CACHE:-/var/tmp/reluvia-dbt-cache}"/venv-*/ 2>/dev/null | head -1 || true)
  if [ -z "$venv" ]; then bash tests/dbt/run.sh --help >/dev/null 2>&1 || true; venv=$(ls -d /var/tmp/reluvia-dbt-cache/venv-*/ | head -1); fi
  dbt_bin="${venv}bin/dbt"
  [ -x "$dbt_bin" ] || { echo "scale: no dbt-core venv (run bash tests/dbt/run.sh once, or NO_DBT=1)" >&2; exit 1; }
fi

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }'; }

# Peak memory of the server's processes while a command runs (KiB, the sum of
# their proportional set sizes, so shared buffers count once), sampled every
# 50 ms: written to $2.
sample_server() {
  local peak=0 cur
  while kill -0 "$1" 2>/dev/null; do
    cur=$(for p in $(pgrep -u postgres); do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done | awk '/^Pss:/ {s+=$2} END {print s+0}')
    [ "$cur" -gt "$peak" ] && peak=$cur
    sleep 0.05
  done
  echo "$peak" >"$2"
}

printf '\n%-10s %-24s %10s %16s %16s %16s %16s %16s %16s %12s %12s\n' size rows floor "SQL alone" run build "daily run" "daily build" "dbt build" "our RSS" "server RSS"
for size in "${sizes[@]}"; do
  if [ "$size" = year ]; then
    # A year generated before is reused whatever the free space is now.
    size=$(psql_db postgres -At -c "select substr(datname, 13) from pg_database where datname like 'bench\_scale\_365x%' order by datname limit 1")
    if [ -z "$size" ]; then
      pgdata=$(psql_db postgres -At -c "show data_directory")
      free_kb=$(df -Pk "$pgdata" | awk 'NR == 2 {print $4}')
      spd=$(( free_kb * 4 / 10 / 7 / 365 ))
      [ "$spd" -gt 27397 ] && spd=27397
      size="365x$spd"
    fi
    echo "scale: a year scaled to the disk: $size ($(( ${size#*x} * 365 )) sessions)" >&2
  fi
  days=${size%x*} spd=${size#*x}
  db="bench_scale_${days}x${spd}"
  if ! psql_db postgres -At -c "select 1 from pg_database where datname = '$db'" | grep -q 1; then
    psql_db postgres -c "create database $db template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'"
    PG_ANALYTICS_HOST=$host PG_ANALYTICS_PORT=$port PG_ANALYTICS_USER=$user PG_ANALYTICS_DBNAME=$db \
      "$bin" generate --days "$days" --sessions-per-day "$spd" >"$work/generate.log" 2>&1 \
      || { cat "$work/generate.log" >&2; exit 1; }
    psql_db "$db" -c "vacuum analyze"
  fi
  rows=$(psql_db "$db" -At -c "select (select count(*) from raw_funnelfox.sessions) || ' sessions, ' || (select count(*) from raw_amplitude.events) || ' events'")
  export PG_ANALYTICS_HOST=$host PG_ANALYTICS_PORT=$port PG_ANALYTICS_USER=$user PG_ANALYTICS_DBNAME=$db
  cat >"$work/profiles.yml" <<YML
reluvia:
  target: bench
  outputs:
    bench:
      type: postgres
      host: $host
      port: $port
      user: $user
      password: ''
      dbname: $db
      schema: analytics_dbt
      threads: 4
YML
  floor_sql="set enable_indexonlyscan = off; set enable_bitmapscan = off;"
  for t in raw_funnelfox.funnels raw_funnelfox.sessions raw_funnelfox.subscriptions raw_stripe.charges raw_stripe.subscriptions raw_amplitude.events raw_facebook.campaigns raw_facebook.ad_statistics; do
    floor_sql="$floor_sql select count(*) from $t;"
  done
  # A day of app events lands (the loader's times are now), and goes again.
  event_cols="event_id, event_type, user_id, device_id, email, amplitude_id, session_id, platform, os_name, country, city, event_properties, user_properties, server_upload_time, _sdc_extracted_at, _sdc_received_at, _sdc_sequence, _sdc_table_version, _sdc_sync_started_at"
  land_day() { # the load's time: also what marks its soft deletes, to take them back
    psql_db "$db" -c "
      insert into raw_amplitude.events (uuid, event_time, _sdc_batched_at, $event_cols)
      select uuid || '-landed', event_time + case when hashtext(uuid) % 50 = 0 then interval '-7 days' else interval '1 day' end,
             timestamp '$1', $event_cols
      from raw_amplitude.events
      where event_time > (select max(event_time) - interval '1 day' from raw_amplitude.events) and _sdc_deleted_at is null;
      update raw_amplitude.events set _sdc_deleted_at = timestamp '$1'
      where _sdc_deleted_at is null and hashtext(uuid) % 2000 = 7;" >/dev/null
  }
  unland_day() {
    psql_db "$db" -c "
      delete from raw_amplitude.events where uuid like '%-landed';
      update raw_amplitude.events set _sdc_deleted_at = null where _sdc_deleted_at = timestamp '$1';" >/dev/null
  }
  ours() { # LOG ARGS…: our binary on the project, timed into $t
    local log=$1; shift
    local s; s=$(date +%s%N)
    "$bin" "$@" --project-dir transforms --target-path "$work/target" >"$work/$log.log" 2>&1 || { cat "$work/$log.log" >&2; exit 1; }
    t=$(ms "$s")
  }
  f=() q=() r=() b=() drun=() dbuild=() d=()
  for _ in $(seq "$rounds"); do
    s=$(date +%s%N); psql_db "$db" -c "$floor_sql" >/dev/null; f+=("$(ms "$s")")
    ours run run --full-refresh; r+=("$t")
    # The same models as plain SQL through psql (bench/sql_floor.py), reading what
    # the run just built, into a scratch schema.
    python3 bench/sql_floor.py "$work/target/manifest.json" bench_sql_floor >"$work/sql_floor.sql"
    psql_db "$db" -c "set client_min_messages = warning; drop schema if exists bench_sql_floor cascade; create schema bench_sql_floor" >/dev/null
    s=$(date +%s%N); psql_db "$db" -f "$work/sql_floor.sql" >/dev/null || { echo "scale: the SQL alone failed" >&2; exit 1; }; q+=("$(ms "$s")")
    psql_db "$db" -c "set client_min_messages = warning; drop schema bench_sql_floor cascade" >/dev/null
    stamp=$(date -u '+%Y-%m-%d %H:%M:%S.%6N'); land_day "$stamp"
    ours daily-run run; drun+=("$t")
    unland_day "$stamp"
    ours build build --full-refresh; b+=("$t")
    stamp=$(date -u '+%Y-%m-%d %H:%M:%S.%6N'); land_day "$stamp"
    ours daily-build build; dbuild+=("$t")
    unland_day "$stamp"
    if [ -n "$dbt_bin" ]; then
      s=$(date +%s%N)
      (cd transforms && "$dbt_bin" build --full-refresh --profiles-dir "$work" --target-path "$work/dbt-target" --log-path "$work/dbt-logs" >"$work/dbt.log" 2>&1) \
        || { tail -30 "$work/dbt.log" >&2; exit 1; }
      d+=("$(ms "$s")")
    fi
  done
  # Peak memory, in a run of its own after the timed ones: sampling the server's
  # processes costs CPU that would slow the timed run on a small machine.
  /usr/bin/time -f '%M' -o "$work/rss" "$bin" run --full-refresh --project-dir transforms --target-path "$work/target" >"$work/run.log" 2>&1 &
  pid=$!; sample_server "$pid" "$work/srss" & sp=$!
  wait "$pid" || { cat "$work/run.log" >&2; exit 1; }; wait "$sp"
  mem=$(tail -1 "$work/rss") smem=$(cat "$work/srss")
  fm=$(median "${f[@]}") qm=$(median "${q[@]}") rm=$(median "${r[@]}") bm=$(median "${b[@]}") drm=$(median "${drun[@]}") dbm=$(median "${dbuild[@]}")
  dbt_col="-"
  if [ ${#d[@]} -gt 0 ]; then dm=$(median "${d[@]}"); dbt_col="${dm} ms ($(ratio "$dm" "$fm"))"; fi
  printf '%-10s %-24s %7s ms %16s %16s %16s %16s %16s %16s %9s MiB %9s MiB\n' "$size" "$rows" "$fm" "$qm ms ($(ratio "$qm" "$fm"))" "$rm ms ($(ratio "$rm" "$fm"))" "$bm ms ($(ratio "$bm" "$fm"))" "$drm ms ($(ratio "$drm" "$fm"))" "$dbm ms ($(ratio "$dbm" "$fm"))" "$dbt_col" $((mem / 1024)) $((smem / 1024))
  if [ -n "${KEEP_OUTPUT:-}" ]; then mkdir -p "$KEEP_OUTPUT/$size"; cp -r "$work"/*.log "$work/target" "$KEEP_OUTPUT/$size/" 2>/dev/null || true; fi
done
echo
echo "medians of $rounds interleaved rounds on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); floor: a sequential count(*) of every raw table; SQL alone: the models' compiled SQL as create table … as with their indexes and session settings, one after the other through psql (bench/sql_floor.py)"
