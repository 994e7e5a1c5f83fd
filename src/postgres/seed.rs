//! Loading a seed inside a safe swap ([`super::swap`]): the CSV's rows are
//! streamed with `COPY … FROM STDIN` into a new table under the temporary name,
//! which is then swapped in like a table model's, so readers never see the seed
//! empty or half-loaded and a failed load leaves the previous version untouched.
//!
//! dbt's seed creates the table on the first load and later truncates and
//! inserts into it, keeping its columns (`--full-refresh` drops and recreates
//! it). The swap builds a new table instead, with the same result:
//!
//! - first load, or `--full-refresh`: the columns as inferred (or `column_types`);
//! - a reload: the existing table's columns, types, defaults and checks (`LIKE`),
//!   a CSV column the table does not have failing as dbt's insert does. The
//!   values are written as dbt's driver sends them: text values are read by the
//!   column's type, and where a typed value (a number, a date…) meets a column
//!   of another type, it goes through a staging table of its own type so that
//!   PostgreSQL converts it as it converts dbt's typed parameters.
//!
//! Messages are dbt's: `INSERT <rows>`, or `CREATE <rows>` for a full refresh.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Transaction;

use crate::manifest::{quote_ident, relation_name};
use crate::seed::{self, Inferred, Output, SeedFile, Shape};

use super::swap::{current, Failure, Names, SwapOptions};

/// A seed ready to load: its file, what the first reading found, and how.
pub(crate) struct SeedLoad {
    pub(crate) file: SeedFile,
    pub(crate) shape: Shape,
    /// `--full-refresh` (or the seed's `full_refresh` config).
    pub(crate) full_refresh: bool,
    pub(crate) quote_columns: bool,
}

/// Bytes handed to the server per COPY message.
const CHUNK: usize = 256 * 1024;

/// Builds the new version of the seed under `names.tmp`: `(message, code, rows)`.
pub(super) async fn build(
    tx: &Transaction<'_>,
    names: &Names,
    load: &SeedLoad,
    opts: &SwapOptions,
) -> Result<(String, String, Option<u64>), Failure> {
    let file = &load.file.display;
    let existing = current(tx, &names.schema, &names.target).await?;
    let reload = match existing {
        None => false,
        Some((_, kind)) if kind == b'r' as i8 || kind == b'p' as i8 => !load.full_refresh,
        Some((_, kind)) => {
            let what = if kind == b'v' as i8 {
                "a view"
            } else {
                "not a table"
            };
            return Err(Failure::Seed(format!(
                "cannot seed to {}: it is {what}; drop it, or give the seed {file} another alias",
                names.display
            )));
        }
    };
    let columns = identifiers(tx, load).await?;
    let tmp = relation_name(&names.schema, &names.tmp);
    let shape = &load.shape;
    let mut outputs = vec![Output::Natural; columns.len()];
    let mut staging: Option<Vec<String>> = None;
    if reload {
        let oid = existing.map(|e| e.0).unwrap_or_default();
        let rows = tx
            .query(
                "select attname::text, format_type(atttypid, atttypmod) from pg_attribute where attrelid = $1 and attnum > 0 and not attisdropped order by attnum",
                &[&oid],
            )
            .await?;
        let old: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut types = Vec::new();
        for c in &columns {
            match old.iter().find(|(n, _)| n == c) {
                Some((_, t)) => types.push(t.clone()),
                None => {
                    return Err(Failure::Seed(format!(
                        "column \"{c}\" of relation \"{}\" does not exist: a seed keeps its table's columns between loads, as dbt's does; run with --full-refresh to recreate {} with the columns of {file}",
                        names.target, names.display
                    )))
                }
            }
        }
        tx.batch_execute(&format!(
            "create table {tmp} (like {} including defaults including constraints including generated including identity including storage including compression)",
            relation_name(&names.schema, &names.target)
        ))
        .await?;
        // Typed values meeting a column of another type go through staging.
        let direct = shape
            .types
            .iter()
            .zip(&types)
            .all(|(t, old)| t.sends_text() || t.sql_type() == Some(old.as_str()));
        if !direct {
            let staged: Vec<String> = shape
                .types
                .iter()
                .zip(&types)
                .map(|(t, old)| match t {
                    t if t.sends_text() => old.clone(),
                    Inferred::Number { .. } => "numeric".to_string(),
                    t => t.sql_type().unwrap_or("text").to_string(),
                })
                .collect();
            for (o, t) in outputs.iter_mut().zip(&shape.types) {
                if matches!(t, Inferred::Number { .. }) {
                    *o = Output::Numeric;
                }
            }
            staging = Some(staged);
        }
    } else {
        let defs: Vec<String> = columns
            .iter()
            .zip(&shape.types)
            .zip(&shape.columns)
            .map(|((ident, t), name)| {
                let ty = match load.file.column_types.get(name) {
                    // The project's own type, as dbt puts it in the DDL.
                    Some(ty) => ty.clone(),
                    None => t.sql_type().unwrap_or("text").to_string(),
                };
                format!("{} {ty}", quote_ident(ident))
            })
            .collect();
        let statement = format!("create table {tmp} ({})", defs.join(", "));
        tx.batch_execute(&statement)
            .await
            .map_err(|error| Failure::Db { error, statement })?;
    }
    let column_list = columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = match &staging {
        None => copy(tx, &format!("{tmp} ({column_list})"), load, &outputs, opts).await?,
        Some(types) => {
            let stage = quote_ident(&format!("{}_stage", names.tmp));
            let defs: Vec<String> = columns
                .iter()
                .zip(types)
                .map(|(c, t)| format!("{} {t}", quote_ident(c)))
                .collect();
            tx.batch_execute(&format!(
                "create temporary table {stage} ({}) on commit drop",
                defs.join(", ")
            ))
            .await?;
            let n = copy(
                tx,
                &format!("{stage} ({column_list})"),
                load,
                &outputs,
                opts,
            )
            .await?;
            let statement =
                format!("insert into {tmp} ({column_list}) select {column_list} from {stage}");
            tx.execute(statement.as_str(), &[])
                .await
                .map_err(|error| Failure::Db { error, statement })?;
            tx.batch_execute(&format!("drop table {stage}")).await?;
            n
        }
    };
    let code = if load.full_refresh {
        "CREATE"
    } else {
        "INSERT"
    };
    Ok((format!("{code} {rows}"), code.to_string(), Some(rows)))
}

