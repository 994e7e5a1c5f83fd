#!/usr/bin/env bash
# The test command (README "Run the tests"): starts a throwaway PostgreSQL unless
# RELUVIA_TEST_PGPORT already points at one, runs every test with cargo, then the
# differential test against dbt-core (tests/dbt/run.sh: dbt-core from PyPI) and the
# Meltano end-to-end test (tests/meltano/e2e.sh: a real Meltano and Singer plugins
# from PyPI). Extra arguments go to `cargo test` alone and skip both (e.g.
# `bash tests/run.sh --test engine`); RELUVIA_SKIP_DBT_DIFF=1 and
# RELUVIA_SKIP_MELTANO_E2E=1 skip one each.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RELUVIA_TEST_PGPORT:-}" ]; then
  # shellcheck source=tests/pg.sh
  source tests/pg.sh
fi
# --workspace: the sample crate (crates/sample) has tests of its own. --release:
# the tests drive the binary `cargo build --release` made, one compilation for both.
cargo test --release --locked --workspace "$@"
# Both end-to-end suites run even when the first fails; the script fails if either did.
rc=0
if [ $# -eq 0 ] && [ "${RELUVIA_SKIP_DBT_DIFF:-}" != 1 ]; then
  bash tests/dbt/run.sh || rc=1
fi
if [ $# -eq 0 ] && [ "${RELUVIA_SKIP_MELTANO_E2E:-}" != 1 ]; then
  bash tests/meltano/e2e.sh || rc=1
fi
exit $rc
