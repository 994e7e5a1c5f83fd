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

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

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

/// Appends `value` to `out` escaped for a field of PostgreSQL's COPY text format:
/// backslash, tab, newline and carriage return become `\\`, `\t`, `\n`, `\r`. (The
/// generator never produces NUL characters, which PostgreSQL text cannot hold.)
pub fn push_copy_escaped(out: &mut String, value: &str) {
    // Fast path: most values need no escaping at all.
    if !value
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(value);
        return;
    }
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

// ---------------------------------------------------------------------------------
// Pseudo-random numbers
// ---------------------------------------------------------------------------------

/// splitmix64's output function: a bijective mixer of 64-bit values.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64 generator. Each table/entity gets its own stream derived from the seed
/// (see [`Rng::derive`]), so generating one table lazily (the events, the ad
/// statistics) does not depend on what was drawn for another.
#[derive(Clone, Debug)]
struct Rng {
    state: u64,
}

// Stream labels for `Rng::derive`.
const S_WORLD: u64 = 1;
const S_SESSION: u64 = 2;
const S_EVENTS: u64 = 3;
const S_ADSTATS: u64 = 4;
const S_FUNNELS: u64 = 5;
const S_CAMPAIGNS: u64 = 6;
const S_LOADER: u64 = 7;

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// An independent stream for `(stream, index)` under `seed`.
    fn derive(seed: u64, stream: u64, index: u64) -> Rng {
        let a = mix64(seed ^ 0x6A09_E667_F3BC_C908);
        let b = mix64(a ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Rng::new(mix64(b ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)))
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// Uniform in `0..n` (0 when `n` is 0), by the multiply-shift method.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64) as i64
    }

    /// Uniform in `[0, 1)` with 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Index drawn with the given integer weights (0 for an empty or all-zero list).
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < u64::from(w) {
                return i;
            }
            r -= u64::from(w);
        }
        0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Appends `n` characters from `alphabet`.
    fn push_chars(&mut self, out: &mut String, alphabet: &[u8], n: usize) {
        for _ in 0..n {
            out.push(char::from(*self.pick(alphabet)));
        }
    }

    /// `prefix` followed by `n` base-62 characters (both letter cases, so ids sort
    /// differently by bytes and by a linguistic collation).
    fn id(&mut self, prefix: &str, n: usize) -> String {
        let mut s = String::with_capacity(prefix.len() + n);
        s.push_str(prefix);
        self.push_chars(&mut s, BASE62, n);
        s
    }

    /// `n` decimal digits, the first one not zero.
    fn digits(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        self.push_chars(&mut s, &DIGITS[1..], 1);
        self.push_chars(&mut s, DIGITS, n.saturating_sub(1));
        s
    }

    /// A version-4 UUID in its text form, from this stream.
    fn uuid(&mut self, out: &mut String, upper: bool) {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let hi = (hi & !0xF000) | 0x4000; // version 4
        let lo = (lo & !(0xC << 60)) | (0x8 << 60); // RFC 4122 variant
        let digits: &[u8] = if upper { b"0123456789ABCDEF" } else { HEX };
        // 32 hex digits, most significant first, dashes after digits 8, 12, 16, 20.
        for i in 0..32 {
            if matches!(i, 8 | 12 | 16 | 20) {
                out.push('-');
            }
            let word = if i < 16 { hi } else { lo };
            let nibble = (word >> (60 - 4 * (i % 16))) & 0xF;
            out.push(char::from(digits[nibble as usize]));
        }
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
const UPPER_ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const HEX: &[u8] = b"0123456789abcdef";

// ---------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------

/// Day number (days since 1970-01-01) of a chrono date.
fn day_number(date: NaiveDate) -> i64 {
    // 719_163 is the day count of 1970-01-01 from 0001-01-01 (chrono's "CE" day 1).
    i64::from(date.num_days_from_ce()) - 719_163
}

/// (year, month, day) of a day number, by the proleptic Gregorian calendar. Works in
/// 400-year eras (146 097 days) counted from 0000-03-01, so that leap days fall at
/// the end of each year of the era.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days from 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `t` plus `months` calendar months, the day clamped to the target month's length
/// (Jan 31 + 1 month = Feb 28/29), as Stripe bills monthly plans.
fn add_months(t: Micros, months: i64) -> Micros {
    let days = t.div_euclid(DAY);
    let time = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let total = y * 12 + i64::from(m) - 1 + months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let next_first = if nm == 12 {
        days_from_civil(ny + 1, 1, 1)
    } else {
        days_from_civil(ny, nm + 1, 1)
    };
    let month_len = (next_first - days_from_civil(ny, nm, 1)) as u32;
    days_from_civil(ny, nm, d.min(month_len)) * DAY + time
}

/// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
fn weekday(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// Appends `value` in decimal, zero-padded to `width` digits. Hand-written because
/// timestamps are most of the output and `format!` padding is several times slower.
fn push_padded(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        // Only reachable for years before 1 CE; not worth a fast path.
        let _ = write!(out, "{value:0width$}");
        return;
    }
    let mut digits = [b'0'; 20];
    let mut v = value as u64;
    let mut n = 0;
    while v > 0 || n == 0 {
        digits[19 - n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    for _ in n..width {
        out.push('0');
    }
    for &d in &digits[20 - n..] {
        out.push(char::from(d));
    }
}

/// Appends `value` in decimal.
fn push_int(out: &mut String, value: i64) {
    if value < 0 {
        out.push('-');
        // i64::MIN has no positive counterpart; the generator never writes it.
        push_padded(out, value.checked_neg().unwrap_or(i64::MAX), 1);
    } else {
        push_padded(out, value, 1);
    }
}

fn push_date(out: &mut String, day: i64) {
    let (y, m, d) = civil_from_days(day);
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, i64::from(m), 2);
    out.push('-');
    push_padded(out, i64::from(d), 2);
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]`: the fraction only when it is not zero, as
/// PostgreSQL prints a `timestamp`.
fn push_timestamp(out: &mut String, t: Micros) {
    let day = t.div_euclid(DAY);
    let rem = t.rem_euclid(DAY);
    push_date(out, day);
    out.push(' ');
    push_padded(out, rem / HOUR, 2);
    out.push(':');
    push_padded(out, rem % HOUR / MIN, 2);
    out.push(':');
    push_padded(out, rem % MIN / SEC, 2);
    let frac = rem % SEC;
    if frac != 0 {
        out.push('.');
        push_padded(out, frac, 6);
    }
}

fn floor_to(t: Micros, unit: Micros) -> Micros {
    t - t.rem_euclid(unit)
}

// ---------------------------------------------------------------------------------
// COPY text writer
// ---------------------------------------------------------------------------------

/// Builds COPY text row by row and hands full chunks to the sink.
struct CopyWriter<F: FnMut(&str)> {
    buf: String,
    field: usize,
    columns: usize,
    rows: usize,
    sink: F,
}

impl<F: FnMut(&str)> CopyWriter<F> {
    fn new(columns: usize, sink: F) -> Self {
        CopyWriter {
            buf: String::with_capacity(CHUNK_BYTES + 64 * 1024),
            field: 0,
            columns,
            rows: 0,
            sink,
        }
    }

    fn sep(&mut self) {
        if self.field > 0 {
            self.buf.push('\t');
        }
        self.field += 1;
    }

    fn null(&mut self) {
        self.sep();
        self.buf.push_str("\\N");
    }

    fn text(&mut self, s: &str) {
        self.sep();
        push_copy_escaped(&mut self.buf, s);
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    fn int(&mut self, v: i64) {
        self.sep();
        push_int(&mut self.buf, v);
    }

    fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    fn boolean(&mut self, b: bool) {
        self.sep();
        self.buf.push(if b { 't' } else { 'f' });
    }

    fn opt_bool(&mut self, b: Option<bool>) {
        match b {
            Some(b) => self.boolean(b),
            None => self.null(),
        }
    }

    fn ts(&mut self, t: Micros) {
        self.sep();
        push_timestamp(&mut self.buf, t);
    }

    fn opt_ts(&mut self, t: Option<Micros>) {
        match t {
            Some(t) => self.ts(t),
            None => self.null(),
        }
    }

    fn date(&mut self, day: i64) {
        self.sep();
        push_date(&mut self.buf, day);
    }

    /// A `numeric` with two decimals from an amount in hundredths.
    fn hundredths(&mut self, v: i64) {
        self.sep();
        let sign = if v < 0 { "-" } else { "" };
        let _ = write!(self.buf, "{sign}{}.{:02}", v.abs() / 100, v.abs() % 100);
    }

    fn end_row(&mut self) {
        debug_assert_eq!(self.field, self.columns, "wrong number of fields in a row");
        self.buf.push('\n');
        self.field = 0;
        self.rows += 1;
        if self.buf.len() >= CHUNK_BYTES {
            (self.sink)(&self.buf);
            self.buf.clear();
        }
    }

    fn finish(mut self) -> usize {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf);
        }
        self.rows
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_str_body(out, s);
    out.push('"');
}

/// Appends `s` escaped for the inside of a JSON string literal.
fn push_json_str_body(out: &mut String, s: &str) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A small JSON object builder (keys are trusted literals).
struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push_str(", ");
        }
        self.first = false;
        push_json_str(self.out, k);
        self.out.push_str(": ");
    }

    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_json_str(self.out, v);
        self
    }

    fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        push_int(self.out, v);
        self
    }

    /// A string value made of a prefix and a number, without allocating.
    fn raw_str(&mut self, k: &str, prefix: &str, n: i64) -> &mut Self {
        self.key(k);
        self.out.push('"');
        push_json_str_body(self.out, prefix);
        push_int(self.out, n);
        self.out.push('"');
        self
    }

    fn boolean(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.out.push_str("null");
        self
    }

    fn close(&mut self) {
        self.out.push('}');
    }
}

// ---------------------------------------------------------------------------------
// Reference data
// ---------------------------------------------------------------------------------

/// Session starts per UTC hour (relative weights): the audience is mostly in Europe
/// and the Americas, so the peak is in the UTC evening.
const HOURLY: [u32; 24] = [
    6, 5, 4, 3, 3, 3, 3, 4, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 14, 15, 16, 14, 10, 8,
];

/// Day-of-week factor (Monday first), in percent: consumer traffic peaks at weekends.
const WEEKDAY_PCT: [i64; 7] = [96, 94, 93, 95, 102, 112, 118];

struct Country {
    code: &'static str,
    weight: u32,
    cities: &'static [&'static str],
    /// Postal code pattern: `9` a digit, `A` an upper-case letter.
    postal: &'static str,
    /// The usual currency of a purchase from there.
    currency: usize,
}

// Indices into CURRENCIES.
const USD: usize = 0;
const EUR: usize = 1;
const GBP: usize = 2;
const JPY: usize = 3;
const KWD: usize = 4;
const CAD: usize = 5;

#[rustfmt::skip]
const COUNTRIES: [Country; 14] = [
    Country { code: "US", weight: 420, cities: &["New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Austin"], postal: "99999", currency: USD },
    Country { code: "GB", weight: 80, cities: &["London", "Manchester", "Birmingham"], postal: "AA9 9AA", currency: GBP },
    Country { code: "DE", weight: 60, cities: &["Berlin", "München", "Hamburg", "Köln"], postal: "99999", currency: EUR },
    Country { code: "CA", weight: 50, cities: &["Toronto", "Montréal", "Vancouver"], postal: "A9A 9A9", currency: CAD },
    Country { code: "AU", weight: 40, cities: &["Sydney", "Melbourne"], postal: "9999", currency: USD },
    Country { code: "FR", weight: 40, cities: &["Paris", "Lyon", "Marseille"], postal: "99999", currency: EUR },
    Country { code: "BR", weight: 30, cities: &["São Paulo", "Rio de Janeiro"], postal: "99999-999", currency: USD },
    Country { code: "IN", weight: 30, cities: &["Mumbai", "Bengaluru", "Delhi"], postal: "999999", currency: USD },
    Country { code: "JP", weight: 30, cities: &["Tokyo", "Osaka"], postal: "999-9999", currency: JPY },
    Country { code: "ES", weight: 25, cities: &["Madrid", "Barcelona"], postal: "99999", currency: EUR },
    Country { code: "NL", weight: 20, cities: &["Amsterdam", "Rotterdam"], postal: "9999 AA", currency: EUR },
    Country { code: "MX", weight: 20, cities: &["Ciudad de México", "Guadalajara"], postal: "99999", currency: USD },
    Country { code: "KW", weight: 12, cities: &["Kuwait City"], postal: "99999", currency: KWD },
    Country { code: "IT", weight: 20, cities: &["Roma", "Milano"], postal: "99999", currency: EUR },
];

struct Currency {
    code: &'static str,
    /// Units of the currency per US dollar.
    per_usd: f64,
    /// Decimals of the minor unit (0 for JPY, 3 for KWD).
    decimals: u32,
}

#[rustfmt::skip]
const CURRENCIES: [Currency; 6] = [
    Currency { code: "usd", per_usd: 1.0, decimals: 2 },
    Currency { code: "eur", per_usd: 0.92, decimals: 2 },
    Currency { code: "gbp", per_usd: 0.79, decimals: 2 },
    Currency { code: "jpy", per_usd: 150.0, decimals: 0 },
    Currency { code: "kwd", per_usd: 0.307, decimals: 3 },
    Currency { code: "cad", per_usd: 1.36, decimals: 2 },
];

struct Plan {
    nickname: &'static str,
    usd_cents: i64,
    interval: &'static str,
    count: i64,
    weight: u32,
}

#[rustfmt::skip]
const PLANS: [Plan; 4] = [
    Plan { nickname: "Weekly", usd_cents: 699, interval: "week", count: 1, weight: 22 },
    Plan { nickname: "Monthly", usd_cents: 1999, interval: "month", count: 1, weight: 43 },
    Plan { nickname: "3 months", usd_cents: 3999, interval: "month", count: 3, weight: 15 },
    Plan { nickname: "Yearly", usd_cents: 5999, interval: "year", count: 1, weight: 20 },
];

/// Failure codes with Stripe's messages and their weights for a first purchase and
/// for a renewal (renewals fail on funds more often).
#[rustfmt::skip]
const FAILURES: [(&str, &str, u32, u32); 5] = [
    ("card_declined", "Your card was declined.", 52, 50),
    ("insufficient_funds", "Your card has insufficient funds.", 20, 24),
    ("expired_card", "Your card has expired.", 12, 16),
    ("incorrect_cvc", "Your card's security code is incorrect.", 10, 3),
    ("processing_error", "An error occurred while processing your card. Try again in a little bit.", 8, 8),
];

const FIRST_NAMES: [&str; 16] = [
    "anna", "james", "maria", "david", "olga", "li", "sofia", "lucas", "emma", "noah", "mia",
    "oliver", "yuki", "omar", "chloe", "mateo",
];
const LAST_NAMES: [&str; 16] = [
    "smith", "johnson", "garcia", "mueller", "ivanova", "chen", "rossi", "silva", "brown",
    "tanaka", "kim", "martin", "novak", "haddad", "lopez", "wilson",
];
const EMAIL_DOMAINS: [&str; 8] = [
    "gmail.com",
    "yahoo.com",
    "icloud.com",
    "outlook.com",
    "hotmail.de",
    "gmx.net",
    "proton.me",
    "mail.example.org",
];

const USER_AGENTS: [&str; 7] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/471.0.0.40.94;FBBV/622161000]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 Instagram 334.0.0.42.95 Android",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    // A broken in-app browser that leaks a Windows path: exercises COPY escaping.
    "LegacyWebView/2.1 (C:\\Program Files\\Shell\\app.exe)",
];
const USER_AGENT_WEIGHTS: [u32; 7] = [34, 20, 24, 12, 5, 4, 1];

struct FunnelSpec {
    title: Option<&'static str>,
    alias: &'static str,
    kind: &'static str,
    weight: u32,
    deleted: bool,
}

/// Six live funnels (one without a title) and an old one deleted at the source.
#[rustfmt::skip]
const FUNNELS: [FunnelSpec; 7] = [
    FunnelSpec { title: Some("Yoga for Beginners — Quiz"), alias: "yoga-quiz", kind: "quiz", weight: 34, deleted: false },
    FunnelSpec { title: Some("Wall Pilates 28-Day Challenge"), alias: "wall-pilates", kind: "quiz", weight: 26, deleted: false },
    FunnelSpec { title: Some("Meditation & Sleep"), alias: "sleep", kind: "landing", weight: 14, deleted: false },
    FunnelSpec { title: None, alias: "checkout-direct", kind: "checkout", weight: 9, deleted: false },
    FunnelSpec { title: Some("Calisthenics at Home"), alias: "calisthenics", kind: "quiz", weight: 10, deleted: false },
    FunnelSpec { title: Some("Spring Sale 50% off"), alias: "spring-sale", kind: "landing", weight: 6, deleted: false },
    FunnelSpec { title: Some("Old Yoga Quiz (v1)"), alias: "yoga-quiz-v1", kind: "quiz", weight: 0, deleted: true },
];

struct CampaignSpec {
    name: &'static str,
    objective: &'static str,
    budget_cents: Option<i64>,
    deleted: bool,
}

/// Five campaigns, plus an old one deleted at the source. Names carry a newline, a
/// backslash and non-ASCII text on purpose.
#[rustfmt::skip]
const CAMPAIGNS: [CampaignSpec; 6] = [
    CampaignSpec { name: "US | Web2App | Broad", objective: "OUTCOME_SALES", budget_cents: Some(15_000), deleted: false },
    CampaignSpec { name: "UK+EU | LAL 1% purchasers", objective: "OUTCOME_SALES", budget_cents: Some(9_000), deleted: false },
    CampaignSpec { name: "Retargeting\n30d visitors", objective: "OUTCOME_SALES", budget_cents: None, deleted: false },
    CampaignSpec { name: "Brand — Awareness", objective: "OUTCOME_AWARENESS", budget_cents: Some(2_500), deleted: false },
    CampaignSpec { name: "Tier-2 | Yoga \\ Pilates", objective: "OUTCOME_TRAFFIC", budget_cents: None, deleted: false },
    CampaignSpec { name: "TEST do not use", objective: "OUTCOME_SALES", budget_cents: Some(500), deleted: true },
];

struct AdSpec {
    campaign: usize,
    adset: &'static str,
    name: &'static str,
    share: i64,
    /// Active window as fractions (in percent) of the data range.
    from_pct: i64,
    to_pct: i64,
}

#[rustfmt::skip]
const ADS: [AdSpec; 8] = [
    AdSpec { campaign: 0, adset: "Broad 18-45", name: "UGC video v1", share: 30, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 0, adset: "Broad 18-45", name: "UGC video v2", share: 20, from_pct: 30, to_pct: 100 },
    AdSpec { campaign: 0, adset: "Broad 25-54 F", name: "Static carousel", share: 12, from_pct: 0, to_pct: 70 },
    AdSpec { campaign: 1, adset: "LAL 1%", name: "Testimonial\tcut B", share: 14, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 1, adset: "LAL 1%", name: "Before/after", share: 8, from_pct: 60, to_pct: 100 },
    AdSpec { campaign: 2, adset: "Visitors 30d", name: "Reminder 20% off", share: 7, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 3, adset: "Awareness", name: "Brand film 15s", share: 5, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 4, adset: "Yoga \\ Pilates", name: "Yoga promo", share: 4, from_pct: 0, to_pct: 100 },
];

const EVENT_TYPES: [(&str, u32); 12] = [
    ("screen_view", 30),
    ("button_tapped", 18),
    ("lesson_started", 10),
    ("lesson_progress", 12),
    ("lesson_completed", 7),
    ("video_played", 8),
    ("paywall_viewed", 3),
    ("search", 2),
    ("streak_extended", 3),
    ("notification_opened", 3),
    ("settings_changed", 2),
    ("app_backgrounded", 2),
];

const SCREENS: [&str; 8] = [
    "home", "library", "plan", "lesson", "profile", "paywall", "settings", "progress",
];

/// Search queries typed in the app; some carry characters that JSON and COPY must
/// escape.
const SEARCHES: [&str; 6] = [
    "yoga for back pain",
    "wall pilates",
    "10 min \"morning\" stretch",
    "sleep\tmeditation",
    "C:\\ reset\nplan",
    "Übungen für Anfänger",
];

// ---------------------------------------------------------------------------------
// The generated world
// ---------------------------------------------------------------------------------

/// How a session shows its profile's e-mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EmailForm {
    Missing,
    Empty,
    AsIs,
    Lower,
    Upper,
}

fn email_in_form(email: Option<&str>, form: EmailForm) -> Option<String> {
    let email = email?;
    match form {
        EmailForm::Missing => None,
        EmailForm::Empty => Some(String::new()),
        EmailForm::AsIs => Some(email.to_string()),
        EmailForm::Lower => Some(email.to_ascii_lowercase()),
        EmailForm::Upper => Some(email.to_ascii_uppercase()),
    }
}

struct Profile {
    id: String,
    email: Option<String>,
    customer: String,
    country: usize,
    city: usize,
    /// Indices into `Dataset::sessions` (valid until they are sorted at the end).
    sessions: Vec<usize>,
}

struct Session {
    id: String,
    created: Micros,
    profile: usize,
    email: EmailForm,
    /// Seed of the session's details (funnel, geo, origin, ...), drawn when written.
    key: u64,
    deleted: Option<Micros>,
}

struct FfSub {
    id: String,
    profile_id: String,
    psp_id: Option<String>,
    provider: &'static str,
    status: &'static str,
    sandbox: Option<bool>,
    price: i64,
    currency: String,
    price_usd: Option<i64>,
    plan: usize,
    renews: bool,
    created: Option<Micros>,
    updated: Option<Micros>,
    period_start: Option<Micros>,
    period_end: Option<Micros>,
    cancelled: Option<Micros>,
    deleted: Option<Micros>,
    /// When the charge its `psp_id` names was created (not written: it is the
    /// charge's `created`; kept to place edge cases around it).
    charged_at: Option<Micros>,
}

struct Charge {
    id: String,
    amount: i64,
    refunded: i64,
    currency: String,
    status: &'static str,
    failure: Option<usize>,
    livemode: bool,
    customer: String,
    invoice: Option<String>,
    payment_intent: String,
    description: &'static str,
    metadata: String,
    created: Micros,
    deleted: Option<Micros>,
}

struct StripeSub {
    id: String,
    customer: String,
    status: &'static str,
    created: Micros,
    period_start: Micros,
    period_end: Micros,
    cancel_at_period_end: bool,
    canceled_at: Option<Micros>,
    ended_at: Option<Micros>,
    latest_invoice: Option<String>,
    livemode: bool,
    plan: usize,
    currency: usize,
    amount: i64,
    price_id: String,
    product_id: String,
    profile_id: String,
    ff_sub_id: String,
    deleted: Option<Micros>,
}

struct Activation {
    profile: usize,
    start: Micros,
}

struct Campaign {
    id: String,
    created: Micros,
    updated: Micros,
    deleted: Option<Micros>,
}

struct Ad {
    id: String,
    adset_id: String,
    from_day: i64,
    to_day: i64,
}

/// State of the loading of one table (see [`Dataset::loader`]).
struct Loader {
    rng: Rng,
    lag: Micros,
    full_table: bool,
    sync_started: bool,
    reread_from: Micros,
    seq: i64,
}

/// What a new charge needs; `push_charge` draws the rest (ids, refunds).
#[derive(Clone)]
struct NewCharge {
    customer: String,
    amount: i64,
    currency: String,
    status: &'static str,
    failure: Option<usize>,
    livemode: bool,
    invoice: Option<String>,
    description: &'static str,
    metadata: String,
    created: Micros,
}

impl NewCharge {
    /// A paid live-mode USD charge of a first purchase (fields to override follow).
    fn first(amount: i64, metadata: String, created: Micros) -> NewCharge {
        NewCharge {
            customer: String::new(),
            amount,
            currency: "usd".to_string(),
            status: "succeeded",
            failure: None,
            livemode: true,
            invoice: None,
            description: "Subscription creation",
            metadata,
            created,
        }
    }

    /// Like [`NewCharge::first`], for a renewal invoice.
    fn renewal(amount: i64, metadata: String, created: Micros) -> NewCharge {
        NewCharge {
            description: "Subscription update",
            ..NewCharge::first(amount, metadata, created)
        }
    }
}

/// Facts about one purchase while it is being built.
struct Purchase {
    profile: usize,
    at: Micros,
    /// Session that led to it (for the charge's metadata), if any.
    session: Option<usize>,
    /// Currency imposed on it (so that small data sets have each kind).
    currency: Option<usize>,
}

/// Everything generated except the rows of the two big lazily generated tables (app
/// events and ad statistics), which [`generate_table`] derives on the fly from their
/// own random streams. Build it once with [`Dataset::new`] and stream each table.
///
/// Memory is proportional to the number of sessions (~200 bytes each) and purchases;
/// app events are never held.
pub struct Dataset {
    seed: u64,
    sessions_per_day: u32,
    start_day: i64,
    end_day: i64,
    /// No source record is later than this.
    cutoff: Micros,
    /// When the last sync of every tap started.
    last_sync: Micros,
    funnels: Vec<(String, Micros, Option<Micros>)>,
    profiles: Vec<Profile>,
    sessions: Vec<Session>,
    ff_subs: Vec<FfSub>,
    charges: Vec<Charge>,
    stripe_subs: Vec<StripeSub>,
    activations: Vec<Activation>,
    campaigns: Vec<Campaign>,
    ads: Vec<Ad>,
    /// First day of ad statistics: a few days before the first session.
    ads_first_day: i64,
    account_id: String,
    /// Profiles carrying hand-placed edge cases (kept clear of soft deletions).
    edge_profiles: Vec<usize>,
}

/// Sessions per profile: 1 to 10, mean about 2.4 before the window cuts returns off.
const SESSIONS_PER_PROFILE_W: [u32; 10] = [40, 25, 15, 9, 5, 2, 1, 1, 1, 1];
const MEAN_SESSIONS_PER_PROFILE: f64 = 2.41;
/// Days of profiles started before the window whose later visits fall inside it, so
/// the first days have returning visitors too.
const WARM_UP_DAYS: i64 = 60;

impl Dataset {
    /// Generates everything but the app events and ad statistics rows for `opts`.
    pub fn new(opts: &GenOptions) -> Dataset {
        let end_day = day_number(opts.end);
        let days = i64::from(opts.days);
        let start_day = end_day - days + 1;
        let now = opts.now.and_utc().timestamp_micros();
        // The taps' last sync started 20 minutes ago and saw records up to 30 minutes
        // ago, so every `_sdc_*` time is before `now` and after its record.
        let last_sync = now - 20 * MIN;
        let cutoff = ((end_day + 1) * DAY - MS).min(now - 30 * MIN);
        let mut rng = Rng::derive(opts.seed, S_WORLD, 0);
        let account_id = rng.digits(16);
        let mut data = Dataset {
            seed: opts.seed,
            sessions_per_day: opts.sessions_per_day,
            start_day,
            end_day,
            cutoff,
            last_sync,
            funnels: Vec::new(),
            profiles: Vec::new(),
            sessions: Vec::new(),
            ff_subs: Vec::new(),
            charges: Vec::new(),
            stripe_subs: Vec::new(),
            activations: Vec::new(),
            campaigns: Vec::new(),
            ads: Vec::new(),
            ads_first_day: start_day - 3,
            account_id,
            edge_profiles: Vec::new(),
        };
        data.build_funnels();
        data.build_campaigns();
        if days > 0 {
            data.build_sessions(&mut rng);
            data.build_purchases(&mut rng);
            data.build_activations(&mut rng);
            data.mark_deletions(&mut rng);
            data.add_tie_days(&mut rng);
        }
        data.sessions
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        data.charges
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        // Subscriptions by creation time, nulls last, as FunnelFox's API pages them.
        data.ff_subs.sort_by(|a, b| {
            (a.created.is_none(), a.created, &a.id).cmp(&(b.created.is_none(), b.created, &b.id))
        });
        data.stripe_subs
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        data
    }

    fn in_window_start(&self) -> Micros {
        self.start_day * DAY
    }

    fn build_funnels(&mut self) {
        let mut rng = Rng::derive(self.seed, S_FUNNELS, 0);
        for spec in &FUNNELS {
            let id = rng.id("fnl_", 12);
            let created = floor_to(self.in_window_start() - rng.range(20 * DAY, 400 * DAY), MS);
            let deleted = spec
                .deleted
                .then(|| floor_to(self.in_window_start() + rng.range(DAY, 5 * DAY), MS));
            self.funnels.push((id, created, deleted));
        }
    }

    fn build_campaigns(&mut self) {
        let mut rng = Rng::derive(self.seed, S_CAMPAIGNS, 0);
        for spec in &CAMPAIGNS {
            let id = format!("1202{}", rng.digits(14));
            let created = self.ads_first_day * DAY - rng.range(2 * DAY, 60 * DAY);
            let updated = (created + rng.range(HOUR, 30 * DAY)).min(self.cutoff);
            let deleted = spec
                .deleted
                .then(|| (created + rng.range(DAY, 10 * DAY)).min(self.cutoff));
            self.campaigns.push(Campaign {
                id,
                created: floor_to(created, SEC),
                updated: floor_to(updated, SEC),
                deleted,
            });
        }
        let span = (self.end_day - self.ads_first_day + 1).max(1);
        let mut adsets: Vec<(usize, &str, String)> = Vec::new();
        for spec in &ADS {
            // Ads of the same ad set share its id.
            let adset_id = match adsets
                .iter()
                .find(|(c, n, _)| *c == spec.campaign && *n == spec.adset)
            {
                Some((_, _, id)) => id.clone(),
                None => {
                    let id = format!("1202{}", rng.digits(14));
                    adsets.push((spec.campaign, spec.adset, id.clone()));
                    id
                }
            };
            self.ads.push(Ad {
                id: format!("1202{}", rng.digits(14)),
                adset_id,
                from_day: self.ads_first_day + span * spec.from_pct / 100,
                to_day: self.ads_first_day + span * spec.to_pct / 100
                    - i64::from(spec.to_pct == 100),
            });
        }
    }

    /// A time of day drawn from the hourly rhythm, millisecond precision.
    fn time_of_day(rng: &mut Rng) -> Micros {
        let hour = rng.weighted(&HOURLY) as i64;
        floor_to(hour * HOUR + rng.range(0, HOUR), MS)
    }

    fn new_profile(&mut self, rng: &mut Rng) -> usize {
        let id = rng.id("pro_", 16);
        let email = rng.chance(0.80).then(|| {
            let (first, last, n, domain) = (
                *rng.pick(&FIRST_NAMES),
                *rng.pick(&LAST_NAMES),
                rng.range(1, 999),
                *rng.pick(&EMAIL_DOMAINS),
            );
            // A quarter of people type their address capitalised ("Anna.Smith7@Gmail.com").
            if rng.chance(0.25) {
                format!(
                    "{}.{}{n}@{}",
                    capitalise(first),
                    capitalise(last),
                    capitalise(domain)
                )
            } else {
                format!("{first}.{last}{n}@{domain}")
            }
        });
        let weights: Vec<u32> = COUNTRIES.iter().map(|c| c.weight).collect();
        let country = rng.weighted(&weights);
        let city = rng.below(COUNTRIES[country].cities.len() as u64) as usize;
        let customer = rng.id("cus_", 14);
        self.profiles.push(Profile {
            id,
            email,
            customer,
            country,
            city,
            sessions: Vec::new(),
        });
        self.profiles.len() - 1
    }

    fn push_session(&mut self, rng: &mut Rng, profile: usize, created: Micros) -> usize {
        let form = if self.profiles[profile].email.is_none() {
            EmailForm::Missing
        } else {
            match rng.weighted(&[145, 5, 600, 200, 50]) {
                0 => EmailForm::Missing,
                1 => EmailForm::Empty,
                2 => EmailForm::AsIs,
                3 => EmailForm::Lower,
                _ => EmailForm::Upper,
            }
        };
        let session = Session {
            id: rng.id("ses_", 16),
            created,
            profile,
            email: form,
            key: rng.next_u64(),
            deleted: None,
        };
        self.sessions.push(session);
        let idx = self.sessions.len() - 1;
        self.profiles[profile].sessions.push(idx);
        idx
    }

    fn build_sessions(&mut self, rng: &mut Rng) {
        let days = self.end_day - self.start_day + 1;
        let new_per_day = f64::from(self.sessions_per_day) / MEAN_SESSIONS_PER_PROFILE;
        let mean_weekday = WEEKDAY_PCT.iter().sum::<i64>() as f64 / 7.0;
        for d in -WARM_UP_DAYS..days {
            let day = self.start_day + d;
            // Weekly rhythm, a mild growth trend over the window, day-to-day noise.
            let weekday = WEEKDAY_PCT[weekday(day)] as f64 / mean_weekday;
            let trend = 0.85 + 0.3 * (d.max(0) as f64 + 0.5) / days as f64;
            let noise = 0.9 + 0.2 * rng.unit();
            let expected = new_per_day * weekday * trend * noise;
            let mut count = expected as i64;
            if rng.unit() < expected - count as f64 {
                count += 1;
            }
            for _ in 0..count {
                let first = day * DAY + Self::time_of_day(rng);
                let visits = rng.weighted(&SESSIONS_PER_PROFILE_W) + 1;
                let mut times = vec![first];
                let mut t = first;
                for _ in 1..visits {
                    t = if rng.chance(0.4) {
                        // Back within the same sitting or the same evening.
                        floor_to(t + rng.range(5 * MIN, 6 * HOUR), MS)
                    } else {
                        let later = t.div_euclid(DAY) + rng.range(1, 22);
                        later * DAY + Self::time_of_day(rng)
                    };
                    times.push(t);
                }
                let in_window: Vec<Micros> = times
                    .into_iter()
                    .filter(|&t| t >= self.in_window_start() && t <= self.cutoff)
                    .collect();
                if in_window.is_empty() {
                    continue;
                }
                let p = self.new_profile(rng);
                for t in in_window {
                    self.push_session(rng, p, t);
                }
            }
        }
        // A few profiles whose ids differ from another profile's only in letter case:
        // different people, so joins must compare ids exactly.
        let n = self.profiles.len();
        for k in 0..n.min(4) {
            let (a, b) = (k * n / 4, k * n / 4 + 1);
            if b < n {
                if let Some(flipped) = flip_first_letter(&self.profiles[a].id) {
                    self.profiles[b].id = flipped;
                }
            }
        }
    }

    /// Price of a plan in a currency's minor unit, with "psychological" endings.
    fn price_in(plan: usize, currency: usize) -> i64 {
        let usd = PLANS[plan].usd_cents as f64 / 100.0;
        let cur = &CURRENCIES[currency];
        let major = usd * cur.per_usd;
        match cur.decimals {
            0 => ((major / 10.0).round() as i64 * 10 - 20).max(100),
            3 => (major * 20.0).round() as i64 * 50,
            _ => major.round() as i64 * 100 - 1,
        }
    }

    /// FunnelFox's conversion to US cents of a price in a currency's minor unit.
    fn to_usd_cents(price: i64, currency: usize) -> i64 {
        let cur = &CURRENCIES[currency];
        let major = price as f64 / 10f64.powi(cur.decimals as i32);
        (major / cur.per_usd * 100.0).round() as i64
    }

    fn charge_currency_text(rng: &mut Rng, currency: usize) -> String {
        let code = CURRENCIES[currency].code;
        // A few charges come from an integration that upper-cases the code.
        if rng.chance(0.04) {
            code.to_ascii_uppercase()
        } else {
            code.to_string()
        }
    }

    /// Adds a charge (drawing its ids and, for a few paid ones, a refund) and
    /// returns its index.
    fn push_charge(&mut self, rng: &mut Rng, c: NewCharge) -> usize {
        let NewCharge {
            customer,
            amount,
            currency,
            status,
            failure,
            livemode,
            invoice,
            description,
            metadata,
            created,
        } = c;
        // A few paid charges are refunded, most in full. (Refunds do not change any
        // mart: revenue is gross.)
        let amount_refunded = if status == "succeeded" && rng.chance(0.025) {
            if rng.chance(0.2) {
                amount / 2
            } else {
                amount
            }
        } else {
            0
        };
        self.charges.push(Charge {
            id: rng.id("ch_3", 23),
            amount,
            refunded: amount_refunded,
            currency,
            status,
            failure,
            livemode,
            customer,
            invoice,
            payment_intent: rng.id("pi_3", 23),
            description,
            metadata,
            created,
            deleted: None,
        });
        self.charges.len() - 1
    }

    fn failure_code(rng: &mut Rng, renewal: bool) -> Option<usize> {
        // A few failed charges carry no code at all.
        if rng.chance(0.04) {
            return None;
        }
        let weights: Vec<u32> = FAILURES
            .iter()
            .map(|f| if renewal { f.3 } else { f.2 })
            .collect();
        Some(rng.weighted(&weights))
    }

    fn build_purchases(&mut self, rng: &mut Rng) {
        let mut purchases = Vec::new();
        for p in 0..self.profiles.len() {
            let sessions = self.profiles[p].sessions.clone();
            if sessions.is_empty() {
                continue;
            }
            // People who come back are more likely to buy.
            let prob = 0.064 * (1.0 + 0.35 * (sessions.len() as f64 - 1.0)).min(3.0);
            if !rng.chance(prob) {
                continue;
            }
            if rng.chance(0.012) {
                // Bought before ever visiting a funnel (e.g. in the app, or the
                // session was not tracked): no acquisition session.
                let first = self.sessions[sessions[0]].created;
                let at = floor_to(first - rng.range(30 * MIN, 3 * DAY), SEC);
                purchases.push(Purchase {
                    profile: p,
                    at,
                    session: None,
                    currency: None,
                });
                continue;
            }
            let anchor = if rng.chance(0.6) {
                *sessions.last().unwrap_or(&sessions[0])
            } else {
                *rng.pick(&sessions)
            };
            let delay = match rng.weighted(&[55, 25, 20]) {
                0 => rng.range(MIN, 30 * MIN),
                1 => rng.range(30 * MIN, 12 * HOUR),
                _ => rng.range(12 * HOUR, 6 * DAY),
            };
            let at = floor_to(self.sessions[anchor].created + delay, SEC);
            if at <= self.cutoff {
                purchases.push(Purchase {
                    profile: p,
                    at,
                    session: Some(anchor),
                    currency: None,
                });
            }
        }
        // Two buyers with no session at all in the data.
        for _ in 0..2 {
            if purchases.is_empty() {
                break;
            }
            let p = self.new_profile(rng);
            let at = floor_to(
                self.in_window_start()
                    + rng.range(0, (self.cutoff - self.in_window_start()).max(1)),
                SEC,
            );
            purchases.push(Purchase {
                profile: p,
                at,
                session: None,
                currency: None,
            });
        }
        // Small data sets still get a zero-decimal and a three-decimal currency.
        let n = purchases.len();
        for (k, currency) in [(1, JPY), (2, KWD), (3, JPY), (4, KWD)] {
            if let Some(p) = purchases.get_mut(n * k / 5) {
                p.currency = Some(currency);
            }
        }
        let mut new_subs = Vec::new();
        for purchase in &purchases {
            if let Some(ff) = self.purchase(rng, purchase) {
                new_subs.push(ff);
            }
        }
        self.add_duplicates(rng, &new_subs);
        self.add_session_edges(rng, &new_subs);
    }

    /// Creates the FunnelFox subscription, Stripe charge(s), Stripe subscription and
    /// renewals of one purchase. Returns the subscription's index when it is a real,
    /// paid Stripe subscription (a "new subscription" of the marts).
    fn purchase(&mut self, rng: &mut Rng, purchase: &Purchase) -> Option<usize> {
        let profile = &self.profiles[purchase.profile];
        let profile_id = profile.id.clone();
        let customer = profile.customer.clone();
        let home_currency = COUNTRIES[profile.country].currency;
        let plan = rng.weighted(&PLANS.iter().map(|p| p.weight).collect::<Vec<_>>());
        // Most pay in USD whatever the country; the rest in their local currency.
        let currency = if let Some(c) = purchase.currency {
            c
        } else if home_currency != USD && rng.chance(0.45) {
            home_currency
        } else if rng.chance(0.015) {
            *rng.pick(&[EUR, GBP, JPY, KWD])
        } else {
            USD
        };
        let price = Self::price_in(plan, currency);
        let price_usd = if currency == USD {
            Some(price)
        } else if rng.chance(0.12) {
            None // FunnelFox had no rate for that day
        } else {
            Some(Self::to_usd_cents(price, currency))
        };
        let ff_currency = if rng.chance(0.7) {
            CURRENCIES[currency].code.to_ascii_uppercase()
        } else {
            CURRENCIES[currency].code.to_string()
        };
        let ff_id = rng.id("fsub_", 16);
        let at = purchase.at;
        let ff_created = floor_to(at - rng.range(2 * SEC, 40 * SEC), MS);
        let mut ff = FfSub {
            id: ff_id.clone(),
            profile_id: profile_id.clone(),
            psp_id: None,
            provider: "stripe",
            status: "active",
            sandbox: if rng.chance(0.3) { None } else { Some(false) },
            price,
            currency: ff_currency,
            price_usd,
            plan,
            // A fifth of yearly plans are bought without auto-renewal.
            renews: plan != 3 || rng.chance(0.8),
            created: Some(ff_created),
            updated: Some(floor_to(at + rng.range(SEC, 20 * SEC), MS)),
            period_start: Some(at),
            charged_at: None,
            period_end: Some(self.add_interval(at, plan, 1)),
            cancelled: None,
            deleted: None,
        };
        let mut metadata = String::new();
        {
            let mut o = JsonObject::new(&mut metadata);
            o.str("profile_id", &profile_id)
                .str("funnelfox_subscription_id", &ff_id);
            if let Some(s) = purchase.session {
                o.str("session_id", &self.sessions[s].id);
            }
            o.close();
        }

        if rng.chance(0.03) {
            // Paid with PayPal: no Stripe charge.
            ff.provider = "paypal";
            let mut id = String::from("PAYID-");
            rng.push_chars(&mut id, UPPER_ALNUM, 24);
            ff.psp_id = Some(id);
            ff.charged_at = Some(at);
            self.ff_subs.push(ff);
            return None;
        }
        if rng.chance(0.02) {
            // A test purchase in Stripe's test mode.
            ff.sandbox = Some(true);
            let test_customer = rng.id("cus_", 14);
            let cur = Self::charge_currency_text(rng, currency);
            let invoice = rng.id("in_1", 23);
            let c = self.push_charge(
                rng,
                NewCharge {
                    customer: test_customer,
                    currency: cur,
                    livemode: false,
                    invoice: Some(invoice),
                    ..NewCharge::first(price, metadata, at)
                },
            );
            ff.psp_id = Some(self.charges[c].id.clone());
            ff.renews = false;
            self.ff_subs.push(ff);
            return None;
        }

        let cur_text = Self::charge_currency_text(rng, currency);
        let invoice = rng.id("in_1", 23);
        let base = NewCharge {
            customer: customer.clone(),
            currency: cur_text.clone(),
            invoice: Some(invoice.clone()),
            ..NewCharge::first(price, metadata, at)
        };
        let outcome = rng.weighted(&[948, 40, 12]);
        let mut paid_at = at;
        let charge = match outcome {
            0 => self.push_charge(rng, base),
            1 => {
                let failure = Self::failure_code(rng, false);
                let failed = NewCharge {
                    status: "failed",
                    failure,
                    ..base.clone()
                };
                let failed = self.push_charge(rng, failed);
                if rng.chance(0.5) {
                    // Retried with another card a few minutes later: the subscription
                    // points at the successful charge; the failed one stays orphan.
                    paid_at = floor_to(at + rng.range(2 * MIN, 25 * MIN), SEC);
                    if paid_at > self.cutoff {
                        paid_at = at;
                        failed
                    } else {
                        self.push_charge(
                            rng,
                            NewCharge {
                                created: paid_at,
                                ..base
                            },
                        )
                    }
                } else {
                    failed
                }
            }
            _ => self.push_charge(
                rng,
                NewCharge {
                    status: "pending",
                    ..base
                },
            ),
        };
        let status = self.charges[charge].status;
        ff.psp_id = Some(self.charges[charge].id.clone());
        ff.period_start = Some(paid_at);
        ff.charged_at = Some(paid_at);
        ff.period_end = Some(self.add_interval(paid_at, plan, 1));
        let mut stripe = StripeSub {
            id: rng.id("sub_1", 23),
            customer: customer.clone(),
            status: "active",
            created: floor_to(at - rng.range(SEC, 4 * SEC), SEC),
            period_start: paid_at,
            period_end: self.add_interval(paid_at, plan, 1),
            cancel_at_period_end: false,
            canceled_at: None,
            ended_at: None,
            latest_invoice: Some(invoice),
            livemode: true,
            plan,
            currency,
            amount: price,
            price_id: Rng::derive(self.seed, S_WORLD, 1_000 + (plan * 10 + currency) as u64)
                .id("price_1", 23),
            product_id: Rng::derive(self.seed, S_WORLD, 2_000 + plan as u64).id("prod_", 14),
            profile_id: profile_id.clone(),
            ff_sub_id: ff_id.clone(),
            deleted: None,
        };
        match status {
            "failed" => {
                ff.status = "unpaid";
                stripe.status = "incomplete_expired";
                stripe.ended_at = Some(floor_to(at + DAY, SEC).min(self.cutoff));
            }
            "pending" => {
                ff.status = "created";
                stripe.status = "incomplete";
            }
            _ => self.renew(rng, &mut ff, &mut stripe, &cur_text),
        }
        let paid = status == "succeeded";
        let idx = self.ff_subs.len();
        self.ff_subs.push(ff);
        self.stripe_subs.push(stripe);
        paid.then_some(idx)
    }

    /// `t` plus `n` billing periods of `plan`.
    fn add_interval(&self, t: Micros, plan: usize, n: i64) -> Micros {
        let p = &PLANS[plan];
        match p.interval {
            "week" => t + 7 * DAY * p.count * n,
            "year" => add_months(t, 12 * p.count * n),
            _ => add_months(t, p.count * n),
        }
    }

    /// Renewal charges (which no FunnelFox subscription points at) until the
    /// subscription churns, fails to renew, or the data ends.
    fn renew(&mut self, rng: &mut Rng, ff: &mut FfSub, stripe: &mut StripeSub, currency: &str) {
        let plan = ff.plan;
        let customer = stripe.customer.clone();
        let mut start = stripe.period_start;
        let mut end = stripe.period_end;
        loop {
            // Decides during each period whether the user cancels before it renews.
            if !ff.renews || rng.chance(0.16) {
                let at = floor_to(start + rng.range(HOUR, (end - start).max(HOUR + 1)), MS);
                if at <= self.cutoff {
                    ff.status = if end <= self.cutoff {
                        "expired"
                    } else {
                        "cancelled"
                    };
                    ff.cancelled = Some(at);
                    ff.updated = Some(at.max(ff.updated.unwrap_or(at)));
                    stripe.cancel_at_period_end = end > self.cutoff;
                    stripe.canceled_at = Some(floor_to(at, SEC));
                    if end <= self.cutoff {
                        stripe.status = "canceled";
                        stripe.ended_at = Some(floor_to(end, SEC));
                    }
                }
                break;
            }
            let at = floor_to(end + rng.range(0, 3 * HOUR), SEC);
            if at > self.cutoff {
                break;
            }
            let invoice = rng.id("in_1", 23);
            let mut meta = String::new();
            JsonObject::new(&mut meta)
                .str("subscription", &stripe.id)
                .close();
            let outcome = rng.weighted(&[947, 45, 8]);
            let (status, failure) = match outcome {
                0 => ("succeeded", None),
                1 => ("failed", Self::failure_code(rng, true)),
                _ => ("pending", None),
            };
            let renewal = NewCharge {
                customer: customer.clone(),
                currency: currency.to_string(),
                status,
                failure,
                invoice: Some(invoice.clone()),
                ..NewCharge::renewal(ff.price, meta, at)
            };
            self.push_charge(rng, renewal);
            stripe.latest_invoice = Some(invoice);
            if status != "succeeded" {
                ff.status = "unpaid";
                ff.updated = Some(floor_to(at + rng.range(SEC, MIN), MS));
                stripe.status = "past_due";
                break;
            }
            start = end;
            end = self.add_interval(end, plan, 1);
            ff.period_start = Some(start);
            ff.period_end = Some(end);
            ff.updated = Some(floor_to(at + rng.range(SEC, MIN), MS));
            stripe.period_start = start;
            stripe.period_end = end;
        }
    }

    /// About 1% of paid subscriptions get a second FunnelFox row pointing at the same
    /// charge, in every flavour the marts' duplicate rule must handle.
    fn add_duplicates(&mut self, rng: &mut Rng, new_subs: &[usize]) {
        let want = (new_subs.len() / 100).max(5).min(new_subs.len());
        for k in 0..want {
            let src = new_subs[k * new_subs.len() / want.max(1)];
            if let Some(p) = self.profile_of_sub(src) {
                self.edge_profiles.push(p);
            }
            let orig = &self.ff_subs[src];
            let created = orig.created.unwrap_or(0);
            let (id, dup_created, sandbox) = match k % 5 {
                // Later by seconds: the original is the new subscription.
                0 => (
                    rng.id("fsub_", 16),
                    Some(created + rng.range(SEC, 90 * SEC)),
                    Some(false),
                ),
                // Same instant, id differing only in letter case: bytes decide.
                1 => (
                    flip_first_letter(&orig.id).unwrap_or_else(|| rng.id("fsub_", 16)),
                    Some(created),
                    None,
                ),
                // Null created_at sorts after every value.
                2 => (rng.id("fsub_", 16), None, Some(false)),
                // A sandbox row earlier than the real one: not a candidate at all.
                3 => (
                    rng.id("fsub_", 16),
                    Some(created - rng.range(SEC, 30 * SEC)),
                    Some(true),
                ),
                // Same instant, id differing only in punctuation ('-' vs '_').
                _ => (orig.id.replacen('_', "-", 1), Some(created), Some(false)),
            };
            let dup = FfSub {
                id,
                profile_id: orig.profile_id.clone(),
                psp_id: orig.psp_id.clone(),
                provider: orig.provider,
                status: orig.status,
                sandbox,
                price: orig.price,
                currency: orig.currency.clone(),
                price_usd: orig.price_usd,
                plan: orig.plan,
                renews: orig.renews,
                created: dup_created,
                updated: orig.updated,
                period_start: orig.period_start,
                charged_at: orig.charged_at,
                period_end: orig.period_end,
                cancelled: orig.cancelled,
                deleted: None,
            };
            self.ff_subs.push(dup);
        }
    }

    /// The latest session of `profile` at or before `t` (by created, then id bytes).
    fn acquisition_session(&self, profile: usize, t: Micros) -> Option<usize> {
        self.profiles[profile]
            .sessions
            .iter()
            .copied()
            .filter(|&s| self.sessions[s].created <= t)
            .max_by(|&a, &b| {
                (self.sessions[a].created, &self.sessions[a].id)
                    .cmp(&(self.sessions[b].created, &self.sessions[b].id))
            })
    }

    fn profile_of_sub(&self, ff: usize) -> Option<usize> {
        // Profile ids are unique (the case-flipped ones differ by bytes).
        let id = &self.ff_subs[ff].profile_id;
        self.profiles.iter().position(|p| &p.id == id)
    }

    /// Ties that only the marts' exact rules resolve: twin sessions at the same
    /// instant whose ids differ only in case or punctuation, and sessions at exactly
    /// the charge's instant (included: "at or before") or one microsecond later
    /// (excluded).
    fn add_session_edges(&mut self, rng: &mut Rng, new_subs: &[usize]) {
        let n = new_subs.len();
        // Visit the paid subscriptions in a shuffled order and give each edge case a
        // profile of its own (also not one that got a duplicate subscription).
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut order = order.into_iter();
        let twins = (n / 50).max(3);
        let mut made = 0;
        while made < twins {
            let Some(ff) = order.next().map(|i| new_subs[i]) else {
                break;
            };
            let (Some(p), Some(t)) = (self.profile_of_sub(ff), self.ff_subs[ff].charged_at) else {
                continue;
            };
            if self.edge_profiles.contains(&p) {
                continue;
            }
            let Some(acq) = self.acquisition_session(p, t) else {
                continue;
            };
            let base = self.sessions[acq].id.clone();
            let twin_id = if made % 2 == 0 {
                flip_first_letter(&base)
            } else {
                Some(base.replacen('_', "-", 1))
            };
            if let Some(id) = twin_id {
                let created = self.sessions[acq].created;
                let s = self.push_session(rng, p, created);
                self.sessions[s].id = id;
                self.edge_profiles.push(p);
                made += 1;
            }
        }
        let mut made = 0;
        while made < 3 {
            let Some(ff) = order.next().map(|i| new_subs[i]) else {
                break;
            };
            let (Some(p), Some(t)) = (self.profile_of_sub(ff), self.ff_subs[ff].charged_at) else {
                continue;
            };
            if self.edge_profiles.contains(&p) {
                continue;
            }
            let s = self.push_session(rng, p, t);
            if made == 2 {
                // One microsecond after the charge: not the acquisition session.
                self.sessions[s].created = t + 1;
            }
            self.edge_profiles.push(p);
            made += 1;
        }
    }

    /// Days where two failure codes share the top count (the marts break the tie
    /// alphabetically), at least two pending charges, and one day whose only failed
    /// charge has no code. Runs
    /// after the soft deletions and counts live charges only, so the ties hold
    /// among the rows the marts see.
    fn add_tie_days(&mut self, rng: &mut Rng) {
        let days = self.end_day - self.start_day + 1;
        if days < 8 || self.charges.is_empty() {
            return;
        }
        let customers: Vec<String> = self.charges.iter().map(|c| c.customer.clone()).collect();
        let counts_on = |charges: &[Charge], day: i64| {
            let mut counts = [0i64; FAILURES.len()];
            for c in charges {
                if c.status == "failed" && c.deleted.is_none() && c.created.div_euclid(DAY) == day {
                    if let Some(f) = c.failure {
                        counts[f] += 1;
                    }
                }
            }
            counts
        };
        let mut used = Vec::new();
        for k in 1..=3 {
            // The first day from a quarter, a half and three quarters of the window
            // on that has coded failures, else that day itself.
            let target = self.start_day + days * k / 4;
            let day = (target..self.end_day)
                .find(|&d| !used.contains(&d) && counts_on(&self.charges, d).iter().any(|&n| n > 0))
                .unwrap_or(target);
            used.push(day);
            let counts = counts_on(&self.charges, day);
            let top = counts.iter().copied().max().unwrap_or(0);
            let mut add: Vec<(usize, i64)> = Vec::new();
            if top == 0 {
                // Nothing yet: one failure each of two codes that are not first in
                // the alphabet, so the tie-break is visible.
                add.push((1, 1));
                add.push((4, 1));
            } else {
                let leader = counts.iter().position(|&n| n == top).unwrap_or(0);
                // Prefer a partner that sorts before the leader: the tie then changes
                // the answer compared to "the first code seen with the top count".
                let partner = (0..FAILURES.len())
                    .filter(|&f| f != leader)
                    .max_by_key(|&f| (FAILURES[f].0 < FAILURES[leader].0, counts[f]))
                    .unwrap_or(0);
                add.push((partner, top - counts[partner]));
            }
            for (code, n) in add {
                for _ in 0..n {
                    let customer = rng.pick(&customers).clone();
                    let at = floor_to(day * DAY + rng.range(0, DAY), SEC).min(self.cutoff);
                    let invoice = rng.id("in_1", 23);
                    let charge = NewCharge {
                        customer,
                        status: "failed",
                        failure: Some(code),
                        invoice: Some(invoice),
                        ..NewCharge::renewal(1999, "{}".to_string(), at)
                    };
                    self.push_charge(rng, charge);
                }
            }
        }
        // Pending charges are rare (~1%): make sure a small data set has a couple, as
        // renewals still being processed (no subscription points at them).
        let pending = self
            .charges
            .iter()
            .filter(|c| c.status == "pending")
            .count();
        for k in pending..2 {
            let day = self.end_day - 1 - k as i64;
            let customer = rng.pick(&customers).clone();
            let at = floor_to(day * DAY + rng.range(0, DAY), SEC).min(self.cutoff);
            let charge = NewCharge {
                customer,
                status: "pending",
                ..NewCharge::renewal(1999, "{}".to_string(), at)
            };
            self.push_charge(rng, charge);
        }
        // A day with failed charges but no known code: find one without failures.
        for d in (0..days).rev().skip(2) {
            let day = self.start_day + d;
            if !self
                .charges
                .iter()
                .any(|c| c.status == "failed" && c.created.div_euclid(DAY) == day)
            {
                let customer = rng.pick(&customers).clone();
                let at = floor_to(day * DAY + rng.range(0, DAY), SEC).min(self.cutoff);
                let charge = NewCharge {
                    customer,
                    status: "failed",
                    ..NewCharge::renewal(699, "{}".to_string(), at)
                };
                self.push_charge(rng, charge);
                break;
            }
        }
    }

    fn build_activations(&mut self, rng: &mut Rng) {
        let mut bought_at: Vec<Option<Micros>> = vec![None; self.profiles.len()];
        let ids: HashMap<&str, usize> = self
            .profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        for ff in &self.ff_subs {
            if ff.sandbox != Some(true) {
                if let (Some(&p), Some(t)) = (ids.get(ff.profile_id.as_str()), ff.charged_at) {
                    bought_at[p] = Some(bought_at[p].map_or(t, |b: Micros| b.min(t)));
                }
            }
        }
        for (p, bought) in bought_at.iter().enumerate() {
            let sessions = &self.profiles[p].sessions;
            let start = match bought {
                Some(t) if rng.chance(0.42) => {
                    if rng.chance(0.1) && !sessions.is_empty() {
                        // Used the app before the funnel visit.
                        self.sessions[sessions[0]].created - rng.range(HOUR, 5 * DAY)
                    } else {
                        t + rng.range(2 * MIN, 2 * DAY)
                    }
                }
                None if !sessions.is_empty() && rng.chance(0.05) => {
                    let s = self.sessions[*rng.pick(sessions)].created;
                    match rng.weighted(&[8, 1, 1]) {
                        0 => s + rng.range(5 * MIN, 3 * DAY),
                        1 => s - rng.range(HOUR, 5 * DAY), // before the session
                        _ => s,                            // exactly at the session
                    }
                }
                _ => continue,
            };
            let start = floor_to(start, MS);
            if start <= self.cutoff {
                self.activations.push(Activation { profile: p, start });
            }
        }
    }

    /// Soft deletions: about 0.5% of the rows of each table, at least two where the
    /// table has rows, plus one acquisition session, one paid charge and one paid
    /// subscription so that every "live rows only" rule changes a mart.
    fn mark_deletions(&mut self, rng: &mut Rng) {
        let cutoff = self.cutoff;
        let when = |rng: &mut Rng, t: Micros| -> Micros {
            floor_to((t + rng.range(HOUR, 10 * DAY)).min(cutoff), MS)
        };
        // The rows of the profiles that carry hand-placed edge cases stay live:
        // deleting one would quietly remove the case.
        let protected: HashSet<String> = self
            .edge_profiles
            .iter()
            .map(|&p| self.profiles[p].id.clone())
            .collect();
        let protected_charges: HashSet<String> = self
            .ff_subs
            .iter()
            .filter(|f| protected.contains(&f.profile_id))
            .filter_map(|f| f.psp_id.clone())
            .collect();
        let n = self.sessions.len();
        for i in 0..n {
            let keep = protected.contains(&self.profiles[self.sessions[i].profile].id);
            if (rng.chance(0.005) || i == n / 3 || i == 2 * n / 3) && !keep {
                self.sessions[i].deleted = Some(when(rng, self.sessions[i].created));
            }
        }
        let n = self.charges.len();
        for i in 0..n {
            let keep = protected_charges.contains(&self.charges[i].id);
            if (rng.chance(0.005) || i == n / 5 || i == 4 * n / 5) && !keep {
                self.charges[i].deleted = Some(when(rng, self.charges[i].created));
            }
        }
        let n = self.ff_subs.len();
        for i in 0..n {
            let keep = protected.contains(&self.ff_subs[i].profile_id);
            if (rng.chance(0.005) || i == n / 4 || i == 3 * n / 4) && !keep {
                let t = self.ff_subs[i].created.unwrap_or(self.in_window_start());
                self.ff_subs[i].deleted = Some(when(rng, t));
            }
        }
        let n = self.stripe_subs.len();
        for i in 0..n {
            if rng.chance(0.005) || i == n / 2 || i + 1 == n {
                self.stripe_subs[i].deleted = Some(when(rng, self.stripe_subs[i].created));
            }
        }
        let paid: Vec<usize> = (0..self.ff_subs.len())
            .filter(|&i| {
                let f = &self.ff_subs[i];
                f.provider == "stripe"
                    && f.sandbox != Some(true)
                    && f.status != "unpaid"
                    && f.status != "created"
                    && f.deleted.is_none()
                    && !protected.contains(&f.profile_id)
            })
            .collect();
        // The acquisition session of a paid subscription (the mart must fall back to
        // the previous live session, or to none).
        if let Some(&ff) = paid.get(paid.len() / 7) {
            if let (Some(p), Some(t)) = (self.profile_of_sub(ff), self.ff_subs[ff].charged_at) {
                if let Some(s) = self.acquisition_session(p, t) {
                    self.sessions[s].deleted = Some(when(rng, self.sessions[s].created));
                }
            }
        }
        // The first charge of a paid subscription.
        if let Some(&ff) = paid.get(paid.len() / 3) {
            if let Some(psp) = self.ff_subs[ff].psp_id.clone() {
                if let Some(c) = self.charges.iter().position(|c| c.id == psp) {
                    self.charges[c].deleted = Some(when(rng, self.charges[c].created));
                }
            }
        }
        // A paid subscription itself.
        if let Some(&ff) = paid.get(paid.len() / 2) {
            let t = self.ff_subs[ff].created.unwrap_or(self.in_window_start());
            self.ff_subs[ff].deleted = Some(when(rng, t));
        }
    }

    // -----------------------------------------------------------------------------
    // Loader metadata
    // -----------------------------------------------------------------------------

    /// The loading of one table: `id` picks its random stream; `lag` is how long
    /// after the hour its syncs start; a full-table tap rewrites every row at each
    /// sync; `newest` is the table's latest record change (see [`Dataset::write_sdc`]).
    fn loader(
        &self,
        id: u64,
        lag: Micros,
        full_table: bool,
        sync_started: bool,
        newest: Option<Micros>,
    ) -> Loader {
        Loader {
            rng: Rng::derive(self.seed, S_LOADER, id),
            lag,
            full_table,
            sync_started,
            reread_from: (self.last_sync - DAY).min(newest.unwrap_or(Micros::MAX)),
            // Singer-SDK style: milliseconds of the load, then a counter.
            seq: (self.last_sync / MS) * 1_000,
        }
    }

    /// Writes the seven `_sdc_*` fields of a row whose source record last changed at
    /// `t` (or was deleted at `deleted`) and ends the row. Incremental taps run
    /// hourly and extract a record at the first sync after it changed; the last sync
    /// (which started at `last_sync`) also re-reads a one-day lookback window and,
    /// its bookmark being inclusive, the table's newest record, so every table with
    /// rows has a fresh `_sdc_batched_at`. Full-table taps rewrite every row at each
    /// sync and carry a table version.
    fn write_sdc<F: FnMut(&str)>(
        &self,
        w: &mut CopyWriter<F>,
        l: &mut Loader,
        t: Micros,
        deleted: Option<Micros>,
    ) {
        let changed = deleted.unwrap_or(t);
        let natural = floor_to(changed, HOUR) + HOUR + l.lag;
        let sync = if l.full_table || natural > self.last_sync || changed >= l.reread_from {
            self.last_sync
        } else {
            natural
        };
        let extracted = sync + l.rng.range(20 * SEC, 6 * MIN);
        let received = extracted + l.rng.range(50 * MS, 2 * SEC);
        let batched = received + l.rng.range(SEC, 30 * SEC);
        w.ts(extracted);
        w.ts(received);
        w.ts(batched);
        w.opt_ts(deleted);
        w.int(l.seq);
        l.seq += 1;
        w.opt_int(l.full_table.then_some(self.last_sync / MS));
        w.opt_int(l.sync_started.then_some(sync / MS));
        w.end_row();
    }

    // -----------------------------------------------------------------------------
    // Writers
    // -----------------------------------------------------------------------------

    fn write_funnels<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let mut loader = self.loader(1, 5 * MIN, true, true, None);
        for ((id, created, deleted), spec) in self.funnels.iter().zip(&FUNNELS) {
            w.text(id);
            w.opt_text(spec.title);
            w.text(spec.alias);
            w.text(spec.kind);
            w.ts(*created);
            self.write_sdc(w, &mut loader, *created, *deleted);
        }
    }

    fn write_sessions<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .sessions
            .iter()
            .map(|s| s.deleted.unwrap_or(s.created))
            .max();
        let mut loader = self.loader(2, 3 * MIN, false, true, newest);
        let live_funnel_w: Vec<u32> = FUNNELS.iter().map(|f| f.weight).collect();
        let country_w: Vec<u32> = COUNTRIES.iter().map(|c| c.weight).collect();
        let deleted_funnel = FUNNELS.iter().position(|f| f.deleted);
        let mut buf = String::new();
        for s in &self.sessions {
            let mut rng = Rng::derive(self.seed, S_SESSION, s.key);
            let profile = &self.profiles[s.profile];
            w.text(&s.id);
            w.ts(s.created);
            // Funnel: a few sessions without one; the old (deleted) funnel still
            // gets traffic during the first days.
            let funnel = if rng.chance(0.005) {
                None
            } else if deleted_funnel.is_some()
                && s.created < (self.start_day + 5) * DAY
                && rng.chance(0.15)
            {
                deleted_funnel
            } else {
                Some(rng.weighted(&live_funnel_w))
            };
            w.opt_text(funnel.map(|f| self.funnels[f].0.as_str()));
            w.opt_int(funnel.map(|_| rng.range(1, 6)));
            w.text(&profile.id);
            let email = email_in_form(profile.email.as_deref(), s.email);
            w.opt_text(email.as_deref());
            // Geo: usually the profile's home, sometimes elsewhere (travel, VPN).
            let (country, city) = if rng.chance(0.93) {
                (profile.country, profile.city)
            } else {
                let c = rng.weighted(&country_w);
                (c, rng.below(COUNTRIES[c].cities.len() as u64) as usize)
            };
            let c = &COUNTRIES[country];
            if rng.chance(0.01) {
                w.null();
                w.null();
                w.null();
            } else {
                w.text(c.code);
                w.opt_text((!rng.chance(0.05)).then_some(c.cities[city]));
                if rng.chance(0.1) {
                    w.null();
                } else {
                    buf.clear();
                    for ch in c.postal.chars() {
                        match ch {
                            '9' => rng.push_chars(&mut buf, DIGITS, 1),
                            'A' => rng.push_chars(&mut buf, &UPPER_ALNUM[10..], 1),
                            other => buf.push(other),
                        }
                    }
                    w.text(&buf);
                }
            }
            buf.clear();
            if rng.chance(0.04) {
                let _ = write!(
                    buf,
                    "2a02:{:x}:{:x}::{:x}",
                    rng.below(0xFFFF),
                    rng.below(0xFFFF),
                    rng.below(0xFFFF)
                );
            } else {
                let first = rng.range(11, 224);
                let first = if first == 127 { 128 } else { first };
                let _ = write!(
                    buf,
                    "{first}.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.range(1, 255)
                );
            }
            w.text(&buf);
            // Origin: a landing URL, mostly from the Facebook ads with utm tags.
            let alias = funnel.map_or("start", |f| FUNNELS[f].alias);
            buf.clear();
            let _ = write!(buf, "https://get.reluvia.app/{alias}");
            match rng.weighted(&[60, 12, 8, 15, 5]) {
                0 => {
                    let ad = rng.below(ADS.len() as u64) as usize;
                    let _ = write!(
                        buf,
                        "?utm_source=facebook&utm_medium=paid&utm_campaign={}&utm_content={}&fbclid=IwAR{}",
                        self.campaigns[ADS[ad].campaign].id,
                        self.ads[ad].id,
                        rng.id("", 20)
                    );
                }
                1 => buf.push_str("?utm_source=google&utm_medium=cpc&utm_campaign=brand"),
                2 => buf.push_str("?utm_source=tiktok&utm_medium=paid&utm_campaign=Spring%20Sale"),
                3 => {}
                _ => buf.clear(),
            }
            w.opt_text((!buf.is_empty()).then_some(buf.as_str()));
            w.opt_text((!rng.chance(0.02)).then(|| USER_AGENTS[rng.weighted(&USER_AGENT_WEIGHTS)]));
            self.write_sdc(w, &mut loader, s.created, s.deleted);
        }
    }

    fn write_ff_subscriptions<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .ff_subs
            .iter()
            .filter_map(|s| s.deleted.or(s.updated).or(s.created))
            .max();
        let mut loader = self.loader(3, 4 * MIN, false, true, newest);
        for s in &self.ff_subs {
            let plan = &PLANS[s.plan];
            w.text(&s.id);
            w.text(&s.profile_id);
            w.opt_text(s.psp_id.as_deref());
            w.text(s.provider);
            w.text(s.status);
            w.opt_bool(s.sandbox);
            w.int(s.price);
            w.text(&s.currency);
            w.opt_int(s.price_usd);
            w.text(plan.interval);
            w.int(plan.count);
            w.boolean(s.renews);
            w.opt_ts(s.created);
            w.opt_ts(s.updated);
            w.opt_ts(s.period_start);
            w.opt_ts(s.period_end);
            w.opt_ts(s.cancelled);
            let t = s.updated.or(s.created).unwrap_or(self.in_window_start());
            self.write_sdc(w, &mut loader, t, s.deleted);
        }
    }

    fn write_charges<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .charges
            .iter()
            .map(|c| c.deleted.unwrap_or(c.created))
            .max();
        let mut loader = self.loader(4, 7 * MIN, false, true, newest);
        for c in &self.charges {
            let ok = c.status == "succeeded";
            w.text(&c.id);
            w.int(c.amount);
            w.int(c.refunded);
            w.text(&c.currency);
            w.text(c.status);
            w.opt_text(c.failure.map(|f| FAILURES[f].0));
            w.opt_text(
                c.failure
                    .map(|f| FAILURES[f].1)
                    .or((c.status == "failed").then_some("Your card was declined.")),
            );
            w.boolean(ok);
            w.boolean(c.refunded > 0 && c.refunded == c.amount);
            w.boolean(c.status != "failed");
            w.boolean(c.livemode);
            w.text(&c.customer);
            w.opt_text(c.invoice.as_deref());
            w.text(&c.payment_intent);
            if ok {
                // The balance transaction id is derived from the charge id: stable
                // without another random draw.
                w.text(&format!("txn_{}", &c.id[3..]));
            } else {
                w.null();
            }
            w.text(c.description);
            w.text(&c.metadata);
            w.ts(c.created);
            self.write_sdc(w, &mut loader, c.created, c.deleted);
        }
    }

    fn write_stripe_subscriptions<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .stripe_subs
            .iter()
            .map(|s| s.deleted.unwrap_or(self.stripe_changed(s)))
            .max();
        let mut loader = self.loader(5, 8 * MIN, false, true, newest);
        let mut json = String::new();
        for s in &self.stripe_subs {
            let plan = &PLANS[s.plan];
            w.text(&s.id);
            w.text(&s.customer);
            w.text(s.status);
            w.ts(s.created);
            w.ts(s.created);
            w.ts(s.period_start);
            w.ts(s.period_end);
            w.boolean(s.cancel_at_period_end);
            w.opt_ts(s.canceled_at);
            w.opt_ts(s.ended_at);
            w.null();
            w.null();
            w.opt_text(s.latest_invoice.as_deref());
            w.boolean(s.livemode);
            json.clear();
            JsonObject::new(&mut json)
                .str("id", &s.price_id)
                .str("object", "plan")
                .boolean("active", true)
                .int("amount", s.amount)
                .str("currency", CURRENCIES[s.currency].code)
                .str("interval", plan.interval)
                .int("interval_count", plan.count)
                .str("nickname", plan.nickname)
                .str("product", &s.product_id)
                .null("trial_period_days")
                .close();
            w.text(&json);
            json.clear();
            JsonObject::new(&mut json)
                .str("profile_id", &s.profile_id)
                .str("funnelfox_subscription_id", &s.ff_sub_id)
                .close();
            w.text(&json);
            let t = self.stripe_changed(s);
            self.write_sdc(w, &mut loader, t, s.deleted);
        }
    }

    /// When a Stripe subscription last changed: its last renewal, cancellation or end.
    fn stripe_changed(&self, s: &StripeSub) -> Micros {
        [Some(s.period_start), s.canceled_at, s.ended_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(s.created)
            .min(self.cutoff)
    }

    fn write_campaigns<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let mut loader = self.loader(7, 12 * MIN, true, true, None);
        for (c, spec) in self.campaigns.iter().zip(&CAMPAIGNS) {
            w.text(&c.id);
            w.text(&self.account_id);
            w.text(spec.name);
            w.text(spec.objective);
            let status = if c.deleted.is_some() {
                "DELETED"
            } else {
                "ACTIVE"
            };
            w.text(status);
            w.text(status);
            match spec.budget_cents {
                Some(b) => w.hundredths(b),
                None => w.null(),
            }
            w.ts(c.created);
            w.ts(c.created + HOUR);
            w.null();
            w.ts(c.updated);
            self.write_sdc(w, &mut loader, c.updated, c.deleted);
        }
    }

    fn write_ad_statistics<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let mut loader = self.loader(8, 10 * MIN, false, false, None);
        if self.end_day < self.start_day {
            return;
        }
        let mean_weekday = WEEKDAY_PCT.iter().sum::<i64>() as f64 / 7.0;
        // About $1.6 of spend per session: a CAC of roughly $40 at a 4% conversion.
        let daily_cents = f64::from(self.sessions_per_day) * 160.0;
        let mut row = 0u64;
        for day in self.ads_first_day..=self.end_day {
            let active_share: i64 = ADS
                .iter()
                .zip(&self.ads)
                .filter(|(_, a)| day >= a.from_day && day <= a.to_day)
                .map(|(s, _)| s.share)
                .sum();
            for (k, (spec, ad)) in ADS.iter().zip(&self.ads).enumerate() {
                // A paused ad keeps reporting zero rows for three days.
                if day < ad.from_day || day > ad.to_day + 3 {
                    continue;
                }
                let mut rng = Rng::derive(
                    self.seed,
                    S_ADSTATS,
                    (day - self.ads_first_day) as u64 * 64 + k as u64,
                );
                let paused = day > ad.to_day || rng.chance(0.03);
                let weekday = WEEKDAY_PCT[weekday(day)] as f64 / mean_weekday;
                let spend = if paused || active_share == 0 {
                    0
                } else {
                    let share = spec.share as f64 / active_share as f64;
                    (daily_cents * share * weekday * (0.8 + 0.4 * rng.unit())).round() as i64
                };
                let cpm_cents = rng.range(800, 1_500);
                let impressions = spend * 1_000 / cpm_cents;
                let clicks = impressions * rng.range(8, 23) / 1_000;
                let reach = impressions * rng.range(60, 92) / 100;
                let campaign = &self.campaigns[spec.campaign];
                w.date(day);
                w.date(day);
                w.text(&self.account_id);
                w.text(&campaign.id);
                w.text(&ad.adset_id);
                w.text(&ad.id);
                w.text(CAMPAIGNS[spec.campaign].name);
                w.text(spec.adset);
                w.text(spec.name);
                if rng.chance(0.004) {
                    w.null(); // the API sometimes omits spend
                } else {
                    w.hundredths(spend);
                }
                w.int(impressions);
                w.int(clicks);
                w.int(reach);
                w.text("USD");
                // Insights for a day keep changing until the day is over.
                let t = ((day + 1) * DAY - MS).min(self.cutoff);
                let deleted = (rng.chance(0.005) || row == 5)
                    .then(|| floor_to((t + rng.range(HOUR, 3 * DAY)).min(self.cutoff), MS));
                self.write_sdc(w, &mut loader, t, deleted);
                row += 1;
            }
        }
    }

    fn write_events<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let event_w: Vec<u32> = EVENT_TYPES.iter().map(|e| e.1).collect();
        let mut loader = self.loader(6, 2 * HOUR, false, false, None);
        let mut row = 0u64;
        let mut text = String::new();
        let mut json = String::new();
        for (a, act) in self.activations.iter().enumerate() {
            let mut rng = Rng::derive(self.seed, S_EVENTS, a as u64);
            let profile = &self.profiles[act.profile];
            let country = &COUNTRIES[profile.country];
            let (platform, os_name) = *rng.pick(&[
                ("iOS", "ios"),
                ("iOS", "ios"),
                ("Android", "android"),
                ("Android", "android"),
                ("iOS", "ios"),
                ("Web", "Chrome Mobile"),
            ]);
            let mut device_id = String::new();
            match platform {
                "iOS" => rng.uuid(&mut device_id, true),
                "Android" => rng.push_chars(&mut device_id, HEX, 16),
                _ => {
                    rng.uuid(&mut device_id, false);
                    device_id.push('R');
                }
            }
            let amplitude_id = 100_000_000_000 + rng.below(900_000_000_000) as i64;
            let app_version = *rng.pick(&["3.12.0", "3.12.1", "3.13.0", "4.0.2"]);
            // App sessions: mean ~13 per user, ~31 events each, hours to days apart.
            let mut app_sessions = 1;
            while app_sessions < 90 && rng.chance(0.925) {
                app_sessions += 1;
            }
            let mut t = act.start;
            let mut event_id = 0i64;
            for n in 0..app_sessions {
                if t > self.cutoff {
                    break;
                }
                let session_id = t / MS;
                // Who the app knows the user as during this app session: identified
                // (user_id = profile id), anonymous but with the e-mail typed in
                // (user_id null), or fully anonymous.
                let mode = if n == 0 && rng.chance(0.5) {
                    rng.weighted(&[0, 80, 20])
                } else {
                    rng.weighted(&[74, 22, 4])
                };
                let email_form = *rng.pick(&[
                    EmailForm::AsIs,
                    EmailForm::Lower,
                    EmailForm::Lower,
                    EmailForm::Upper,
                ]);
                let email = match mode {
                    0 if rng.chance(0.6) => email_in_form(profile.email.as_deref(), email_form),
                    1 if rng.chance(0.02) => Some(String::new()),
                    1 => email_in_form(profile.email.as_deref(), email_form),
                    _ => None,
                };
                let events = rng.range(8, 56);
                let mut et = t;
                for e in 0..events {
                    if et > self.cutoff {
                        break;
                    }
                    let kind = if e == 0 {
                        "session_start"
                    } else if e + 1 == events {
                        "session_end"
                    } else {
                        EVENT_TYPES[rng.weighted(&event_w)].0
                    };
                    event_id += 1;
                    text.clear();
                    rng.uuid(&mut text, false);
                    w.text(&text);
                    w.int(event_id);
                    w.text(kind);
                    w.ts(et);
                    w.opt_text((mode == 0).then_some(profile.id.as_str()));
                    w.text(&device_id);
                    w.opt_text(email.as_deref());
                    w.int(amplitude_id);
                    w.int(session_id);
                    w.text(platform);
                    w.text(os_name);
                    w.text(country.code);
                    w.text(country.cities[profile.city]);
                    json.clear();
                    {
                        let mut o = JsonObject::new(&mut json);
                        match kind {
                            "screen_view" | "button_tapped" => {
                                let screen = *rng.pick(&SCREENS);
                                o.str("screen", screen);
                            }
                            "lesson_started" | "lesson_progress" | "lesson_completed"
                            | "video_played" => {
                                o.raw_str("lesson_id", "l_", rng.range(1, 400))
                                    .int("duration_s", rng.range(30, 1_800));
                            }
                            "paywall_viewed" => {
                                o.str("paywall", "v3").str("source", "onboarding");
                            }
                            "search" => {
                                let query = *rng.pick(&SEARCHES);
                                o.str("query", query);
                            }
                            _ => {}
                        }
                        o.close();
                    }
                    w.text(&json);
                    json.clear();
                    {
                        let mut o = JsonObject::new(&mut json);
                        o.str("app_version", app_version);
                        if let Some(e) = email.as_deref() {
                            o.str("email", e);
                        }
                        if mode == 0 {
                            o.str("funnelfox_profile_id", &profile.id);
                        }
                        o.close();
                    }
                    w.text(&json);
                    w.ts(floor_to(et + rng.range(200 * MS, 90 * SEC), MS));
                    let deleted = (rng.chance(0.001) || row == 3)
                        .then(|| floor_to((et + rng.range(HOUR, 3 * DAY)).min(self.cutoff), MS));
                    self.write_sdc(w, &mut loader, et, deleted);
                    row += 1;
                    et = floor_to(et + rng.range(SEC, 75 * SEC), MS);
                }
                t = floor_to(et + rng.range(3 * HOUR, 60 * HOUR), MS);
            }
        }
    }
}

/// `id` with the case of its first letter after the prefix (the first `_` or `-`)
/// flipped, e.g. `ses_aB3` -> `ses_AB3`; `None` when it has no such letter.
fn flip_first_letter(id: &str) -> Option<String> {
    let start = id.find(['_', '-']).map_or(0, |i| i + 1);
    let pos = id[start..].find(|c: char| c.is_ascii_alphabetic())? + start;
    let mut out = String::with_capacity(id.len());
    out.push_str(&id[..pos]);
    let c = id[pos..].chars().next()?;
    out.push(if c.is_ascii_lowercase() {
        c.to_ascii_uppercase()
    } else {
        c.to_ascii_lowercase()
    });
    out.push_str(&id[pos + 1..]);
    Some(out)
}

fn capitalise(part: &str) -> String {
    let mut chars = part.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    type Row = Vec<Option<String>>;

    fn opts(seed: u64, days: u32, per_day: u32) -> GenOptions {
        let end = NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date");
        let now = end.and_hms_opt(18, 3, 11).expect("valid time");
        GenOptions {
            seed,
            days,
            sessions_per_day: per_day,
            end,
            now,
        }
    }

    /// Parses COPY text back into rows (the inverse of the writer).
    fn parse_copy(text: &str) -> Vec<Row> {
        text.lines()
            .map(|line| {
                line.split('\t')
                    .map(|f| {
                        if f == "\\N" {
                            return None;
                        }
                        let mut out = String::new();
                        let mut chars = f.chars();
                        while let Some(c) = chars.next() {
                            if c == '\\' {
                                match chars.next() {
                                    Some('t') => out.push('\t'),
                                    Some('n') => out.push('\n'),
                                    Some('r') => out.push('\r'),
                                    Some(o) => out.push(o),
                                    None => panic!("dangling backslash in {f:?}"),
                                }
                            } else {
                                out.push(c);
                            }
                        }
                        Some(out)
                    })
                    .collect()
            })
            .collect()
    }

    /// A parsed table with access by column name.
    struct Parsed {
        cols: Vec<&'static str>,
        rows: Vec<Row>,
    }

    impl Parsed {
        fn idx(&self, c: &str) -> usize {
            self.cols
                .iter()
                .position(|x| *x == c)
                .unwrap_or_else(|| panic!("no column {c}"))
        }
        fn get<'a>(&self, row: &'a Row, c: &str) -> Option<&'a str> {
            row[self.idx(c)].as_deref()
        }
        fn live(&self) -> Vec<&Row> {
            let d = self.idx("_sdc_deleted_at");
            self.rows.iter().filter(|r| r[d].is_none()).collect()
        }
    }

    fn parse_all(tables: &[TableData]) -> HashMap<String, Parsed> {
        tables
            .iter()
            .map(|t| {
                (
                    format!("{}.{}", t.schema, t.table),
                    Parsed {
                        cols: t.columns.clone(),
                        rows: parse_copy(&t.copy_text),
                    },
                )
            })
            .collect()
    }

    fn ts(s: &str) -> Micros {
        let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("bad timestamp {s:?}: {e}"));
        t.and_utc().timestamp_micros()
    }

    #[test]
    fn copy_escaping() {
        let mut out = String::new();
        push_copy_escaped(&mut out, "a\tb\nc\\d\re \\N");
        assert_eq!(out, "a\\tb\\nc\\\\d\\re \\\\N");
        assert_eq!(
            parse_copy(&out),
            vec![vec![Some("a\tb\nc\\d\re \\N".to_string())]]
        );
        let mut plain = String::new();
        push_copy_escaped(&mut plain, "São Paulo");
        assert_eq!(plain, "São Paulo");
    }

    #[test]
    fn calendar_matches_chrono() {
        for day in (-800_000..800_000).step_by(997).chain(20_000..21_000) {
            let (y, m, d) = civil_from_days(day);
            let date = NaiveDate::from_ymd_opt(y as i32, m, d).expect("valid civil date");
            assert_eq!(day_number(date), day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        let jan31 =
            day_number(NaiveDate::from_ymd_opt(2024, 1, 31).expect("date")) * DAY + 5 * HOUR;
        let feb = add_months(jan31, 1);
        assert_eq!(civil_from_days(feb.div_euclid(DAY)), (2024, 2, 29));
        assert_eq!(feb.rem_euclid(DAY), 5 * HOUR);
        let mut s = String::new();
        push_timestamp(&mut s, jan31 + 123_456);
        assert_eq!(s, "2024-01-31 05:00:00.123456");
        s.clear();
        push_timestamp(&mut s, -1);
        assert_eq!(s, "1969-12-31 23:59:59.999999");
    }

    #[test]
    fn same_options_same_bytes_and_other_seed_differs() {
        let a = generate(&opts(7, 20, 30));
        let b = generate(&opts(7, 20, 30));
        let c = generate(&opts(8, 20, 30));
        assert_eq!(a.len(), 8);
        for ((x, y), z) in a.iter().zip(&b).zip(&c) {
            assert_eq!(
                x.copy_text, y.copy_text,
                "{}.{} differs between runs",
                x.schema, x.table
            );
            assert_eq!(x.rows, y.rows);
            // The funnels/campaigns ids come from the seed too, so every table differs.
            assert_ne!(
                x.copy_text, z.copy_text,
                "{}.{} ignores the seed",
                x.schema, x.table
            );
        }
    }

    #[test]
    fn every_row_has_every_field_and_unique_key() {
        for t in generate(&opts(3, 30, 50)) {
            assert!(t.rows > 0, "{}.{} is empty", t.schema, t.table);
            assert_eq!(t.copy_text.lines().count(), t.rows);
            let table = Table::ALL
                .into_iter()
                .find(|x| x.schema() == t.schema && x.name() == t.table)
                .expect("known table");
            let key: Vec<usize> = table
                .key()
                .iter()
                .map(|k| t.columns.iter().position(|c| c == k).expect("key column"))
                .collect();
            let mut keys = HashSet::new();
            for line in t.copy_text.lines() {
                let fields: Vec<&str> = line.split('\t').collect();
                assert_eq!(
                    fields.len(),
                    t.columns.len(),
                    "{}.{}: {line}",
                    t.schema,
                    t.table
                );
                let k: Vec<&str> = key.iter().map(|&i| fields[i]).collect();
                assert!(
                    key.iter().all(|&i| fields[i] != "\\N"),
                    "null key in {}.{}",
                    t.schema,
                    t.table
                );
                assert!(
                    keys.insert(k.join("\t")),
                    "duplicate key {k:?} in {}.{}",
                    t.schema,
                    t.table
                );
            }
            assert!(t.copy_text.ends_with('\n'));
        }
    }

    #[test]
    fn streaming_matches_and_chunks_end_at_rows() {
        let o = opts(11, 30, 150);
        let whole = generate(&o);
        let data = Dataset::new(&o);
        for (table, t) in Table::ALL.into_iter().zip(&whole) {
            let mut chunks = Vec::new();
            let rows = generate_table(&data, table, |c| chunks.push(c.to_string()));
            assert_eq!(rows, t.rows);
            assert!(chunks.iter().all(|c| c.ends_with('\n')));
            assert!(chunks.iter().all(|c| c.len() < CHUNK_BYTES + 64 * 1024));
            assert_eq!(chunks.concat(), t.copy_text);
            if table == Table::Events {
                assert!(chunks.len() > 1, "events should stream in several chunks");
            }
        }
    }

    #[test]
    fn empty_scale_does_not_panic() {
        for (days, per_day) in [(0, 40), (3, 0), (1, 1)] {
            let t = generate(&opts(1, days, per_day));
            assert_eq!(t.len(), 8);
        }
    }

    #[test]
    fn json_columns_are_objects_and_loader_times_are_fresh() {
        let o = opts(5, 30, 60);
        let now = o.now.and_utc().timestamp_micros();
        let tables = parse_all(&generate(&o));
        for (name, col) in [
            ("raw_stripe.charges", "metadata"),
            ("raw_stripe.subscriptions", "plan"),
            ("raw_stripe.subscriptions", "metadata"),
            ("raw_amplitude.events", "event_properties"),
            ("raw_amplitude.events", "user_properties"),
        ] {
            let t = &tables[name];
            for r in &t.rows {
                let text = t.get(r, col).expect("json present");
                let v: serde_json::Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("{name}.{col} invalid JSON {text:?}: {e}"));
                assert!(v.is_object());
            }
        }
        for (name, t) in &tables {
            let mut newest = i64::MIN;
            let mut last_seq = i64::MIN;
            for r in &t.rows {
                let b = ts(t.get(r, "_sdc_batched_at").expect("batched"));
                let e = ts(t.get(r, "_sdc_extracted_at").expect("extracted"));
                assert!(e <= b && b < now, "{name}: bad loader times");
                newest = newest.max(b);
                let seq: i64 = t
                    .get(r, "_sdc_sequence")
                    .expect("seq")
                    .parse()
                    .expect("int");
                assert!(seq > last_seq, "{name}: _sdc_sequence not increasing");
                last_seq = seq;
            }
            assert!(
                now - newest < 2 * HOUR,
                "{name}: newest _sdc_batched_at is stale"
            );
            let deleted = t.rows.len() - t.live().len();
            assert!(deleted >= 1, "{name}: no soft-deleted rows");
        }
        // No source record is after `now`.
        for (name, col) in [
            ("raw_funnelfox.sessions", "created_at"),
            ("raw_stripe.charges", "created"),
            ("raw_amplitude.events", "event_time"),
        ] {
            let t = &tables[name];
            assert!(
                t.rows
                    .iter()
                    .all(|r| ts(t.get(r, col).expect("time")) < now),
                "{name}"
            );
        }
    }

    /// The marts' "new subscription" rule, computed here to check proportions:
    /// (subscription id, profile id, charge id, charge created).
    fn new_subscriptions(t: &HashMap<String, Parsed>) -> Vec<(String, String, String, Micros)> {
        let charges = &t["raw_stripe.charges"];
        let paid: HashMap<&str, Micros> = charges
            .live()
            .into_iter()
            .filter(|r| charges.get(r, "status") == Some("succeeded"))
            .map(|r| {
                (
                    charges.get(r, "id").expect("id"),
                    ts(charges.get(r, "created").expect("created")),
                )
            })
            .collect();
        let subs = &t["raw_funnelfox.subscriptions"];
        let mut best: HashMap<&str, (bool, Option<Micros>, &str, &str)> = HashMap::new();
        for r in subs.live() {
            if subs.get(r, "sandbox") == Some("t") {
                continue;
            }
            let Some(psp) = subs.get(r, "psp_id") else {
                continue;
            };
            if !paid.contains_key(psp) {
                continue;
            }
            let created = subs.get(r, "created_at").map(ts);
            let cand = (
                created.is_none(),
                created,
                subs.get(r, "id").expect("id"),
                subs.get(r, "profile_id").expect("profile"),
            );
            let e = best.entry(psp).or_insert(cand);
            if (cand.0, cand.1, cand.2.as_bytes()) < (e.0, e.1, e.2.as_bytes()) {
                *e = cand;
            }
        }
        best.into_iter()
            .map(|(psp, (_, _, id, profile))| {
                (
                    id.to_string(),
                    profile.to_string(),
                    psp.to_string(),
                    paid[psp],
                )
            })
            .collect()
    }

    #[test]
    fn proportions_are_realistic() {
        let tables = parse_all(&generate(&opts(42, 60, 200)));
        let sessions = &tables["raw_funnelfox.sessions"];
        let n_sessions = sessions.rows.len() as f64;
        let profiles: HashSet<&str> = sessions
            .rows
            .iter()
            .filter_map(|r| sessions.get(r, "profile_id"))
            .collect();
        let per_profile = n_sessions / profiles.len() as f64;
        eprintln!(
            "sessions {n_sessions}, profiles {}, sessions/profile {per_profile:.2}",
            profiles.len()
        );
        assert!(
            (1.5..=3.0).contains(&per_profile),
            "sessions per profile {per_profile}"
        );
        assert!(
            (n_sessions / 60.0 - 200.0).abs() < 30.0,
            "sessions per day {}",
            n_sessions / 60.0
        );

        // Weekends busier than mid-week; evenings (UTC) busier than early mornings.
        let mut by_hour = [0usize; 24];
        let mut by_weekday = [0usize; 7];
        for r in &sessions.rows {
            let t = ts(sessions.get(r, "created_at").expect("created"));
            by_hour[(t.rem_euclid(DAY) / HOUR) as usize] += 1;
            by_weekday[weekday(t.div_euclid(DAY))] += 1;
        }
        assert!(by_hour[20] > 3 * by_hour[4], "{by_hour:?}");
        assert!(by_weekday[6] > by_weekday[2], "{by_weekday:?}");

        let new = new_subscriptions(&tables);
        let conv = new.len() as f64 / n_sessions;
        eprintln!(
            "new subscriptions {} = {:.2}% of sessions",
            new.len(),
            100.0 * conv
        );
        assert!((0.03..=0.05).contains(&conv), "conversion {conv}");

        let charges = &tables["raw_stripe.charges"];
        let n_charges = charges.rows.len() as f64;
        let count = |col: &str, v: &str| {
            charges
                .rows
                .iter()
                .filter(|r| charges.get(r, col) == Some(v))
                .count() as f64
        };
        let failed = count("status", "failed") / n_charges;
        let pending = count("status", "pending") / n_charges;
        let usd = count("currency", "usd") / n_charges;
        eprintln!(
            "charges {n_charges}: failed {:.2}%, pending {:.2}%, usd {:.1}%",
            100.0 * failed,
            100.0 * pending,
            100.0 * usd
        );
        assert!((0.025..=0.07).contains(&failed), "failed {failed}");
        assert!((0.004..=0.02).contains(&pending), "pending {pending}");
        assert!((0.70..=0.92).contains(&usd), "usd {usd}");
        for code in ["USD", "eur", "gbp", "jpy", "kwd"] {
            assert!(count("currency", code) > 0.0, "no {code} charge");
        }
        let mut codes: HashMap<&str, usize> = HashMap::new();
        for r in &charges.rows {
            if let Some(c) = charges.get(r, "failure_code") {
                *codes.entry(c).or_default() += 1;
            }
        }
        eprintln!("failure codes {codes:?}");
        // card_declined leads (with a few dozen failures, another code can come
        // close: the tie days add to the runners-up).
        let declined = codes.get("card_declined").copied().unwrap_or(0);
        let coded: usize = codes.values().sum();
        let ahead = codes.values().filter(|&&n| n > declined).count();
        assert!(ahead <= 1 && declined * 3 >= coded, "{codes:?}");
        // Days on which the two most frequent codes tie.
        let mut per_day: HashMap<i64, HashMap<&str, usize>> = HashMap::new();
        for r in &charges.live() {
            if let Some(c) = charges.get(r, "failure_code") {
                let day = ts(charges.get(r, "created").expect("created")).div_euclid(DAY);
                *per_day.entry(day).or_default().entry(c).or_default() += 1;
            }
        }
        let tie_days = per_day
            .values()
            .filter(|m| {
                let mut v: Vec<usize> = m.values().copied().collect();
                v.sort_unstable_by(|a, b| b.cmp(a));
                v.len() >= 2 && v[0] == v[1]
            })
            .count();
        assert!(tie_days >= 3, "tie days {tie_days}");

        let subs = &tables["raw_funnelfox.subscriptions"];
        let n_subs = subs.rows.len() as f64;
        let sandbox = subs
            .rows
            .iter()
            .filter(|r| subs.get(r, "sandbox") == Some("t"))
            .count() as f64
            / n_subs;
        let sandbox_null = subs
            .rows
            .iter()
            .filter(|r| subs.get(r, "sandbox").is_none())
            .count();
        let mut psp_counts: HashMap<&str, usize> = HashMap::new();
        for r in &subs.rows {
            if let Some(p) = subs.get(r, "psp_id") {
                *psp_counts.entry(p).or_default() += 1;
            }
        }
        let dups = psp_counts.values().filter(|&&n| n > 1).count() as f64 / n_subs;
        let non_usd = subs.rows.iter().filter(|r| {
            !subs
                .get(r, "currency")
                .unwrap_or("")
                .eq_ignore_ascii_case("usd")
        });
        let non_usd_null_price = non_usd
            .filter(|r| subs.get(r, "price_usd").is_none())
            .count();
        eprintln!("ff subscriptions {n_subs}: sandbox {:.2}%, duplicates {:.2}%, sandbox null {sandbox_null}, non-USD without price_usd {non_usd_null_price}", 100.0 * sandbox, 100.0 * dups);
        assert!((0.005..=0.04).contains(&sandbox), "sandbox {sandbox}");
        assert!((0.005..=0.03).contains(&dups), "duplicates {dups}");
        assert!(sandbox_null > 0 && non_usd_null_price > 0);

        // Renewals and orphan failures: charges no subscription points at.
        let orphan = charges
            .rows
            .iter()
            .filter(|r| !psp_counts.contains_key(charges.get(r, "id").unwrap_or("")))
            .count();
        assert!(orphan as f64 > 0.1 * n_charges, "orphan charges {orphan}");

        // Acquisition: the latest live session of the profile at or before the charge.
        let mut by_profile: HashMap<&str, Vec<Micros>> = HashMap::new();
        for r in sessions.live() {
            by_profile
                .entry(sessions.get(r, "profile_id").expect("p"))
                .or_default()
                .push(ts(sessions.get(r, "created_at").expect("t")));
        }
        let mut within_hour = 0;
        let mut without = 0;
        for (_, profile, _, at) in &new {
            match by_profile
                .get(profile.as_str())
                .and_then(|v| v.iter().filter(|&&t| t <= *at).max())
            {
                Some(t) if at - t <= HOUR => within_hour += 1,
                Some(_) => {}
                None => without += 1,
            }
        }
        eprintln!("converted within an hour {within_hour}, without session {without}");
        assert!(within_hour as f64 > 0.4 * new.len() as f64);
        assert!(without >= 1 && (without as f64) < 0.05 * new.len() as f64);

        // App events.
        let events = &tables["raw_amplitude.events"];
        let n_events = events.rows.len() as f64;
        let by_email = events
            .rows
            .iter()
            .filter(|r| {
                events.get(r, "user_id").is_none()
                    && events.get(r, "email").is_some_and(|e| !e.is_empty())
            })
            .count() as f64
            / n_events;
        eprintln!(
            "events {n_events} = {:.1} per session; null user_id with e-mail {:.1}%",
            n_events / n_sessions,
            100.0 * by_email
        );
        assert!(n_events / n_sessions > 8.0, "events per session");
        assert!(
            (0.15..=0.25).contains(&by_email),
            "email-only events {by_email}"
        );
        let session_emails: HashMap<String, HashSet<&str>> = sessions
            .rows
            .iter()
            .filter_map(|r| {
                let e = sessions.get(r, "email").filter(|e| !e.is_empty())?;
                Some((e.to_lowercase(), sessions.get(r, "profile_id")?))
            })
            .fold(HashMap::new(), |mut m, (e, p)| {
                m.entry(e).or_default().insert(p);
                m
            });
        let mut active: HashSet<&str> = HashSet::new();
        for r in &events.rows {
            if let Some(u) = events.get(r, "user_id") {
                active.insert(u);
            } else if let Some(ps) = events
                .get(r, "email")
                .and_then(|e| session_emails.get(&e.to_lowercase()))
            {
                active.extend(ps.iter().copied());
            }
        }
        let buyers: HashSet<&str> = new.iter().map(|n| n.1.as_str()).collect();
        let buyers_active =
            buyers.iter().filter(|p| active.contains(*p)).count() as f64 / buyers.len() as f64;
        let others: Vec<&&str> = profiles.iter().filter(|p| !buyers.contains(*p)).collect();
        let others_active =
            others.iter().filter(|p| active.contains(**p)).count() as f64 / others.len() as f64;
        eprintln!(
            "activated: buyers {:.1}%, others {:.1}%",
            100.0 * buyers_active,
            100.0 * others_active
        );
        assert!(
            (0.3..=0.5).contains(&buyers_active),
            "buyers activated {buyers_active}"
        );
        assert!(
            (0.03..=0.08).contains(&others_active),
            "others activated {others_active}"
        );

        // Ads: a few days with spend before the first session.
        let ads = &tables["raw_facebook.ad_statistics"];
        let first_session_day = sessions
            .rows
            .iter()
            .map(|r| ts(sessions.get(r, "created_at").expect("t")).div_euclid(DAY))
            .min()
            .expect("sessions");
        let early = ads
            .rows
            .iter()
            .filter(|r| {
                let d =
                    NaiveDate::parse_from_str(ads.get(r, "date_start").expect("date"), "%Y-%m-%d")
                        .expect("date");
                day_number(d) < first_session_day
                    && ads.get(r, "spend").is_some_and(|s| s != "0.00")
            })
            .count();
        assert!(early > 0);
        assert!(ads.rows.iter().any(|r| ads.get(r, "spend") == Some("0.00")));
    }

    #[test]
    fn edge_cases_are_present() {
        let tables = parse_all(&generate(&opts(9, 45, 120)));
        let funnels = &tables["raw_funnelfox.funnels"];
        assert_eq!(funnels.live().len(), 6);
        assert_eq!(
            funnels
                .rows
                .iter()
                .filter(|r| funnels.get(r, "title").is_none())
                .count(),
            1
        );

        // Ids that differ only in case or punctuation.
        let fold = |s: &str| s.to_lowercase().replace('-', "_");
        for (name, col) in [
            ("raw_funnelfox.sessions", "id"),
            ("raw_funnelfox.subscriptions", "id"),
            ("raw_funnelfox.sessions", "profile_id"),
        ] {
            let t = &tables[name];
            let ids: HashSet<&str> = t.rows.iter().filter_map(|r| t.get(r, col)).collect();
            let folded: HashSet<String> = ids.iter().map(|s| fold(s)).collect();
            assert!(folded.len() < ids.len(), "{name}.{col}: no look-alike ids");
        }
        // Twin sessions of a profile at the same instant.
        let sessions = &tables["raw_funnelfox.sessions"];
        let mut seen = HashSet::new();
        let twins = sessions
            .rows
            .iter()
            .filter(|r| {
                !seen.insert((sessions.get(r, "profile_id"), sessions.get(r, "created_at")))
            })
            .count();
        assert!(twins >= 3, "twin sessions {twins}");
        let emails: Vec<&str> = sessions
            .rows
            .iter()
            .filter_map(|r| sessions.get(r, "email"))
            .collect();
        assert!(emails.contains(&""));
        assert!(emails
            .iter()
            .any(|e| e.chars().any(|c| c.is_ascii_uppercase())));
        assert!(emails
            .iter()
            .any(|e| !e.is_empty() && !e.chars().any(|c| c.is_ascii_uppercase())));
        // Escaped characters survive in ad names and app search queries.
        let ads = &tables["raw_facebook.ad_statistics"];
        assert!(ads
            .rows
            .iter()
            .any(|r| ads.get(r, "ad_name").is_some_and(|n| n.contains('\t'))));
        let camps = &tables["raw_facebook.campaigns"];
        assert!(camps
            .rows
            .iter()
            .any(|r| camps.get(r, "name").is_some_and(|n| n.contains('\n'))));
        // Sessions exactly at the charge's instant (acquired: "at or before") and one
        // microsecond after it (not acquired).
        let mut session_times: HashSet<(&str, Micros)> = HashSet::new();
        for r in sessions.live() {
            session_times.insert((
                sessions.get(r, "profile_id").expect("p"),
                ts(sessions.get(r, "created_at").expect("t")),
            ));
        }
        let new = new_subscriptions(&tables);
        assert!(new
            .iter()
            .any(|(_, p, _, at)| session_times.contains(&(p.as_str(), *at))));
        assert!(new
            .iter()
            .any(|(_, p, _, at)| session_times.contains(&(p.as_str(), *at + 1))));
        // Stripe zero- and three-decimal amounts.
        let charges = &tables["raw_stripe.charges"];
        let amount = |cur: &str| {
            charges
                .rows
                .iter()
                .find(|r| {
                    charges
                        .get(r, "currency")
                        .is_some_and(|c| c.eq_ignore_ascii_case(cur))
                })
                .and_then(|r| charges.get(r, "amount"))
                .map(str::to_string)
        };
        assert!(amount("jpy").is_some_and(|a| a.ends_with('0')));
        assert!(amount("kwd").is_some_and(|a| a.ends_with("50") || a.ends_with("00")));
    }
}
