//! `show`: renders the selected node (or `--inline` SQL, as dbt's
//! `inline_query` node), runs its query with dbt's `limit` appended and prints
//! the rows as dbt does ([`crate::preview`]): a table on stdout ("Previewing
//! node 'x':" on the console), or `{"node": …, "show": [...]}` with `--output
//! json`. It builds nothing. As in dbt, the nodes printed are those whose name
//! is part of the first `--select` value; a compile or database error ends the
//! command with exit 2 (dbt's runtime error).

use std::sync::Arc;

use crate::cli::{ShowArgs, TextOrJson};
use crate::console::Output;
use crate::error::{Error, Result};
use crate::execute::{plan_order, Job};
use crate::manifest::NodeKind;
use crate::postgres;
use crate::preview::{Json, Preview};
use crate::render::{with_database, RenderDb};
use crate::settings::Settings;

use super::{
    chosen, compile, compile_selected, defer, header, load, mark_incremental, warn_unmatched,
    Invocation,
};

pub(super) fn show(
    inv: &Invocation,
    settings: Arc<Settings>,
    args: &ShowArgs,
    out: &Output,
) -> Result<i32> {
    let sel = &args.selection;
    if args.inline.is_none() && sel.select.is_empty() && sel.selector.is_none() {
        return Err(Error::usage(
            "show needs a node or a query: add --select <node> or --inline '<SQL>'",
        ));
    }
    let mut loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    let limit = (args.limit >= 0).then_some(args.limit);
    let connect = || {
        inv.runtime
            .block_on(postgres::connect_with_retry(&settings, &inv.cancel, &|m| {
                out.warn("connect_retry", m)
            }))
    };

    if let Some(sql) = &args.inline {
        let db = RenderDb::new(inv.runtime.handle().clone(), connect()?, "inline_query");
        let (compiled, _) =
            with_database(Some(db.clone()), || compile::compile_inline(&loaded, sql));
        let compiled = match compiled? {
            Ok(c) => c,
            Err(e) => {
                out.error(&format!(
                    "Compilation Error in sql_operation inline_query (from remote system.sql): {e}"
                ));
                return Ok(2);
            }
        };
        let Some(client) = db.take() else {
            return Err(Error::runtime("the connection of the preview was lost"));
        };
        let preview = match query(inv, &client, &compiled, limit) {
            Ok(p) => p,
            Err(e) => {
                out.error(&format!(
                    "Database Error in sql_operation inline_query (from remote system.sql): {e}"
                ));
                return Ok(2);
            }
        };
        print(out, None, &preview, args.output);
        return Ok(0);
    }

    warn_unmatched(out, &loaded, sel)?;
    let chosen = chosen(&loaded, sel, out)?;
    let m = &loaded.manifest;
    if let Some(seed) = chosen.iter().find(|id| m.kind(id) == Some(NodeKind::Seed)) {
        return Err(Error::usage(format!(
            "show of a seed ({seed}) is not supported: dbt's show loads the seed and prints its CSV; load it with `seed --select …` and preview it with `show --inline \"select * from {{{{ ref('…') }}}}\"`, or leave it out of the selection with --exclude"
        )));
    }
    let mut order = plan_order(
        &loaded.graph,
        m,
        &chosen,
        Job::Build {
            store_failures: false,
            check_freshness: false,
            full_refresh: args.full_refresh,
            empty: false,
            event_time: None,
        },
    );
    order.extend(compile::never_run(m, &chosen));
    mark_incremental(inv, &settings, out, &mut loaded, &order, args.full_refresh)?;
    defer(inv, &settings, out, &loaded, &sel.against, &chosen, &[])?;
    let db = RenderDb::new(inv.runtime.handle().clone(), connect()?, "show");
    compile_selected(&mut loaded, &order, &inv.cancel, Some(db.clone()))?;
    let m = &loaded.manifest;
    let described = |id: &str| -> Option<(String, String, String, Option<&String>)> {
        if let Some(n) = m.node(id) {
            let name = match &n.version {
                Some(v) => format!("{}.v{v}", n.name),
                None => n.name.clone(),
            };
            let what = format!("{} {} ({})", n.resource_type, n.name, n.original_file_path);
            Some((n.name.clone(), name, what, n.compiled_code.as_ref()))
        } else {
            m.test(id).map(|t| {
                let what = format!("test {} ({})", t.name, t.original_file_path);
                (
                    t.name.clone(),
                    t.name.clone(),
                    what,
                    t.compiled_code.as_ref(),
                )
            })
        }
    };
    for id in &order {
        let error = m
            .node(id)
            .and_then(|n| n.compile_error.as_ref())
            .or_else(|| m.test(id).and_then(|t| t.compile_error.as_ref()));
        if let (Some(e), Some((_, _, what, _))) = (error, described(id)) {
            out.error(&format!("Compilation Error in {what}: {e}"));
            return Ok(2);
        }
    }
    let Some(client) = db.take() else {
        return Err(Error::runtime("the connection of the preview was lost"));
    };
    let first = sel.select.first();
    for id in &order {
        let Some((name, shown, what, Some(sql))) = described(id) else {
            continue;
        };
        if first.is_some_and(|f| !f.contains(name.as_str())) {
            continue;
        }
        let header = m.node(id).and_then(|n| n.config.get("sql_header"));
        let header = header.and_then(serde_json::Value::as_str);
        let r = match header.filter(|h| !h.trim().is_empty()) {
            Some(h) => query_with_header(inv, &client, h, sql, limit),
            None => query(inv, &client, sql, limit),
        };
        match r {
            Ok(preview) => print(out, Some(&shown), &preview, args.output),
            Err(e) => {
                out.error(&format!("Database Error in {what}: {e}"));
                return Ok(2);
            }
        }
    }
    Ok(0)
}

