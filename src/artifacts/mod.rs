//! Artifacts in the target path, in dbt's shapes so dbt tooling can read them:
//! `manifest.json` (every node and source with config, dependencies and compiled
//! SQL), `run_results.json` (status, timing and rows of each executed node) and
//! `compiled/<project>/<original_file_path>`. Every file is written atomically
//! (temporary file in the same directory, fsync, rename), so a reader or a crash
//! never sees half a file; [`remove_leftovers`] removes the temporary files of runs
//! killed mid-write. Compiled SQL, which every compile writes again, is renamed in
//! place without the fsync, by a thread of its own, and left alone when unchanged
//! ([`CompiledWriter`]): a reader still never sees half a file. No secret is ever
//! part of an artifact.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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
    write_renamed(path, content, true, &mut HashSet::new())
}

/// Writes `content` to a temporary file next to `path` and renames it over
/// `path`; `durable`: fsync before the rename. `made`: the directories known to
/// exist already.
fn write_renamed(
    path: &Path,
    content: &[u8],
    durable: bool,
    made: &mut HashSet<PathBuf>,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if !made.contains(dir) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::runtime(format!(
                "cannot create {}: {e}; check the target path",
                dir.display()
            ))
        })?;
        made.insert(dir.to_path_buf());
    }
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
        if durable {
            f.sync_all()?;
        }
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

/// Writes compiled SQL files (`<sql>\n`) on a thread of its own while the
/// caller renders the next nodes, each renamed into place (without fsync: every
/// compile writes them again) unless it already holds that SQL.
/// [`CompiledWriter::finish`] waits for the writes and returns the first error.
pub(crate) struct CompiledWriter {
    files: Option<mpsc::Sender<(PathBuf, String)>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl CompiledWriter {
    pub(crate) fn start() -> Self {
        let (files, received) = mpsc::channel::<(PathBuf, String)>();
        let thread = std::thread::spawn(move || {
            let mut made = HashSet::new();
            let mut first = Ok(());
            for (path, mut sql) in received {
                sql.push('\n');
                // A file that already holds this SQL is left as it is.
                if first.is_ok() && std::fs::read(&path).ok().as_deref() != Some(sql.as_bytes()) {
                    first = write_renamed(&path, sql.as_bytes(), false, &mut made);
                }
            }
            first
        });
        CompiledWriter {
            files: Some(files),
            thread: Some(thread),
        }
    }

    /// Queues `sql` for `path`.
    pub(crate) fn write(&self, path: PathBuf, sql: String) {
        if let Some(files) = &self.files {
            // The thread ends only when `files` is dropped.
            let _ = files.send((path, sql));
        }
    }

    /// Waits until every queued file is written.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.files = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(written)) => written,
            Some(Err(_)) => Err(Error::runtime(
                "the thread writing compiled SQL stopped; check the target path",
            )),
            None => Ok(()),
        }
    }
}

impl Drop for CompiledWriter {
    fn drop(&mut self) {
        self.files = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

/// Whether `id` is a snapshot: compiled, but written to no file (dbt writes
/// none for snapshots, nor seeds).
pub(crate) fn is_snapshot(manifest: &crate::manifest::Manifest, id: &str) -> bool {
    manifest
        .node(id)
        .is_some_and(|n| n.resource_type == "snapshot")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_sql_is_written_once_and_left_alone_when_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("compiled/p/models/a.sql");
        let w = CompiledWriter::start();
        w.write(path.clone(), "select 1".into());
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "select 1\n");
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let w = CompiledWriter::start();
        w.write(path.clone(), "select 1".into());
        w.finish().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        let w = CompiledWriter::start();
        w.write(path.clone(), "select 2".into());
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "select 2\n");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.sql")]);
    }

    #[test]
    fn a_write_that_fails_is_reported_by_finish() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let w = CompiledWriter::start();
        w.write(file.join("a.sql"), "select 1".into());
        let e = w.finish().unwrap_err().to_string();
        assert!(e.contains("check the target path"), "{e}");
    }
}
