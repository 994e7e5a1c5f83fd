#!/usr/bin/env bash
# Starts (or reuses) the shared PostgreSQL cluster of the test suite and exports
# RELUVIA_TEST_PGHOST / RELUVIA_TEST_PGPORT / RELUVIA_TEST_PGUSER for tests/common.
# Source it: `source tests/pg.sh`. Works as root (runs the server as `postgres`) and
# as an ordinary user. The cluster lives in $RELUVIA_TEST_PGDATA (default
# /tmp/reluvia-test-pg) and is reused while it runs; `bash tests/pg.sh stop` stops it.
# The sample crate's reluvia-test-cluster binary does the work (its configuration is
# in crates/sample/src/test_cluster.rs); it is built with cargo, in $CARGO_TARGET_DIR
# when that is set.
set -euo pipefail

_reluvia_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_reluvia_test_cluster() {
  cargo run --release -q --locked --manifest-path "$_reluvia_repo/Cargo.toml" \
    -p reluvia-sample --bin reluvia-test-cluster -- "$@"
}

if [ "${1:-}" = stop ]; then
  # As before: whatever happens (the binary says what went wrong), exit 0.
  _reluvia_test_cluster stop || true
  exit 0
fi

_reluvia_exports="$(_reluvia_test_cluster env)" \
  || { echo "tests/pg.sh: could not start PostgreSQL" >&2; return 1 2>/dev/null || exit 1; }
eval "$_reluvia_exports"
echo "tests/pg.sh: PostgreSQL on $RELUVIA_TEST_PGHOST:$RELUVIA_TEST_PGPORT (data ${RELUVIA_TEST_PGDATA:-/tmp/reluvia-test-pg})" >&2
unset -f _reluvia_test_cluster
unset _reluvia_repo _reluvia_exports