/// Runs `sql` with dbt's limit appended (`get_limit_sql`: the SQL, then
/// `limit n` on a line of its own) and types its rows.
fn query(
    inv: &Invocation,
    client: &tokio_postgres::Client,
    sql: &str,
    limit: Option<i64>,
) -> std::result::Result<Preview, String> {
    let sql = match limit {
        Some(n) => format!("{sql}\n  limit {n}"),
        None => sql.to_string(),
    };
    let (columns, rows) = inv
        .runtime
        .block_on(postgres::fetch_text(client, &sql))
        .map_err(|e| postgres::describe_db_error(&e, &sql))?;
    Ok(Preview::from_text(&columns, &rows))
}

/// [`query`] after the model's SQL header (dbt's `get_show_sql` puts it in
/// front of the query), in a transaction rolled back afterwards, so that a
/// `set local` holds for the query.
fn query_with_header(
    inv: &Invocation,
    client: &tokio_postgres::Client,
    header: &str,
    sql: &str,
    limit: Option<i64>,
) -> std::result::Result<Preview, String> {
    inv.runtime
        .block_on(client.batch_execute("begin"))
        .map_err(|e| postgres::describe_db_error(&e, ""))?;
    let r = inv
        .runtime
        .block_on(client.batch_execute(header))
        .map_err(|e| format!("sql_header: {}", postgres::describe_db_error(&e, header)))
        .and_then(|()| query(inv, client, sql, limit));
    let _ = inv.runtime.block_on(client.batch_execute("rollback"));
    r
}

/// Prints a preview as dbt's `ShowNode` event: the table on stdout after
/// "Previewing node 'x':" (or "Previewing inline node:") on the console, or
/// one JSON document on stdout.
fn print(out: &Output, node: Option<&str>, preview: &Preview, format: TextOrJson) {
    match format {
        TextOrJson::Text => {
            let title = match node {
                Some(n) => format!("Previewing node '{n}':"),
                None => "Previewing inline node:".to_string(),
            };
            out.info("show_node", &title);
            print!("{}", preview.table());
        }
        TextOrJson::Json => {
            let mut doc = Vec::new();
            if let Some(n) = node {
                doc.push(("node".to_string(), Json::Str(n.to_string())));
            }
            doc.push(("show".to_string(), preview.json_rows()));
            println!("{}", Json::Obj(doc).indented());
        }
    }
}
