//! reluvia-transform: runs a dbt-format project of Jinja SQL models on PostgreSQL.
//!
//! The modules read as the data path, top to bottom:
//!
//! 1. [`settings`]: flags, environment, a connection URL, `--config` files, a dbt
//!    `profiles.yml` and defaults, merged and validated.
//! 2. [`project`]: `dbt_project.yml`, the YAML property files and the `.sql` files,
//!    read from disk into plain data.
//! 3. [`render`]: Jinja (minijinja) with dbt's context, which turns the project into
//!    the [`manifest`]: nodes with their configs, dependencies and compiled SQL.
//! 4. [`graph`]: the dependency graph, cycle detection and node selection.
//! 5. [`execute`]: the plan of a job and its parallel execution.
//! 6. [`postgres`]: connections, the pool and materializations with safe swaps.
//! 7. [`datatest`], [`freshness`], [`artifacts`] and [`console`]: data tests, source
//!    freshness, the files in the target path and what the user sees.
//!
//! [`commands`] wires them together, one file per subcommand of the [`cli`]; a
//! [`cancel`] token set by SIGINT/SIGTERM reaches every phase. The sample kit
//! (generator, raw contract, throwaway cluster) is the `reluvia-sample` crate.
#![warn(unreachable_pub)]

mod artifacts;
mod cancel;
mod cli;
mod commands;
mod console;
mod datatest;
mod docs;
mod error;
mod execute;
mod exposures;
mod freshness;
mod graph;
mod install;
mod landing;
mod manifest;
mod parallel;
mod postgres;
mod preview;
mod project;
mod render;
mod report;
mod results;
mod seed;
mod semantic;
mod settings;
mod unittest;

/// The version printed by `--version` and recorded in artifacts.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() {
    malloc_pad();
    // A panic is a bug, and its message may quote a value (a URL, a password): the
    // user sees one line saying where it happened; RUST_LOG=debug adds the message.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{at}; this is a bug, please report it with the command that caused it (RUST_LOG=debug shows its message)");
        if log::log_enabled!(log::Level::Debug) {
            eprintln!("{info}");
        }
    }));
    // Before anything else: from here on a signal sets the token instead of
    // killing the process mid-way.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let cancel = match cancel::Cancel::install(&runtime) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot install the SIGINT/SIGTERM handlers: {e}");
            std::process::exit(1);
        }
    };
    console::install_logger();
    let cli = match cli::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(code) => std::process::exit(code),
    };
    let inv = commands::Invocation { runtime, cancel };
    let code = commands::main(cli, &inv);
    // Work still running in the background (a cancelled query's connection) must
    // not hold up the exit.
    inv.runtime.shutdown_background();
    std::process::exit(code);
}

/// glibc's malloc grows (and trims) its main heap by little more than each
/// allocation needs: a parse or compile makes hundreds of thousands of
/// allocations on a growing heap, each growth a system call. 64 MiB of padding
/// per growth (its pages only touched when used) takes far fewer: a compile of
/// the 1,000-model benchmark spends about 6% less CPU time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn malloc_pad() {
    extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    const M_TOP_PAD: std::ffi::c_int = -2;
    // SAFETY: mallopt only sets a malloc parameter; called before any thread starts.
    unsafe {
        mallopt(M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_pad() {}
