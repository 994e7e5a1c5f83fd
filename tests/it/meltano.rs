//! The binary as a Meltano plugin, without Meltano: where the project comes from
//! (README "Where the project comes from": `--project-dir`, the `project_dir`
//! setting and `DBT_PROJECT_DIR`, the current directory, `transforms/` then
//! `transform/` of the Meltano project, the built-in project under Meltano only),
//! `init`, and where artifacts go under Meltano (`.meltano/`, so the Meltano
//! project's `git status` stays clean). tests/meltano/e2e.sh runs the same story
//! with a real Meltano.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;

/// A one-model project whose model is named `model`.
fn one_model(dir: &Path, model: &str) {
    write(dir, "dbt_project.yml", "name: p\nprofile: p\n");
    write(dir, &format!("models/{model}.sql"), "select 1 as id\n");
}

/// The binary in `cwd` with settings that need no server, a HOME without
/// ~/.dbt, and `MELTANO_PROJECT_ROOT` when given.
fn cmd(cwd: &Path, meltano: Option<&Path>) -> Command {
    let mut c = clean_command();
    c.current_dir(cwd)
        .env("HOME", cwd)
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d");
    if let Some(root) = meltano {
        c.env("MELTANO_PROJECT_ROOT", root);
    }
    c
}

/// The model names `ls` lists.
fn listed(out: &Output) -> Vec<String> {
    assert_code(out, 0);
    stdout(out)
        .lines()
        .filter(|l| !l.contains(".test."))
        .map(str::to_string)
        .collect()
}

/// The `project_dir` line of `debug` (value and origin).
fn project_dir_line(out: &Output) -> String {
    stdout(out)
        .lines()
        .find(|l| l.trim_start().starts_with("project_dir "))
        .unwrap_or_else(|| panic!("no project_dir line in {}", stdout(out)))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

fn ls(c: &mut Command) -> Output {
    c.args(["ls", "--resource-type", "model", "--output", "name"])
        .output()
        .unwrap()
}

#[test]
fn the_project_comes_from_the_first_place_that_has_one() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // One project in each place, each with its own model.
    let flag = r.join("flag");
    let setting = r.join("setting");
    let dbt = r.join("dbt");
    let cwd = r.join("cwd");
    let meltano = r.join("meltano");
    one_model(&flag, "from_flag");
    one_model(&setting, "from_setting");
    one_model(&dbt, "from_dbt_project_dir");
    one_model(&cwd, "from_cwd");
    one_model(&meltano.join("transforms"), "from_transforms");
    one_model(&meltano.join("transform"), "from_transform");

    let everything = || {
        let mut c = cmd(&cwd, Some(&meltano));
        c.env("RELUVIA_TRANSFORM_PROJECT_DIR", &setting)
            .env("DBT_PROJECT_DIR", &dbt);
        c
    };
    assert_eq!(
        listed(&ls(
            everything().args(["--project-dir", flag.to_str().unwrap()])
        )),
        ["from_flag"]
    );
    assert_eq!(listed(&ls(&mut everything())), ["from_setting"]);
    assert_eq!(
        listed(&ls(everything().env_remove("RELUVIA_TRANSFORM_PROJECT_DIR"))),
        ["from_dbt_project_dir"]
    );
    let found = || {
        let mut c = cmd(&cwd, Some(&meltano));
        c.env_remove("DBT_PROJECT_DIR");
        c
    };
    assert_eq!(listed(&ls(&mut found())), ["from_cwd"]);
    // From the Meltano project's root (where Meltano runs plugins).
    assert_eq!(
        listed(&ls(cmd(&meltano, Some(&meltano)).current_dir(&meltano))),
        ["from_transforms"]
    );
    std::fs::remove_file(meltano.join("transforms/dbt_project.yml")).unwrap();
    assert_eq!(
        listed(&ls(&mut cmd(&meltano, Some(&meltano)))),
        ["from_transform"]
    );
    let out = cmd(&meltano, Some(&meltano)).arg("debug").output().unwrap();
    assert_eq!(
        project_dir_line(&out),
        format!(
            "{} transform/ of the Meltano project",
            meltano.join("transform").display()
        )
    );
    let out = cmd(&cwd, None).arg("debug").output().unwrap();
    assert_eq!(
        project_dir_line(&out),
        format!(
            "{} the current directory holds dbt_project.yml",
            cwd.display()
        )
    );
}

#[test]
fn a_given_directory_is_used_or_refused_never_looked_past() {
    let root = tempfile::tempdir().unwrap();
    let meltano = root.path();
    one_model(&meltano.join("transforms"), "from_transforms");
    let missing = meltano.join("no_such_dir");
    for (var, value) in [
        ("RELUVIA_TRANSFORM_PROJECT_DIR", missing.as_os_str()),
        ("DBT_PROJECT_DIR", missing.as_os_str()),
    ] {
        let out = ls(cmd(meltano, Some(meltano)).env(var, value));
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "cannot read {}/dbt_project.yml",
                missing.display()
            )),
            "{var}: {err}"
        );
        assert!(!err.contains("built into"), "{err}");
    }
    let out = ls(cmd(meltano, Some(meltano)).args(["--project-dir", missing.to_str().unwrap()]));
    assert_code(&out, 2);
}

