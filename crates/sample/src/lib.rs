//! Reluvia's sample kit, used by the `demo` and `generate` commands of
//! reluvia-transform and by its tests:
//!
//! - [`contract`]: the raw data contract, the eight raw tables (columns, types,
//!   keys) and their DDL;
//! - [`generate`]: a deterministic generator of the raw tables' data, as
//!   PostgreSQL COPY text;
//! - [`cluster`]: a throwaway PostgreSQL server, temporary or shared;
//! - [`test_cluster`]: the shared cluster of reluvia-transform's test suite (also
//!   the `reluvia-test-cluster` binary, for `tests/pg.sh`).

#![warn(unreachable_pub)]

pub mod cluster;
pub mod contract;
pub mod generate;
pub mod test_cluster;
