//! Safe swaps: how a model's new relation replaces the old one while dashboards
//! read it, analysts' views hang off it and other invocations build it too.
//!
//! One transaction per model:
//!
//! 1. **Serialise** builds of the relation across invocations with a transaction
//!    advisory lock. If another invocation holds it, say so (naming its session)
//!    and wait, or fail at once when `wait_for_lock` is false.
//! 2. **Build** the new relation under a name unique to the invocation (the model's
//!    SQL inside one `CREATE … AS` statement sent with the extended protocol, which
//!    refuses a second statement); `ANALYZE` a new table, so that the models built
//!    on it are planned for its real size; then take `SAVEPOINT rt_built`: every later step
//!    can roll back to it, so a retry never rebuilds.
//! 3. **Lock politely**: for up to `lock_timeout`, try the locks without queueing
//!    (`LOCK … NOWAIT` for a table, a lock timeout of a few milliseconds where
//!    PostgreSQL has no NOWAIT), rolling back to the savepoint and trying again
//!    while readers hold them. Readers never queue behind a swap that is waiting.
//! 4. **Lock firmly**: if that did not work (a long query holds the relation), queue
//!    for at most `lock_timeout`: new readers wait behind the swap no longer than
//!    that. On timeout roll back to the savepoint, back off and retry (steps 3–4)
//!    up to `swap_retries` times, then fail naming the sessions holding the
//!    relation (pid, application_name, user, state, query start, query).
//! 5. **Swap**: rename the old relation away and the new one in; re-point the views
//!    that depend on the old one (anyone's, with `CREATE OR REPLACE VIEW` on their
//!    definitions captured before the rename, so they keep their OID, owner,
//!    grants, comments, options and the views built on them); carry the foreign
//!    keys of other tables that reference it over ([`super::foreign_keys`]:
//!    captured and dropped before the rename, added again after it, so PostgreSQL
//!    re-validates them against the new rows); carry the old relation's grants
//!    (table and column) and comments over; drop the old one without CASCADE.
//!
//! A table's or seed's `indexes` ([`super::indexes`]) are created on the new
//! relation in step 2. A node's hooks ([`super::hooks`]) run around these steps as dbt runs them:
//! `before_begin` pre-hooks before the transaction, the other pre-hooks after
//! step 1, the other post-hooks after step 5 (before the commit: a failing one
//! rolls the swap back), `after_commit` post-hooks after the commit. Configured
//! `grants` ([`super::grants`]) are applied after the in-transaction post-hooks,
//! over the carried-over ones, as dbt applies them, then the `persist_docs`
//! comments ([`super::comments`]) over the carried-over ones.
//!
//! A contracted model ([`super::contract`]) has its columns checked before step 1,
//! and its table is created with its declared columns and constraints in step 2.
//!
//! Dependent views are locked before the relation itself, in the order readers
//! lock them (a query on a view locks the view, then what it reads), so a reader
//! of a view and the swap cannot deadlock; the tables whose foreign keys move are
//! locked after the relation, as politely. Nothing is ever dropped silently: a
//! dependent that cannot be carried over (a materialized view, a view the new
//! relation no longer satisfies, a foreign key the new rows do not satisfy) fails
//! the model with a message naming it, and the rollback leaves everything as it
//! was. Every identifier is quoted and every value bound; statements that need a
//! value inside DDL are built by the server with `format(%I, %L)`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Transaction};

use crate::cancel::Cancel;
use crate::manifest::{quote_ident, relation_name, Materialization, Node};
use crate::results::{Built, NodeFailure};
use crate::settings::Settings;

use super::db_error::{describe_db_error, sql_failure, Privilege};
use super::{comments, contract, foreign_keys, grants, hooks, indexes};

/// Receives console lines while a swap waits (for another invocation, for locks).
pub(crate) type Notify<'a> = dyn Fn(&str) + Send + Sync + 'a;

/// The swap's settings, and the invocation's cancellation token.
#[derive(Clone)]
pub(crate) struct SwapOptions {
    pub(super) lock_timeout: Duration,
    pub(super) retries: u32,
    wait_for_lock: bool,
    /// The role that builds, for the grant a "permission denied" asks for.
    role: String,
    cancel: Cancel,
}

impl SwapOptions {
    pub(crate) fn new(s: &Settings, cancel: Cancel) -> SwapOptions {
        SwapOptions {
            lock_timeout: Duration::from_secs_f64(s.lock_timeout),
            retries: s.swap_retries,
            wait_for_lock: s.wait_for_lock,
            role: s.user.clone(),
            cancel,
        }
    }

    /// Whether the invocation was cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The invocation's cancellation token.
    pub(super) fn cancel_token(&self) -> &Cancel {
        &self.cancel
    }
}

/// Longest a polite lock attempt may queue where PostgreSQL has no NOWAIT (views:
/// `LOCK TABLE` on a view also locks everything it reads). Such an attempt is only
/// made when nobody held the lock a moment before, so it is rarely waited at all.
const POLITE_WAIT: Duration = Duration::from_millis(2);

/// Why a swap failed.
pub(super) enum Failure {
    /// A database error; `statement` is the statement that failed, when its text
    /// helps place the error (the model's SQL).
    Db {
        error: tokio_postgres::Error,
        statement: String,
    },
    /// The relation stayed in use past the lock budget (names the holders).
    LockTimeout(String),
    /// Another invocation builds the relation and `wait_for_lock` is false.
    Busy(String),
    /// A dependent of the relation cannot follow it.
    Dependents(String),
    /// The model's columns do not match its enforced contract (dbt's table).
    Contract(String),
    /// The invocation was cancelled between statements.
    Interrupted,
    /// Anything else, as a complete one-line message.
    Message(String),
    /// A seed that cannot be loaded (its file, its columns), as a complete message.
    Seed(String),
    /// What dbt raises as a compilation error while building (an incremental
    /// model whose columns changed under `on_schema_change: fail`).
    Compile(String),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Db {
            error,
            statement: String::new(),
        }
    }
}