#[test]
fn outside_meltano_there_is_no_built_in_project() {
    let cwd = tempfile::tempdir().unwrap();
    let out = ls(&mut cmd(cwd.path(), None));
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: no dbt project here: {} holds no dbt_project.yml; run from the project's directory, or give it with --project-dir",
            cwd.path().display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

#[test]
fn under_meltano_the_built_in_project_runs_and_everything_goes_under_dot_meltano() {
    let root = tempfile::tempdir().unwrap();
    let meltano = root.path();
    // What `meltano init` leaves: an empty transform/ (with .gitkeep), no project.
    write(meltano, "transform/.gitkeep", "");
    write(meltano, "meltano.yml", "default_environment: dev\n");
    let before = entries(meltano);
    // No database here: compiling the shipped models needs none.
    let out = cmd(meltano, Some(meltano))
        .args(["compile", "--log-format", "json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let err = stderr(&out);
    let announced: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "builtin_project")
        .collect();
    assert_eq!(announced.len(), 1, "{err}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        announced[0]["msg"].as_str().unwrap().starts_with(&format!(
            "Using the project built into reluvia-transform {version}: reluvia_analytics 1.0.0 (no dbt_project.yml"
        )),
        "{err}"
    );
    // Nothing outside .meltano/ changed; artifacts are in .meltano/transformers.
    assert_eq!(entries(meltano), before);
    let folder = meltano.join(".meltano/transformers/reluvia-transform");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder.join("target/manifest.json")).unwrap(),
    )
    .unwrap();
    assert!(manifest["nodes"]
        .as_object()
        .unwrap()
        .contains_key("model.reluvia_analytics.mart_daily_kpis"));
    assert!(folder
        .join("target/compiled/reluvia_analytics/models/marts/mart_daily_kpis.sql")
        .is_file());
    // The built-in project was written once, in a folder named after its contents.
    let projects: Vec<_> = std::fs::read_dir(folder.join("project"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(projects.len(), 1, "{projects:?}");
    assert!(
        projects[0].starts_with(&format!("{version}-")),
        "{projects:?}"
    );
    // debug says where it is and what it is, and another run reuses it.
    let out = cmd(meltano, Some(meltano)).arg("debug").output().unwrap();
    let text = stdout(&out);
    assert!(
        project_dir_line(&out).ends_with(
            "the project built into the binary (no dbt_project.yml in the current directory, or in transforms/ or transform/ of the Meltano project)"
        ),
        "{text}"
    );
    assert!(
        text.contains("(built into the binary: reluvia_analytics 1.0.0, written there when a command needs it)"),
        "{text}"
    );
    let target = folder.join("target");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["target_path", target.to_str().unwrap(), "default"]),
        "{text}"
    );
    // A target path given (DBT_TARGET_PATH, as dbt's utilities export it) wins.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = cmd(meltano, Some(meltano))
        .env("DBT_TARGET_PATH", elsewhere.path())
        .args(["compile"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(elsewhere.path().join("manifest.json").is_file());
    assert_eq!(
        std::fs::read_dir(folder.join("project")).unwrap().count(),
        1
    );
}

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".meltano")
        .collect();
    v.sort();
    v
}

#[test]
fn init_writes_the_built_in_project_once_and_the_next_run_uses_it() {
    let root = tempfile::tempdir().unwrap();
    let meltano = root.path();
    write(meltano, "transform/.gitkeep", "");
    let out = cmd(meltano, Some(meltano)).arg("init").output().unwrap();
    assert_code(&out, 0);
    let err = stderr(&out);
    let transform = meltano.join("transform");
    assert!(
        err.contains(&format!(
            "Wrote the project built into reluvia-transform {}, reluvia_analytics 1.0.0 (",
            env!("CARGO_PKG_VERSION")
        )) && err.contains(&format!("files), to {}", transform.display())),
        "{err}"
    );
    assert!(err.contains("The next run uses it"), "{err}");
    // The same files as the shipped project.
    for rel in [
        "dbt_project.yml",
        "models/sources.yml",
        "models/marts/mart_daily_kpis.sql",
    ] {
        assert_eq!(
            std::fs::read_to_string(transform.join(rel)).unwrap(),
            std::fs::read_to_string(shipped_project().join(rel)).unwrap(),
            "{rel}"
        );
    }
    // The next run finds it: a model added to the copy is listed.
    write(&transform, "models/marts/my_mart.sql", "select 1 as id\n");
    let names = listed(&ls(&mut cmd(meltano, Some(meltano))));
    assert!(names.contains(&"my_mart".to_string()), "{names:?}");
    let out = cmd(meltano, Some(meltano))
        .args(["compile"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("built into"), "{}", stderr(&out));

    // A second init overwrites nothing, and says which file is in the way.
    std::fs::write(transform.join("dbt_project.yml"), "name: mine\n").unwrap();
    let out = cmd(meltano, Some(meltano)).arg("init").output().unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: {}/dbt_project.yml and ",
            transform.display()
        )) && err.contains("already exist; nothing was written"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(transform.join("dbt_project.yml")).unwrap(),
        "name: mine\n"
    );

    // A path given, relative to the Meltano project; the run does not find it there.
    let out = cmd(meltano, Some(meltano))
        .args(["init", "analytics/dbt"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(meltano.join("analytics/dbt/dbt_project.yml").is_file());
    assert!(
        stderr(&out).contains(&format!(
            "point the project_dir setting at it: meltano config set reluvia-transform project_dir {}",
            meltano.join("analytics/dbt").display()
        )),
        "{}",
        stderr(&out)
    );
}
