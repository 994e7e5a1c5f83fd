//! Nothing destroyed by accident: a model's body (a view's too, and a `--vars`
//! value in it) runs as exactly one statement; `generate` refuses to drop raw
//! schemas it did not make; and the temporary files a killed run left behind are
//! cleaned up by the next run, never those of a run still alive.

use std::path::Path;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

#[test]
fn a_model_body_runs_as_exactly_one_statement() {
    let db = TestDb::new("one_statement");
    // SQL that closes the wrapper (`create view … as (\n<model>\n)`), drops a
    // mart and reopens a valid statement: three statements if sent as a batch.
    let injected = "1 as x); drop table analytics.mart_a; select (1";
    // The same through `select {{ var('n') }} as x`.
    let by_var = "1 as x); drop table analytics.mart_a; select exists (select 1";
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/mart_a.sql",
            "{{ config(materialized='table') }}\nselect 1 as x\n",
        ),
        ("models/evil_view.sql", &format!("select {injected}\n")),
        (
            "models/evil_table.sql",
            &format!("{{{{ config(materialized='table') }}}}\nselect {injected}\n"),
        ),
        ("models/by_var.sql", "select {{ var('n', 1) }} as x\n"),
        ("tests/evil_test.sql", &format!("select {injected}\n")),
    ]);
    let out = db.cli(&["run", "--project-dir", pd(&dir), "-s", "mart_a"]);
    assert_code(&out, 0);
    let mart_a = || db.value("select count(*)::text from analytics.mart_a");
    for args in [
        vec!["run", "-s", "evil_view"],
        vec!["run", "-s", "evil_table"],
        vec![
            "run",
            "-s",
            "by_var",
            "--vars",
            &format!("{{\"n\": \"{by_var}\"}}"),
        ],
        vec!["test", "-s", "evil_test", "--store-failures"],
    ] {
        let out = db.cli(&[args.as_slice(), &["--project-dir", pd(&dir)]].concat());
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("cannot insert multiple commands into a prepared statement"),
            "{args:?}: {err}"
        );
        assert_eq!(mart_a(), Some("1".into()), "{args:?} dropped the mart");
    }
    // The same value as one value is fine.
    let out = db.cli(&[
        "run",
        "--project-dir",
        pd(&dir),
        "-s",
        "by_var",
        "--vars",
        "{\"n\": \"2\"}",
    ]);
    assert_code(&out, 0);
    assert_eq!(
        db.value("select x::text from analytics.by_var"),
        Some("2".into())
    );
}

#[test]
fn generate_never_drops_raw_data_it_did_not_make() {
    let db = TestDb::new("generate_guard");
    // Landed data, as a loader leaves it.
    db.exec(
        "create schema raw_stripe; create table raw_stripe.charges (id text); insert into raw_stripe.charges values ('ch_1');",
    );
    let generate = |extra: &[&str]| {
        db.cli(
            &[
                &["generate", "--days", "2", "--sessions-per-day", "5"],
                extra,
            ]
            .concat(),
        )
    };
    let landed = || db.lines("select id from raw_stripe.charges where id = 'ch_1'");
    let out = generate(&[]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(!err.contains("Loading"), "{err}");
    let mut messages = vec![err[err.find("error: ").unwrap_or(0)..]
        .trim_end()
        .to_string()];
    assert_eq!(landed(), vec!["ch_1"], "the landed row is gone");
    assert!(db
        .lines("select nspname from pg_namespace where nspname like 'raw\\_%'")
        .eq(&vec!["raw_stripe".to_string()]));

    // Told explicitly, it replaces them, and says how far each table got.
    let out = generate(&["--replace-raw"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    let loading: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split("Loading ").nth(1))
        .collect();
    assert_eq!(loading.len(), 8, "one line per raw table: {err}");
    assert!(loading.contains(&"raw_stripe.charges"), "{err}");
    assert!(landed().is_empty());

    // What it made, it replaces without asking.
    assert_code(&generate(&[]), 0);
    // Anything added to its schemas since is protected again.
    db.exec(
        "create table raw_stripe.notes (note text); create view raw_amplitude.v as select 1 as x;",
    );
    let out = generate(&[]);
    assert_code(&out, 1);
    let err = stderr(&out);
    messages.push(
        err[err.find("error: ").unwrap_or(0)..]
            .trim_end()
            .to_string(),
    );
    assert_eq!(
        db.value("select count(*)::text from raw_stripe.notes"),
        Some("0".into())
    );
    insta::assert_snapshot!(
        "generate_refuses",
        messages.join("\n").replace(&db.name, "DB")
    );
}

/// Writes an empty file at `dir/rel`.
fn touch(dir: &Path, rel: &str) {
    write(dir, rel, "");
}

#[test]
fn temporary_files_of_dead_runs_are_removed() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let target = dir.path().join("target");
    // A process that has ended: its pid no longer runs.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let dead = gone.id();
    // This test process is alive.
    let live = std::process::id();
    let dead_files = [
        format!(".manifest.json.{dead}.tmp"),
        format!("compiled/p/models/.a.sql.{dead}.tmp"),
    ];
    let kept_files = [
        format!(".run_results.json.{live}.tmp"),
        format!("compiled/p/models/.a.sql.{live}.tmp"),
        ".notes.tmp".to_string(),
        format!("notes.{dead}.tmp"),
        format!(".notes.{dead}x.tmp"),
    ];
    for f in dead_files.iter().chain(&kept_files) {
        touch(&target, f);
    }
    let out = clean_command()
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .args(["compile", "--project-dir", pd(&dir)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    for f in &dead_files {
        assert!(!target.join(f).exists(), "{f} was left");
    }
    for f in &kept_files {
        assert!(target.join(f).exists(), "{f} was removed");
    }
}