/// What one try at the locked part of a swap came to.
enum Step {
    Done,
    /// A lock was not available in time; the relations that were being locked.
    Busy(Vec<u32>),
    Failed(Failure),
}

impl From<tokio_postgres::Error> for Step {
    fn from(e: tokio_postgres::Error) -> Step {
        Step::Failed(e.into())
    }
}

/// What a swap builds under the temporary name.
pub(crate) enum Build<'a> {
    /// A model's compiled SQL.
    Sql(&'a str),
    /// A seed's CSV file.
    Seed(&'a super::seed::SeedLoad),
}

/// Builds `node` from `sql` and swaps it in; see the module documentation.
/// `suffix` is unique to the invocation (temporary and backup names derive from
/// it). On failure the transaction is rolled back and the error is one line.
pub(super) async fn materialize(
    client: &mut Client,
    node: &Node,
    sql: &str,
    suffix: &str,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, NodeFailure> {
    let r = swap_in(client, node, Build::Sql(sql), suffix, opts, notify).await;
    outcome(r, node, opts)
}

/// Loads a seed's CSV into a new table and swaps it in, as [`materialize`] does
/// for a table model (see [`super::seed`]).
pub(crate) async fn load_seed(
    client: &mut Client,
    node: &Node,
    seed: &super::seed::SeedLoad,
    suffix: &str,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, NodeFailure> {
    let r = swap_in(client, node, Build::Seed(seed), suffix, opts, notify).await;
    outcome(r, node, opts)
}

/// The end of a committed swap: the `after_commit` post-hooks.
async fn after_commit(client: &Client, node: &Node, built: Built) -> Result<Built, Failure> {
    hooks::run(client, node, &node.rendered_hooks.post, false).await?;
    Ok(built)
}

pub(super) fn outcome(
    r: Result<Built, Failure>,
    node: &Node,
    opts: &SwapOptions,
) -> Result<Built, NodeFailure> {
    let display = format!("{}.{}", node.schema, node.alias);
    match r {
        Ok(b) => Ok(b),
        // Whatever failed once the token was set failed because of it (a query
        // cancelled on the server, a wait cut short).
        Err(_) if opts.cancel.is_cancelled() => Err(NodeFailure::Interrupted {
            message: format!("cancelled; {display} was left as it was"),
        }),
        Err(Failure::Db { error, statement }) => {
            let privilege = Privilege {
                role: &opts.role,
                builds_in: &node.schema,
            };
            Err(sql_failure(&error, &statement, Some(&privilege)))
        }
        Err(Failure::LockTimeout(message)) => Err(NodeFailure::LockTimeout { message }),
        Err(Failure::Busy(message)) => Err(NodeFailure::LockBusy { message }),
        Err(Failure::Dependents(message)) => Err(NodeFailure::Dependents { message }),
        Err(Failure::Contract(message)) => Err(NodeFailure::Contract { message }),
        Err(Failure::Interrupted) => Err(NodeFailure::Interrupted {
            message: format!("stopped before the swap; {display} was left as it was"),
        }),
        Err(Failure::Message(message)) => Err(NodeFailure::Sql {
            sqlstate: None,
            message,
        }),
        Err(Failure::Seed(message)) => Err(NodeFailure::Seed { message }),
        Err(Failure::Compile(message)) => Err(NodeFailure::Compile { message }),
    }
}

/// The names a swap works with.
pub(super) struct Names {
    pub(super) schema: String,
    pub(super) target: String,
    pub(super) tmp: String,
    pub(super) old: String,
    /// `schema.name` as users write it, for messages.
    pub(super) display: String,
    /// Constraints of the new relation created under a temporary name, renamed
    /// to their declared one once the old relation is gone: (temporary, declared).
    pub(super) renames: Vec<(String, String)>,
}

async fn swap_in(
    client: &mut Client,
    node: &Node,
    build: Build<'_>,
    suffix: &str,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<Built, Failure> {
    // The names PostgreSQL stores: a project that does not quote identifiers
    // (`quoting:`) names relations folded to lower case.
    let target = node.stored_alias();
    let mut names = Names {
        schema: node.stored_schema(),
        tmp: derived_name(&target, &format!("__rt_new_{suffix}")),
        old: derived_name(&target, &format!("__rt_old_{suffix}")),
        target,
        display: format!("{}.{}", node.schema, node.alias),
        renames: Vec::new(),
    };
    hooks::run(&*client, node, &node.rendered_hooks.pre, false).await?;
    let tx = client.transaction().await?;
    super::session::apply(&tx, node).await?;
    // dbt-postgres puts the header in front of the create statement, and of the
    // contract's column check too (it runs twice then, as in dbt).
    let header =
        matches!(build, Build::Sql(_)) && node.materialized != Materialization::MaterializedView;
    if let (Build::Sql(sql), true) = (&build, node.contract.enforced) {
        // Before anything is built or waited for, as dbt checks it.
        if header {
            super::header::run(&tx, node).await?;
        }
        contract::check(&tx, node, sql.trim().trim_end_matches(';').trim_end()).await?;
    }
    serialise(&tx, &names, opts, notify).await?;
    hooks::run(&tx, node, &node.rendered_hooks.pre, true).await?;
    if header {
        super::header::run(&tx, node).await?;
    }

    let (message, code, rows) = match (build, node.materialized) {
        (Build::Seed(seed), _) => super::seed::build(&tx, &names, seed, opts).await?,
        (Build::Sql(_), Materialization::Seed) => {
            return Err(Failure::Message(format!(
                "{} is a seed: it is loaded from its CSV file, not built from SQL",
                names.display
            )))
        }
        (Build::Sql(_), Materialization::Ephemeral) => {
            return Err(Failure::Message(format!(
            "{} is an ephemeral model: it is inlined into the models that refer to it, never built",
            names.display
        )))
        }
        (
            Build::Sql(sql),
            Materialization::Table | Materialization::Incremental | Materialization::Snapshot,
        ) if node.contract.enforced => {
            let sql = sql.trim().trim_end_matches(';').trim_end();
            let created =
                contract::create_table(&tx, node, sql, &names.schema, &names.tmp, suffix).await?;
            names.renames = created.renames;
            let n = created.rows;
            (format!("INSERT 0 {n}"), "INSERT".to_string(), Some(n))
        }
        (
            Build::Sql(sql),
            m @ (Materialization::Table
            | Materialization::Incremental
            | Materialization::MaterializedView
            | Materialization::Snapshot),
        ) => {
            let sql = sql.trim().trim_end_matches(';').trim_end();
            let kind = match m {
                Materialization::MaterializedView => "materialized view",
                _ if node.unlogged() => "unlogged table",
                _ => "table",
            };
            let statement = format!(
                "create {kind} {} as (\n{sql}\n)",
                relation_name(&names.schema, &names.tmp)
            );
            let n = tx
                .execute(statement.as_str(), &[])
                .await
                .map_err(|error| Failure::Db { error, statement })?;
            (format!("SELECT {n}"), "SELECT".to_string(), Some(n))
        }
        (Build::Sql(sql), Materialization::View) => {
            let sql = sql.trim().trim_end_matches(';').trim_end();
            let statement = format!(
                "create view {} as (\n{sql}\n)",
                relation_name(&names.schema, &names.tmp)
            );
            // The extended protocol, as for tables: one statement, so SQL that
            // closes the wrapper and adds `; drop table …` fails instead of running.
            tx.execute(statement.as_str(), &[])
                .await
                .map_err(|error| Failure::Db { error, statement })?;
            ("CREATE VIEW".to_string(), "CREATE VIEW".to_string(), None)
        }
    };
    if node.materialized != Materialization::View {
        indexes::create(&tx, &names, &node.indexes).await?;
    }
    let built = Built {
        message,
        code,
        rows,
    };
    if built.rows.is_some() {
        // Statistics before anyone reads the new table (PostgreSQL's advice after a
        // bulk load): the models built on it later in this invocation are planned
        // for its real size, not for an empty table, long before autovacuum would
        // get to it. Its sample is 300 × the statistics target rows: at a target
        // of 10 (3,000 rows) it costs ~30 ms on a 100k-row mart instead of ~190 ms
        // at the default 100; the row count, what the planner most needs for the
        // models built on it, is as good, the column statistics coarser (the
        // default autovacuum refines them later).
        let statement = format!(
            "set local default_statistics_target = 10; analyze {}; reset default_statistics_target",
            relation_name(&names.schema, &names.tmp)
        );
        tx.batch_execute(&statement)
            .await
            .map_err(|error| Failure::Db { error, statement })?;
    }

    if current(&tx, &names.schema, &names.target).await?.is_none() {
        // First build: nothing to lock, nobody can be reading it.
        rename(
            &tx,
            node.materialized.relation_kind(),
            &names.schema,
            &names.tmp,
            &names.target,
        )
        .await?;
        rename_constraints(&tx, &names).await?;
        hooks::run(&tx, node, &node.rendered_hooks.post, true).await?;
        if let Some(g) = &node.grants {
            grants::apply(&tx, &names.schema, &names.target, g, true).await?;
        }
        persist_docs(&tx, node, &names).await?;
        tx.commit().await?;
        return after_commit(client, node, built).await;
    }

    tx.batch_execute("savepoint rt_built").await?;
    let polite = POLITE_WAIT.min(opts.lock_timeout);
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Polite phase: never queue ahead of readers.
        let deadline = Instant::now() + opts.lock_timeout;
        loop {
            check_interrupted(opts)?;
            match locked_swap(&tx, node, &names, Phase::Polite(polite), notify).await {
                Step::Done => {
                    let built = finish(tx, node, &names, built, opts).await?;
                    return after_commit(client, node, built).await;
                }
                Step::Failed(f) => return Err(f),
                Step::Busy(_) => {
                    tx.batch_execute("rollback to savepoint rt_built").await?;
                    if Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(2 + jitter(8))).await;
                }
            }
        }
        // Firm phase: queue for at most lock_timeout.
        check_interrupted(opts)?;
        let relations =
            match locked_swap(&tx, node, &names, Phase::Firm(opts.lock_timeout), notify).await {
                Step::Done => {
                    let built = finish(tx, node, &names, built, opts).await?;
                    return after_commit(client, node, built).await;
                }
                Step::Failed(f) => return Err(f),
                Step::Busy(relations) => relations,
            };
        tx.batch_execute("rollback to savepoint rt_built").await?;
        timed_out(
            &tx, &names, "swap in", "swap", &relations, attempt, opts, notify,
        )
        .await?;
    }
}

/// After a try whose locks timed out in line (the transaction back at its
/// savepoint): on the last try, fails naming the sessions holding `relations`;
/// otherwise says so and backs off (0.5 s, 1 s, 2 s… with jitter), interruptibly.
/// `action` and `what` name the work in messages ("swap in", "swap").
#[allow(clippy::too_many_arguments)]
pub(super) async fn timed_out(
    tx: &Transaction<'_>,
    names: &Names,
    action: &str,
    what: &str,
    relations: &[u32],
    attempt: u32,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<(), Failure> {
    let holders = &blockers(tx, relations).await?[..];
    let attempts = opts.retries + 1;
    if attempt >= attempts {
        return Err(Failure::LockTimeout(format!(
            "cannot {action} {d}: it was still in use after {attempts} tr{ies} (lock_timeout {t}s, swap_retries {r}), held by {who}; {d} was left as it was. Wait for or end {that} (select pg_terminate_backend({pid})), or raise lock_timeout or swap_retries",
            d = names.display,
            ies = if attempts == 1 { "y" } else { "ies" },
            t = secs(opts.lock_timeout),
            r = opts.retries,
            who = describe_blockers(holders),
            that = if holders.len() == 1 { "that session" } else { "those sessions" },
            pid = match holders {
                [Blocker { pid: Some(pid), .. }] => pid.to_string(),
                _ => "pid".to_string(),
            },
        )));
    }
    let backoff = backoff(attempt);
    notify(&format!(
        "{} is in use by {}; {what} try {attempt} of {attempts} found no gap in {t}s and timed out after {t}s in line, retrying in {:.1}s",
        names.display,
        describe_blockers(holders),
        backoff.as_secs_f64(),
        t = secs(opts.lock_timeout),
    ));
    let until = Instant::now() + backoff;
    while Instant::now() < until {
        check_interrupted(opts)?;
        tokio::time::sleep((until - Instant::now()).min(Duration::from_millis(100))).await;
    }
    Ok(())
}

/// After the swap: the post-hooks that run inside the transaction, the `grants`,
/// the `persist_docs` comments, then the commit.
async fn finish(
    tx: Transaction<'_>,
    node: &Node,
    names: &Names,
    built: Built,
    opts: &SwapOptions,
) -> Result<Built, Failure> {
    hooks::run(&tx, node, &node.rendered_hooks.post, true).await?;
    if let Some(g) = &node.grants {
        grants::apply(&tx, &node.schema, &node.alias, g, true).await?;
    }
    persist_docs(&tx, node, names).await?;
    check_interrupted(opts)?;
    let t = Instant::now();
    tx.commit().await?;
    log::debug!("commit took {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    Ok(built)
}

/// The `persist_docs` comments on the swapped-in relation: a seed counts as kept
/// (dbt reloads its table), everything else as rebuilt.
async fn persist_docs(tx: &Transaction<'_>, node: &Node, names: &Names) -> Result<(), Failure> {
    let rebuilt = node.materialized != Materialization::Seed;
    let keyword = node.materialized.relation_kind();
    comments::persist(tx, node, &names.schema, &names.target, keyword, rebuilt).await
}

pub(super) fn check_interrupted(opts: &SwapOptions) -> Result<(), Failure> {
    if opts.cancel.is_cancelled() {
        Err(Failure::Interrupted)
    } else {
        Ok(())
    }
}

/// Waits between retries: 0.5 s, 1 s, 2 s… up to 8 s, plus up to a quarter more so
/// that invocations retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(4));
    Duration::from_millis(base + jitter(base / 4))
}

/// A random number in `0..=max` (uuid's random bytes: no extra dependency).
pub(super) fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let b = uuid::Uuid::new_v4();
    let n = u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or_default());
    n % (max + 1)
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s}")
    }
}

