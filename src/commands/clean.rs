//! `clean`: deletes the project's `clean-targets` (default: the target path), as
//! dbt does: never a resource path (models, seeds, macros, tests…), and never a
//! directory outside the project unless `--no-clean-project-files-only`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::CleanArgs;
use crate::console::Output;
use crate::error::{Error, Result};
use crate::project;
use crate::settings::Settings;

use super::Invocation;

pub(super) fn clean(
    _inv: &Invocation,
    settings: Arc<Settings>,
    args: &CleanArgs,
    out: &Output,
) -> Result<i32> {
    let dir = absolute(&settings.project_dir);
    let pf = project::project_file(&settings.project_dir)?;
    let file = dir.join("dbt_project.yml").display().to_string();
    let resolve = |p: &str| normalize(&dir.join(p));
    let sources: Vec<PathBuf> = [
        &pf.model_paths,
        &pf.seed_paths,
        &pf.snapshot_paths,
        &pf.analysis_paths,
        &pf.macro_paths,
        &pf.test_paths,
    ]
    .into_iter()
    .flatten()
    .map(|p| resolve(p))
    .collect();
    let mut targets: Vec<PathBuf> = pf.clean_targets.iter().map(|p| resolve(p)).collect();
    targets.sort();
    targets.dedup();
    let protected: Vec<String> = targets
        .iter()
        .filter(|t| sources.contains(t))
        .map(|t| t.display().to_string())
        .collect();
    if !protected.is_empty() {
        return Err(Error::in_file(
            file,
            format!(
                "clean-targets: will not clean the resource paths {}; list only generated directories (target, dbt_packages, logs)",
                protected.join(", ")
            ),
        ));
    }
    let outside: Vec<String> = targets
        .iter()
        .filter(|t| !t.starts_with(&dir) || **t == dir)
        .map(|t| t.display().to_string())
        .collect();
    if !outside.is_empty() && !args.no_clean_project_files_only {
        return Err(Error::in_file(
            file,
            format!(
                "clean-targets: will not clean {} outside the project directory; remove them from clean-targets, or pass --no-clean-project-files-only",
                outside.join(", ")
            ),
        ));
    }
    for t in &targets {
        out.info("check_clean_path", &format!("Checking {}/*", t.display()));
        match std::fs::remove_dir_all(t) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
                std::fs::remove_file(t)
                    .map_err(|e| Error::runtime(format!("cannot delete {}: {e}", t.display())))?;
            }
            Err(e) => {
                return Err(Error::runtime(format!(
                    "cannot delete {}: {e}; check its permissions",
                    t.display()
                )))
            }
        }
        out.info("confirm_clean_path", &format!("Cleaned {}/*", t.display()));
    }
    out.info("finished_clean_paths", "Finished cleaning all paths.");
    Ok(0)
}

fn absolute(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    normalize(&abs)
}

/// `a/./b/../c` as `a/c`, without touching the file system (a clean target
/// need not exist).
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
