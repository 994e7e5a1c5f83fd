//! Materialized views (`materialized='materialized_view'`), decided as
//! dbt-postgres decides:
//!
//! - no relation yet, `--full-refresh` (or `full_refresh: true`), or a relation
//!   that is not a materialized view: a new one is built and swapped in by the
//!   safe swap ([`super::swap`]), with its `indexes`;
//! - an existing materialized view whose indexes are the configured ones (compared
//!   as dbt does: the set of (columns, unique, method), expression indexes unseen):
//!   `REFRESH MATERIALIZED VIEW` (its query is not changed: dbt-postgres does not
//!   compare it);
//! - indexes that differ, by `on_configuration_change`: `apply` (the default) drops
//!   the ones no longer configured and creates the new ones, without refreshing;
//!   `continue` changes nothing and warns; `fail` fails the model.
//!
//! Refreshes and index changes run in one transaction under the swap's advisory
//! lock; they wait (up to `lock_timeout`) until no other session holds the
//! materialized view, then lock it by running, queueing for at most
//! `lock_timeout` (readers wait for a refresh, as with dbt); a failure rolls
//! everything back. Hooks, `grants` (granted, never revoked, as dbt
//! does for a kept relation) and `persist_docs` run in dbt's order.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio_postgres::{Client, Transaction};

use crate::manifest::{quote_ident, relation_name, Node};
use crate::results::{Built, NodeFailure};

use super::swap::{
    self, check_interrupted, current, held_by_others, is_lock_wait, jitter, serialise, Failure,
    Names, Notify, SwapOptions,
};
use super::{comments, grants, hooks, indexes};

/// An index as dbt-postgres compares them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct IndexKey {
    columns: BTreeSet<String>,
    unique: bool,
    method: String,
}

