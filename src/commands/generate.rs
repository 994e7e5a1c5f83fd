//! `generate`: replaces the raw schemas of the configured database with generated
//! sample data at any scale (benchmarks), streamed into COPY. The demo loads its
//! data the same way.
//!
//! It never destroys data it did not make: each raw schema it creates carries a
//! mark (its comment, [`MARK`]), and a raw schema that exists without the mark, or
//! holds anything besides the contract's tables, is left alone and the command
//! fails naming it, unless `--replace-raw` says to drop it anyway. Long loads say
//! how far they got, per table.

use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The comment `generate` puts on each raw schema it creates: the mark that lets a
/// later `generate` replace it.
const MARK: &str =
    "reluvia-transform generate: generated sample data, replaced by the next generate";

/// How often a table still loading says how many rows it has so far.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Connects and loads generated data ([`load_raw`]); cancellation stops the load
/// on the server ("interrupted <phase>"). `replace`: drop raw schemas that
/// `generate` did not make too. `progress` hears each table start and, on long
/// loads, its rows so far. Returns (table, rows) pairs.
pub(super) fn load(
    inv: &Invocation,
    settings: &Settings,
    opts: &GenOptions,
    phase: &str,
    replace: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(String, usize)>> {
    inv.runtime.block_on(async {
        let client = postgres::connect(settings).await?;
        postgres::cancellable(
            &client,
            settings,
            &inv.cancel,
            phase,
            load_raw(
                &client,
                opts,
                (replace, &settings.origin("dbname")),
                progress,
            ),
        )
        .await
    })
}

fn db_err(what: &str, e: tokio_postgres::Error) -> Error {
    Error::runtime(format!("{what}: {}", postgres::describe_db_error(&e, "")))
}

/// The raw schemas that exist and were not made by `generate`, each with what it
/// holds that `generate` did not make (empty when only the mark is missing).
async fn foreign_raw_schemas(client: &Client) -> Result<Vec<(String, Vec<String>)>> {
    let schemas: Vec<String> = contract::schemas().iter().map(|s| s.to_string()).collect();
    let tables: Vec<String> = Table::ALL
        .iter()
        .map(|t| format!("{}.{}", t.schema(), t.name()))
        .collect();
    // Tables, views, sequences not owned by a column, foreign tables, functions
    // and types: what a drop … cascade would take with it.
    let rows = client
        .query(
            "select n.nspname, coalesce(obj_description(n.oid, 'pg_namespace'), '') = $3,
                    array(select o from (
                        select c.relname::text as o from pg_class c
                         where c.relnamespace = n.oid and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S', 'c')
                           and not (c.relkind = 'r' and n.nspname || '.' || c.relname = any($2))
                           and not (c.relkind = 'S' and exists (select from pg_depend d
                                    where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')))
                        union all select p.proname::text from pg_proc p where p.pronamespace = n.oid
                        union all select t.typname::text from pg_type t
                         where t.typnamespace = n.oid and t.typtype in ('d', 'e', 'r', 'm')
                    ) x order by o)
             from pg_namespace n where n.nspname = any($1) order by n.nspname",
            &[&schemas, &tables, &MARK],
        )
        .await
        .map_err(|e| db_err("cannot inspect the raw schemas", e))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let (name, marked, others): (String, bool, Vec<String>) =
                (r.get(0), r.get(1), r.get(2));
            (!marked || !others.is_empty()).then_some((name, others))
        })
        .collect())
}

/// Refuses to go on when a raw schema holds what `generate` did not make, unless
/// `replace`; `dbname_from`: where the database setting came from.
async fn check_raw_schemas(client: &Client, replace: bool, dbname_from: &str) -> Result<()> {
    let foreign = foreign_raw_schemas(client).await?;
    if foreign.is_empty() || replace {
        return Ok(());
    }
    let described: Vec<String> = foreign
        .iter()
        .map(|(schema, others)| match others.as_slice() {
            [] => format!("{schema} (not created by generate)"),
            list => {
                let shown: Vec<&str> = list.iter().take(5).map(String::as_str).collect();
                let more = list.len().saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!(
                    "{schema} (holds {}{more}, not created by generate)",
                    shown.join(", ")
                )
            }
        })
        .collect();
    let database: String = client
        .query_one("select current_database()::text", &[])
        .await
        .map_err(|e| db_err("cannot read the database name", e))?
        .get(0);
    Err(Error::runtime(format!(
        "refusing to replace raw schemas of database '{database}' that hold data generate did not create: {}; nothing was changed. Point generate at a scratch database (the dbname setting, from {dbname_from}), or pass --replace-raw to drop these schemas and everything in them",
        described.join(", ")
    )))
}

/// Loads generated data into the raw schemas, after [`check_raw_schemas`] (`guard`:
/// whether to replace anyway, and where dbname came from).
async fn load_raw(
    client: &Client,
    opts: &GenOptions,
    guard: (bool, &str),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<(String, usize)>> {
    check_raw_schemas(client, guard.0, guard.1).await?;
    let drop: String = contract::schemas()
        .iter()
        .map(|s| format!("drop schema if exists {s} cascade;\n"))
        .collect();
    let mark: String = contract::schemas()
        .iter()
        .map(|s| format!("comment on schema {s} is '{MARK}';\n"))
        .collect();
    client
        .batch_execute(&drop)
        .await
        .map_err(|e| db_err("cannot reset the raw schemas", e))?;
    client
        .batch_execute(&format!("{}\n{mark}", contract::ddl()))
        .await
        .map_err(|e| db_err("cannot create the raw tables", e))?;
    // Streamed: a blocking thread generates each table in row-aligned chunks that
    // go straight into COPY, so a large scale never sits in memory.
    let dataset = std::sync::Arc::new(Dataset::new(opts));
    let mut loaded = Vec::new();
    for table in Table::ALL {
        let label = format!("{}.{}", table.schema(), table.name());
        progress(&format!("Loading {label}"));
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
        let started = Instant::now();
        let mut next_report = started + PROGRESS_EVERY;
        let mut rows_so_far = 0usize;
        while let Some(chunk) = rx.recv().await {
            // COPY's text format: one line a row (newlines in values are escaped).
            rows_so_far += chunk.bytes().filter(|b| *b == b'\n').count();
            sink.send(Bytes::from(chunk.into_bytes()))
                .await
                .map_err(|e| db_err(&format!("cannot load {label}"), e))?;
            if Instant::now() >= next_report {
                progress(&format!(
                    "{label}: {rows_so_far} rows so far ({:.0}s)",
                    started.elapsed().as_secs_f64()
                ));
                next_report = Instant::now() + PROGRESS_EVERY;
            }
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
    replace_raw: bool,
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
    let progress = |line: &str| out.info("generate_progress", line);
    let loaded = load(
        inv,
        &settings,
        &opts,
        "while loading generated data",
        replace_raw,
        &progress,
    )?;
    for (table, rows) in loaded {
        out.info("generated", &format!("{table:<28} {rows:>10} rows"));
    }
    out.info(
        "generated",
        &format!("Done in {:.1}s", started.elapsed().as_secs_f64()),
    );
    Ok(0)
}
