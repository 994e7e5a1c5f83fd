//! `generate`: replaces the raw schemas of the configured database with generated
//! sample data at any scale (benchmarks), streamed into COPY. The demo loads its
//! data the same way.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use crate::cli::SampleArgs;
use crate::console::Output;
use crate::error::{Error, Result};
use crate::manifest::{quote_ident, relation_name};
use crate::postgres;
use crate::settings::Settings;
use reluvia_sample::contract::{self, Table};
use reluvia_sample::generate::{generate_table, Dataset, GenOptions};

use super::Invocation;

/// Generator options for a run: today's date in UTC and `now`, the given scale.
pub(super) fn gen_options(sample: &SampleArgs) -> GenOptions {
    let now = chrono::Utc::now().naive_utc();
    let mut o = GenOptions::demo(now.date(), now);
    o.days = sample.days;
    o.seed = sample.seed;
    if let Some(n) = sample.sessions_per_day {
        o.sessions_per_day = n;
    }
    o
}

/// (Re)creates the raw schemas in `client`'s database and loads generated data.
/// Returns (table, rows) pairs.
/// Connects and loads generated data ([`load_raw`]); cancellation stops the load
/// on the server ("interrupted <phase>").
pub(super) fn load(
    inv: &Invocation,
    settings: &Settings,
    opts: &GenOptions,
    phase: &str,
) -> Result<Vec<(String, usize)>> {
    inv.runtime.block_on(async {
        let client = postgres::connect(settings).await?;
        postgres::cancellable(
            &client,
            settings,
            &inv.cancel,
            phase,
            load_raw(&client, opts),
        )
        .await
    })
}

async fn load_raw(client: &Client, opts: &GenOptions) -> Result<Vec<(String, usize)>> {
    let db_err = |what: &str, e: tokio_postgres::Error| {
        Error::runtime(format!("{what}: {}", postgres::describe_db_error(&e, "")))
    };
    let drop: String = contract::schemas()
        .iter()
        .map(|s| format!("drop schema if exists {s} cascade;\n"))
        .collect();
    client
        .batch_execute(&drop)
        .await
        .map_err(|e| db_err("cannot reset the raw schemas", e))?;
    client
        .batch_execute(&contract::ddl())
        .await
        .map_err(|e| db_err("cannot create the raw tables", e))?;
    // Streamed: a blocking thread generates each table in row-aligned chunks that
    // go straight into COPY, so a large scale never sits in memory.
    let dataset = std::sync::Arc::new(Dataset::new(opts));
    let mut loaded = Vec::new();
    for table in Table::ALL {
        let label = format!("{}.{}", table.schema(), table.name());
        let cols = table
            .column_names()
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "copy {} ({cols}) from stdin",
            relation_name(table.schema(), table.name())
        );
        let sink = client
            .copy_in::<_, Bytes>(sql.as_str())
            .await
            .map_err(|e| db_err("cannot start COPY", e))?;
        futures_util::pin_mut!(sink);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
        let ds = dataset.clone();
        let producer = tokio::task::spawn_blocking(move || {
            generate_table(&ds, table, |chunk| {
                let _ = tx.blocking_send(chunk.to_string());
            })
        });
        while let Some(chunk) = rx.recv().await {
            sink.send(Bytes::from(chunk.into_bytes()))
                .await
                .map_err(|e| db_err(&format!("cannot load {label}"), e))?;
        }
        sink.finish()
            .await
            .map_err(|e| db_err(&format!("cannot load {label}"), e))?;
        let rows = producer
            .await
            .map_err(|e| Error::runtime(format!("generator failed for {label}: {e}")))?;
        loaded.push((label, rows));
    }
    client
        .batch_execute("analyze")
        .await
        .map_err(|e| db_err("analyze", e))?;
    Ok(loaded)
}

/// `generate`: replaces the raw schemas of the configured database with
/// generated data.
pub(super) fn generate(
    inv: &Invocation,
    settings: Arc<Settings>,
    sample: &SampleArgs,
    out: &Output,
) -> Result<i32> {
    let opts = gen_options(sample);
    out.info(
        "generate",
        &format!(
            "Generating {} days x {} sessions/day (seed {}) into database '{}'",
            opts.days, opts.sessions_per_day, opts.seed, settings.dbname
        ),
    );
    let started = Instant::now();
    let loaded = load(inv, &settings, &opts, "while loading generated data")?;
    for (table, rows) in loaded {
        out.info("generated", &format!("{table:<28} {rows:>10} rows"));
    }
    out.info(
        "generated",
        &format!("Done in {:.1}s", started.elapsed().as_secs_f64()),
    );
    Ok(0)
}
