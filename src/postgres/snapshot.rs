//! Snapshots: the table of the versions of a query's rows, with dbt-core 1.10's
//! meta columns (`dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from`,
//! `dbt_valid_to`, and `dbt_is_deleted` with `hard_deletes: new_record`) filled
//! by the same SQL as dbt-postgres', so that a snapshot one tool started the
//! other can continue.
//!
//! - **First build** (no table yet): the query with the meta columns, built and
//!   swapped in like a table ([`super::swap`]).
//! - **Later builds**, in one transaction: serialise with the swap's advisory
//!   lock; compute the change set (dbt's staging query: new versions to insert,
//!   current versions to close, deleted keys per `hard_deletes`) into a temporary
//!   table dropped at commit; `SAVEPOINT rt_built`; lock the table as an
//!   increment does (`EXCLUSIVE`, or `ACCESS EXCLUSIVE` when columns are added
//!   or widened; the same lock_timeout and retries); widen string columns, add
//!   the query's new columns; close the changed versions (`update … set
//!   dbt_valid_to`) and insert the new ones; commit. A failure or an interrupt
//!   rolls everything back: the table keeps its previous contents. Hooks run
//!   as around a table's build: `before_begin` pre-hooks first, the other
//!   pre-hooks once serialised, the other post-hooks before the commit,
//!   `after_commit` ones after it.

use tokio_postgres::{Client, Transaction};

use crate::manifest::{quote_ident, Node};
use crate::project::{HardDeletes, SnapshotConfig, SnapshotStrategy};
use crate::results::{Built, NodeFailure};

use super::hooks;
use super::incremental::{
    alter_column_type, columns, exec, expansions, lock, serialised_table, temp_table,
};
use super::swap::{self, check_interrupted, derived_name, Failure, Names, Notify, SwapOptions};

/// dbt-postgres' `snapshot_get_time()`.
const NOW: &str = "now()::timestamp without time zone";

/// Builds snapshot `node` whose query is `sql`: its first table, or the next
/// versions (see the module documentation).
pub(super) async fn build(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, NodeFailure> {
    let config = match SnapshotConfig::of(&node.config, &node.database, &node.name) {
        Ok(c) => c,
        Err(message) => return Err(NodeFailure::Compile { message }),
    };
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let exists = match client
        .query_opt(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
            &[&node.stored_schema(), &node.stored_alias()],
        )
        .await
    {
        Ok(row) => row.map(|r| r.get::<_, i8>(0)),
        Err(e) => return swap::outcome(Err(e.into()), node, opts),
    };
    match exists {
        None => {
            let first = first_build_sql(&config, sql);
            swap::materialize(client, node, &first, suffix, opts, notify).await
        }
        Some(k) if k == b'r' as i8 || k == b'p' as i8 => {
            let r = apply(client, node, &config, sql, suffix, opts, notify).await;
            swap::outcome(r, node, opts)
        }
        Some(_) => Err(NodeFailure::Sql {
            sqlstate: None,
            message: format!(
                "{}.{} is not a table, so it cannot hold a snapshot; drop it or give the snapshot another alias",
                node.schema, node.alias
            ),
        }),
    }
}

/// dbt's `snapshot_hash_arguments`: the md5 of the arguments joined by `|`.
fn hash(args: &[String]) -> String {
    let parts: Vec<String> = args
        .iter()
        .map(|a| format!("coalesce(cast({a} as varchar ), '')"))
        .collect();
    format!("md5({})", parts.join(" || '|' || "))
}

/// The expression that stamps versions: `updated_at`, else the current time.
fn updated_at(config: &SnapshotConfig) -> String {
    match &config.strategy {
        SnapshotStrategy::Timestamp { updated_at } => updated_at.clone(),
        SnapshotStrategy::Check { updated_at, .. } => {
            updated_at.clone().unwrap_or_else(|| NOW.to_string())
        }
    }
}

/// `dbt_scd_id`'s expression: the hash of the key and the stamp.
fn scd_id(config: &SnapshotConfig) -> String {
    let mut args = config.unique_key.clone();
    args.push(updated_at(config));
    hash(&args)
}

/// dbt's `get_dbt_valid_to_current`: null (or `dbt_valid_to_current`) typed as
/// the stamp.
fn valid_to_current(config: &SnapshotConfig) -> String {
    let u = updated_at(config);
    format!(
        "coalesce(nullif({u}, {u}), {}) as {}",
        config.valid_to_current.as_deref().unwrap_or("null"),
        config.columns.valid_to
    )
}

/// dbt's `build_snapshot_table`: the first table.
fn first_build_sql(config: &SnapshotConfig, sql: &str) -> String {
    let c = &config.columns;
    let u = updated_at(config);
    let deleted = match config.hard_deletes {
        HardDeletes::NewRecord => format!(", 'False' as {}", c.is_deleted),
        _ => String::new(),
    };
    format!(
        "select *,\n    {} as {},\n    {u} as {},\n    {u} as {},\n    {}{deleted}\nfrom (\n{sql}\n) sbq",
        scd_id(config),
        c.scd_id,
        c.updated_at,
        c.valid_from,
        valid_to_current(config)
    )
}

fn key_fields(config: &SnapshotConfig) -> String {
    if config.composite {
        config
            .unique_key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        format!("{} as dbt_unique_key", config.unique_key[0])
    }
}

fn key_join(config: &SnapshotConfig, a: &str, b: &str) -> String {
    if config.composite {
        (1..=config.unique_key.len())
            .map(|i| format!("({a}.dbt_unique_key_{i} = {b}.dbt_unique_key_{i})"))
            .collect::<Vec<_>>()
            .join(" and ")
    } else {
        format!("{a}.dbt_unique_key = {b}.dbt_unique_key")
    }
}

fn key_null(config: &SnapshotConfig, a: &str, not: bool) -> String {
    let col = if config.composite {
        "dbt_unique_key_1"
    } else {
        "dbt_unique_key"
    };
    format!("{a}.{col} is {}null", if not { "not " } else { "" })
}

/// The columns a change set has that the table must not get.
fn helper_column(name: &str, config: &SnapshotConfig) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "dbt_change_type"
        || lower == "dbt_unique_key"
        || (config.composite
            && lower
                .strip_prefix("dbt_unique_key_")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n >= 1 && n <= config.unique_key.len()))
}

