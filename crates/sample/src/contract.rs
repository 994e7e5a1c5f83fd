//! The raw data contract (docs/raw-contract.md), defined once: the eight tables the
//! Singer taps land through target-postgres, one schema per source, with their
//! columns (PostgreSQL types, NOT NULL), primary keys and the loader's seven `_sdc_*`
//! metadata columns.
//!
//! The transformer only reads these tables. The generator writes their rows, and
//! [`ddl`] creates them for the demo, `generate` and the tests; the Singer schemas
//! of the taps' streams (`schemas/raw/*.json`) are checked against [`Table`] by the
//! tests.

use std::fmt::Write as _;

/// A column of a raw table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// PostgreSQL type as the loader creates it: `text`, `bigint`, `boolean`,
    /// `numeric`, `jsonb`, `date` or `timestamp` (without time zone, holding UTC
    /// wall-clock time).
    pub sql_type: &'static str,
    /// Whether the column is `NOT NULL` (the tap always sends a value).
    pub not_null: bool,
}

const fn col(name: &'static str, sql_type: &'static str) -> Column {
    Column {
        name,
        sql_type,
        not_null: false,
    }
}

const fn not_null(name: &'static str, sql_type: &'static str) -> Column {
    Column {
        name,
        sql_type,
        not_null: true,
    }
}

/// The loader's metadata columns, last in every raw table. A row whose
/// `_sdc_deleted_at` is not null was deleted at the source; `_sdc_batched_at` is
/// when the loader wrote the batch (the freshness column).
pub const LOADER_COLUMNS: [Column; 7] = [
    not_null("_sdc_extracted_at", "timestamp"),
    not_null("_sdc_received_at", "timestamp"),
    not_null("_sdc_batched_at", "timestamp"),
    col("_sdc_deleted_at", "timestamp"),
    not_null("_sdc_sequence", "bigint"),
    col("_sdc_table_version", "bigint"),
    col("_sdc_sync_started_at", "bigint"),
];

const FUNNELS_COLS: [Column; 5] = [
    not_null("id", "text"),
    col("title", "text"),
    col("alias", "text"),
    col("type", "text"),
    col("created_at", "timestamp"),
];

const SESSIONS_COLS: [Column; 12] = [
    not_null("id", "text"),
    not_null("created_at", "timestamp"),
    col("funnel_id", "text"),
    col("funnel_version", "bigint"),
    not_null("profile_id", "text"),
    col("email", "text"),
    col("country", "text"),
    col("city", "text"),
    col("postal", "text"),
    col("ip", "text"),
    col("origin", "text"),
    col("user_agent", "text"),
];

const FF_SUBS_COLS: [Column; 17] = [
    not_null("id", "text"),
    not_null("profile_id", "text"),
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
    not_null("id", "text"),
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
    not_null("created", "timestamp"),
];

const STRIPE_SUBS_COLS: [Column; 16] = [
    not_null("id", "text"),
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
    not_null("uuid", "text"),
    col("event_id", "bigint"),
    col("event_type", "text"),
    not_null("event_time", "timestamp"),
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
    not_null("id", "text"),
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
    not_null("date_start", "date"),
    col("date_stop", "date"),
    col("account_id", "text"),
    col("campaign_id", "text"),
    col("adset_id", "text"),
    not_null("ad_id", "text"),
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

    /// Name of the table within its schema (the Singer stream's name).
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

    /// The columns of the source's records (the Singer stream's properties), without
    /// the loader's [`LOADER_COLUMNS`].
    pub fn source_columns(self) -> &'static [Column] {
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

    /// Every column in table (and COPY field) order: the source's columns, then the
    /// seven `_sdc_*` loader columns.
    pub fn columns(self) -> Vec<Column> {
        self.source_columns()
            .iter()
            .chain(LOADER_COLUMNS.iter())
            .copied()
            .collect()
    }

    /// Column names in table (and COPY field) order.
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

    /// `CREATE TABLE IF NOT EXISTS` of this table as target-postgres creates it: every
    /// column, NOT NULL where the contract says so, the primary key.
    fn create_sql(self, sql: &mut String) {
        let columns = self.columns();
        let name_width = columns.iter().map(|c| c.name.len()).max().unwrap_or(0) + 2;
        let type_width = columns.iter().map(|c| c.sql_type.len()).max().unwrap_or(0) + 1;
        let _ = writeln!(
            sql,
            "CREATE TABLE IF NOT EXISTS {}.{} (",
            self.schema(),
            self.name()
        );
        for c in &columns {
            let _ = if c.not_null {
                writeln!(
                    sql,
                    "    {:name_width$}{:type_width$}NOT NULL,",
                    c.name, c.sql_type
                )
            } else {
                writeln!(sql, "    {:name_width$}{},", c.name, c.sql_type)
            };
        }
        let _ = write!(
            sql,
            "    CONSTRAINT {}_pkey PRIMARY KEY ({})\n);\n",
            self.name(),
            self.key().join(", ")
        );
    }
}

