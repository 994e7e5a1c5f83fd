//! Embeds the shipped project (`transforms/`) into the binary, so `demo` works
//! from an installed binary with no repository beside it: generates
//! `$OUT_DIR/embedded_project.rs`, a list of (relative path, contents).

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name == "target" || name == "logs" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("sql" | "yml" | "yaml" | "md")
        ) {
            out.push(p);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let project = root.join("transforms");
    println!("cargo:rerun-if-changed=transforms");
    let mut files = Vec::new();
    walk(&project, &mut files);
    files.sort();
    let mut code = String::from("/// The shipped project's files: (path relative to transforms/, contents).\npub const EMBEDDED_PROJECT: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
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