/// Step 1: the advisory lock of the relation, waiting (and saying so) or failing
/// fast when another invocation holds it.
pub(super) async fn serialise(
    tx: &Transaction<'_>,
    names: &Names,
    opts: &SwapOptions,
    notify: &Notify<'_>,
) -> Result<(), Failure> {
    let key = format!("reluvia-transform:{}.{}", names.schema, names.target);
    let got: bool = tx
        .query_one(
            "select pg_try_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await?
        .get(0);
    if got {
        return Ok(());
    }
    // A bigint advisory key shows in pg_locks as classid (high half), objid (low
    // half) and objsubid 1.
    let holder = tx
        .query_opt(
            "with k as (select hashtextextended($1, 0) as key)
             select l.pid, coalesce(a.application_name, ''),
                    coalesce(to_char(coalesce(a.xact_start, a.state_change) at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', 'unknown')
             from k, pg_locks l left join pg_stat_activity a on a.pid = l.pid
             where l.locktype = 'advisory' and l.granted and l.objsubid = 1
               and l.database = (select oid from pg_database where datname = current_database())
               and l.classid = ((k.key >> 32) & 4294967295)::oid
               and l.objid = (k.key & 4294967295)::oid
             limit 1",
            &[&key],
        )
        .await?
        .map(|r| {
            format!(
                "pid {}, application_name '{}', since {}",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2)
            )
        })
        .unwrap_or_else(|| "a session that has just finished".to_string());
    if !opts.wait_for_lock {
        return Err(Failure::Busy(format!(
            "another invocation ({holder}) is building {d} right now and wait_for_lock is false; rerun once it is done, or set wait_for_lock to true to wait for it",
            d = names.display
        )));
    }
    notify(&format!(
        "waiting for another invocation building {} ({holder}) to finish",
        names.display
    ));
    tx.execute(
        "select pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Phase {
    /// Lock attempts that do not queue (or for at most this long).
    Polite(Duration),
    /// Lock attempts that queue for at most this long.
    Firm(Duration),
}

/// A view that depends on the relation being swapped.
struct Dependent {
    oid: u32,
    schema: String,
    name: String,
    owner: String,
    /// `CREATE OR REPLACE VIEW` with the captured definition and options.
    recreate: String,
}

impl Dependent {
    fn display(&self) -> String {
        format!("view {}.{} (owner {})", self.schema, self.name, self.owner)
    }
}

/// Steps 3–5 under one lock policy. Everything it does is undone by rolling back
/// to `rt_built`, which the caller does on anything but `Done`. Any lock that
/// was not available in time (whichever statement needed it) makes it `Busy`.
async fn locked_swap(
    tx: &Transaction<'_>,
    node: &Node,
    names: &Names,
    phase: Phase,
    notify: &Notify<'_>,
) -> Step {
    let mut relations = Vec::new();
    match locked_swap_inner(tx, node, names, phase, notify, &mut relations).await {
        Step::Busy(_) => Step::Busy(relations),
        Step::Failed(Failure::Db { error, .. }) if is_lock_wait(&error) || vanished(&error) => {
            Step::Busy(relations)
        }
        other => other,
    }
}

/// [`locked_swap`]'s work; it records the relations it locks in `relations`.
async fn locked_swap_inner(
    tx: &Transaction<'_>,
    node: &Node,
    names: &Names,
    phase: Phase,
    notify: &Notify<'_>,
    relations: &mut Vec<u32>,
) -> Step {
    let wait = match phase {
        Phase::Polite(d) | Phase::Firm(d) => d,
    };
    let timeout = format!("{}ms", (wait.as_millis() as u64).max(1));
    if let Err(e) = tx
        .execute("select set_config('lock_timeout', $1, true)", &[&timeout])
        .await
    {
        return e.into();
    }
    let (old_oid, kind) = match current(tx, &names.schema, &names.target).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Step::Failed(Failure::Message(format!(
                "{} disappeared while its new version was being built (dropped by someone else?); rerun",
                names.display
            )))
        }
        Err(e) => return e.into(),
    };
    relations.push(old_oid);
    let mut deps: Vec<Dependent> = Vec::new();
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    let mut checked = 0;

    // Dependents first, as readers lock them; then the relation. Once a table is
    // locked nobody can create a new view on it, so the second look finds every
    // dependent for good. Both looks happen before the rename: the captured
    // definitions must name the relation, not its backup name.
    for round in 0..2 {
        if round == 1 {
            // Under the lock, a cheap look first: usually nothing is new.
            match dependent_oids(tx, old_oid).await {
                Ok(oids) if oids.iter().all(|o| seen.contains(o)) => break,
                Ok(_) => {}
                Err(e) => return e.into(),
            }
        }
        let found = match dependents(tx, old_oid, names).await {
            Ok(d) => d,
            Err(f) => return Step::Failed(f),
        };
        let fresh: Vec<Dependent> = found.into_iter().filter(|d| seen.insert(d.oid)).collect();
        relations.extend(fresh.iter().map(|d| d.oid));
        if matches!(phase, Phase::Polite(_)) && !fresh.is_empty() {
            // No NOWAIT for views either: do not even ask while someone holds one.
            let oids: Vec<u32> = fresh.iter().map(|d| d.oid).collect();
            match held_by_others(tx, &oids).await {
                Ok(true) => return Step::Busy(Vec::new()),
                Ok(false) => {}
                Err(e) => return e.into(),
            }
        }
        for d in fresh {
            // Re-creating it unchanged (it still reads the old relation) takes its
            // lock without recursing into what it reads, as LOCK TABLE would.
            match tx.batch_execute(&d.recreate).await {
                Ok(()) => {}
                Err(e) if is_lock_wait(&e) => return Step::Busy(Vec::new()),
                Err(e) => {
                    return Step::Failed(Failure::Dependents(format!(
                        "{} depends on {t} and cannot be recreated: {}; {t} was left as it was. The transform user needs to be a member of role {} and to have CREATE on schema {} to carry it over (or its owner can drop it); then rerun",
                        d.display(),
                        describe_db_error(&e, ""),
                        d.owner,
                        d.schema,
                        t = names.display
                    )))
                }
            }
            deps.push(d);
        }
        if deps.len() > checked {
            // They were captured before their locks were held: if one changed
            // meanwhile (another invocation swapped it in, someone replaced it),
            // the touch above may have hit the new one. Look again under the
            // locks; on any difference roll back and start over.
            let again = match dependents(tx, old_oid, names).await {
                Ok(d) => d,
                Err(f) => return Step::Failed(f),
            };
            let same = deps[checked..].iter().all(|d| {
                again
                    .iter()
                    .any(|a| a.oid == d.oid && a.recreate == d.recreate && a.owner == d.owner)
            });
            if !same {
                return Step::Busy(Vec::new());
            }
            checked = deps.len();
        }
        if round == 1 {
            break;
        }
        if kind == b'v' as i8 || kind == b'm' as i8 {
            // Views have no NOWAIT lock that does not also lock what they read
            // (LOCK TABLE recurses); the rename below takes the lock under the
            // phase's timeout, after checking nobody holds it. PostgreSQL cannot
            // LOCK a materialized view at all: the same.
            if matches!(phase, Phase::Polite(_)) {
                match held_by_others(tx, &[old_oid]).await {
                    Ok(true) => return Step::Busy(Vec::new()),
                    Ok(false) => {}
                    Err(e) => return e.into(),
                }
            }
        } else {
            let lock = format!(
                "lock table {} in access exclusive mode{}",
                relation_name(&names.schema, &names.target),
                if matches!(phase, Phase::Polite(_)) {
                    " nowait"
                } else {
                    ""
                }
            );
            match tx.batch_execute(&lock).await {
                Ok(()) => {}
                Err(e) if is_lock_wait(&e) => return Step::Busy(Vec::new()),
                Err(e) => return e.into(),
            }
        }
    }
    // Foreign keys of other tables that reference the relation: captured and
    // dropped now (their definitions name the relation, not its backup name),
    // added again once the new version is in place.
    let keys = if kind == b'v' as i8 {
        Vec::new()
    } else {
        match foreign_keys::referencing(tx, old_oid).await {
            Ok(k) => k,
            Err(e) => return e.into(),
        }
    };
    for oid in foreign_keys::tables(&keys) {
        relations.push(oid);
        match foreign_keys::lock(tx, oid, matches!(phase, Phase::Polite(_))).await {
            Ok(()) => {}
            Err(e) if is_lock_wait(&e) => return Step::Busy(Vec::new()),
            Err(e) => return e.into(),
        }
    }
    if let Err(e) = foreign_keys::drop_all(tx, &keys).await {
        return e.into();
    }
    let locked = Instant::now();
    let rename_old = format!(
        "alter {} {} rename to {}",
        kind_keyword(kind),
        relation_name(&names.schema, &names.target),
        quote_ident(&names.old)
    );
    match tx.batch_execute(&rename_old).await {
        Ok(()) => {}
        Err(e) if is_lock_wait(&e) => return Step::Busy(Vec::new()),
        Err(e) => return e.into(),
    }

    if let Err(e) = rename(
        tx,
        node.materialized.relation_kind(),
        &names.schema,
        &names.tmp,
        &names.target,
    )
    .await
    {
        return e.into();
    }
    for d in &deps {
        // The captured definition names the relation, which is now the new one.
        if let Err(e) = tx.batch_execute(&d.recreate).await {
            if is_lock_wait(&e) {
                return Step::Busy(Vec::new());
            }
            return Step::Failed(Failure::Dependents(format!(
                "{} depends on {t} and cannot be recreated on its new version: {}; {t} was left as it was. Change or drop the view so it fits the new {t}, then rerun",
                d.display(),
                describe_db_error(&e, "").replace(&names.old, &names.target),
                t = names.display
            )));
        }
    }
    if let Err(e) = foreign_keys::add_all(tx, &keys, &names.display).await {
        if e.lock_wait {
            return Step::Busy(Vec::new());
        }
        return Step::Failed(Failure::Dependents(e.message));
    }
    if let Err(f) = carry_over(tx, old_oid, node, names, notify).await {
        return Step::Failed(f);
    }
    let drop_old = format!(
        "drop {} {}",
        kind_keyword(kind),
        relation_name(&names.schema, &names.old)
    );
    match tx.batch_execute(&drop_old).await {
        Ok(()) => {
            if let Err(e) = rename_constraints(tx, names).await {
                return e.into();
            }
            log::debug!(
                "{}: swapped in {:.1} ms under its locks",
                names.display,
                locked.elapsed().as_secs_f64() * 1000.0
            );
            Step::Done
        }
        Err(e) if is_lock_wait(&e) => Step::Busy(Vec::new()),
        Err(e) if e.code() == Some(&SqlState::DEPENDENT_OBJECTS_STILL_EXIST) => {
            let detail = e
                .as_db_error()
                .and_then(|d| d.detail())
                .unwrap_or("")
                .replace(&names.old, &names.target)
                .replace('\n', "; ");
            Step::Failed(Failure::Dependents(format!(
                "other objects depend on {t} and cannot be moved to its new version: {detail}; {t} was left as it was. Drop or change them, then rerun",
                t = names.display
            )))
        }
        Err(e) => e.into(),
    }
}

/// Once the new relation has its name (and the old one is gone): gives the
/// constraints created under a temporary name their declared name, and those
/// PostgreSQL named after the temporary name (`x__rt_new_…_pkey`) the name they
/// would have had on a table created under its own name (`x_pkey`), where that
/// name is free.
async fn rename_constraints(
    tx: &Transaction<'_>,
    names: &Names,
) -> Result<(), tokio_postgres::Error> {
    let target = relation_name(&names.schema, &names.target);
    for (temporary, declared) in &names.renames {
        tx.batch_execute(&format!(
            "alter table {target} rename constraint {} to {}",
            quote_ident(temporary),
            quote_ident(declared)
        ))
        .await?;
    }
    let rows = tx
        .query(
            "with k as (
               select c.conname::text as old, $3::text || substr(c.conname, length($2::text) + 1) as new,
                      c.conrelid, c.conindid, t.relnamespace
               from pg_constraint c join pg_class t on t.oid = c.conrelid
               where c.conrelid = to_regclass($1::text) and starts_with(c.conname::text, $2::text || '_'))
             select old, new from k
             where octet_length(new) <= 63
               and not exists (select 1 from pg_constraint o where o.conrelid = k.conrelid and o.conname = k.new)
               and (k.conindid = 0 or not exists (select 1 from pg_class r where r.relnamespace = k.relnamespace and r.relname = k.new))
             order by 1",
            &[&target, &names.tmp, &names.target],
        )
        .await?;
    for r in rows {
        let (old, new): (String, String) = (r.get(0), r.get(1));
        tx.batch_execute(&format!(
            "alter table {target} rename constraint {} to {}",
            quote_ident(&old),
            quote_ident(&new)
        ))
        .await?;
    }
    Ok(())
}

