//! The database as a render reaches it, with dbt's two phases: while the project
//! is parsed `execute` is false, `run_query` gives `none`, a `statement` block
//! does not run and `load_result` gives `none`; while a node is rendered for
//! execution (or by `compile`, or for `run-operation`) they run on the render's
//! connection ([`RenderDb`]). A render that reaches the database where none was
//! given (the compile pass before a `run`) is marked, and the node is rendered
//! again when it runs, with its connection (see `execute::node`).
//!
//! Statements run as they are written (the simple protocol, so a block may hold
//! several), in autocommit unless the SQL itself opens a transaction (or, for
//! `run-operation`, a `statement` block did: see [`RenderDb::transactional`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Rest};
use minijinja::{State, Value};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::agate::{ColumnType, Table, TableObj};
use super::context::Phase;
use super::{calls_of, jerr};

/// A connection lent to renders on one thread, and the runtime its driver runs on.
pub(crate) struct RenderDb {
    handle: tokio::runtime::Handle,
    client: Mutex<Option<Client>>,
    /// Whose statements these are, for the `On <node>:` debug lines.
    node: String,
    /// `run-operation`'s connection, as dbt's: `run_query` runs as it is
    /// (autocommit), a `statement` block opens a transaction first, once (dbt's
    /// `auto_begin`), which stays open until the SQL commits it; the caller rolls
    /// back what is left at the end.
    begins: bool,
    /// Whether a `statement` block opened that transaction.
    opened: std::sync::atomic::AtomicBool,
    /// A connection lent by the task that holds it (a hook rendered when it
    /// runs, inside its node's transaction): statements are sent there to run.
    lent: Option<crate::postgres::Lend>,
}

impl std::fmt::Debug for RenderDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RenderDb({})", self.node)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<RenderDb>>> = const { RefCell::new(None) };
    static WANTED: Cell<bool> = const { Cell::new(false) };
}

/// A query on a borrowed connection, boxed to be sent to a lent one.
pub(super) type BoxedQuery<'c, T> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<T, tokio_postgres::Error>> + Send + 'c>,
>;

/// What a query gave: its last statement's rows, its command tag and row count.
#[derive(Debug, Default)]
pub(super) struct QueryResult {
    pub(super) table: Table,
    pub(super) code: String,
    pub(super) rows_affected: u64,
}

impl QueryResult {
    /// dbt's `AdapterResponse` as a mapping.
    fn response(&self) -> Value {
        let msg = if self.code.is_empty() {
            String::new()
        } else {
            format!("{} {}", self.code, self.rows_affected)
        };
        let mut m = BTreeMap::new();
        m.insert("_message", Value::from(msg));
        m.insert("code", Value::from(self.code.clone()));
        m.insert("rows_affected", Value::from(self.rows_affected));
        Value::from(m)
    }
}

impl RenderDb {
    /// Lends `client` to the renders of `node` (`master` outside a node).
    pub(crate) fn new(handle: tokio::runtime::Handle, client: Client, node: &str) -> Arc<RenderDb> {
        Arc::new(RenderDb {
            handle,
            client: Mutex::new(Some(client)),
            node: node.to_string(),
            begins: false,
            opened: Default::default(),
            lent: None,
        })
    }

    /// The connection of the task behind `lend`, for the renders of `node`'s
    /// hooks when they run (see `postgres::HookRender`).
    pub(crate) fn lent(
        handle: tokio::runtime::Handle,
        lend: crate::postgres::Lend,
        node: &str,
    ) -> Arc<RenderDb> {
        Arc::new(RenderDb {
            handle,
            client: Mutex::new(None),
            node: node.to_string(),
            begins: false,
            opened: Default::default(),
            lent: Some(lend),
        })
    }

    /// Lends `client` to a `run-operation` (see `begins`); the caller ends the
    /// transaction a `statement` block opened.
    pub(crate) fn transactional(
        handle: tokio::runtime::Handle,
        client: Client,
        node: &str,
    ) -> Arc<RenderDb> {
        Arc::new(RenderDb {
            handle,
            client: Mutex::new(Some(client)),
            node: node.to_string(),
            begins: true,
            opened: Default::default(),
            lent: None,
        })
    }

