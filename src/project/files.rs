//! The project's files on disk: every file under a path of the project, sorted,
//! with the paths dbt records (`original_file_path`, `path`).

use std::path::Path;

use crate::cancel::Cancel;
use crate::error::{Error, Result};

/// A file of the project: a `.sql` file, a YAML property file, or a seed's CSV
/// (whose `content` is left empty).
#[derive(Debug, Clone)]
pub(crate) struct SqlFile {
    /// Node name: the file stem.
    pub(crate) name: String,
    /// Path relative to the project directory (`models/marts/a.sql`), as dbt's
    /// `original_file_path`.
    pub(crate) original_file_path: String,
    /// Path relative to its model/macro/test path (`marts/a.sql`), as dbt's `path`.
    pub(crate) path: String,
    pub(crate) content: String,
}

/// Every file under `root/sub`, sorted by path so loading is deterministic.
pub(crate) fn walk(root: &Path, sub: &str, cancel: &Cancel) -> Result<Vec<SqlFile>> {
    walk_reading(root, sub, cancel, &|_| true)
}

/// Like [`walk`], reading the contents only of the files `read` accepts (by
/// name); the others come with empty contents (seeds: a CSV is read when it is
/// loaded, not when the project is).
pub(super) fn walk_reading(
    root: &Path,
    sub: &str,
    cancel: &Cancel,
    read: &dyn Fn(&str) -> bool,
) -> Result<Vec<SqlFile>> {
    let base = root.join(sub);
    let mut out = Vec::new();
    if !base.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| Error::usage(format!("cannot read directory {}: {e}", d.display())))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| Error::usage(format!("cannot read directory {}: {e}", d.display())))?;
            let p = entry.path();
            let fname = entry.file_name().to_string_lossy().to_string();
            if fname.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let content = if read(&fname) {
                std::fs::read_to_string(&p)
                    .map_err(|e| Error::usage(format!("cannot read {}: {e}", p.display())))?
            } else {
                String::new()
            };
            cancel.check("while loading the project; nothing was run")?;
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let within = p.strip_prefix(&base).unwrap_or(&p);
            out.push(SqlFile {
                name: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
                original_file_path: slash(rel),
                path: slash(within),
                content,
            });
        }
    }
    out.sort_by(|a, b| a.original_file_path.cmp(&b.original_file_path));
    Ok(out)
}

fn slash(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// dbt's checksum of a seed file in `manifest.json`: the SHA-256 of its text
/// without surrounding whitespace, or, past 1 MiB (or not a regular file), its
/// path.
pub(crate) fn seed_checksum(root: &Path, rel: &str) -> serde_json::Value {
    const LIMIT: u64 = 1024 * 1024;
    let path = root.join(rel);
    // Only a regular file of at most 1 MiB is read (not a pipe, say).
    let small = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= LIMIT);
    match small.then(|| std::fs::read_to_string(&path)) {
        Some(Ok(text)) => {
            serde_json::json!({"name": "sha256", "checksum": sha256_hex(text.trim())})
        }
        _ => serde_json::json!({"name": "path", "checksum": path.display().to_string()}),
    }
}

/// The checksum dbt gives a file it parses: the SHA-256 of its text without
/// surrounding whitespace (dbt strips what it reads), so that `state:modified`
/// against a manifest dbt wrote sees the same file as unchanged.
pub(crate) fn file_checksum(text: &str) -> serde_json::Value {
    serde_json::json!({"name": "sha256", "checksum": sha256_hex(text.trim())})
}

fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
