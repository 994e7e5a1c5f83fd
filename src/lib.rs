//! reluvia-transform: runs a dbt-format project of Jinja SQL models on PostgreSQL.
//!
//! The data path reads top to bottom, one module per step:
//!
//! 1. [`settings`]: flags, environment, a connection URL ([`conn_url`]), `--config`
//!    files, a dbt `profiles.yml` ([`profiles`]) and defaults, merged and validated
//!    against `schemas/config.schema.json`.
//! 2. [`project`]: `dbt_project.yml`, the YAML property files, model, macro and
//!    test files, read from disk.
//! 3. [`render`]: Jinja (minijinja) with dbt's context (`ref`, `source`, `config`,
//!    `var`, macros…), which turns the project into [`manifest`] nodes with their
//!    configs, dependencies and compiled SQL.
//! 4. [`graph`]: the dependency graph of the nodes, cycle detection and selection.
//! 5. [`scheduler`] and [`warehouse`]: parallel execution on a pool of PostgreSQL
//!    connections (TLS by [`tls`]); materializations with safe swaps ([`swap`]).
//!    [`datatest`] runs and judges data tests; [`freshness`] checks source
//!    freshness.
//! 6. [`artifacts`] and [`output`]: `manifest.json`, `run_results.json`, the
//!    compiled SQL, and what the user sees on the console.
//!
//! [`commands`] wires these together for each subcommand of the CLI ([`cli`]).
//! [`demo`] runs the whole job on a throwaway [`cluster`] with raw data from
//! [`generate`] and prints the [`report`].

pub mod artifacts;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod conn_url;
pub mod datatest;
pub mod demo;
pub mod error;
pub mod freshness;
pub mod generate;
pub mod graph;
pub mod manifest;
pub mod output;
pub mod profiles;
pub mod project;
pub mod render;
pub mod report;
pub mod scheduler;
pub mod settings;
pub mod swap;
pub mod tls;
pub mod warehouse;

pub use error::{Error, ErrorKind, Result};

/// The version printed by `--version` and recorded in artifacts.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