/// Builds the materialized view of `node`; see the module documentation.
pub(super) async fn build(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    full_refresh: bool,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, NodeFailure> {
    // What exists now (checked again under the lock).
    let existing = client
        .query_opt(
            "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
            &[&node.stored_schema(), &node.stored_alias()],
        )
        .await;
    let existing = match existing {
        Ok(row) => row.map(|r| r.get::<_, i8>(0)),
        Err(e) => return swap::outcome(Err(e.into()), node, opts),
    };
    match existing {
        Some(kind) if kind == b'm' as i8 && !full_refresh => {
            let r = in_place(client, node, opts, notify).await;
            swap::outcome(r, node, opts)
        }
        _ => swap::materialize(client, node, sql, suffix, opts, notify).await,
    }
}

/// What is done to an existing materialized view.
enum Action {
    Refresh,
    Indexes {
        drop: Vec<String>,
        create: Vec<crate::project::Index>,
    },
    Nothing,
}

async fn in_place(
    client: &mut Client,
    node: &Node,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, Failure> {
    let names = Names {
        schema: node.stored_schema(),
        target: node.stored_alias(),
        // Indexes are created on the relation itself.
        tmp: node.stored_alias(),
        old: String::new(),
        display: format!("{}.{}", node.schema, node.alias),
        renames: Vec::new(),
    };
    hooks::run(&*client, node, &node.rendered_hooks.pre, false).await?;
    let tx = client.transaction().await?;
    super::session::apply(&tx, node).await?;
    serialise(&tx, &names, opts, notify).await?;
    let Some((oid, kind)) = current(&tx, &names.schema, &names.target).await? else {
        return Err(Failure::Message(format!(
            "{} disappeared before it could be refreshed (dropped by someone else?); rerun",
            names.display
        )));
    };
    if kind != b'm' as i8 {
        return Err(Failure::Message(format!(
            "{} is no longer a materialized view (replaced by someone else?); rerun, or rebuild it with --full-refresh",
            names.display
        )));
    }
    let action = decide(&tx, node, oid, &names, notify).await?;
    let relation = relation_name(&names.schema, &names.target);
    let message = match action {
        Action::Nothing => {
            tx.commit().await?;
            hooks::run(&*client, node, &node.rendered_hooks.post, false).await?;
            return Ok(Built {
                message: format!("skip {}", node.relation_name()),
                code: "skip".to_string(),
                rows: None,
            });
        }
        Action::Refresh => {
            hooks::run(&tx, node, &node.rendered_hooks.pre, true).await?;
            lock(&tx, oid, opts).await?;
            let statement = format!("refresh materialized view {relation}");
            run_locked(&tx, &names, statement, opts).await?;
            "REFRESH MATERIALIZED VIEW"
        }
        Action::Indexes { drop, create } => {
            hooks::run(&tx, node, &node.rendered_hooks.pre, true).await?;
            lock(&tx, oid, opts).await?;
            for name in &drop {
                let statement = format!(
                    "drop index if exists {}.{}",
                    quote_ident(&names.schema),
                    quote_ident(name)
                );
                run_locked(&tx, &names, statement, opts).await?;
            }
            indexes::create(&tx, &names, &create).await?;
            if create.is_empty() {
                "DROP INDEX"
            } else {
                "CREATE INDEX"
            }
        }
    };
    if let Some(g) = &node.grants {
        grants::apply(&tx, &names.schema, &names.target, g, false).await?;
    }
    comments::persist(
        &tx,
        node,
        &names.schema,
        &names.target,
        "materialized view",
        false,
    )
    .await?;
    hooks::run(&tx, node, &node.rendered_hooks.post, true).await?;
    check_interrupted(opts)?;
    tx.commit().await?;
    hooks::run(&*client, node, &node.rendered_hooks.post, false).await?;
    Ok(Built {
        message: message.to_string(),
        code: message.to_string(),
        rows: None,
    })
}

/// Waits, for up to `lock_timeout`, until no other session holds the
/// materialized view (PostgreSQL cannot `LOCK` one), then lets the next
/// statements take its lock themselves, queueing for at most `lock_timeout`.
async fn lock(tx: &Transaction<'_>, oid: u32, opts: &SwapOptions) -> Result<(), Failure> {
    let deadline = Instant::now() + opts.lock_timeout;
    while held_by_others(tx, &[oid]).await? && Instant::now() < deadline {
        check_interrupted(opts)?;
        tokio::time::sleep(Duration::from_millis(2 + jitter(8))).await;
    }
    let timeout = format!("{}ms", (opts.lock_timeout.as_millis() as u64).max(1));
    tx.execute("select set_config('lock_timeout', $1, true)", &[&timeout])
        .await?;
    Ok(())
}

/// Runs a statement that locks the materialized view; a lock it could not get in
/// time fails the model, naming why.
async fn run_locked(
    tx: &Transaction<'_>,
    names: &Names,
    statement: String,
    opts: &SwapOptions,
) -> Result<(), Failure> {
    match tx.execute(statement.as_str(), &[]).await {
        Ok(_) => Ok(()),
        Err(e) if is_lock_wait(&e) => Err(Failure::LockTimeout(format!(
            "cannot refresh {d}: it was still in use after lock_timeout {t}s; {d} was left as it was. Wait for the sessions reading it, or raise lock_timeout",
            d = names.display,
            t = opts.lock_timeout.as_secs_f64()
        ))),
        Err(error) => Err(Failure::Db { error, statement }),
    }
}

/// Compares the relation's indexes with the configured ones and decides, by
/// `on_configuration_change`.
async fn decide(
    tx: &Transaction<'_>,
    node: &Node,
    oid: u32,
    names: &Names,
    notify: &Notify<'_>,
) -> Result<Action, Failure> {
    // dbt-postgres' view of the indexes: those with at least one plain column.
    let rows = tx
        .query(
            "select i.relname::text, m.amname::text, ix.indisunique, array_agg(a.attname::text)
             from pg_index ix
             join pg_class i on i.oid = ix.indexrelid
             join pg_am m on m.oid = i.relam
             join pg_attribute a on a.attrelid = ix.indrelid and a.attnum = any(ix.indkey)
             where ix.indrelid = $1
             group by 1, 2, 3
             order by 1",
            &[&oid],
        )
        .await?;
    let existing: Vec<(String, IndexKey)> = rows
        .iter()
        .map(|r| {
            let cols: Vec<String> = r.get(3);
            (
                r.get(0),
                IndexKey {
                    columns: cols.iter().map(|c| c.to_lowercase()).collect(),
                    unique: r.get(2),
                    method: r.get(1),
                },
            )
        })
        .collect();
    let configured: Vec<(IndexKey, &crate::project::Index)> = node
        .indexes
        .iter()
        .map(|i| {
            (
                IndexKey {
                    columns: i.columns.iter().map(|c| c.to_lowercase()).collect(),
                    unique: i.unique,
                    method: i.method.as_deref().unwrap_or("btree").to_ascii_lowercase(),
                },
                i,
            )
        })
        .collect();
    let drop: Vec<String> = existing
        .iter()
        .filter(|(_, k)| !configured.iter().any(|(c, _)| c == k))
        .map(|(n, _)| n.clone())
        .collect();
    let mut create: Vec<crate::project::Index> = Vec::new();
    for (k, i) in &configured {
        if !existing.iter().any(|(_, e)| e == k) && !create.contains(i) {
            create.push((*i).clone());
        }
    }
    if drop.is_empty() && create.is_empty() {
        return Ok(Action::Refresh);
    }
    let mode = node
        .config
        .get("on_configuration_change")
        .and_then(Json::as_str)
        .unwrap_or("apply");
    let what = format!(
        "Configuration changes were identified and `on_configuration_change` was set to `{mode}` for `{}`",
        node.relation_name()
    );
    match mode {
        "continue" => {
            notify(&format!("{}: {what}", names.display));
            Ok(Action::Nothing)
        }
        "fail" => Err(Failure::Message(format!(
            "{what}: its indexes differ from the configured ones; {} was left as it was. Set on_configuration_change to 'apply', or rebuild it with --full-refresh",
            names.display
        ))),
        _ => Ok(Action::Indexes { drop, create }),
    }
}
