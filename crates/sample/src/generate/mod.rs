//! Deterministic generator of the rows of the raw tables of the
//! [`contract`](crate::contract) (docs/raw-contract.md).
//!
//! This module owns the demo and test data: the eight raw tables the extractors land
//! (`raw_funnelfox.funnels`, `sessions`, `subscriptions`; `raw_stripe.charges`,
//! `subscriptions`; `raw_amplitude.events`; `raw_facebook.campaigns`,
//! `ad_statistics`), every column including the loader's `_sdc_*` metadata, written as
//! PostgreSQL `COPY ... FROM STDIN` text (tab separated, `\N` for NULL).
//!
//! The output depends only on [`GenOptions`]: the same options give byte-identical
//! text on every machine. That is why the module has its own small PRNG (splitmix64)
//! and its own calendar arithmetic, and uses floating point only for `+ - * /` and
//! `round` (exact IEEE operations; no `exp`/`ln`, whose last bits differ between libm
//! implementations).
//!
//! The data is shaped like production, not like uniform noise, so that the marts'
//! business rules (`docs/marts.md`) are exercised: returning profiles, a daily rhythm,
//! conversions minutes to days after a session, failed/pending/refunded charges,
//! renewals without a funnel subscription, sandbox and duplicate subscriptions,
//! currencies with 0, 2 and 3 decimals in mixed case, soft-deleted rows in every
//! table, e-mails in mixed case, app events matched by e-mail only, ids that differ
//! only in case or punctuation (byte order and ICU collation disagree on them), ties
//! at exactly the same instant, and days where two failure codes tie.
//!
//! Two ways to get the text: [`generate`] returns every table in memory (fine for the
//! demo scale), while [`Dataset::new`] + [`generate_table`] stream one table in chunks
//! through a callback, so the app events (the big table: 1M+ rows at 100k sessions)
//! never have to sit in one `String`.

use chrono::{NaiveDate, NaiveDateTime};

use crate::contract::Table;

mod calendar;
mod copy_text;
mod reference;
mod rng;
#[cfg(test)]
mod tests;
mod world;
mod write;

pub use world::Dataset;

use copy_text::CopyWriter;

/// Microseconds since 1970-01-01 00:00:00 UTC: the generator's only time type.
type Micros = i64;

const MS: Micros = 1_000;
const SEC: Micros = 1_000_000;
const MIN: Micros = 60 * SEC;
const HOUR: Micros = 60 * MIN;
const DAY: Micros = 24 * HOUR;

/// The seed [`GenOptions::demo`] uses, so every demo run shows the same data.
pub const DEMO_SEED: u64 = 0x5EED_2026_F0C5_0001;

/// Size of the chunks [`generate_table`] hands to its callback (each chunk ends at a
/// row boundary, so it may be a little larger).
pub const CHUNK_BYTES: usize = 1 << 20;

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenOptions {
    /// Seed of the pseudo-random streams: same seed (and other options), same bytes.
    pub seed: u64,
    /// Number of UTC calendar days of sessions, ending with `end` (inclusive).
    pub days: u32,
    /// Average number of funnel sessions per day (weekends and the daily trend move
    /// individual days around this).
    pub sessions_per_day: u32,
    /// Last day of data (UTC).
    pub end: NaiveDate,
    /// The wall-clock time (UTC) the load is pretended to happen at: no source record
    /// is later than 30 minutes before it, and the newest `_sdc_batched_at` of every
    /// table is 13 to 20 minutes before it, so source freshness passes. Use an `end`
    /// no later than `now`'s date.
    pub now: NaiveDateTime,
}

impl GenOptions {
    /// The demo's options: 90 days ending `today`, about 40 sessions a day (about
    /// 3.5k sessions of 1.6k profiles, 180 FunnelFox subscriptions, 330 charges and
    /// 48k app events), with the fixed [`DEMO_SEED`]. `now` is the current UTC time.
    pub fn demo(today: NaiveDate, now: NaiveDateTime) -> Self {
        GenOptions {
            seed: DEMO_SEED,
            days: 90,
            sessions_per_day: 40,
            end: today,
            now,
        }
    }
}

/// One generated table: where it goes and its rows as COPY text.
#[derive(Clone, Debug)]
pub struct TableData {
    /// Target schema, e.g. `raw_stripe`.
    pub schema: &'static str,
    /// Target table, e.g. `charges`.
    pub table: &'static str,
    /// Column names in the order of the fields of each line of `copy_text`.
    pub columns: Vec<&'static str>,
    /// The rows in PostgreSQL COPY text format: one line per row, fields separated by
    /// a tab, `\N` for NULL, backslash/tab/newline/carriage return escaped.
    pub copy_text: String,
    /// Number of rows (lines) in `copy_text`.
    pub rows: usize,
}

/// Generates all eight tables in memory, in the order of [`Table::ALL`].
///
/// Convenient for the demo scale; for large scales build a [`Dataset`] once and
/// stream each table with [`generate_table`].
pub fn generate(opts: &GenOptions) -> Vec<TableData> {
    let data = Dataset::new(opts);
    Table::ALL
        .iter()
        .map(|&table| {
            let mut copy_text = String::new();
            let rows = generate_table(&data, table, |chunk| copy_text.push_str(chunk));
            TableData {
                schema: table.schema(),
                table: table.name(),
                columns: table.column_names(),
                copy_text,
                rows,
            }
        })
        .collect()
}

/// Streams one table's COPY text to `on_chunk` and returns its number of rows.
///
/// Each chunk holds whole lines (never a partial row) and is about [`CHUNK_BYTES`]
/// long (the last one shorter), so a caller can forward chunks to a `COPY ... FROM
/// STDIN` as they come and hold at most one chunk in memory. The callback is not
/// called for an empty table. Column order is [`Table::column_names`]. Rows come out
/// in a stable order (by their timestamp, then id, for most tables); the app events
/// are generated one app user at a time and are not sorted, which is why they never
/// need to be in memory all at once.
pub fn generate_table<F: FnMut(&str)>(data: &Dataset, table: Table, on_chunk: F) -> usize {
    let mut w = CopyWriter::new(table.columns().len(), on_chunk);
    match table {
        Table::Funnels => data.write_funnels(&mut w),
        Table::Sessions => data.write_sessions(&mut w),
        Table::FunnelfoxSubscriptions => data.write_ff_subscriptions(&mut w),
        Table::Charges => data.write_charges(&mut w),
        Table::StripeSubscriptions => data.write_stripe_subscriptions(&mut w),
        Table::Events => data.write_events(&mut w),
        Table::Campaigns => data.write_campaigns(&mut w),
        Table::AdStatistics => data.write_ad_statistics(&mut w),
    }
    w.finish()
}
