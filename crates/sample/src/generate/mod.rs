//! Deterministic generator of the raw tables of `raw-contract.md`.
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
//! business rules (`marts.md`) are exercised: returning profiles, a daily rhythm,
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
use std::fmt::Write as _;

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

/// A column of a raw table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// PostgreSQL type as the loader creates it (`text`, `timestamp`, `bigint`, ...),
    /// with `not null` where the contract says so.
    pub sql_type: &'static str,
}

const fn col(name: &'static str, sql_type: &'static str) -> Column {
    Column { name, sql_type }
}

/// The loader's metadata columns, last in every raw table.
const SDC: [Column; 7] = [
    col("_sdc_extracted_at", "timestamp"),
    col("_sdc_received_at", "timestamp"),
    col("_sdc_batched_at", "timestamp"),
    col("_sdc_deleted_at", "timestamp"),
    col("_sdc_sequence", "bigint"),
    col("_sdc_table_version", "bigint"),
    col("_sdc_sync_started_at", "bigint"),
];

const FUNNELS_COLS: [Column; 5] = [
    col("id", "text not null"),
    col("title", "text"),
    col("alias", "text"),
    col("type", "text"),
    col("created_at", "timestamp"),
];

const SESSIONS_COLS: [Column; 12] = [
    col("id", "text not null"),
    col("created_at", "timestamp not null"),
    col("funnel_id", "text"),
    col("funnel_version", "bigint"),
    col("profile_id", "text not null"),
    col("email", "text"),
    col("country", "text"),
    col("city", "text"),
    col("postal", "text"),
    col("ip", "text"),
    col("origin", "text"),
    col("user_agent", "text"),
];

const FF_SUBS_COLS: [Column; 17] = [
    col("id", "text not null"),
    col("profile_id", "text not null"),
    col("psp_id", "text"),
    col("payment_provider", "text"),
    col("status", "text"),
    col("sandbox", "boolean"),
    col("price", "bigint"),
    col("currency", "text"),
    col("price_usd", "bigint"),
    col("billing_interval", "text"),
    col("billing_interval_count", "bigint"),
    col("renews", "boolean"),
    col("created_at", "timestamp"),
    col("updated_at", "timestamp"),
    col("period_starts_at", "timestamp"),
    col("period_ends_at", "timestamp"),
    col("cancelled_at", "timestamp"),
];

const CHARGES_COLS: [Column; 18] = [
    col("id", "text not null"),
    col("amount", "bigint"),
    col("amount_refunded", "bigint"),
    col("currency", "text"),
    col("status", "text"),
    col("failure_code", "text"),
    col("failure_message", "text"),
    col("paid", "boolean"),
    col("refunded", "boolean"),
    col("captured", "boolean"),
    col("livemode", "boolean"),
    col("customer", "text"),
    col("invoice", "text"),
    col("payment_intent", "text"),
    col("balance_transaction", "text"),
    col("description", "text"),
    col("metadata", "jsonb"),
    col("created", "timestamp not null"),
];

const STRIPE_SUBS_COLS: [Column; 16] = [
    col("id", "text not null"),
    col("customer", "text"),
    col("status", "text"),
    col("created", "timestamp"),
    col("start_date", "timestamp"),
    col("current_period_start", "timestamp"),
    col("current_period_end", "timestamp"),
    col("cancel_at_period_end", "boolean"),
    col("canceled_at", "timestamp"),
    col("ended_at", "timestamp"),
    col("trial_start", "timestamp"),
    col("trial_end", "timestamp"),
    col("latest_invoice", "text"),
    col("livemode", "boolean"),
    col("plan", "jsonb"),
    col("metadata", "jsonb"),
];

const EVENTS_COLS: [Column; 16] = [
    col("uuid", "text not null"),
    col("event_id", "bigint"),
    col("event_type", "text"),
    col("event_time", "timestamp not null"),
    col("user_id", "text"),
    col("device_id", "text"),
    col("email", "text"),
    col("amplitude_id", "bigint"),
    col("session_id", "bigint"),
    col("platform", "text"),
    col("os_name", "text"),
    col("country", "text"),
    col("city", "text"),
    col("event_properties", "jsonb"),
    col("user_properties", "jsonb"),
    col("server_upload_time", "timestamp"),
];

const CAMPAIGNS_COLS: [Column; 11] = [
    col("id", "text not null"),
    col("account_id", "text"),
    col("name", "text"),
    col("objective", "text"),
    col("status", "text"),
    col("effective_status", "text"),
    col("daily_budget", "numeric"),
    col("created_time", "timestamp"),
    col("start_time", "timestamp"),
    col("stop_time", "timestamp"),
    col("updated_time", "timestamp"),
];

