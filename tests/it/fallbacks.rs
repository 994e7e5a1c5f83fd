//! No silent fallback: a value that cannot be used is an error naming it, or a
//! warning naming it; it is never dropped so that a lower-ranked source or a
//! default takes its place (a mistyped target schema rebuilding production).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::Output;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// The message of a one-line error, without its clock time.
fn error_line(out: &Output) -> String {
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "{err}");
    err[err.find("error: ").unwrap_or(0)..]
        .trim_end()
        .to_string()
}

/// Bytes that are not UTF-8.
fn not_utf8(prefix: &str) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend([0xe9, b'x']); // Latin-1 'é'
    OsString::from_vec(bytes)
}

#[test]
fn environment_values_that_are_not_utf8_are_errors_naming_the_variable() {
    let db = TestDb::new("not_utf8");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
        (
            "models/b.sql",
            "select '{{ env_var(\"SHOP_REGION\", \"eu\") }}' as region\n",
        ),
    ]);
    let mut messages = Vec::new();
    // A setting's variable (it used to fall back to the default schema,
    // `analytics`), a libpq one, and variables that templates read.
    for var in ["RELUVIA_TRANSFORM_SCHEMA", "PGAPPNAME", "SHOP_REGION"] {
        let out = db
            .cmd()
            .args(["run", "--project-dir", pd(&dir)])
            .env(var, not_utf8("dev_alic"))
            .output()
            .unwrap();
        assert_code(&out, 2);
        messages.push(error_line(&out));
    }
    assert_eq!(
        db.value("select count(*)::text from pg_namespace where nspname = 'analytics'"),
        Some("0".into()),
        "nothing may be built"
    );
    // The same inside profiles.yml.
    let profiles = tempfile::tempdir().unwrap();
    write(
        profiles.path(),
        "profiles.yml",
        "p:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      schema: \"{{ env_var('SHOP_SCHEMA') }}\"\n",
    );
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("DBT_PROFILES_DIR", profiles.path())
        .env("SHOP_SCHEMA", not_utf8("dev"))
        .output()
        .unwrap();
    assert_code(&out, 2);
    messages.push(error_line(&out).replace(profiles.path().to_str().unwrap(), "PROFILES"));
    insta::assert_snapshot!("not_utf8", messages.join("\n"));
    // In the log format the environment asks for, although settings failed.
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_LOG_FORMAT", "json")
        .env("RELUVIA_TRANSFORM_SCHEMA", not_utf8("dev_alic"))
        .output()
        .unwrap();
    assert_code(&out, 2);
    let event: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(event["level"], "error");
    assert_eq!(
        event["msg"],
        "error: environment variable RELUVIA_TRANSFORM_SCHEMA is not valid UTF-8; fix its value or unset it"
    );
}

#[test]
fn target_and_profile_flags_need_a_profile_to_choose_from() {
    let dir = project(&[("dbt_project.yml", "name: p\nprofile: shop\n")]);
    let no_profile = project(&[("dbt_project.yml", "name: p\n")]);
    let home = tempfile::tempdir().unwrap(); // no ~/.dbt
    let run = |project: &tempfile::TempDir, args: &[&str], profiles_in_cwd: Option<&str>| {
        let cwd = tempfile::tempdir().unwrap();
        if let Some(content) = profiles_in_cwd {
            write(cwd.path(), "profiles.yml", content);
        }
        clean_command()
            .current_dir(cwd.path())
            .env("HOME", home.path())
            .env("PG_ANALYTICS_USER", "u")
            .env("PG_ANALYTICS_DBNAME", "d")
            .args(["debug", "--project-dir", pd(project)])
            .args(args)
            .output()
            .unwrap()
    };
    let mut messages = Vec::new();
    for (project, args, profiles) in [
        (&dir, vec!["--target", "prod"], None),
        (&dir, vec!["--profile", "shop"], None),
        // A profiles.yml that is not this project's.
        (
            &dir,
            vec!["--target", "prod"],
            Some("other:\n  outputs:\n    prod:\n      type: postgres\n"),
        ),
        // Several profiles and nothing to choose one.
        (
            &no_profile,
            vec!["--target", "prod"],
            Some("a:\n  outputs:\n    prod: {type: postgres}\nb:\n  outputs:\n    prod: {type: postgres}\n"),
        ),
    ] {
        let out = run(project, &args, profiles);
        assert_code(&out, 2);
        messages.push(error_line(&out));
    }
    insta::with_settings!({filters => vec![(r"/tmp/\.tmp\w+/", "CWD/")]}, {
        insta::assert_snapshot!("target_without_profile", messages.join("\n"));
    });
    // A target from the environment, without profiles.yml, still names target.name.
    let db = TestDb::new("target_env");
    let models = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        ("models/t.sql", "select '{{ target.name }}' as name\n"),
    ]);
    let out = db
        .cmd()
        .env("HOME", home.path())
        .env("RELUVIA_TRANSFORM_TARGET", "ci")
        .args(["run", "--project-dir", pd(&models)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(db.value("select name from analytics.t"), Some("ci".into()));
}

/// Two models, `a` and `b` on `a`, and a test on each.
fn two_models() -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "{{ config(tags=['daily']) }}\nselect id from {{ ref('a') }}\n"),
        (
            "models/props.yml",
            "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [not_null]\n  - name: b\n    columns:\n      - name: id\n        data_tests: [unique]\n",
        ),
    ])
}