/// The raw schemas, one per source, in the order of [`Table::ALL`].
pub fn schemas() -> Vec<&'static str> {
    let mut schemas: Vec<&'static str> = Table::ALL.iter().map(|t| t.schema()).collect();
    schemas.dedup();
    schemas
}

/// The DDL of every raw schema and table: `CREATE SCHEMA IF NOT EXISTS` and `CREATE
/// TABLE IF NOT EXISTS`, so it is safe to run on a database that already has (some
/// of) them.
pub fn ddl() -> String {
    let mut sql = String::from(
        "-- Raw data contract (docs/raw-contract.md), from reluvia_sample::contract.\n\
         --\n\
         -- The tables the Singer taps land through target-postgres, one schema per source.\n\
         -- The transformer only reads them; this DDL exists for the demo and the test\n\
         -- fixtures. Timestamps are `timestamp without time zone` holding UTC wall-clock\n\
         -- time. Every table ends with the loader's seven `_sdc_*` metadata columns; a row\n\
         -- whose `_sdc_deleted_at` is not null was deleted at the source.\n\
         -- Idempotent: safe to run on a database that already has (some of) the tables.\n\n",
    );
    let schemas = schemas();
    for schema in &schemas {
        let _ = writeln!(sql, "CREATE SCHEMA IF NOT EXISTS {schema};");
    }
    for schema in schemas {
        let _ = writeln!(sql, "\n-- {} {schema}", "-".repeat(77 - schema.len()));
        for table in Table::ALL.into_iter().filter(|t| t.schema() == schema) {
            sql.push('\n');
            table.create_sql(&mut sql);
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_and_the_loader_columns() {
        assert_eq!(
            schemas(),
            [
                "raw_funnelfox",
                "raw_stripe",
                "raw_amplitude",
                "raw_facebook"
            ]
        );
        for table in Table::ALL {
            let columns = table.columns();
            for key in table.key() {
                let c = columns.iter().find(|c| c.name == *key).expect("key column");
                assert!(c.not_null, "{}.{key}", table.name());
            }
            assert_eq!(columns[columns.len() - 7..], LOADER_COLUMNS);
            let mut names = table.column_names();
            names.sort_unstable();
            names.dedup();
            assert_eq!(
                names.len(),
                columns.len(),
                "{} repeats a column",
                table.name()
            );
        }
    }

    #[test]
    fn ddl_reads_like_the_contract() {
        let ddl = ddl();
        assert_eq!(ddl.matches("CREATE SCHEMA IF NOT EXISTS ").count(), 4);
        assert_eq!(ddl.matches("CREATE TABLE IF NOT EXISTS ").count(), 8);
        assert!(ddl.contains(
            "CREATE TABLE IF NOT EXISTS raw_facebook.ad_statistics (\n    \
             date_start            date      NOT NULL,\n    \
             date_stop             date,\n"
        ));
        assert!(ddl.contains(
            "    _sdc_sync_started_at  bigint,\n    \
             CONSTRAINT ad_statistics_pkey PRIMARY KEY (date_start, ad_id)\n);\n"
        ));
        assert!(ddl.contains(
            "\n-- ------------------------------------------------------------------- raw_stripe\n"
        ));
    }
}