const AD_STATS_COLS: [Column; 14] = [
    col("date_start", "date not null"),
    col("date_stop", "date"),
    col("account_id", "text"),
    col("campaign_id", "text"),
    col("adset_id", "text"),
    col("ad_id", "text not null"),
    col("campaign_name", "text"),
    col("adset_name", "text"),
    col("ad_name", "text"),
    col("spend", "numeric"),
    col("impressions", "bigint"),
    col("clicks", "bigint"),
    col("reach", "bigint"),
    col("account_currency", "text"),
];

/// One of the eight raw tables of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// `raw_funnelfox.funnels`
    Funnels,
    /// `raw_funnelfox.sessions`
    Sessions,
    /// `raw_funnelfox.subscriptions`
    FunnelfoxSubscriptions,
    /// `raw_stripe.charges`
    Charges,
    /// `raw_stripe.subscriptions`
    StripeSubscriptions,
    /// `raw_amplitude.events`
    Events,
    /// `raw_facebook.campaigns`
    Campaigns,
    /// `raw_facebook.ad_statistics`
    AdStatistics,
}

impl Table {
    /// All tables in an order safe to load (the raw tables have no foreign keys; this
    /// is the order of the contract, small tables first within each source).
    pub const ALL: [Table; 8] = [
        Table::Funnels,
        Table::Sessions,
        Table::FunnelfoxSubscriptions,
        Table::Charges,
        Table::StripeSubscriptions,
        Table::Events,
        Table::Campaigns,
        Table::AdStatistics,
    ];

    /// Schema of the table (`raw_funnelfox`, `raw_stripe`, ...).
    pub fn schema(self) -> &'static str {
        match self {
            Table::Funnels | Table::Sessions | Table::FunnelfoxSubscriptions => "raw_funnelfox",
            Table::Charges | Table::StripeSubscriptions => "raw_stripe",
            Table::Events => "raw_amplitude",
            Table::Campaigns | Table::AdStatistics => "raw_facebook",
        }
    }

    /// Name of the table within its schema.
    pub fn name(self) -> &'static str {
        match self {
            Table::Funnels => "funnels",
            Table::Sessions => "sessions",
            Table::FunnelfoxSubscriptions | Table::StripeSubscriptions => "subscriptions",
            Table::Charges => "charges",
            Table::Events => "events",
            Table::Campaigns => "campaigns",
            Table::AdStatistics => "ad_statistics",
        }
    }

    /// The contract's columns of the table, without the `_sdc_*` ones.
    fn own_columns(self) -> &'static [Column] {
        match self {
            Table::Funnels => &FUNNELS_COLS,
            Table::Sessions => &SESSIONS_COLS,
            Table::FunnelfoxSubscriptions => &FF_SUBS_COLS,
            Table::Charges => &CHARGES_COLS,
            Table::StripeSubscriptions => &STRIPE_SUBS_COLS,
            Table::Events => &EVENTS_COLS,
            Table::Campaigns => &CAMPAIGNS_COLS,
            Table::AdStatistics => &AD_STATS_COLS,
        }
    }

    /// Every column in COPY field order: the contract's columns, then the seven
    /// `_sdc_*` loader columns.
    pub fn columns(self) -> Vec<Column> {
        self.own_columns()
            .iter()
            .chain(SDC.iter())
            .copied()
            .collect()
    }

    /// Column names in COPY field order.
    pub fn column_names(self) -> Vec<&'static str> {
        self.columns().iter().map(|c| c.name).collect()
    }

    /// The primary key columns (the loader upserts on them).
    pub fn key(self) -> &'static [&'static str] {
        match self {
            Table::Events => &["uuid"],
            Table::AdStatistics => &["date_start", "ad_id"],
            _ => &["id"],
        }
    }

    /// `CREATE SCHEMA IF NOT EXISTS ...; CREATE TABLE IF NOT EXISTS ...` for this
    /// table as target-postgres would create it (all columns, primary key).
    pub fn create_sql(self) -> String {
        let mut sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};\nCREATE TABLE IF NOT EXISTS {schema}.{table} (\n",
            schema = self.schema(),
            table = self.name()
        );
        for c in self.columns() {
            let _ = writeln!(sql, "    {} {},", c.name, c.sql_type);
        }
        let _ = write!(sql, "    PRIMARY KEY ({})\n);\n", self.key().join(", "));
        sql
    }
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