/// The column names as they go into the DDL: as they are (`quote_columns`, the
/// default), or as PostgreSQL reads them unquoted: folded to lower case, and
/// refused when they could not be written unquoted (dbt's SQL would not parse).
async fn identifiers(tx: &Transaction<'_>, load: &SeedLoad) -> Result<Vec<String>, Failure> {
    if load.quote_columns {
        return Ok(load.shape.columns.clone());
    }
    let reserved: BTreeSet<String> = tx
        .query(
            "select word from pg_get_keywords() where catcode in ('R', 'T')",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for c in &load.shape.columns {
        let mut chars = c.chars();
        let ident =
            |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || ch == '$' || !ch.is_ascii();
        let ok = matches!(chars.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || !f.is_ascii())
            && chars.all(ident);
        let folded = c.to_ascii_lowercase();
        if !ok || reserved.contains(&folded) {
            return Err(Failure::Seed(format!(
                "column '{c}' of {} cannot be written unquoted, and quote_columns is false; set quote_columns to true or rename the column",
                load.file.display
            )));
        }
        out.push(folded);
    }
    Ok(out)
}

/// Streams the CSV's rows into `target` (`relation (columns)`) with COPY; the
/// number of rows. The file is read on a blocking thread, a few chunks ahead.
async fn copy(
    tx: &Transaction<'_>,
    target: &str,
    load: &SeedLoad,
    outputs: &[Output],
    opts: &SwapOptions,
) -> Result<u64, Failure> {
    let statement = format!("copy {target} from stdin");
    let sink = tx
        .copy_in::<_, Bytes>(statement.as_str())
        .await
        .map_err(|error| Failure::Db {
            error,
            statement: statement.clone(),
        })?;
    let mut sink = std::pin::pin!(sink);
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let (file, shape, outputs) = (load.file.clone(), load.shape.clone(), outputs.to_vec());
    let reader = tokio::task::spawn_blocking(move || {
        seed::stream(&file, &shape, &outputs, CHUNK, &mut |c| {
            chunks.blocking_send(c).is_ok()
        })
    });
    let mut sent: Result<(), Failure> = Ok(());
    loop {
        let next = tokio::select! {
            c = received.recv() => c,
            _ = opts.cancel_token().cancelled() => {
                sent = Err(Failure::Interrupted);
                break;
            }
        };
        let Some(chunk) = next else { break };
        if let Err(error) = sink.send(Bytes::from(chunk)).await {
            sent = Err(Failure::Db {
                error,
                statement: String::new(),
            });
            break;
        }
    }
    drop(received); // stops the reader if the load stopped first
    sent?;
    let read = reader
        .await
        .map_err(|e| Failure::Seed(format!("{}: the reader failed: {e}", load.file.display)))?;
    if let Err(e) = read {
        return Err(Failure::Seed(format!("{}: {e}", load.file.display)));
    }
    let n = sink.as_mut().finish().await.map_err(|error| Failure::Db {
        error,
        statement: String::new(),
    })?;
    Ok(n)
}