/// A relation listed a moment ago was dropped meanwhile (another invocation
/// swapped a dependent view): look again rather than fail.
fn vanished(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::INTERNAL_ERROR)
        && e.as_db_error().is_some_and(|d| {
            d.message().starts_with("could not open relation with OID")
                || d.message().starts_with("cache lookup failed for relation")
        })
}

pub(super) fn is_lock_wait(e: &tokio_postgres::Error) -> bool {
    // 55P03 is both a lock timeout and a failed NOWAIT; a deadlock is resolved the
    // same way: roll back to the savepoint and try again.
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
        || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

/// The OID and kind of `schema.name`, if it exists.
pub(super) async fn current(
    tx: &Transaction<'_>,
    schema: &str,
    name: &str,
) -> Result<Option<(u32, i8)>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "select c.oid, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2",
            &[&schema, &name],
        )
        .await?;
    Ok(row.map(|r| (r.get::<_, u32>(0), r.get::<_, i8>(1))))
}

/// Whether another session holds any lock on the relation (all conflict with the
/// swap's ACCESS EXCLUSIVE).
pub(super) async fn held_by_others(
    tx: &Transaction<'_>,
    oids: &[u32],
) -> Result<bool, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "select exists (select 1 from pg_locks where locktype = 'relation' and relation = any($1) and pid is distinct from pg_backend_pid())",
            &[&oids],
        )
        .await?;
    Ok(row.get(0))
}

