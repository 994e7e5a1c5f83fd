//! Foreign keys that reference a relation being swapped, carried over to its new
//! version. dbt drops them (`drop … cascade`); nothing is dropped silently here.
//!
//! Under the swap's locks, before the renames, each foreign key that references
//! the old relation is captured (`pg_get_constraintdef`, fully qualified, so it
//! names the relation and not the backup name it is about to get) and dropped.
//! After the renames it is added again, now referencing the new relation, and
//! PostgreSQL validates every row of the referencing table against it. If that
//! fails (a row whose key the new version lacks, no unique key on the referenced
//! columns) the swap fails naming the table and the constraint, and the
//! rollback leaves everything as it was.

use tokio_postgres::error::SqlState;
use tokio_postgres::Transaction;

use super::db_error::describe_db_error;

/// A foreign key of another table (or of the new relation itself) that
/// references the relation being swapped.
pub(super) struct ForeignKey {
    /// The referencing table.
    table_oid: u32,
    /// `schema.table`, as users write it, for messages.
    table: String,
    name: String,
    /// `FOREIGN KEY (…) REFERENCES schema.relation(…) …`, qualified.
    definition: String,
}

/// The foreign keys that reference `oid` from other tables. Inherited copies on
/// partitions are left to their parent's.
pub(super) async fn referencing(
    tx: &Transaction<'_>,
    oid: u32,
) -> Result<Vec<ForeignKey>, tokio_postgres::Error> {
    // Qualified definitions: they must name the relation, whatever the path.
    let rows = super::swap::query_qualified(
        tx,
        "select c.conrelid, n.nspname::text || '.' || r.relname::text, c.conname::text,
                    pg_get_constraintdef(c.oid)
             from pg_constraint c
             join pg_class r on r.oid = c.conrelid
             join pg_namespace n on n.oid = r.relnamespace
             where c.contype = 'f' and c.confrelid = $1 and c.conrelid <> $1 and c.conparentid = 0
             order by 2, 3",
        &[&oid],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            table_oid: r.get(0),
            table: r.get(1),
            name: r.get(2),
            definition: r.get(3),
        })
        .collect())
}

/// The referencing tables, to lock and to name when they are busy.
pub(super) fn tables(keys: &[ForeignKey]) -> Vec<u32> {
    let mut oids: Vec<u32> = keys.iter().map(|k| k.table_oid).collect();
    oids.sort_unstable();
    oids.dedup();
    oids
}

/// Locks a referencing table for the drop and the re-add (ACCESS EXCLUSIVE, as
/// `ALTER TABLE … DROP CONSTRAINT` needs): without queueing when `nowait`.
pub(super) async fn lock(
    tx: &Transaction<'_>,
    oid: u32,
    nowait: bool,
) -> Result<(), tokio_postgres::Error> {
    let stmt: String = tx
        .query_one(
            "select format('lock table %s in access exclusive mode', $1::oid::regclass)",
            &[&oid],
        )
        .await?
        .get(0);
    tx.batch_execute(&format!("{stmt}{}", if nowait { " nowait" } else { "" }))
        .await
}

/// Drops each foreign key (before the renames).
pub(super) async fn drop_all(
    tx: &Transaction<'_>,
    keys: &[ForeignKey],
) -> Result<(), tokio_postgres::Error> {
    for k in keys {
        alter(
            tx,
            k,
            "select format('alter table %s drop constraint %I', $1::oid::regclass, $2::text)",
            None,
        )
        .await?;
    }
    Ok(())
}

/// Adds each foreign key again (after the renames: it now references the new
/// relation). On failure, one line naming the key, its table and what to do.
pub(super) async fn add_all(
    tx: &Transaction<'_>,
    keys: &[ForeignKey],
    display: &str,
) -> Result<(), FkError> {
    for k in keys {
        if let Err(e) = alter(
            tx,
            k,
            "select format('alter table %s add constraint %I %s', $1::oid::regclass, $2::text, $3::text)",
            Some(&k.definition),
        )
        .await
        {
            let hint = match e.code() {
                Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => format!(
                    "fix the rows of {} whose keys the new {display} no longer has (or the model)",
                    k.table
                ),
                Some(c) if *c == SqlState::INVALID_FOREIGN_KEY => format!(
                    "give the new {display} a primary key or unique constraint on the referenced columns (in its contract)"
                ),
                _ => "change the model or the foreign key so that they fit".to_string(),
            };
            return Err(FkError {
                lock_wait: super::swap::is_lock_wait(&e),
                message: format!(
                    "foreign key {} of table {} references {display} and cannot be carried over to its new version: {}; {display} was left as it was. Either {hint}, or drop the foreign key; then rerun",
                    k.name,
                    k.table,
                    describe_db_error(&e, "").trim_end_matches('.'),
                ),
            });
        }
    }
    Ok(())
}

/// Why re-adding a foreign key failed.
pub(super) struct FkError {
    /// A lock was not available in time (try the swap again).
    pub(super) lock_wait: bool,
    pub(super) message: String,
}

/// Runs the `ALTER TABLE` that `format` (a server-side `format()` of the table's
/// OID, the key's name and `definition`) builds.
async fn alter(
    tx: &Transaction<'_>,
    k: &ForeignKey,
    format: &str,
    definition: Option<&str>,
) -> Result<(), tokio_postgres::Error> {
    let stmt: String = match definition {
        Some(d) => tx.query_one(format, &[&k.table_oid, &k.name, &d]).await?,
        None => tx.query_one(format, &[&k.table_oid, &k.name]).await?,
    }
    .get(0);
    tx.batch_execute(&stmt).await
}
