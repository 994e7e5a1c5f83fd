//! The command line dbt users type: each subcommand's `--help` (its own options
//! first, the global ones grouped after), suggestions only for real near
//! matches, commands of later work refused plainly, `-m` and `list`, `compile
//! -s` printing the SQL, `clean`, `parse`, the log file `logs/dbt.log` with each
//! statement sent, `--debug`, `-q`, `--log-level`, `--warn-error`,
//! `--full-refresh`, colours, and the flags refused as not supported yet.

use std::path::Path;

use crate::assert_console_snapshot;
use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// Two models and a test on the second.
fn small_project() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as id\n"),
        ("models/b.sql", "select id from {{ ref('a') }}\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
        ),
    ])
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn help_of_each_subcommand() {
    for args in [
        &["run", "--help"][..],
        &["test", "--help"],
        &["build", "--help"],
        &["seed", "--help"],
        &["compile", "--help"],
        &["ls", "--help"],
        &["parse", "--help"],
        &["clean", "--help"],
        &["source", "freshness", "--help"],
        &["show", "--help"],
        &["snapshot", "--help"],
        &["retry", "--help"],
        &["run-operation", "--help"],
        &["debug", "--help"],
        &["docs", "generate", "--help"],
        &["docs", "serve", "--help"],
        &["source", "check", "--help"],
        &["init", "--help"],
        &["report", "--help"],
        &["demo", "--help"],
        &["generate", "--help"],
        &["deps", "--help"],
    ] {
        let out = clean_command().args(args).output().unwrap();
        assert_code(&out, 0);
        let name = format!("help_{}", args[..args.len() - 1].join("_"));
        insta::assert_snapshot!(name, stdout(&out));
    }
}

#[test]
fn unknown_commands_and_options_suggest_only_near_matches() {
    let mut text = String::new();
    for args in [
        &["clone"][..],
        &["buidl"],
        &["frobnicate"],
        &["run", "--stat", "x"],
        &["run", "--selcet", "a"],
        &["ls", "--resorce-type", "model"],
        &["run", "--no-such-flag"],
    ] {
        let out = clean_command().args(args).output().unwrap();
        assert_code(&out, 2);
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        text.push_str(&format!("$ {}\n{}\n", args.join(" "), stderr(&out)));
    }
    assert_console_snapshot!("unknown_commands_and_options", text);
}

#[test]
fn models_and_list_aliases() {
    let db = TestDb::new("cli_alias");
    let dir = small_project();
    let ls = db.cli(&["ls", "--project-dir", pd(&dir), "--select", "b"]);
    assert_code(&ls, 0);
    assert_eq!(stdout(&ls), "p.b\np.not_null_b_id\n");
    assert_eq!(
        stdout(&db.cli(&["list", "--select", "b", "--project-dir", pd(&dir)])),
        stdout(&ls)
    );
    // As in dbt, ls's -m/--models means --select with --resource-type model.
    for args in [
        &["list", "-m", "b"][..],
        &["ls", "--models", "b"],
        &["-m", "b", "list"],
    ] {
        let mut a = args.to_vec();
        a.extend(["--project-dir", pd(&dir)]);
        let out = db.cli(&a);
        assert_code(&out, 0);
        assert_eq!(stdout(&out), "p.b\n", "{args:?}");
    }
    for args in [
        &["ls", "-m", "b", "-s", "a"][..],
        &["ls", "-m", "b", "--resource-type", "test"],
    ] {
        let mut a = args.to_vec();
        a.extend(["--project-dir", pd(&dir)]);
        let out = db.cli(&a);
        assert_code(&out, 2);
        assert!(
            stderr(&out).contains("mutually exclusive"),
            "{}",
            stderr(&out)
        );
    }
    // Elsewhere -m is --select: run -m a builds a only.
    let run = db.cli(&["run", "-m", "a", "--project-dir", pd(&dir)]);
    assert_code(&run, 0);
    assert_eq!(
        db.value("select count(*)::text from analytics.a"),
        Some("1".into())
    );
    assert_eq!(db.value("select to_regclass('analytics.b')::text"), None);
}