async fn rename(
    tx: &Transaction<'_>,
    keyword: &str,
    schema: &str,
    from: &str,
    to: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!(
        "alter {keyword} {} rename to {}",
        relation_name(schema, from),
        quote_ident(to)
    ))
    .await
}

/// The OIDs of the views and materialized views that read `oid` directly.
const DEPENDENT_OIDS: &str = "select distinct r.ev_class
     from pg_depend d join pg_rewrite r on r.oid = d.objid
     where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
       and d.refobjid = $1 and r.ev_class <> $1";

async fn dependent_oids(tx: &Transaction<'_>, oid: u32) -> Result<Vec<u32>, tokio_postgres::Error> {
    let rows = tx.query(DEPENDENT_OIDS, &[&oid]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The views (and materialized views, which fail the swap) that read `oid`
/// directly, with what it takes to recreate each. Views on those views are not
/// touched: re-pointing a view in place keeps its OID, so they stay attached.
async fn dependents(
    tx: &Transaction<'_>,
    oid: u32,
    names: &Names,
) -> Result<Vec<Dependent>, Failure> {
    // Fully qualified definitions (pg_get_viewdef).
    let rows = query_qualified(
        tx,
        "select c.oid, c.relkind, n.nspname::text, c.relname::text,
                    pg_get_userbyid(c.relowner)::text,
                    case when c.relkind = 'v' then pg_get_viewdef(c.oid) end,
                    coalesce(array_to_string(c.reloptions, ', '), '')
             from pg_class c
             join pg_namespace n on n.oid = c.relnamespace
             where c.oid in (select ev_class from pg_depend d join pg_rewrite r on r.oid = d.objid
                             where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
                               and d.refobjid = $1 and r.ev_class <> $1)
             order by 3, 4",
        &[&oid],
    )
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let kind: i8 = r.get(1);
        let schema: String = r.get(2);
        let name: String = r.get(3);
        let owner: String = r.get(4);
        if kind != b'v' as i8 {
            return Err(Failure::Dependents(format!(
                "materialized view {schema}.{name} (owner {owner}) depends on {t} and cannot be carried over to its new version without losing its data; {t} was left as it was. Drop it before the run and recreate it after, or make it a plain view",
                t = names.display
            )));
        }
        let def: String = r.get(5);
        let options: String = r.get(6);
        let def = def.trim().trim_end_matches(';');
        let with = if options.is_empty() {
            String::new()
        } else {
            // reloptions of a view are key=value words PostgreSQL itself wrote
            // (check_option, security_barrier, security_invoker).
            if !options
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_=., ".contains(c))
            {
                return Err(Failure::Dependents(format!(
                    "view {schema}.{name} depends on {} and has options that cannot be carried over ({options}); {} was left as it was",
                    names.display, names.display
                )));
            }
            format!(" with ({options})")
        };
        out.push(Dependent {
            oid: r.get(0),
            recreate: format!(
                "create or replace view {}{with} as {def}",
                relation_name(&schema, &name)
            ),
            schema,
            name,
            owner,
        });
    }
    Ok(out)
}

/// Runs `query` with only pg_catalog on the search path, so that the
/// definitions PostgreSQL prints (`pg_get_viewdef`, `pg_get_constraintdef`)
/// qualify every other name.
pub(super) async fn query_qualified(
    tx: &Transaction<'_>,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    let saved: String = tx
        .query_one("select current_setting('search_path')", &[])
        .await?
        .get(0);
    tx.execute("select set_config('search_path', 'pg_catalog', true)", &[])
        .await?;
    let rows = tx.query(query, params).await?;
    tx.execute("select set_config('search_path', $1, true)", &[&saved])
        .await?;
    Ok(rows)
}

/// Grants (table and column) and comments of the old relation, onto the new one
/// (now under the target name). Column ones follow columns by name; one whose
/// column is gone cannot follow and is reported on the console.
async fn carry_over(
    tx: &Transaction<'_>,
    old_oid: u32,
    node: &Node,
    names: &Names,
    notify: &Notify<'_>,
) -> Result<(), Failure> {
    let new = relation_name(&names.schema, &names.target);
    let keyword = node.materialized.relation_kind();
    let rows = tx
        .query(
            "with new as (select to_regclass($2::text)::oid as oid),
             grants as (
               select format('grant %s on %s to %s%s', a.privilege_type, $2::text,
                        case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end,
                        case when a.is_grantable then ' with grant option' else '' end) as stmt,
                      null::text as lost
               from pg_class c cross join lateral aclexplode(c.relacl) a
               left join pg_roles g on g.oid = a.grantee
               where c.oid = $1 and a.grantee <> c.relowner
             ),
             column_grants as (
               select case when exists (select 1 from pg_attribute x, new where x.attrelid = new.oid and x.attname = at.attname and x.attnum > 0 and not x.attisdropped)
                        then format('grant %s (%I) on %s to %s%s', a.privilege_type, at.attname, $2::text,
                               case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end,
                               case when a.is_grantable then ' with grant option' else '' end) end as stmt,
                      format('%s on column %s to %s not carried over: the column is no longer in the new version', a.privilege_type, at.attname,
                             case when a.grantee = 0 then 'public' else g.rolname::text end) as lost
               from pg_attribute at cross join lateral aclexplode(at.attacl) a
               left join pg_roles g on g.oid = a.grantee
               where at.attrelid = $1 and at.attnum > 0 and not at.attisdropped and at.attacl is not null
             ),
             comments as (
               select format('comment on %s %s is %L', $3::text, $2::text, d.description) as stmt, null::text as lost
               from pg_description d
               where d.objoid = $1 and d.classoid = 'pg_class'::regclass and d.objsubid = 0
               union all
               select case when exists (select 1 from pg_attribute x, new where x.attrelid = new.oid and x.attname = at.attname and x.attnum > 0 and not x.attisdropped)
                        then format('comment on column %s.%I is %L', $2::text, at.attname, d.description) end,
                      format('comment on column %s not carried over: the column is no longer in the new version', at.attname)
               from pg_description d
               join pg_attribute at on at.attrelid = d.objoid and at.attnum = d.objsubid
               where d.objoid = $1 and d.classoid = 'pg_class'::regclass and d.objsubid > 0
             ),
             indexes as (
               select null::text as stmt, format('index %s not carried over: it was made outside the model', i.indexrelid::regclass) as lost
               from pg_index i where i.indrelid = $1
                 -- The index of a constraint the new version has too (a contract's
                 -- primary key…) came with the model.
                 and not exists (select 1 from pg_constraint k, pg_constraint nk, new
                                 where k.conrelid = $1 and k.conindid = i.indexrelid and nk.conrelid = new.oid
                                   and nk.contype = k.contype and pg_get_constraintdef(nk.oid) = pg_get_constraintdef(k.oid))
                 -- One of the model's `indexes`, built again on the new version.
                 and not exists (select 1 from pg_index ni, new
                                 where ni.indrelid = new.oid and ni.indisunique = i.indisunique
                                   and split_part(pg_get_indexdef(ni.indexrelid), ' USING ', 2)
                                     = split_part(pg_get_indexdef(i.indexrelid), ' USING ', 2))
             )
             select stmt, lost from grants
             union all select stmt, lost from column_grants
             union all select stmt, lost from comments
             union all select stmt, lost from indexes",
            &[&old_oid, &new, &keyword],
        )
        .await?;
    for r in rows {
        let stmt: Option<String> = r.get(0);
        match stmt {
            Some(stmt) => tx.batch_execute(&stmt).await.map_err(|e| {
                Failure::Message(format!(
                    "cannot carry {}'s grants and comments over to its new version: {}; {} was left as it was",
                    names.display,
                    describe_db_error(&e, ""),
                    names.display
                ))
            })?,
            None => {
                let lost: String = r.get(1);
                notify(&format!("{}: {lost}", names.display));
            }
        }
    }
    Ok(())
}

/// A session holding a lock the swap needs.
struct Blocker {
    pid: Option<i32>,
    application_name: String,
    user: String,
    state: String,
    query_start: String,
    query: String,
    relation: String,
}

/// The sessions holding locks on `relations` (any lock conflicts with the swap's
/// ACCESS EXCLUSIVE). The swap's own lock request is gone after its timeout, so
/// `pg_blocking_pids` of the swap session would be empty by now; the holders of
/// the relations are exactly the sessions it reported while waiting.
async fn blockers(
    tx: &Transaction<'_>,
    relations: &[u32],
) -> Result<Vec<Blocker>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "select distinct on (l.pid) l.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''),
                    coalesce(a.state, ''),
                    coalesce(to_char(a.query_start at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', 'unknown'),
                    coalesce(left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80), ''),
                    coalesce(n.nspname || '.' || c.relname, l.relation::text)
             from pg_locks l
             left join pg_stat_activity a on a.pid = l.pid
             left join pg_class c on c.oid = l.relation
             left join pg_namespace n on n.oid = c.relnamespace
             where l.locktype = 'relation' and l.granted and l.relation = any($1)
               and l.database = (select oid from pg_database where datname = current_database())
               and l.pid is distinct from pg_backend_pid()
             order by l.pid, a.query_start",
            &[&relations],
        )
        .await?;
    let mut out: Vec<Blocker> = rows
        .into_iter()
        .map(|r| Blocker {
            pid: r.get(0),
            application_name: r.get(1),
            user: r.get(2),
            state: r.get(3),
            query_start: r.get(4),
            query: r.get(5),
            relation: r.get(6),
        })
        .collect();
    out.sort_by(|a, b| a.query_start.cmp(&b.query_start));
    Ok(out)
}

fn describe_blockers(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "sessions that have finished since".to_string();
    }
    let shown: Vec<String> = blockers
        .iter()
        .take(3)
        .map(|b| match b.pid {
            Some(pid) => format!(
                "pid {pid} (application_name '{}', user '{}', {}, query started {}: {}) on {}",
                b.application_name, b.user, b.state, b.query_start, b.query, b.relation
            ),
            None => format!("a prepared transaction on {}", b.relation),
        })
        .collect();
    let more = blockers.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A name of at most 63 bytes: `base` cut at a character boundary, then `suffix`.
pub(super) fn derived_name(base: &str, suffix: &str) -> String {
    let room = 63usize.saturating_sub(suffix.len());
    let mut end = base.len().min(room);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{}", &base[..end], suffix)
}

fn kind_keyword(kind: i8) -> &'static str {
    match kind as u8 {
        b'v' => "view",
        b'm' => "materialized view",
        b'f' => "foreign table",
        _ => "table",
    }
}
