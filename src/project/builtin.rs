//! The project built into the binary: this repository's `transforms/` (Reluvia's
//! marts), embedded at compile time by build.rs. The demo runs it; under Meltano it
//! is the project of last resort (see `settings::project_dir`), and `init` writes a
//! copy to edit.
//!
//! The loader reads projects from disk, so the built-in one is written out before
//! it is loaded: [`ensure`] puts it in a folder named after its contents (the same
//! binary always uses the same folder, another binary another), written completely
//! under a temporary name and renamed into place, so concurrent invocations never
//! see a half-written project and a newer binary never sees an older copy.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/embedded_project.rs"));

/// A top-level key of the built-in `dbt_project.yml` (`name`, `version`, `profile`).
fn project_key(key: &str) -> Option<String> {
    let (_, text) = EMBEDDED_PROJECT
        .iter()
        .find(|(p, _)| *p == "dbt_project.yml")?;
    let doc = super::parse_yaml(text, "dbt_project.yml").ok()?;
    doc.get(key)?.as_str().map(str::to_string)
}

/// `name version` of the built-in project, as the log announces it.
pub(crate) fn describe() -> String {
    format!(
        "{} {}",
        project_key("name").unwrap_or_default(),
        project_key("version").unwrap_or_default()
    )
}

/// The `profile:` of the built-in `dbt_project.yml`.
pub(crate) fn profile() -> Option<String> {
    project_key("profile")
}

/// The folder under `base` where [`ensure`] writes the built-in project: named after
/// a hash of its files (FNV-1a), so that it changes whenever they do.
pub(crate) fn folder(base: &Path) -> PathBuf {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (path, content) in EMBEDDED_PROJECT {
        for byte in path.bytes().chain([0]).chain(content.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    base.join(format!("{}-{hash:016x}", crate::VERSION))
}

/// Writes the built-in project to `dir` (a [`folder`]) unless it is there already.
pub(crate) fn ensure(dir: &Path) -> Result<()> {
    if dir.join("dbt_project.yml").is_file() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    let cannot = |what: &Path, e: std::io::Error| {
        Error::runtime(format!(
            "cannot write the built-in project to {}: {e}; check that {} is writable, or set project_dir",
            what.display(),
            parent.display()
        ))
    };
    std::fs::create_dir_all(parent).map_err(|e| cannot(parent, e))?;
    let tmp = parent.join(format!(
        ".{}.{}.tmp",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    write(&tmp).map_err(|(p, e)| cannot(&p, e))?;
    if let Err(e) = std::fs::rename(&tmp, dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another invocation put it in place first.
        if !dir.join("dbt_project.yml").is_file() {
            return Err(cannot(dir, e));
        }
    }
    Ok(())
}

/// Writes every file of the built-in project under `dir`, which must not hold any
/// of them: returns the paths written, or refuses (writing nothing) naming the
/// files that are there already.
pub(crate) fn write_new(dir: &Path) -> Result<Vec<PathBuf>> {
    let existing: Vec<String> = EMBEDDED_PROJECT
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() {
        let more = match existing.len() {
            1 => String::new(),
            n => format!(" and {} other file{}", n - 1, if n == 2 { "" } else { "s" }),
        };
        return Err(Error::usage(format!(
            "{}{more} already exist{}; nothing was written. Give another directory, or move those files away first",
            existing[0],
            if existing.len() == 1 { "s" } else { "" }
        )));
    }
    write(dir).map_err(|(p, e)| {
        Error::runtime(format!(
            "cannot write {}: {e}; check the directory's permissions",
            p.display()
        ))
    })?;
    Ok(EMBEDDED_PROJECT
        .iter()
        .map(|(rel, _)| dir.join(rel))
        .collect())
}

/// Writes every file of the built-in project under `dir`, creating folders.
pub(crate) fn write(dir: &Path) -> std::result::Result<(), (PathBuf, std::io::Error)> {
    for (rel, content) in EMBEDDED_PROJECT {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| (parent.to_path_buf(), e))?;
        }
        std::fs::write(&p, content).map_err(|e| (p.clone(), e))?;
    }
    Ok(())
}
