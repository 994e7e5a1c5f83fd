//! `docs generate`: compiles every node (writing `manifest.json`), reads
//! `catalog.json` from the database, and writes the static site (`index.html`
//! and `nodes/`) with the latest `run_results.json` and `sources.json` statuses.
//! It never overwrites those two: they are what the site reports.
//! `docs serve`: serves the target path on localhost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artifacts;
use crate::cli::DocsCommand;
use crate::console::Output;
use crate::docs::{self, catalog, model};
use crate::error::{Error, Result};
use crate::manifest::NodeKind;
use crate::settings::Settings;

use super::{compile_selected, header, load, mark_incremental, Invocation};

pub(super) fn docs(
    inv: &Invocation,
    settings: Arc<Settings>,
    command: &DocsCommand,
    out: &Output,
) -> Result<i32> {
    match command {
        DocsCommand::Generate { no_catalog } => {
            generate(inv, settings, out, None, *no_catalog)?;
            Ok(0)
        }
        DocsCommand::Serve { port, host } => {
            let project = super::open_project(&settings, &inv.cancel)?;
            let dir = settings.resolve_target_path(&project.target_path);
            if !dir.join("index.html").is_file() {
                return Err(Error::usage(format!(
                    "no documentation site in {}: run `reluvia-transform docs generate` first",
                    dir.display()
                )));
            }
            inv.runtime
                .block_on(docs::serve::serve(&dir, host, *port, &inv.cancel, |addr| {
                    out.info(
                        "docs_serve",
                        &format!(
                            "Serving the docs of {} at http://{addr}/ (Ctrl-C to stop)",
                            dir.display()
                        ),
                    );
                }))?;
            Ok(0)
        }
    }
}

/// Generates the docs; the site goes to `site_dir` (default: the target path).
/// Returns the path of its `index.html`.
pub(super) fn generate(
    inv: &Invocation,
    settings: Arc<Settings>,
    out: &Output,
    site_dir: Option<&Path>,
    no_catalog: bool,
) -> Result<PathBuf> {
    let mut loaded = load(settings.clone(), &inv.cancel)?;
    header(out, &loaded);
    let ids: BTreeSet<String> = loaded
        .graph
        .ids
        .iter()
        .filter(|id| loaded.manifest.kind(id) != Some(NodeKind::Source))
        .cloned()
        .collect();
    let order = loaded.graph.topo_order(&ids);
    if !no_catalog {
        // The SQL the site shows is what runs: is_incremental() as for `run`.
        mark_incremental(inv, &settings, out, &mut loaded, &order, false)?;
    }
    compile_selected(&mut loaded, &order, &inv.cancel, None)?;
    let manifest = artifacts::manifest_json(&loaded.manifest, &loaded.invocation_id);
    let catalog = if no_catalog {
        None
    } else {
        let value = inv.runtime.block_on(async {
            let client = crate::postgres::connect_with_retry(&settings, &inv.cancel, &|m| {
                out.warn("connect_retry", m)
            })
            .await?;
            tokio::select! {
                r = catalog::read(&client, &loaded.manifest, &settings.dbname, &loaded.invocation_id) => r,
                _ = inv.cancel.cancelled() => Err(Error::interrupted("while reading the catalog")),
            }
        })?;
        artifacts::write_json(&loaded.target_dir, "catalog.json", &value)?;
        Some(value)
    };
    let run_results = docs::read_artifact(&loaded.target_dir, "run_results.json");
    let sources = docs::read_artifact(&loaded.target_dir, "sources.json");
    let built = model::build(
        &manifest,
        catalog.as_ref(),
        run_results.as_ref(),
        sources.as_ref(),
    );
    let dir = site_dir.unwrap_or(&loaded.target_dir);
    let pages = docs::write_site(dir, &built)?;
    let index = dir.join("index.html");
    let what = if catalog.is_some() {
        "catalog.json and the documentation site"
    } else {
        "the documentation site (no catalog)"
    };
    out.info(
        "docs_generated",
        &format!("Wrote {what}: {pages} pages, open {}", index.display()),
    );
    Ok(index)
}