    /// The connection back, once the renders are done.
    pub(crate) fn take(&self) -> Option<Client> {
        self.client.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Runs `f` on the connection, blocking this (non-async) thread, whether the
    /// connection is this render's or lent to it ([`RenderDb::lent`]).
    pub(super) fn run<T: Send + 'static>(
        &self,
        f: impl for<'c> FnOnce(&'c Client) -> BoxedQuery<'c, T> + Send + 'static,
        sql: &str,
    ) -> Result<T, String> {
        let Some(lend) = &self.lent else {
            return self.block_on(async move |c: &Client| f(c).await, sql);
        };
        let (reply, answer) = std::sync::mpsc::channel();
        let node = self.node.clone();
        let job: crate::postgres::DbJob = Box::new(move |c: &Client| {
            Box::pin(crate::console::NODE.scope(node, async move {
                let _ = reply.send(f(c).await);
            }))
        });
        lend.send(job)
            .map_err(|_| "the connection is gone".to_string())?;
        answer
            .recv()
            .map_err(|_| "the connection is gone".to_string())?
            .map_err(|e| crate::postgres::describe_db_error(&e, sql))
    }

    /// Runs `f` on the connection, blocking this (non-async) thread.
    pub(super) fn block_on<T>(
        &self,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
        sql: &str,
    ) -> Result<T, String> {
        let guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let client = guard
            .as_ref()
            .ok_or_else(|| "the connection is gone".to_string())?;
        let work = crate::console::NODE.scope(self.node.clone(), f(client));
        self.handle
            .block_on(work)
            .map_err(|e| crate::postgres::describe_db_error(&e, sql))
    }

    /// Runs `sql` as written (after opening the transaction of a `run-operation`
    /// when `auto_begin` and none was); returns its last statement's rows, typed.
    pub(super) fn query(&self, sql: &str, auto_begin: bool) -> Result<QueryResult, String> {
        let begin = self.begins
            && auto_begin
            && !self.opened.swap(true, std::sync::atomic::Ordering::SeqCst);
        let text = sql.to_string();
        let (types, messages) = self.run(
            move |c: &Client| {
                Box::pin(async move {
                    if begin {
                        c.batch_execute("begin").await?;
                    }
                    // The column types, when the SQL is one statement that can be
                    // described; the simple protocol then runs it as written.
                    let types: Option<Vec<ColumnType>> = c.prepare(&text).await.ok().map(|st| {
                        st.columns()
                            .iter()
                            .map(|col| ColumnType::of_pg(col.type_().name()))
                            .collect()
                    });
                    let messages = c.simple_query(&text).await?;
                    Ok((types, messages))
                })
            },
            sql,
        )?;
        let code = sql
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        let mut out = QueryResult {
            code,
            ..QueryResult::default()
        };
        let mut current = Table::default();
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(cols) => {
                    current.names = cols.iter().map(|c| c.name().to_string()).collect();
                }
                SimpleQueryMessage::Row(row) => {
                    if current.names.is_empty() {
                        current.names =
                            row.columns().iter().map(|c| c.name().to_string()).collect();
                    }
                    let n = current.names.len();
                    let kinds = match &types {
                        Some(t) if t.len() == n => t.clone(),
                        _ => vec![ColumnType::Text; n],
                    };
                    current.rows.push(
                        (0..n)
                            .map(|i| kinds[i].value(row.get(i)))
                            .collect::<Vec<_>>(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => {
                    out.rows_affected = n;
                    let n_cols = current.names.len();
                    current.types = match &types {
                        Some(t) if t.len() == n_cols => t.clone(),
                        _ => vec![ColumnType::Text; n_cols],
                    };
                    out.table = std::mem::take(&mut current);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Runs `f` with `db` as the database of the renders it makes on this thread;
/// returns what `f` gave and whether a render reached for a database it was not
/// given (`db` none).
pub(crate) fn with_database<T>(db: Option<Arc<RenderDb>>, f: impl FnOnce() -> T) -> (T, bool) {
    let before = CURRENT.with(|c| c.replace(db));
    WANTED.with(|w| w.set(false));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = before);
    (out, WANTED.with(|w| w.replace(false)))
}

/// The database of renders starting now on this thread.
pub(super) fn current() -> Option<Arc<RenderDb>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// The render's connection; in the execution phase without one, marks the render
/// as wanting it and fails it.
pub(super) fn connection(state: &State, what: &str) -> Result<Arc<RenderDb>, minijinja::Error> {
    let calls = calls_of(state)?;
    match &calls.db {
        Some(db) => Ok(db.clone()),
        None => {
            WANTED.with(|w| w.set(true));
            Err(jerr(format!(
                "{what} needs the database here, which this render does not have; call it from a model, a test, a macro or run-operation"
            )))
        }
    }
}

/// Whether the render is in dbt's execution phase (`execute`).
pub(super) fn executing(state: &State) -> Result<bool, minijinja::Error> {
    Ok(calls_of(state)?.phase == Phase::Compile)
}

/// `run_query(sql)`: the result as a table; `none` while parsing.
pub(super) fn run_query(state: &State, sql: Value) -> Result<Value, minijinja::Error> {
    if !executing(state)? {
        return Ok(Value::from(()));
    }
    let db = connection(state, "run_query()")?;
    let sql = sql.to_string();
    let r = db
        .query(&sql, false)
        .map_err(|e| jerr(format!("Database Error in run_query(): {e}")))?;
    Ok(Value::from_object(TableObj(Arc::new(r.table))))
}

/// `{% call statement(name, fetch_result=…) %}sql{% endcall %}`: runs the block's
/// SQL while executing and keeps the result for `load_result(name)`.
pub(super) fn statement(
    state: &mut State,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, minijinja::Error> {
    let caller: Option<Value> = kwargs.get("caller")?;
    let mut name: Option<String> = args.first().and_then(|v| v.as_str().map(str::to_string));
    if let Some(n) = kwargs.get::<Option<String>>("name")? {
        name = Some(n);
    }
    let fetch = args.get(1).map(Value::is_true).unwrap_or(false)
        || kwargs.get::<Option<bool>>("fetch_result")?.unwrap_or(false);
    let auto_begin = kwargs.get::<Option<bool>>("auto_begin")?.unwrap_or(true);
    if let Some(language) = kwargs.get::<Option<String>>("language")? {
        if language != "sql" {
            return Err(jerr(format!(
                "statement(language='{language}'): only SQL runs on PostgreSQL"
            )));
        }
    }
    kwargs.assert_all_used()?;
    if !executing(state)? {
        return Ok(Value::from(""));
    }
    let Some(caller) = caller else {
        return Err(jerr(
            "statement() is a call block: {% call statement('name') %}select …{% endcall %}",
        ));
    };
    let sql = caller.call(state, &[])?.to_string();
    let db = connection(state, "statement()")?;
    let mut r = db
        .query(sql.trim(), auto_begin)
        .map_err(|e| jerr(format!("Database Error in statement(): {e}")))?;
    if !fetch {
        r.table = Table::default();
    }
    if let Some(name) = name {
        let table = Arc::new(std::mem::take(&mut r.table));
        let mut m = BTreeMap::new();
        m.insert("response", r.response());
        m.insert("data", table.data());
        m.insert("table", Value::from_object(TableObj(table)));
        calls_of(state)?
            .results
            .lock()
            .unwrap()
            .insert(name, Value::from(m));
    }
    Ok(Value::from(""))
}

/// `load_result(name)`: what `statement(name)` kept; `none` when it did not run.
pub(super) fn load_result(state: &State, name: String) -> Result<Value, minijinja::Error> {
    let calls = calls_of(state)?;
    let r = calls.results.lock().unwrap().get(&name).cloned();
    Ok(r.unwrap_or(Value::from(())))
}
