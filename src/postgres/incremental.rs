//! Increments of incremental models: how new rows reach a table that already
//! exists, with dbt-postgres' strategies and `on_schema_change`, in one
//! transaction so that a failure or an interrupt changes nothing.
//!
//! (The first build, a `--full-refresh` and `full_refresh: true` build the table
//! through the safe swap, [`super::swap`], like a table model.)
//!
//! 1. **Serialise** with the same advisory lock as a swap of the relation.
//! 2. **Compute** the increment: the model's SQL (compiled with `is_incremental()`
//!    true) into a temporary table dropped at commit, then `SAVEPOINT rt_built`.
//! 3. **Lock** the table: `EXCLUSIVE` mode (readers still read; other writers
//!    wait), `ACCESS EXCLUSIVE` when its columns change. First without queueing
//!    for up to `lock_timeout`, then queued for at most `lock_timeout`; on timeout
//!    roll back to the savepoint, back off and retry up to `swap_retries` times,
//!    then fail naming the sessions holding it.
//! 4. **Apply**, as dbt-postgres does: widen the table's string columns the
//!    increment needs wider (dbt's `expand_target_column_types`: a new column of
//!    the wider type, copied, the old one dropped and the new one renamed, so it
//!    moves to the end), then `on_schema_change` (`ignore`: the table's columns;
//!    `fail`: any change is an error; `append_new_columns`: add the increment's new
//!    columns; `sync_all_columns`: also drop the columns it lacks and change types),
//!    then the strategy: `append` (insert), `delete+insert` (delete the rows whose
//!    `unique_key` the increment has, then insert), `merge` (PostgreSQL 15's MERGE
//!    on the `unique_key`, updating all columns, `merge_update_columns` or all but
//!    `merge_exclude_columns`); `incremental_predicates` restrict the delete or
//!    the merge's match. Without `incremental_strategy`, `delete+insert` when there
//!    is a `unique_key`, else `append`.
//!    Then the `grants` (the table then has exactly the configured privileges),
//!    the `persist_docs` comments ([`super::comments`]) and the in-transaction
//!    post-hooks, in dbt's order.
//! 5. **Commit.** Hooks run as for a swap ([`super::hooks`]): `before_begin`
//!    pre-hooks before the transaction, the other pre-hooks after step 1, the
//!    other post-hooks before the commit, `after_commit` ones after it. A column
//!    is never dropped with CASCADE: a view that uses it fails the model, and
//!    everything stays as it was.

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio_postgres::{Client, Transaction};

use crate::manifest::{quote_ident, relation_name, Node};
use crate::results::Built;

use super::swap::{
    check_interrupted, current, derived_name, is_lock_wait, jitter, serialise, timed_out, Failure,
    Names, Notify, SwapOptions,
};
use super::{comments, grants, hooks};

/// The strategy of an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Append,
    DeleteInsert,
    Merge,
}

/// `on_schema_change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnSchemaChange {
    Ignore,
    Fail,
    AppendNewColumns,
    SyncAllColumns,
}

/// The incremental configs of a model (their shapes were checked at load).
struct Config {
    strategy: Strategy,
    /// `microbatch`: dbt-postgres merges each batch on the `unique_key`.
    microbatch: bool,
    unique_key: Vec<String>,
    predicates: Vec<String>,
    update_columns: Option<Vec<String>>,
    exclude_columns: Option<Vec<String>>,
    on_schema_change: OnSchemaChange,
}