#[test]
fn selectors_that_match_nothing_are_named_in_a_warning() {
    let db = TestDb::new("unmatched");
    let dir = two_models();
    let out = db.cli(&[
        "run",
        "--project-dir",
        pd(&dir),
        "--threads",
        "1",
        "--select",
        "a",
        "nope",
        "tag:daily,tag:weekly",
        "--exclude",
        "gone",
        "b",
    ]);
    assert_code(&out, 0);
    crate::assert_console_snapshot!("unmatched_selectors", stderr(&out));
    // The same in `ls` and `compile`, on stderr (ls's stdout stays the list).
    let out = db.cli(&["ls", "--project-dir", pd(&dir), "-s", "a", "nope"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "p.a\np.not_null_a_id\n");
    assert!(
        stderr(&out).contains("The selection criterion 'nope' does not match any enabled nodes"),
        "{}",
        stderr(&out)
    );
    // JSON logs name the event.
    let out = db.cli(&[
        "compile",
        "--project-dir",
        pd(&dir),
        "-s",
        "nope",
        "--log-format",
        "json",
    ]);
    assert_code(&out, 0);
    let warning: serde_json::Value = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "no_nodes_for_selection_criteria")
        .expect("a warning event");
    assert_eq!(warning["level"], "warn");
    assert_eq!(
        warning["msg"],
        "The selection criterion 'nope' does not match any enabled nodes"
    );
}

#[test]
fn an_option_before_the_command_does_not_swallow_it() {
    let db = TestDb::new("option_first");
    let dir = two_models();
    let meltano = tempfile::tempdir().unwrap();
    // Under Meltano a missing command means `build` (models and tests).
    let cli = |args: &[&str]| -> Output {
        db.cmd()
            .env("MELTANO_PROJECT_ROOT", meltano.path())
            .args(args)
            .args(["--project-dir", pd(&dir)])
            .output()
            .unwrap()
    };
    let built = || -> Vec<String> {
        db.lines("select relname from pg_class where relnamespace = 'analytics'::regnamespace and relkind = 'r' order by 1")
    };
    // `-s a run`: selects a, runs `run` (no tests), not `build` of everything.
    let out = cli(&["-s", "a", "run"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("1 of 1 OK created sql table model analytics.a"),
        "{err}"
    );
    assert!(!err.contains("not_null"), "tests ran: {err}");
    assert_eq!(built(), vec!["a"]);
    // Several values, the long form, --exclude, and `source freshness`.
    let out = cli(&["--select", "a", "b", "run"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("Finished running 2 table models"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["--exclude", "unique_b_id", "test"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("1 of 1 PASS test not_null_a_id"),
        "{}",
        stderr(&out)
    );
    let out = cli(&["--select=tag:daily", "build"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("PASS test unique_b_id"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("not_null_a_id"), "{}", stderr(&out));
    let out = cli(&["-s", "a", "source", "freshness"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("Nothing to do"), "{}", stderr(&out));
    // A command name as the only selector, no command: refused, not `build`.
    db.exec("drop schema analytics cascade");
    let out = cli(&["-s", "run"]);
    assert_code(&out, 2);
    insta::assert_snapshot!("command_as_selector", error_line(&out));
    assert_eq!(
        db.value("select count(*)::text from pg_namespace where nspname = 'analytics'"),
        Some("0".into())
    );
}

#[test]
fn database_is_an_alias_of_dbname() {
    let db = TestDb::new("alias");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let (host, port, user) = server();
    let base = || {
        let mut c = clean_command();
        c.env("PG_ANALYTICS_HOST", &host)
            .env("PG_ANALYTICS_PORT", &port)
            .env("PG_ANALYTICS_USER", &user)
            .args(["debug", "--project-dir", pd(&dir)]);
        c
    };
    let dbname_line = |out: &Output| -> String {
        stdout(out)
            .lines()
            .find(|l| l.trim_start().starts_with("dbname "))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    // The variable Meltano exports for `meltano config set … database x`.
    let out = base()
        .env("RELUVIA_TRANSFORM_DATABASE", &db.name)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        dbname_line(&out),
        format!("{} env RELUVIA_TRANSFORM_DATABASE", db.name)
    );
    // Both, agreeing: fine, the setting's own name is the origin.
    let out = base()
        .env("RELUVIA_TRANSFORM_DATABASE", &db.name)
        .env("RELUVIA_TRANSFORM_DBNAME", &db.name)
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        dbname_line(&out),
        format!("{} env RELUVIA_TRANSFORM_DBNAME", db.name)
    );
    // In a --config file.
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), format!(r#"{{"database": "{}"}}"#, db.name)).unwrap();
    let out = base()
        .args(["--config", cfg.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(dbname_line(&out).starts_with(&format!("{} config file", db.name)));
    // Both, differing: an error naming both.
    let mut messages = Vec::new();
    let out = base()
        .env("RELUVIA_TRANSFORM_DATABASE", "shop")
        .env("RELUVIA_TRANSFORM_DBNAME", "warehouse")
        .output()
        .unwrap();
    assert_code(&out, 2);
    messages.push(error_line(&out));
    std::fs::write(cfg.path(), r#"{"dbname": "warehouse", "database": "shop"}"#).unwrap();
    let out = base()
        .args(["--config", cfg.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&out, 2);
    messages.push(error_line(&out).replace(cfg.path().to_str().unwrap(), "CONFIG"));
    insta::assert_snapshot!("database_alias_conflict", messages.join("\n"));
}

#[test]
fn variables_that_name_no_setting_are_warned_about() {
    let db = TestDb::new("unknown_var");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let out = db
        .cmd()
        .env("RELUVIA_TRANSFORM_SHEMA", "dev_alice")
        .args(["run", "--project-dir", pd(&dir)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let err = stderr(&out);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("RELUVIA_TRANSFORM_SHEMA is set but is not a setting of reluvia-transform, so it is ignored; check its name (`reluvia-transform --about` lists the settings)"),
        "{err}"
    );
}