/// Column names of a query, without running it.
async fn query_columns(tx: &Transaction<'_>, sql: &str) -> Result<Vec<String>, Failure> {
    let statement = format!("select * from (\n{sql}\n) as __dbt_sbq where false limit 0");
    let prepared = tx
        .prepare(&statement)
        .await
        .map_err(|error| Failure::Db { error, statement })?;
    Ok(prepared
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect())
}

/// dbt's `snapshot_staging_table`: the change set, from the query `sql` and the
/// table `target` (whose columns are `existing`).
async fn staging_sql(
    tx: &Transaction<'_>,
    config: &SnapshotConfig,
    sql: &str,
    target: &str,
    existing: &[String],
) -> Result<String, Failure> {
    let c = &config.columns;
    let u = updated_at(config);
    let (snap, src) = ("snapshotted_data", "source_data");
    let row_changed = match &config.strategy {
        SnapshotStrategy::Timestamp { updated_at } => {
            format!("({snap}.{} < {src}.{updated_at})", c.valid_from)
        }
        SnapshotStrategy::Check { cols, .. } => {
            let query_cols = match cols {
                None => query_columns(tx, sql).await?,
                Some(list) => {
                    let select = format!("select {} from (\n{sql}\n) subq", list.join(", "));
                    query_columns(tx, &select).await?
                }
            };
            let added = query_cols.iter().any(|q| !existing.contains(q));
            if added {
                "(TRUE)".to_string()
            } else {
                let checks: Vec<String> = query_cols
                    .iter()
                    .map(|q| {
                        let col = quote_ident(q);
                        format!(
                            "{snap}.{col} != {src}.{col}\n        or\n        (\n            (({snap}.{col} is null) and not ({src}.{col} is null))\n            or\n            ((not {snap}.{col} is null) and ({src}.{col} is null))\n        )"
                        )
                    })
                    .collect();
                format!("({})", checks.join(" or "))
            }
        }
    };
    let new_record = config.hard_deletes == HardDeletes::NewRecord;
    let deletes = config.hard_deletes != HardDeletes::Ignore;
    let current_filter = match &config.valid_to_current {
        Some(cur) => format!("( ({} = {cur}) or {} is null )", c.valid_to, c.valid_to),
        None => format!("{} is null", c.valid_to),
    };
    let deleted_is_current = match &config.valid_to_current {
        Some(cur) => format!("{snap}.{} = {cur}", c.valid_to),
        None => format!("{snap}.{} is null", c.valid_to),
    };
    let keys = key_fields(config);
    let or_deleted = if new_record {
        format!(" or {snap}.{} = 'True'", c.is_deleted)
    } else {
        String::new()
    };
    let mut q = format!(
        "with snapshot_query as (\n\n{sql}\n\n),\n\
         snapshotted_data as (\n    select *, {keys}\n    from {target}\n    where {current_filter}\n),\n\
         insertions_source_data as (\n    select *, {keys},\n        {u} as {ua},\n        {u} as {vf},\n        {vtc},\n        {scd} as {scd_col}\n    from snapshot_query\n),\n\
         updates_source_data as (\n    select *, {keys},\n        {u} as {ua},\n        {u} as {vf},\n        {u} as {vt}\n    from snapshot_query\n),\n",
        ua = c.updated_at,
        vf = c.valid_from,
        vt = c.valid_to,
        vtc = valid_to_current(config),
        scd = scd_id(config),
        scd_col = c.scd_id,
    );
    if deletes {
        q.push_str(&format!(
            "deletes_source_data as (\n    select *, {keys}\n    from snapshot_query\n),\n"
        ));
    }
    q.push_str(&format!(
        "insertions as (\n    select 'insert' as dbt_change_type, source_data.*{isdel}\n    from insertions_source_data as source_data\n    left outer join snapshotted_data on {join}\n    where {snap_null}\n    or ({snap_not_null} and ({row_changed}{or_deleted}))\n),\n\
         updates as (\n    select 'update' as dbt_change_type, source_data.*, {snap}.{scd_col}{snap_isdel}\n    from updates_source_data as source_data\n    join snapshotted_data on {join}\n    where ({row_changed}{or_deleted})\n)",
        isdel = if new_record { format!(", 'False' as {}", c.is_deleted) } else { String::new() },
        join = key_join(config, snap, src),
        snap_null = key_null(config, snap, false),
        snap_not_null = key_null(config, snap, true),
        scd_col = c.scd_id,
        snap_isdel = if new_record { format!(", {snap}.{}", c.is_deleted) } else { String::new() },
    ));
    let not_deleted_current = format!(
        "\n    and not ({snap}.{} = 'True' and {deleted_is_current})",
        c.is_deleted
    );
    if deletes {
        q.push_str(&format!(
            ",\ndeletes as (\n    select 'delete' as dbt_change_type, source_data.*,\n        {NOW} as {vf},\n        {NOW} as {ua},\n        {NOW} as {vt},\n        {snap}.{scd_col}{snap_isdel}\n    from snapshotted_data\n    left join deletes_source_data as source_data on {join}\n    where {src_null}{extra}\n)",
            vf = c.valid_from,
            ua = c.updated_at,
            vt = c.valid_to,
            scd_col = c.scd_id,
            snap_isdel = if new_record { format!(", {snap}.{}", c.is_deleted) } else { String::new() },
            join = key_join(config, snap, src),
            src_null = key_null(config, src, false),
            extra = if new_record { not_deleted_current.clone() } else { String::new() },
        ));
    }
    if new_record {
        let source_cols = query_columns(tx, sql).await?;
        let mut cols = String::new();
        for name in &source_cols {
            let from = if existing.contains(name) { snap } else { src };
            cols.push_str(&format!("{from}.{}, ", quote_ident(name)));
        }
        let keys_again = if config.composite {
            (1..=config.unique_key.len())
                .map(|i| {
                    format!(
                        "{snap}.{} as dbt_unique_key_{i}, ",
                        config.unique_key[i - 1]
                    )
                })
                .collect::<String>()
        } else {
            format!("{snap}.dbt_unique_key as dbt_unique_key, ")
        };
        q.push_str(&format!(
            ",\ndeletion_records as (\n    select 'insert' as dbt_change_type, {cols}{keys_again}\n        {NOW} as {vf},\n        {NOW} as {ua},\n        {snap}.{vt} as {vt},\n        {new_scd} as {scd_col},\n        'True' as {isdel}\n    from snapshotted_data\n    left join deletes_source_data as source_data on {join}\n    where {src_null}{not_deleted_current}\n)",
            vf = c.valid_from,
            ua = c.updated_at,
            vt = c.valid_to,
            new_scd = hash(&[c.scd_id.clone(), NOW.to_string()]),
            scd_col = c.scd_id,
            isdel = c.is_deleted,
            join = key_join(config, snap, src),
            src_null = key_null(config, src, false),
        ));
    }
    q.push_str("\nselect * from insertions\nunion all\nselect * from updates");
    if deletes {
        q.push_str("\nunion all\nselect * from deletes");
    }
    if new_record {
        q.push_str("\nunion all\nselect * from deletion_records");
    }
    Ok(q)
}