fn strings(v: Option<&Json>) -> Option<Vec<String>> {
    match v? {
        Json::String(s) => Some(vec![s.clone()]),
        Json::Array(items) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

impl Config {
    fn of(node: &Node) -> Config {
        let get = |k: &str| node.config.get(k).filter(|v| !v.is_null());
        let unique_key: Vec<String> = strings(get("unique_key"))
            .unwrap_or_default()
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect();
        let strategy = match get("incremental_strategy").and_then(Json::as_str) {
            Some("append") => Strategy::Append,
            Some("delete+insert") => Strategy::DeleteInsert,
            Some("merge" | "microbatch") => Strategy::Merge,
            // dbt-postgres' default.
            _ if unique_key.is_empty() => Strategy::Append,
            _ => Strategy::DeleteInsert,
        };
        // `predicates` is dbt's older name; it wins when both are set, as in dbt.
        let predicates = strings(get("predicates"))
            .filter(|p| !p.is_empty())
            .or_else(|| strings(get("incremental_predicates")))
            .unwrap_or_default();
        let on_schema_change = match get("on_schema_change").and_then(Json::as_str) {
            Some("fail") => OnSchemaChange::Fail,
            Some("append_new_columns") => OnSchemaChange::AppendNewColumns,
            Some("sync_all_columns") => OnSchemaChange::SyncAllColumns,
            _ => OnSchemaChange::Ignore,
        };
        Config {
            strategy,
            microbatch: get("incremental_strategy").and_then(Json::as_str) == Some("microbatch"),
            unique_key,
            predicates,
            update_columns: strings(get("merge_update_columns")).filter(|c| !c.is_empty()),
            exclude_columns: strings(get("merge_exclude_columns")).filter(|c| !c.is_empty()),
            on_schema_change,
        }
    }
}

/// A column as dbt-postgres describes it (`information_schema.columns`), with
/// PostgreSQL's own spelling of its type for DDL dbt's cannot express.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    /// `information_schema.columns.data_type`.
    dtype: String,
    char_size: Option<i32>,
    precision: Option<i32>,
    scale: Option<i32>,
    /// `format_type()`.
    formatted: String,
}

impl Column {
    fn is_string(&self) -> bool {
        matches!(
            self.dtype.to_ascii_lowercase().as_str(),
            "text" | "character varying" | "character" | "varchar"
        )
    }

    /// dbt's size of a string column: 256 for `text` and unsized ones.
    fn string_size(&self) -> i32 {
        match self.char_size {
            Some(n) if self.dtype != "text" => n,
            _ => 256,
        }
    }

    /// dbt-postgres' data type, which it compares and writes in DDL.
    fn data_type(&self) -> String {
        let d = self.dtype.to_ascii_lowercase();
        if d == "text" || (d == "character varying" && self.char_size.is_none()) {
            self.dtype.clone()
        } else if self.is_string() {
            format!("character varying({})", self.string_size())
        } else if d == "numeric" || d == "decimal" {
            match (self.precision, self.scale) {
                (Some(p), Some(s)) => format!("{}({p},{s})", self.dtype),
                _ => self.dtype.clone(),
            }
        } else {
            self.dtype.clone()
        }
    }

    /// The type to write in DDL: dbt's, unless it names no type (arrays, enums,
    /// domains and other user-defined types read `ARRAY`, `USER-DEFINED`).
    pub(super) fn ddl_type(&self) -> String {
        match self.dtype.as_str() {
            "ARRAY" | "USER-DEFINED" => self.formatted.clone(),
            _ => self.data_type(),
        }
    }

    /// dbt's `can_expand_to`: both strings and `other` is longer.
    fn can_expand_to(&self, other: &Column) -> bool {
        self.is_string() && other.is_string() && other.string_size() > self.string_size()
    }
}

pub(super) async fn columns(
    tx: &Transaction<'_>,
    oid: u32,
) -> Result<Vec<Column>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "select a.attname::text, c.data_type::text, c.character_maximum_length::int4,
                    c.numeric_precision::int4, c.numeric_scale::int4, format_type(a.atttypid, a.atttypmod)
             from pg_attribute a
             join pg_class r on r.oid = a.attrelid
             join pg_namespace n on n.oid = r.relnamespace
             join information_schema.columns c
               on c.table_schema = n.nspname and c.table_name = r.relname and c.column_name = a.attname
             where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
             order by a.attnum",
            &[&oid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            dtype: r.get(1),
            char_size: r.get(2),
            precision: r.get(3),
            scale: r.get(4),
            formatted: r.get(5),
        })
        .collect())
}

/// What `on_schema_change` compares: dbt's `check_for_schema_changes`.
struct SchemaChanges {
    source_not_in_target: Vec<Column>,
    target_not_in_source: Vec<Column>,
    /// (column, new type) for columns whose type differs and cannot expand.
    new_types: Vec<(String, String)>,
}

impl SchemaChanges {
    fn of(source: &[Column], target: &[Column]) -> SchemaChanges {
        let missing = |a: &[Column], b: &[Column]| -> Vec<Column> {
            a.iter()
                .filter(|c| !b.iter().any(|o| o.name == c.name))
                .cloned()
                .collect()
        };
        let new_types = source
            .iter()
            .filter_map(|sc| {
                let tc = target.iter().find(|t| t.name == sc.name)?;
                (sc.data_type() != tc.data_type() && !sc.can_expand_to(tc))
                    .then(|| (tc.name.clone(), sc.ddl_type()))
            })
            .collect();
        SchemaChanges {
            source_not_in_target: missing(source, target),
            target_not_in_source: missing(target, source),
            new_types,
        }
    }

    fn changed(&self) -> bool {
        !self.source_not_in_target.is_empty()
            || !self.target_not_in_source.is_empty()
            || !self.new_types.is_empty()
    }

