#!/usr/bin/env bash
# The differential test (README "Run the tests"): dbt-core and reluvia-transform run
# the same scenarios on the fixture projects of tests/dbt/fixtures/, each in its own
# fresh PostgreSQL database, and any difference fails (tests/dbt/difftest.py).
#
#   bash tests/dbt/run.sh [-v] [--refresh] [-j N] [FIXTURE...]
#
# dbt-core comes from PyPI (tests/dbt/requirements.txt) into a virtual environment
# cached in $RELUVIA_DBT_CACHE (default /var/tmp/reluvia-dbt-cache) under a hash of
# requirements.txt and the Python version; dbt's observed results are cached there
# too (results/), so a warm run does not start dbt at all. PostgreSQL: tests/pg.sh
# unless RELUVIA_TEST_PGPORT points at a running server. The binary: $RELUVIA_BIN,
# else `cargo build --release` of this checkout ($CARGO_TARGET_DIR/release/, else
# ./target/release/reluvia-transform).
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/tests/dbt"
die() { echo "dbt-diff: FAIL: $*" >&2; exit 1; }

cache="${RELUVIA_DBT_CACHE:-/var/tmp/reluvia-dbt-cache}"
mkdir -p "$cache"
export RELUVIA_DBT_CACHE="$cache"
python="${RELUVIA_DBT_PYTHON:-python3}"
command -v "$python" >/dev/null || die "$python not found (the test needs Python 3.10 or newer)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$python is older than 3.10 (dbt-core 1.10 needs 3.10+)"
key="$( { cat "$here/requirements.txt"; "$python" --version; } | sha256sum | cut -c1-16)"
venv="$cache/venv-$key"
export PIP_CACHE_DIR="$cache/pip"
(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "dbt-diff: creating dbt's virtual environment in $venv (PyPI)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
    touch "$venv/.complete"
  fi
) 9>"$cache/.lock"

if [ -z "${RELUVIA_TEST_PGPORT:-}" ]; then
  # shellcheck source=tests/pg.sh
  source "$repo/tests/pg.sh"
fi

if [ -z "${RELUVIA_BIN:-}" ]; then
  # Test the sources of this checkout: build the release binary (a no-op when it is
  # up to date, as after .ci/run's own release build).
  command -v cargo >/dev/null || die "cargo is not on PATH: build the binary elsewhere and set RELUVIA_BIN"
  (cd "$repo" && cargo build --locked --release --quiet) || die "cargo build --release failed"
  export RELUVIA_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/reluvia-transform"
fi
[ -x "$RELUVIA_BIN" ] || die "no binary at $RELUVIA_BIN: build it with cargo build --release (or set RELUVIA_BIN)"

exec "$venv/bin/python" "$here/difftest.py" "$@"
