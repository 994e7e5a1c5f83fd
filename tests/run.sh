#!/usr/bin/env bash
# The test command (README "Run the tests"): starts a throwaway PostgreSQL unless
# RELUVIA_TEST_PGPORT already points at one, then runs every test with cargo.
# Extra arguments go to `cargo test` (e.g. `bash tests/run.sh --test engine`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RELUVIA_TEST_PGPORT:-}" ]; then
  # shellcheck source=tests/pg.sh
  source tests/pg.sh
fi
cargo test --locked "$@"
