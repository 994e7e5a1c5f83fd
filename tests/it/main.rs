//! The integration tests: one test binary, each module driving the
//! `reluvia-transform` binary against a real PostgreSQL through the shared
//! harness in [`common`] (the test cluster, a database per test, output
//! normalised for snapshots).

mod browser;
mod common;

mod advice;
mod cancel;
mod cli;
mod connect;
mod contracts;
mod datatests;
mod demo;
mod deps;
mod docs;
mod engine;
mod fallbacks;
mod fixtures;
mod guards;
mod hooks;
mod incremental;
mod indexes;
mod landing;
mod macro_context;
mod marts;
mod meltano;
mod microbatch;
mod modules;
mod relations;
mod safety;
mod secrets;
mod seeds;
mod session_settings;
mod snapshot_tables;
mod sql_header;
mod timeouts;
mod unit_tests;
