//! Artifacts in the target path, in dbt's shapes so dbt tooling can read them:
//! `manifest.json` (every node and source with config, dependencies and compiled
//! SQL), `run_results.json` (status, timing and rows of each executed node) and
//! `compiled/<project>/<original_file_path>`. Every file is written atomically
//! (temporary file in the same directory, fsync, rename), so a reader or a crash
//! never sees half a file; [`remove_leftovers`] removes the temporary files of runs
//! killed mid-write. No secret is ever part of an artifact.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

mod manifest;
mod run_results;

pub(crate) use manifest::{
    exposure_json, manifest_json, model_config, model_json, semantic_json, source_config,
    source_json, test_config, test_json, unit_test_json,
};
pub(crate) use run_results::run_results_json;

/// Writes `content` to `path` atomically.
pub(crate) fn write_atomic(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::runtime(format!(
            "cannot create {}: {e}; check the target path",
            dir.display()
        ))
    })?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::runtime(format!(
            "cannot write {}: {e}; check the target path",
            path.display()
        ))
    })
}

pub(super) fn metadata(schema: &str, invocation_id: &str) -> Value {
    json!({
        "dbt_schema_version": schema,
        "dbt_version": format!("reluvia-transform {}", crate::VERSION),
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "invocation_id": invocation_id,
        "env": {},
        "adapter_type": "postgres",
    })
}

/// Path of a node's compiled SQL under `target`.
pub(crate) fn compiled_path(
    target: &Path,
    project: &str,
    original_file_path: &str,
) -> std::path::PathBuf {
    target
        .join("compiled")
        .join(project)
        .join(original_file_path)
}

/// Path of the compiled SQL of a node of the project or of a package (its
/// `original_file_path` as loaded, relative to the root project), under
/// `target/compiled/<package>/` as dbt writes it.
pub(crate) fn compiled_node_path(
    target: &Path,
    manifest: &crate::manifest::Manifest,
    file: &str,
) -> std::path::PathBuf {
    let (package, rel) = manifest.package_path(file);
    compiled_path(target, package, rel)
}

/// Where the compiled SQL of model, analysis or test `id` goes, relative to the
/// project's compiled folder (dbt's layout: a generic test under its YAML file);
/// none for a seed or anything else that compiles to nothing.
pub(crate) fn compiled_file(manifest: &crate::manifest::Manifest, id: &str) -> Option<String> {
    if let Some(node) = manifest.node(id) {
        return (node.resource_type != "seed").then(|| node.compiled_file());
    }
    let t = manifest.test(id)?;
    Some(match t.kind {
        crate::manifest::TestKind::Generic => {
            format!("{}/{}.sql", t.original_file_path, t.file_name)
        }
        crate::manifest::TestKind::Singular => t.original_file_path.clone(),
        crate::manifest::TestKind::Unit => format!("{}/{}.sql", t.original_file_path, t.name),
    })
}

/// Serialises `value` and writes it atomically to `dir/name`.
pub(crate) fn write_json(dir: &Path, name: &str, value: &Value) -> Result<()> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::runtime(format!("cannot serialise {name}: {e}")))?;
    write_atomic(&dir.join(name), &text)
}

/// Removes what runs that died while writing (SIGKILL, a crash, a power cut) left
/// in `dir` and below: temporary files `.<name>.<pid>.tmp` of [`write_atomic`]
/// whose process no longer runs. A live invocation's files are never touched, and
/// without `/proc` (to tell a live process) nothing is.
pub(crate) fn remove_leftovers(dir: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
                continue;
            }
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(leftover_pid) else {
                continue;
            };
            if kind.is_file() && pid != std::process::id() && !proc.join(pid.to_string()).exists() {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => log::debug!(
                        "removed {}, left by process {pid} that no longer runs",
                        entry.path().display()
                    ),
                    Err(e) => log::debug!("cannot remove {}: {e}", entry.path().display()),
                }
            }
        }
    }
}

/// The process id in the name of a temporary file of [`write_atomic`].
fn leftover_pid(name: &str) -> Option<u32> {
    let (stem, pid) = name
        .strip_prefix('.')?
        .strip_suffix(".tmp")?
        .rsplit_once('.')?;
    if stem.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}
