//! The shared PostgreSQL cluster of reluvia-transform's test suite: one persistent
//! [`Cluster::shared`] cluster in `$RELUVIA_TEST_PGDATA` (default
//! `/tmp/reluvia-test-pg`), started by the first test run and reused by the next
//! ones while it answers. `tests/pg.sh` starts it through the `reluvia-test-cluster`
//! binary; the tests start it themselves when `tests/pg.sh` did not.
//!
//! Its configuration: a free port on 127.0.0.1, fsync, synchronous_commit and
//! full_page_writes off, 300 connections (the tests run in parallel, each with its
//! own database), the default time zone `Pacific/Chatham` (not UTC, so time zone
//! bugs show up), warnings only in the log; every loopback connection trusted
//! except members of the role `pw_users`, who must give a password (scram-sha-256),
//! for the tests of wrong passwords.
//!
//! The benchmarks use a second persistent cluster ([`start_bench`]), in
//! `$RELUVIA_BENCH_PGDATA` (default `/var/tmp/reluvia-bench-pg`): a stock server
//! (PostgreSQL's defaults: shared_buffers 128 MB, work_mem 4 MB, fsync on), its
//! default time zone `America/New_York`, so that the figures hold for a real one.

use std::path::PathBuf;

use crate::cluster::{Cluster, ClusterOptions};

/// The environment variable naming the cluster's data directory.
pub const DATA_ENV: &str = "RELUVIA_TEST_PGDATA";

/// The data directory when [`DATA_ENV`] is not set.
const DEFAULT_DATA_DIR: &str = "/tmp/reluvia-test-pg";

const HBA: &str = "\
local all all trust
host all +pw_users 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
";

/// The cluster's data directory: `$RELUVIA_TEST_PGDATA`, else `/tmp/reluvia-test-pg`.
fn data_dir() -> PathBuf {
    std::env::var_os(DATA_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from)
}

fn options() -> ClusterOptions {
    ClusterOptions::new()
        .max_connections(300)
        .timezone("Pacific/Chatham")
        .pg_hba(HBA)
}

/// Starts the test cluster, or reuses the one running (its `pg_hba.conf` rewritten,
/// so an older cluster follows), and makes sure the role `pw_users` exists.
pub fn start() -> Result<Cluster, String> {
    let cluster = Cluster::shared(&data_dir(), &options())?;
    // Another process may create it at the same moment.
    cluster.execute(
        "postgres",
        "do $$ begin create role pw_users nologin; \
         exception when duplicate_object or unique_violation then null; end $$",
    )?;
    Ok(cluster)
}

/// The environment variable naming the benchmark cluster's data directory.
pub const BENCH_DATA_ENV: &str = "RELUVIA_BENCH_PGDATA";

fn bench_data_dir() -> PathBuf {
    std::env::var_os(BENCH_DATA_ENV)
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/var/tmp/reluvia-bench-pg"), PathBuf::from)
}

/// Starts the benchmark cluster (a stock, durable server), or reuses the one running.
pub fn start_bench() -> Result<Cluster, String> {
    Cluster::shared(
        &bench_data_dir(),
        &ClusterOptions::new().durable().timezone("America/New_York"),
    )
}

/// Stops the benchmark cluster if it runs; returns whether it did.
pub fn stop_bench() -> Result<bool, String> {
    Cluster::stop_shared(&bench_data_dir())
}

/// Stops the test cluster if it runs; returns whether it did.
pub fn stop() -> Result<bool, String> {
    Cluster::stop_shared(&data_dir())
}

/// The shell command that exports the variables the tests read:
/// `export RELUVIA_TEST_PGHOST=127.0.0.1 RELUVIA_TEST_PGPORT=… RELUVIA_TEST_PGUSER=postgres`.
pub fn exports(cluster: &Cluster) -> String {
    format!(
        "export RELUVIA_TEST_PGHOST={} RELUVIA_TEST_PGPORT={} RELUVIA_TEST_PGUSER={}",
        cluster.host(),
        cluster.port(),
        cluster.user()
    )
}