/// The next versions of an existing snapshot table (see the module
/// documentation). On failure nothing has changed.
async fn apply(
    client: &mut Client,
    node: &Node,
    config: &SnapshotConfig,
    sql: &str,
    suffix: &str,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, Failure> {
    let names = Names {
        schema: node.stored_schema(),
        target: node.stored_alias(),
        tmp: derived_name(&node.stored_alias(), &format!("__rt_snap_{suffix}")),
        old: String::new(),
        display: format!("{}.{}", node.schema, node.alias),
        renames: Vec::new(),
    };
    hooks::run(&*client, node, &node.rendered_hooks.pre, false).await?;
    let tx = client.transaction().await?;
    let target_oid = serialised_table(
        &tx,
        &names,
        opts,
        notify,
        "its snapshot could be taken",
        "rerun",
    )
    .await?;
    hooks::run(&tx, node, &node.rendered_hooks.pre, true).await?;
    let target_cols = columns(&tx, target_oid).await?;
    let existing: Vec<String> = target_cols.iter().map(|c| c.name.clone()).collect();
    let c = &config.columns;
    let mut needed = vec![&c.valid_from, &c.valid_to, &c.scd_id, &c.updated_at];
    if config.hard_deletes == HardDeletes::NewRecord {
        needed.push(&c.is_deleted);
    }
    let missing: Vec<&str> = needed
        .iter()
        .filter(|n| !existing.iter().any(|e| e.eq_ignore_ascii_case(n)))
        .map(|n| n.as_str())
        .collect();
    // dbt adds a missing dbt_is_deleted (a snapshot that moves to new_record);
    // the other meta columns must be there.
    if missing.iter().any(|m| *m != c.is_deleted) {
        return Err(Failure::Compile(format!(
            "Snapshot target is missing configured columns: {}; {} was not built by a snapshot with these snapshot_meta_column_names (rename its columns, or drop it to start over)",
            missing.join(", "),
            names.display
        )));
    }
    let target = node.relation_name();
    // The snapshot's SQL header, before its SQL is read (dbt-postgres runs it
    // in front of the staging table's create statement).
    super::header::run(&tx, node).await?;
    let staging = staging_sql(&tx, config, sql, &target, &existing).await?;
    let tmp_oid = temp_table(&tx, &names.tmp, &staging).await?;
    let staged = columns(&tx, tmp_oid).await?;
    let staged: Vec<_> = staged
        .into_iter()
        .filter(|s| !helper_column(&s.name, config))
        .collect();
    let widen = expansions(&staged, &target_cols);
    let added: Vec<_> = staged
        .iter()
        .filter(|s| !existing.contains(&s.name))
        .collect();
    tx.batch_execute("savepoint rt_built").await?;
    lock(
        &tx,
        &names,
        target_oid,
        !widen.is_empty() || !added.is_empty(),
        opts,
        notify,
    )
    .await?;
    let table = quote_ident(&names.schema) + "." + &quote_ident(&names.target);
    for (name, new_type) in &widen {
        alter_column_type(&tx, &table, name, new_type).await?;
    }
    for col in &added {
        exec(
            &tx,
            format!(
                "alter table {table} add column {} {}",
                quote_ident(&col.name),
                col.ddl_type()
            ),
        )
        .await?;
    }
    let tmp = quote_ident(&names.tmp);
    let current_cond = match &config.valid_to_current {
        Some(cur) => format!(
            "({target}.{vt} = {cur} or {target}.{vt} is null)",
            vt = c.valid_to
        ),
        None => format!("{target}.{} is null", c.valid_to),
    };
    exec(
        &tx,
        format!(
            "update {target}\n    set {vt} = DBT_INTERNAL_SOURCE.{vt}\n    from {tmp} as DBT_INTERNAL_SOURCE\n    where DBT_INTERNAL_SOURCE.{scd}::text = {target}.{scd}::text\n      and DBT_INTERNAL_SOURCE.dbt_change_type::text in ('update'::text, 'delete'::text)\n      and {current_cond}",
            vt = c.valid_to,
            scd = c.scd_id,
        ),
    )
    .await?;
    let cols: Vec<String> = staged.iter().map(|s| quote_ident(&s.name)).collect();
    let values: Vec<String> = cols
        .iter()
        .map(|q| format!("DBT_INTERNAL_SOURCE.{q}"))
        .collect();
    let n = exec(
        &tx,
        format!(
            "insert into {target} ({})\n    select {}\n    from {tmp} as DBT_INTERNAL_SOURCE\n    where DBT_INTERNAL_SOURCE.dbt_change_type::text = 'insert'::text",
            cols.join(", "),
            values.join(", ")
        ),
    )
    .await?;
    hooks::run(&tx, node, &node.rendered_hooks.post, true).await?;
    check_interrupted(opts)?;
    tx.commit().await?;
    hooks::run(&*client, node, &node.rendered_hooks.post, false).await?;
    Ok(Built {
        message: format!("INSERT 0 {n}"),
        code: "INSERT".to_string(),
        rows: Some(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_dbt() {
        assert_eq!(
            hash(&["id".into(), "updated_at".into()]),
            "md5(coalesce(cast(id as varchar ), '') || '|' || coalesce(cast(updated_at as varchar ), ''))"
        );
    }
}
