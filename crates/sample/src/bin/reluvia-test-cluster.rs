//! The shared PostgreSQL cluster of the test suite (`reluvia_sample::test_cluster`),
//! for `tests/pg.sh`:
//!
//! - `reluvia-test-cluster env` starts the cluster in `$RELUVIA_TEST_PGDATA`
//!   (default `/tmp/reluvia-test-pg`), or reuses the one running there, and prints
//!   `export RELUVIA_TEST_PGHOST=… RELUVIA_TEST_PGPORT=… RELUVIA_TEST_PGUSER=…`
//!   for a shell to `eval`;
//! - `reluvia-test-cluster stop` stops it;
//! - `bench-env` and `bench-stop` do the same for the benchmarks' stock, durable
//!   cluster in `$RELUVIA_BENCH_PGDATA` (default `/var/tmp/reluvia-bench-pg`).
//!
//! Works as root (the server runs as the `postgres` user) and as an ordinary user.

use std::process::ExitCode;

use reluvia_sample::test_cluster;

/// Shows the cluster's warnings (e.g. a server that would not stop) on stderr.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("reluvia-test-cluster: {}", record.args());
        }
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    let _ = log::set_logger(&StderrLogger);
    log::set_max_level(log::LevelFilter::Warn);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["env"] => test_cluster::start().map(|c| println!("{}", test_cluster::exports(&c))),
        ["stop"] => test_cluster::stop().map(|_| ()),
        ["bench-env"] => {
            test_cluster::start_bench().map(|c| println!("{}", test_cluster::exports(&c)))
        }
        ["bench-stop"] => test_cluster::stop_bench().map(|_| ()),
        _ => {
            eprintln!(
                "usage: reluvia-test-cluster env|stop|bench-env|bench-stop\n  env   start (or reuse) the test cluster in ${} and print its exports\n  stop  stop it\n  bench-env, bench-stop  the same for the benchmarks' stock cluster in ${}",
                test_cluster::DATA_ENV,
                test_cluster::BENCH_DATA_ENV
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reluvia-test-cluster: {e}");
            ExitCode::FAILURE
        }
    }
}
