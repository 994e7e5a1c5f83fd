//! Fast tests without a database, over fixture folders: every folder of
//! `tests/fixtures/` is a case — a dbt project in `project/`, command lines in
//! `args` (one argument per line; a line `---` starts the next command;
//! `--project-dir` is added) and optional `env` lines (`NAME=value`). The binary runs on a copy of the project; the snapshot
//! holds its exit code, stdout, stderr and the compiled SQL it wrote. Cases cover
//! typed configuration (shape errors with file and line, unsupported and custom
//! keys), selection, node naming and rendering.

use std::path::Path;

use crate::common::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Every file under `dir`, as (path relative to `dir`, contents), sorted.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read_to_string(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fixture_cases() {
    insta::glob!("../fixtures", "*/args", |args_path| {
        let case = args_path.parent().unwrap();
        let work = tempfile::tempdir().unwrap();
        let project = work.path().join("project");
        copy_dir(&case.join("project"), &project);
        let text = std::fs::read_to_string(args_path).unwrap();
        let mut report = String::new();
        for command in text.split("\n---\n") {
            let args: Vec<&str> = command.lines().filter(|l| !l.trim().is_empty()).collect();
            let mut cmd = clean_command();
            cmd.args(&args)
                .arg("--project-dir")
                .arg(&project)
                // No server: commands that connect fail fast at an unused port.
                .env("PG_ANALYTICS_HOST", "127.0.0.1")
                .env("PG_ANALYTICS_PORT", "9")
                .env("PG_ANALYTICS_USER", "u")
                .env("PG_ANALYTICS_DBNAME", "d")
                .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "0");
            if let Ok(env) = std::fs::read_to_string(case.join("env")) {
                for line in env.lines().filter(|l| l.contains('=')) {
                    let (k, v) = line.split_once('=').unwrap();
                    cmd.env(k, v);
                }
            }
            let out = cmd.output().unwrap();
            report.push_str(&format!(
                "args: {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
                args.join(" "),
                out.status.code().unwrap_or(-1),
                stdout(&out),
                stderr(&out)
            ));
        }
        for (path, content) in files_under(&project.join("target/compiled")) {
            report.push_str(&format!("--- compiled/{path}\n{content}"));
        }
        let root = project.to_string_lossy().to_string();
        insta::with_settings!({
            filters => CONSOLE_FILTERS.iter().copied().chain([(root.as_str(), "PROJECT")]).collect::<Vec<_>>(),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(report.replace(&root, "PROJECT"));
        });
    });
}