#[test]
fn selector_from_selectors_yml() {
    let db = TestDb::new("cli_selector");
    let dir = small_project();
    write(
        dir.path(),
        "selectors.yml",
        "selectors:\n  - name: only_b\n    definition: b\n  - name: up_to_b\n    default: true\n    definition:\n      union:\n        - method: fqn\n          value: b\n          parents: true\n        - exclude: [a]\n  - name: again\n    definition: {method: selector, value: only_b}\n",
    );
    let ls = |args: &[&str]| {
        let mut a = vec!["ls", "--project-dir", pd(&dir)];
        a.extend(args);
        let out = db.cli(&a);
        assert_code(&out, 0);
        (stdout(&out), stderr(&out))
    };
    assert_eq!(ls(&["--selector", "only_b"]).0, "p.b\np.not_null_b_id\n");
    assert_eq!(ls(&["--selector", "again"]).0, "p.b\np.not_null_b_id\n");
    let (listed, console) = ls(&[]);
    assert_eq!(listed, "p.b\np.not_null_b_id\n");
    assert!(
        console.contains("Using default selector up_to_b"),
        "{console}"
    );
    // --select wins over the default selector.
    assert_eq!(ls(&["-s", "a"]).0, "p.a\n");
    let out = db.cli(&["run", "--selector", "only_b", "--project-dir", pd(&dir)]);
    assert_code(&out, 1); // a was never built
    let out = db.cli(&["ls", "--selector", "nope", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains(
            "no selector named 'nope' in selectors.yml; it defines only_b, up_to_b, again"
        ),
        "{}",
        stderr(&out)
    );
    write(
        dir.path(),
        "selectors.yml",
        "selectors:\n  - name: x\n    definition: {method: state, value: modified, indirect_selection: cautious}\n",
    );
    let out = db.cli(&["ls", "--selector", "x", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("state:modified compares with a previous run: add --state <DIR>"),
        "{}",
        stderr(&out)
    );
    write(
        dir.path(),
        "selectors.yml",
        "selectors:\n  - name: x\n    definiton: a\n",
    );
    let out = db.cli(&["ls", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("selectors.yml"), "{}", stderr(&out));
}

#[test]
fn compile_select_prints_the_compiled_sql() {
    let db = TestDb::new("cli_compile");
    let dir = small_project();
    let out = db.cli(&["compile", "-s", "b", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let expected = format!("select id from \"{}\".\"analytics\".\"a\"\n", db.name);
    assert_eq!(stdout(&out), expected);
    assert!(
        stderr(&out).contains("Compiled node 'b' is:"),
        "{}",
        stderr(&out)
    );
    // `+b` selects a too, but prints only the node named in the selector.
    let out = db.cli(&["compile", "-s", "+b", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), expected);
    let out = db.cli(&[
        "compile",
        "-s",
        "b",
        "-q",
        "--output",
        "json",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["node"], "b");
    assert_eq!(doc["compiled"], expected.trim_end());
    // Without --select nothing is printed.
    let out = db.cli(&["compile", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "");
}

#[test]
fn clean_deletes_clean_targets_inside_the_project_only() {
    let dir = small_project();
    let db = TestDb::new("cli_clean");
    assert_code(&db.cli(&["parse", "--project-dir", pd(&dir)]), 0);
    assert!(dir.path().join("target/manifest.json").is_file());
    let out = db.cli(&["clean", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(!dir.path().join("target").exists());
    assert!(dir.path().join("models/a.sql").is_file());
    assert!(stderr(&out).contains("Finished cleaning all paths."));

    // A resource path is never cleaned; a directory outside the project only
    // with --no-clean-project-files-only.
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "junk/x.txt", "x");
    let junk = outside.path().join("junk");
    write(
        dir.path(),
        "dbt_project.yml",
        "name: p\nclean-targets: [target, models]\n",
    );
    let out = db.cli(&["clean", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("dbt_project.yml"), "{}", stderr(&out));
    assert!(stderr(&out).contains("will not clean the resource paths"));
    assert!(dir.path().join("models/a.sql").is_file());
    write(
        dir.path(),
        "dbt_project.yml",
        &format!(
            "name: p\nclean-targets: [target, dbt_packages, '{}']\n",
            junk.display()
        ),
    );
    let out = db.cli(&["clean", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("outside the project directory"),
        "{}",
        stderr(&out)
    );
    assert!(junk.is_dir());
    let out = db.cli(&[
        "clean",
        "--no-clean-project-files-only",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    assert!(!junk.exists());
}

#[test]
fn parse_writes_the_manifest_and_its_timing() {
    let db = TestDb::new("cli_parse");
    let dir = small_project();
    let out = db.cli(&["parse", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("target/manifest.json"))).unwrap();
    assert!(manifest["nodes"].get("model.p.b").is_some());
    assert!(
        stderr(&out).contains("Parsed the project in "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn log_file_debug_quiet_and_log_levels() {
    let db = TestDb::new("cli_logs");
    let dir = small_project();
    // A password the (trusting) test server ignores: never written anywhere.
    let secret = "s3cret-pw-4711";
    let out = db
        .cmd()
        .env("PG_ANALYTICS_PASSWORD", secret)
        .args(["build", "--project-dir", pd(&dir)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let log = read(&dir.path().join("logs/dbt.log"));
    assert!(
        log.contains(" [info ] [MainThread]: 1 of 3 START sql view model analytics.a"),
        "{log}"
    );
    assert!(
        log.contains("[debug] [MainThread]: On model.p.a: create view"),
        "{log}"
    );
    assert!(log.contains("On test.p.not_null_b_id"), "{log}");
    assert!(!log.contains(secret));
    assert!(!stderr(&out).contains("On model.p.a"));

    // --debug: the statements on the console too.
    let out = db.cli(&["run", "-s", "a", "--debug", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("On model.p.a: create view"),
        "{}",
        stderr(&out)
    );

    // -q and --log-level warn: nothing on the console for a good run; errors still.
    for flag in [&["-q"][..], &["--log-level", "warn"], &["--quiet"]] {
        let mut args = vec!["run", "--project-dir", pd(&dir)];
        args.extend(flag);
        let out = db.cli(&args);
        assert_code(&out, 0);
        assert_eq!(stderr(&out), "", "{flag:?}");
    }
    write(dir.path(), "models/bad.sql", "select nope from nowhere\n");
    let out = db.cli(&["run", "-s", "bad", "-q", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
    std::fs::remove_file(dir.path().join("models/bad.sql")).unwrap();

    // --log-path moves the file; --log-level-file none writes none.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = db.cli(&[
        "run",
        "-s",
        "a",
        "--project-dir",
        pd(&dir),
        "--log-path",
        elsewhere.path().to_str().unwrap(),
        "--log-format-file",
        "json",
    ]);
    assert_code(&out, 0);
    let line = read(&elsewhere.path().join("dbt.log"));
    let first: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert!(first["msg"].is_string(), "{line}");
    let fresh = small_project();
    let out = db.cli(&[
        "run",
        "--project-dir",
        pd(&fresh),
        "--log-level-file",
        "none",
    ]);
    assert_code(&out, 0);
    assert!(!fresh.path().join("logs/dbt.log").exists());
    // The project's log-path.
    write(
        fresh.path(),
        "dbt_project.yml",
        "name: p\nlog-path: my_logs\n",
    );
    assert_code(&db.cli(&["ls", "--project-dir", pd(&fresh)]), 0);
    assert!(fresh.path().join("my_logs/dbt.log").is_file());
}

#[test]
fn warn_error_makes_warnings_errors() {
    let db = TestDb::new("cli_warn_error");
    let dir = small_project();
    let out = db.cli(&["run", "-s", "nope", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("does not match any enabled nodes"));
    let out = db.cli(&[
        "run",
        "-s",
        "nope",
        "--warn-error",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("made an error by --warn-error"),
        "{}",
        stderr(&out)
    );
    // Excepted by --warn-error-options: a warning again; silenced: not shown.
    let out = db.cli(&[
        "run",
        "-s",
        "nope",
        "--warn-error-options",
        "{\"error\": \"all\", \"warn\": [\"NoNodesForSelectionCriteria\", \"NothingToDo\"]}",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    let out = db.cli(&[
        "run",
        "-s",
        "nope",
        "--warn-error-options",
        "silence: [NoNodesForSelectionCriteria]",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("does not match"), "{}", stderr(&out));
    // A test of warn severity that fails is a failure.
    write(
        dir.path(),
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n        data_tests:\n          - accepted_values:\n              values: [2]\n              config: {severity: warn}\n",
    );
    assert_code(&db.cli(&["build", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["build", "--warn-error", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let out = db.cli(&[
        "build",
        "--warn-error-options",
        "{error: [NoNodesForSelectionCriteria]}",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
}

#[test]
fn full_refresh_is_accepted_where_dbt_accepts_it() {
    let db = TestDb::new("cli_full_refresh");
    let dir = small_project();
    for cmd in ["run", "build", "seed"] {
        for flag in ["--full-refresh", "-f"] {
            let out = db.cli(&[cmd, flag, "--project-dir", pd(&dir)]);
            assert_code(&out, 0);
        }
    }
    assert_eq!(
        db.value("select count(*)::text from analytics.b"),
        Some("1".into())
    );
    let out = db.cli(&["test", "--full-refresh", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
}

#[test]
fn colours_follow_the_flags_and_the_terminal_variables() {
    let db = TestDb::new("cli_colours");
    let dir = small_project();
    let run = |env: &[(&str, &str)], flags: &[&str]| {
        let mut c = db.cmd();
        c.env_remove("NO_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .args(["ls", "-s", "nope", "--project-dir", pd(&dir)])
            .args(flags)
            .output()
            .unwrap();
        assert_code(&out, 0);
        stderr(&out).contains("\x1b[")
    };
    assert!(!run(&[], &[]), "not a terminal: no colours");
    assert!(run(&[], &["--use-colors"]));
    assert!(run(&[("CLICOLOR_FORCE", "1")], &[]));
    assert!(!run(&[("CLICOLOR_FORCE", "1")], &["--no-use-colors"]));
    assert!(!run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], &[]));
    assert!(!run(&[("CLICOLOR_FORCE", "0"), ("TERM", "dumb")], &[]));
    assert!(!run(&[], &["--no-color", "--use-colors", "--no-color"]));
}

#[test]
fn show_prints_a_nodes_rows_as_dbt_does() {
    let db = TestDb::new("cli_show");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/amounts.sql",
            "select i as id, 'n' || i as label, i * 1234.5678 as amount from generate_series(1, 7) i\n",
        ),
        ("models/broken.sql", "select 1 / 0 as boom\n"),
        ("seeds/codes.csv", "code\na\n"),
    ]);
    let build = db.cli(&["run", "-s", "amounts", "--project-dir", pd(&dir)]);
    assert_code(&build, 0);
    // Five rows by default; numbers grouped and cut to three places with
    // agate's ellipsis; text left-justified, numbers right-justified.
    let out = db.cli(&["show", "-s", "amounts", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out),
        "| id | label |     amount |\n\
         | -- | ----- | ---------- |\n\
         |  1 | n1    | 1,234.568… |\n\
         |  2 | n2    | 2,469.136… |\n\
         |  3 | n3    | 3,703.703… |\n\
         |  4 | n4    | 4,938.271… |\n\
         |  5 | n5    | 6,172.839… |\n"
    );
    assert!(stderr(&out).contains("Previewing node 'amounts':"));
    let out = db.cli(&[
        "show",
        "-s",
        "amounts",
        "--limit",
        "-1",
        "--output",
        "json",
        "-q",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["node"], "amounts");
    assert_eq!(doc["show"].as_array().unwrap().len(), 7);
    assert_eq!(doc["show"][6]["amount"], 8641.9746);
    // Nothing was built by show: the broken model has no relation, and its
    // error names it and its file (exit 2, as dbt's runtime error).
    let out = db.cli(&["show", "-s", "broken", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out)
            .contains("Database Error in model broken (models/broken.sql): division by zero"),
        "{}",
        stderr(&out)
    );
    let out = db.cli(&["show", "-s", "codes", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("show of a seed (seed.p.codes) is not supported"));
    assert_eq!(
        db.value("select count(*)::text from information_schema.tables where table_name in ('broken', 'codes')"),
        Some("0".to_string())
    );
}

#[test]
fn compile_inline_prints_the_sql_and_a_jinja_error_fails() {
    let db = TestDb::new("cli_inline");
    let dir = small_project();
    let out = db.cli(&[
        "compile",
        "--inline",
        "select id from {{ ref('a') }}",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("select id from ") && stdout(&out).contains(".\"a\""),
        "{}",
        stdout(&out)
    );
    let out = db.cli(&[
        "compile",
        "--inline",
        "select {{ ref('nowhere') }}",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("Compilation Error in inline_query"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("target/run_results.json").exists());
}

#[test]
fn state_and_defer_say_what_they_need() {
    let db = TestDb::new("cli_state_errors");
    let dir = small_project();
    // A manifest without run results: state: works, result: says what is missing.
    assert_code(&db.cli(&["parse", "--project-dir", pd(&dir)]), 0);
    std::fs::create_dir(dir.path().join("prod")).unwrap();
    std::fs::copy(
        dir.path().join("target/manifest.json"),
        dir.path().join("prod/manifest.json"),
    )
    .unwrap();
    let out = db.cli(&[
        "ls",
        "-s",
        "state:modified",
        "--state",
        "prod",
        "--project-dir",
        pd(&dir),
    ]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out),
        "",
        "nothing changed since the manifest was written"
    );
    write(dir.path(), "models/a.sql", "select 2 as id");
    let out = db.cli(&[
        "ls",
        "-s",
        "state:modified.body",
        "--state",
        "prod",
        "--project-dir",
        pd(&dir),
    ]);
    assert_eq!(stdout(&out), "p.a\n", "{}", stderr(&out));
    let mut text = String::new();
    for args in [
        &["ls", "-s", "state:modified"][..],
        &["ls", "-s", "state:modified", "--state", "nowhere"],
        &["ls", "-s", "state:changed", "--state", "prod"],
        &["ls", "-s", "result:error", "--state", "prod"],
        &["build", "--defer"],
    ] {
        let mut a = args.to_vec();
        a.extend(["--project-dir", pd(&dir)]);
        let out = db.cli(&a);
        assert_code(&out, 2);
        text.push_str(&format!("$ {}\n{}\n", args.join(" "), stderr(&out)));
    }
    assert!(!dir.path().join("target/run_results.json").exists());
    assert_console_snapshot!("state_errors", text);
}

#[test]
fn the_bare_name_under_meltano_builds() {
    let db = TestDb::new("cli_bare_meltano");
    let meltano = tempfile::tempdir().unwrap();
    let dir = small_project();
    std::fs::rename(dir.path(), meltano.path().join("transforms")).unwrap();
    let out = db
        .cmd()
        .env("MELTANO_PROJECT_ROOT", meltano.path())
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(stderr(&out).contains("PASS=3"), "{}", stderr(&out));
    // Outside Meltano: the help, exit 2.
    let out = db.cmd().output().unwrap();
    assert_code(&out, 2);
    assert!(stdout(&out).contains("Usage:"), "{}", stdout(&out));
}