    /// Whether applying `mode` alters the table.
    fn alters(&self, mode: OnSchemaChange) -> bool {
        match mode {
            OnSchemaChange::Ignore | OnSchemaChange::Fail => false,
            OnSchemaChange::AppendNewColumns => !self.source_not_in_target.is_empty(),
            OnSchemaChange::SyncAllColumns => self.changed(),
        }
    }
}

fn names_of(cols: &[Column]) -> String {
    let n: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    format!("[{}]", n.join(", "))
}

/// The string columns of the table that the increment needs wider:
/// (column, `character varying(n)`).
pub(super) fn expansions(source: &[Column], target: &[Column]) -> Vec<(String, String)> {
    source
        .iter()
        .filter_map(|reference| {
            let tc = target.iter().find(|t| t.name == reference.name)?;
            tc.can_expand_to(reference).then(|| {
                (
                    tc.name.clone(),
                    format!("character varying({})", reference.string_size()),
                )
            })
        })
        .collect()
}

/// Applies the increment of `node` (whose table exists) computed by `sql`; see
/// the module documentation. On failure nothing has changed.
pub(super) async fn increment(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, Failure> {
    let config = Config::of(node);
    if config.microbatch && config.unique_key.is_empty() {
        // dbt-postgres' message, when a batch is applied to an existing table.
        return Err(Failure::Compile(
            "dbt-postgres 'microbatch' requires a `unique_key` config; add one to the model"
                .to_string(),
        ));
    }
    let names = Names {
        schema: node.schema.clone(),
        target: node.alias.clone(),
        tmp: derived_name(&node.alias, &format!("__rt_inc_{suffix}")),
        old: String::new(),
        display: format!("{}.{}", node.schema, node.alias),
        renames: Vec::new(),
    };
    hooks::run(&*client, node, &node.rendered_hooks.pre, false).await?;
    let tx = client.transaction().await?;
    super::session::apply(&tx, node).await?;
    let target_oid = serialised_table(
        &tx,
        &names,
        opts,
        notify,
        "its increment could be applied",
        "rerun, or rebuild it with --full-refresh",
    )
    .await?;
    hooks::run(&tx, node, &node.rendered_hooks.pre, true).await?;

    // 2. The increment, in a temporary table that the commit drops (after the
    // model's SQL header, as dbt-postgres creates it).
    super::header::run(&tx, node).await?;
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let tmp_oid = temp_table(&tx, &names.tmp, sql).await?;
    let source = columns(&tx, tmp_oid).await?;
    let target = columns(&tx, target_oid).await?;
    let widen = expansions(&source, &target);
    // The table's columns once widened, as dbt then compares them.
    let mut widened = target.clone();
    for (name, _) in &widen {
        if let Some(i) = widened.iter().position(|c| &c.name == name) {
            let mut c = widened.remove(i);
            if let Some(s) = source.iter().find(|s| &s.name == name) {
                c.char_size = Some(s.string_size());
                c.dtype = "character varying".to_string();
            }
            widened.push(c);
        }
    }
    let changes = SchemaChanges::of(&source, &widened);
    if config.on_schema_change == OnSchemaChange::Fail && changes.changed() {
        return Err(Failure::Compile(format!(
            "The source and target schemas on this incremental model are out of sync (source columns not in target: {}; target columns not in source: {}; new column types: [{}]); {} was left as it was. Set on_schema_change to append_new_columns or sync_all_columns, rebuild it with --full-refresh, or change the table by hand",
            names_of(&changes.source_not_in_target),
            names_of(&changes.target_not_in_source),
            changes
                .new_types
                .iter()
                .map(|(c, t)| format!("{c} {t}"))
                .collect::<Vec<_>>()
                .join(", "),
            names.display
        )));
    }
    let alters = !widen.is_empty() || changes.alters(config.on_schema_change);
    tx.batch_execute("savepoint rt_built").await?;

    // 3. Lock the table.
    lock(&tx, &names, target_oid, alters, opts, notify).await?;

    // 4. Apply.
    let table = relation_name(&names.schema, &names.target);
    let tmp = quote_ident(&names.tmp);
    for (name, new_type) in &widen {
        alter_column_type(&tx, &table, name, new_type).await?;
    }
    match config.on_schema_change {
        OnSchemaChange::AppendNewColumns if !changes.source_not_in_target.is_empty() => {
            let adds: Vec<String> = changes
                .source_not_in_target
                .iter()
                .map(|c| format!("add column {} {}", quote_ident(&c.name), c.ddl_type()))
                .collect();
            exec(&tx, format!("alter table {table} {}", adds.join(", "))).await?;
        }
        OnSchemaChange::SyncAllColumns => {
            let mut parts: Vec<String> = changes
                .source_not_in_target
                .iter()
                .map(|c| format!("add column {} {}", quote_ident(&c.name), c.ddl_type()))
                .collect();
            parts.extend(
                changes
                    .target_not_in_source
                    .iter()
                    .map(|c| format!("drop column {}", quote_ident(&c.name))),
            );
            if !parts.is_empty() {
                exec(&tx, format!("alter table {table} {}", parts.join(", "))).await?;
            }
            for (name, new_type) in &changes.new_types {
                alter_column_type(&tx, &table, name, new_type).await?;
            }
        }
        _ => {}
    }
    // The columns written: the table's under `ignore`, the increment's otherwise.
    let dest: Vec<String> = match config.on_schema_change {
        OnSchemaChange::Ignore => columns(&tx, target_oid)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect(),
        _ => source.iter().map(|c| c.name.clone()).collect(),
    };
    if matches!(config.strategy, Strategy::Merge) {
        // dbt's merge statement carries the header in front of it as well.
        super::header::run(&tx, node).await?;
    }
    let built = apply(&tx, &config, &table, &tmp, &dest).await?;
    // dbt's order for an increment: grants (revoking what is not configured, the
    // table being kept), then the in-transaction post-hooks.
    if let Some(g) = &node.grants {
        grants::apply(&tx, &names.schema, &names.target, g, true).await?;
    }
    comments::persist(&tx, node, &names.schema, &names.target, "table", false).await?;
    hooks::run(&tx, node, &node.rendered_hooks.post, true).await?;
    check_interrupted(opts)?;
    tx.commit().await?;
    hooks::run(&*client, node, &node.rendered_hooks.post, false).await?;
    Ok(built)
}

/// Steps 1 and the check before 2, shared with snapshots: takes the advisory lock
/// of `names` and returns the oid of its table, which must still be one; `before`
/// ends "… disappeared before <before>", `fix` what to do when it is no table.
pub(super) async fn serialised_table(
    tx: &Transaction<'_>,
    names: &Names,
    opts: &SwapOptions,
    notify: &Notify<'_>,
    before: &str,
    fix: &str,
) -> Result<u32, Failure> {
    serialise(tx, names, opts, notify).await?;
    let Some((oid, kind)) = current(tx, &names.schema, &names.target).await? else {
        return Err(Failure::Message(format!(
            "{} disappeared before {before} (dropped by someone else?); rerun",
            names.display
        )));
    };
    if kind != b'r' as i8 && kind != b'p' as i8 {
        return Err(Failure::Message(format!(
            "{} is no longer a table (replaced by someone else?); {fix}",
            names.display
        )));
    }
    Ok(oid)
}

/// `select` into temporary table `name`, dropped at commit; returns its oid.
pub(super) async fn temp_table(
    tx: &Transaction<'_>,
    name: &str,
    select: &str,
) -> Result<u32, Failure> {
    let statement = format!(
        "create temporary table {} on commit drop as (\n{select}\n)",
        quote_ident(name)
    );
    exec(tx, statement).await?;
    Ok(tx
        .query_one(
            "select oid from pg_class where relnamespace = pg_my_temp_schema() and relname = $1",
            &[&name],
        )
        .await?
        .get(0))
}

pub(super) async fn exec(tx: &Transaction<'_>, statement: String) -> Result<u64, Failure> {
    tx.execute(statement.as_str(), &[])
        .await
        .map_err(|error| Failure::Db { error, statement })
}

/// dbt's way of changing a column's type: a new column, copied, the old one
/// dropped (without CASCADE here: a view that uses it fails the model) and the
/// new one renamed; the column moves to the end of the table.
pub(super) async fn alter_column_type(
    tx: &Transaction<'_>,
    table: &str,
    name: &str,
    new_type: &str,
) -> Result<(), Failure> {
    let col = quote_ident(name);
    let tmp = quote_ident(&format!("{name}__dbt_alter"));
    exec(
        tx,
        format!("alter table {table} add column {tmp} {new_type}"),
    )
    .await?;
    exec(tx, format!("update {table} set {tmp} = {col}")).await?;
    exec(tx, format!("alter table {table} drop column {col}")).await?;
    exec(
        tx,
        format!("alter table {table} rename column {tmp} to {col}"),
    )
    .await?;
    Ok(())
}

/// The strategy's statements; the result is the last one's, as dbt reports it.
async fn apply(
    tx: &Transaction<'_>,
    config: &Config,
    table: &str,
    tmp: &str,
    dest: &[String],
) -> Result<Built, Failure> {
    let cols = dest
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let insert = format!("insert into {table} ({cols}) (select {cols} from {tmp})");
    let inserted = |n: u64| Built {
        message: format!("INSERT 0 {n}"),
        code: "INSERT".to_string(),
        rows: Some(n),
    };
    match config.strategy {
        Strategy::Append => Ok(inserted(exec(tx, insert).await?)),
        Strategy::DeleteInsert => {
            if !config.unique_key.is_empty() {
                let keys = config
                    .unique_key
                    .iter()
                    .map(|k| quote_ident(k))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut delete = format!(
                    "delete from {table} as DBT_INTERNAL_DEST where ({keys}) in (select distinct {keys} from {tmp} as DBT_INTERNAL_SOURCE)"
                );
                for p in &config.predicates {
                    delete.push_str(&format!(" and {p}"));
                }
                exec(tx, delete).await?;
            }
            Ok(inserted(exec(tx, insert).await?))
        }
        Strategy::Merge => {
            let mut on: Vec<String> = config.predicates.clone();
            if config.unique_key.is_empty() {
                on.push("FALSE".to_string());
            }
            for k in &config.unique_key {
                let k = quote_ident(k);
                on.push(format!("DBT_INTERNAL_SOURCE.{k} = DBT_INTERNAL_DEST.{k}"));
            }
            let mut merge = format!(
                "merge into {table} as DBT_INTERNAL_DEST using {tmp} as DBT_INTERNAL_SOURCE on ({})",
                on.join(") and (")
            );
            if !config.unique_key.is_empty() {
                let update: Vec<String> = match (&config.update_columns, &config.exclude_columns) {
                    (Some(only), _) => only.clone(),
                    (None, Some(except)) => dest
                        .iter()
                        .filter(|c| !except.iter().any(|e| e.eq_ignore_ascii_case(c)))
                        .cloned()
                        .collect(),
                    (None, None) => dest.to_vec(),
                };
                if update.is_empty() {
                    return Err(Failure::Message(
                        "merge_exclude_columns leaves no column to update; exclude fewer columns, or use incremental_strategy='append'".to_string(),
                    ));
                }
                let sets: Vec<String> = update
                    .iter()
                    .map(|c| {
                        let c = quote_ident(c);
                        format!("{c} = DBT_INTERNAL_SOURCE.{c}")
                    })
                    .collect();
                merge.push_str(&format!(
                    " when matched then update set {}",
                    sets.join(", ")
                ));
            }
            let values = dest
                .iter()
                .map(|c| format!("DBT_INTERNAL_SOURCE.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ");
            merge.push_str(&format!(
                " when not matched then insert ({cols}) values ({values})"
            ));
            let n = exec(tx, merge).await?;
            Ok(Built {
                message: format!("MERGE {n}"),
                code: "MERGE".to_string(),
                rows: Some(n),
            })
        }
    }
}

/// Step 3: locks the table in the mode the increment needs, as politely as a
/// swap (see the module documentation).
pub(super) async fn lock(
    tx: &Transaction<'_>,
    names: &Names,
    oid: u32,
    alters: bool,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<(), Failure> {
    let mode = if alters {
        "access exclusive"
    } else {
        "exclusive"
    };
    let table = relation_name(&names.schema, &names.target);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let deadline = Instant::now() + opts.lock_timeout;
        loop {
            check_interrupted(opts)?;
            match tx
                .batch_execute(&format!("lock table {table} in {mode} mode nowait"))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if is_lock_wait(&e) => {
                    tx.batch_execute("rollback to savepoint rt_built").await?;
                }
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2 + jitter(8))).await;
        }
        check_interrupted(opts)?;
        let timeout = format!("{}ms", (opts.lock_timeout.as_millis() as u64).max(1));
        tx.execute("select set_config('lock_timeout', $1, true)", &[&timeout])
            .await?;
        match tx
            .batch_execute(&format!("lock table {table} in {mode} mode"))
            .await
        {
            Ok(()) => {
                tx.execute("select set_config('lock_timeout', '0', true)", &[])
                    .await?;
                return Ok(());
            }
            Err(e) if is_lock_wait(&e) => {
                tx.batch_execute("rollback to savepoint rt_built").await?;
            }
            Err(e) => return Err(e.into()),
        }
        timed_out(
            tx,
            names,
            "apply the increment of",
            "increment",
            &[oid],
            attempt,
            opts,
            notify,
        )
        .await?;
    }
}
