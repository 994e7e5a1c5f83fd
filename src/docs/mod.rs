//! Documentation: `docs generate` and `docs serve`.
//!
//! [`catalog`] reads `catalog.json` from the database; [`model`] turns the
//! artifacts (manifest, catalog, run results, freshness) into documented nodes of
//! a few kinds; [`layout`] and [`svg`] draw the lineage at generate time; [`site`]
//! writes the pages; [`serve`] serves them on localhost.

pub(crate) mod catalog;
pub(crate) mod layout;
pub(crate) mod model;
pub(crate) mod serve;
pub(crate) mod site;
pub(crate) mod svg;

use std::path::Path;

use serde_json::Value;

use crate::artifacts::write_atomic;
use crate::error::{Error, Result};

/// A JSON artifact of a previous command, if there is one that parses.
pub(crate) fn read_artifact(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the site of `docs` into `dir`: `index.html` and `nodes/<id>.html`
/// (stale pages of a previous generation are removed). Returns the page count.
pub(crate) fn write_site(dir: &Path, docs: &model::Docs) -> Result<usize> {
    let pages = dir.join(site::PAGES);
    if pages.is_dir() {
        std::fs::remove_dir_all(&pages)
            .map_err(|e| Error::runtime(format!("cannot remove {}: {e}", pages.display())))?;
    }
    std::fs::create_dir_all(&pages)
        .map_err(|e| Error::runtime(format!("cannot create {}: {e}", pages.display())))?;
    let mut written = 0;
    for (i, n) in docs.nodes.iter().enumerate() {
        if let Some(page) = &n.page {
            let html = site::node_page(docs, i);
            std::fs::write(pages.join(page), html).map_err(|e| {
                Error::runtime(format!("cannot write {}/{page}: {e}", pages.display()))
            })?;
            written += 1;
        }
    }
    write_atomic(&dir.join("index.html"), site::index_page(docs).as_bytes())?;
    Ok(written + 1)
}
