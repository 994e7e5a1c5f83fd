//! Embeds the shipped project (`transforms/`) into the binary, so `demo` works
//! from an installed binary with no repository beside it: generates
//! `$OUT_DIR/embedded_project.rs`, a list of (relative path, contents).
//!
//! Cargo reruns this only when a shipped file changes: it watches each top-level
//! folder of `transforms/` but `target/`, `logs/` and `dbt_packages/` (cargo scans
//! a watched folder recursively, so a file added anywhere in one is seen) and each
//! top-level file, never `transforms/` as a whole: its `target/` changes on every
//! run of the project. (A new file at the top level of `transforms/` needs a
//! `touch build.rs`.)

use std::path::{Path, PathBuf};

/// Folders of a run's output, never part of the shipped project.
const SKIPPED: &[&str] = &["target", "logs", "dbt_packages"];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || SKIPPED.contains(&name.as_str()) {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("sql" | "yml" | "yaml" | "md" | "csv")
        ) {
            out.push(p);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let project = root.join("transforms");
    let mut files = Vec::new();
    walk(&project, &mut files);
    files.sort();
    for e in std::fs::read_dir(&project).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.starts_with('.') && !SKIPPED.contains(&name.as_str()) {
            println!("cargo:rerun-if-changed={}", e.path().display());
        }
    }
    let mut code = String::from("/// The shipped project's files: (path relative to transforms/, contents).\nconst EMBEDDED_PROJECT: &[(&str, &str)] = &[\n");
    for f in &files {
        let rel = f
            .strip_prefix(&project)
            .expect("under transforms/")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_project.rs");
    std::fs::write(out, code).expect("write embedded_project.rs");
}
