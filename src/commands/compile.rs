//! `compile`: renders the selected models', analyses' and tests' SQL into
//! `<target-path>/compiled/` and writes `manifest.json`. It connects when a
//! render reaches the database (`run_query`, `statement` blocks, the adapter's
//! introspection: dbt's compile runs them) or an incremental model asks whether
//! its table exists.
//! With `--select`, the compiled SQL of the selected nodes whose name is part of
//! the first selector (as dbt picks them: `-s orders` prints `orders`, `-s
//! +orders` prints `orders` but not its parents) goes to stdout.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::artifacts;
use crate::cli::{CompileArgs, TextOrJson};
use crate::console::{plural, Output};
use crate::error::Result;
use crate::execute::{plan_order, Job};
use crate::manifest::{Manifest, Materialization, NodeKind};
use crate::render::{EphemeralCache, RenderDb};
use crate::settings::Settings;

use super::{
    chosen, compile_selected, defer, header, load, mark_incremental, warn_unmatched, Invocation,
    Loaded,
};

pub(super) fn compile(
    inv: &Invocation,
    settings: Arc<Settings>,
    args: &CompileArgs,
    out: &Output,
) -> Result<i32> {
    if let Some(sql) = &args.inline {
        return inline(inv, settings, sql, args, out);
    }
    let sel = &args.selection;
    let mut loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    warn_unmatched(out, &loaded, sel)?;
    let chosen = chosen(&loaded, sel, out)?;
    let mut order = plan_order(
        &loaded.graph,
        &loaded.manifest,
        &chosen,
        Job::Build {
            store_failures: false,
            check_freshness: false,
            full_refresh: false,
            empty: args.empty,
            event_time: None,
        },
    );
    // compile also renders what never runs: the selected analyses and ephemeral
    // models.
    order.extend(never_run(&loaded.manifest, &chosen));
    mark_incremental(inv, &settings, out, &mut loaded, &order, args.full_refresh)?;
    defer(inv, &settings, out, &loaded, &sel.against, &chosen, &[])?;
    loaded.renderer.empty(args.empty);
    let mut failed = compile_selected(&mut loaded, &order, &inv.cancel, None)?;
    // As dbt's compile, renders reach the database (`run_query`, `statement`,
    // the adapter's introspection): the nodes that do are rendered again on a
    // connection, opened only for them.
    let later: Vec<String> = order
        .iter()
        .filter(|id| loaded.manifest.render_at_run.contains(*id))
        .cloned()
        .collect();
    if !later.is_empty() {
        let client = inv.runtime.block_on(crate::postgres::connect_with_retry(
            &settings,
            &inv.cancel,
            &|m| out.warn("connect_retry", m),
        ))?;
        let db = RenderDb::new(inv.runtime.handle().clone(), client, "master");
        loaded.manifest.render_at_run.clear();
        failed += compile_selected(&mut loaded, &later, &inv.cancel, Some(db))?;
    }
    let m = &loaded.manifest;
    for id in &order {
        let error = m
            .node(id)
            .and_then(|n| n.compile_error.as_ref())
            .or_else(|| m.test(id).and_then(|t| t.compile_error.as_ref()));
        if let Some(e) = error {
            out.error(&format!("Compilation Error in {id}: {e}"));
        }
    }
    if failed > 0 {
        return Ok(1);
    }
    if let Some(first) = sel.select.first() {
        print_compiled(&loaded, &order, first, args.output, out);
    }
    let order: Vec<String> = order
        .into_iter()
        .filter(|id| loaded.manifest.kind(id) == Some(NodeKind::Model))
        .collect();
    out.info(
        "compiled",
        &format!(
            "Compiled {} model{} to {}",
            order.len(),
            plural(order.len()),
            artifacts::compiled_path(&loaded.target_dir, &loaded.manifest.project_name, "")
                .display()
        ),
    );
    // Freeing the project (its nodes, templates, macros) is left to a thread
    // of its own: the process ends first.
    std::thread::spawn(move || drop(loaded));
    Ok(0)
}

/// Prints the compiled SQL of the nodes of `order` whose name is part of the
/// first `--select` value: a header line on the console and the SQL on stdout
/// (text), or `{"node": …, "compiled": …}` on stdout (json).
fn print_compiled(
    loaded: &Loaded,
    order: &[String],
    first: &str,
    format: TextOrJson,
    out: &Output,
) {
    let m = &loaded.manifest;
    for id in order {
        let (name, sql) = match (m.node(id), m.test(id)) {
            (Some(n), _) => (&n.name, n.compiled_code.as_deref()),
            (_, Some(t)) => (&t.name, t.compiled_code.as_deref()),
            _ => continue,
        };
        let Some(sql) = sql.filter(|_| first.contains(name.as_str())) else {
            continue;
        };
        match format {
            TextOrJson::Text => {
                out.info("compiled_node", &format!("Compiled node '{name}' is:"));
                println!("{sql}");
            }
            TextOrJson::Json => {
                let doc = serde_json::json!({"node": name, "compiled": sql});
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
        }
    }
}

/// `compile --inline SQL`: the SQL rendered as dbt's `inline_query` node, on
/// stdout ("Compiled inline node is:" on the console), or as
/// `{"compiled": …}` with `--output json`, as dbt prints them; written where dbt
/// writes it (`compiled/<project>/from remote system.sql/sql/inline_query`).
fn inline(
    inv: &Invocation,
    settings: Arc<Settings>,
    sql: &str,
    args: &CompileArgs,
    out: &Output,
) -> Result<i32> {
    let loaded = load(settings, &inv.cancel)?;
    header(out, &loaded);
    loaded.renderer.empty(args.empty);
    let compiled = match compile_inline(&loaded, sql)? {
        Ok(c) => c,
        Err(e) => {
            out.error(&format!("Compilation Error in inline_query: {e}"));
            return Ok(1);
        }
    };
    match args.output {
        TextOrJson::Text => {
            out.info("compiled_node", "Compiled inline node is:");
            println!("{compiled}");
        }
        TextOrJson::Json => {
            let doc = serde_json::json!({"compiled": compiled});
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    Ok(0)
}

/// Renders `--inline` SQL as dbt's `inline_query` node and writes it where dbt
/// writes it (`compiled/<project>/from remote system.sql/sql/inline_query`),
/// with the ephemeral models it inlined; the render's error as text.
pub(super) fn compile_inline(
    loaded: &Loaded,
    sql: &str,
) -> Result<std::result::Result<String, String>> {
    let mut ephemerals = EphemeralCache::default();
    let compiled = match loaded
        .renderer
        .compile_inline(&loaded.manifest, sql, &mut ephemerals)
    {
        Ok(c) => c,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let project = &loaded.manifest.project_name;
    let write = |rel: &str, sql: &str| {
        let path = artifacts::compiled_path(&loaded.target_dir, project, rel);
        artifacts::write_atomic(&path, format!("{sql}\n").as_bytes())
    };
    write("from remote system.sql/sql/inline_query", &compiled)?;
    for (id, sql) in ephemerals.compiled() {
        if let Some(node) = loaded.manifest.node(id) {
            write(&node.original_file_path, sql)?;
        }
    }
    Ok(Ok(compiled))
}

/// The chosen analyses and ephemeral models: never run, but compiled (and
/// previewed by `show`).
pub(super) fn never_run(m: &Manifest, chosen: &BTreeSet<String>) -> Vec<String> {
    chosen
        .iter()
        .filter(|id| {
            m.kind(id) == Some(NodeKind::Analysis)
                || m.node(id).map(|n| n.materialized) == Some(Materialization::Ephemeral)
        })
        .cloned()
        .collect()
}
