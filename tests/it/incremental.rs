//! Incremental models on real PostgreSQL: what the console and run_results say
//! of an increment, an increment applied while a reader holds the table, a failed
//! increment and an interrupted one leaving the previous contents, and
//! `--full-refresh` rebuilding through the swap, and an increment that cannot get
//! its lock (a writer holding the table, another invocation) failing politely.
//!
//! The differential test (`tests/dbt`, fixture `incremental`) checks the
//! strategies and `on_schema_change` against dbt-core itself; these tests pin the
//! safety the binary adds.

use std::process::Stdio;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

fn oid(db: &TestDb, rel: &str) -> String {
    db.value(&format!("select '{rel}'::regclass::oid::text"))
        .unwrap()
}

/// A source of three rows and an incremental model of `strategy` on it.
fn setup(db: &TestDb, strategy: &str) -> tempfile::TempDir {
    db.exec(
        "create schema raw; create table raw.events (id int, v text, at int);
         insert into raw.events values (1, 'a', 1), (2, 'b', 1), (3, 'c', 1);",
    );
    project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: events\n",
        ),
        (
            "models/m.sql",
            &format!(
                "{{{{ config(materialized='incremental', incremental_strategy='{strategy}', unique_key='id') }}}}\n\
                 select id, v, at from {{{{ source('raw', 'events') }}}}\n\
                 {{% if is_incremental() %}}where at > (select max(at) from {{{{ this }}}}){{% endif %}}\n"
            ),
        ),
    ])
}

#[test]
fn an_increment_is_applied_while_a_reader_holds_the_table() {
    let db = TestDb::new("inc_reader");
    let dir = setup(&db, "merge");
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("[SELECT 3 in"), "{}", stderr(&out));
    let before = oid(&db, "analytics.m");
    db.exec("update raw.events set v = 'B', at = 2 where id = 2; insert into raw.events values (4, 'd', 2);");
    // A dashboard query in flight: its ACCESS SHARE lock does not stop the
    // increment (EXCLUSIVE mode), and the increment does not wait for it.
    let mut reader = db.client();
    reader
        .batch_execute("begin; select count(*) from analytics.m")
        .unwrap();
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--log-format", "text"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("OK created sql incremental model analytics.m"),
        "{err}"
    );
    assert!(err.contains("[MERGE 2 in"), "{err}");
    reader.batch_execute("commit").unwrap();
    assert_eq!(
        oid(&db, "analytics.m"),
        before,
        "an increment keeps the table"
    );
    assert_eq!(
        db.lines("select id, v from analytics.m order by id"),
        vec!["1|a", "2|B", "3|c", "4|d"]
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let r = &results["results"][0];
    assert_eq!(r["status"], "success");
    assert_eq!(r["adapter_response"]["_message"], "MERGE 2");
    assert_eq!(r["adapter_response"]["rows_affected"], 2);

    // --full-refresh rebuilds it through the swap: a new table, the same rows.
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--full-refresh"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("[SELECT 4 in"), "{}", stderr(&out));
    assert_ne!(oid(&db, "analytics.m"), before);
    assert_eq!(
        db.value("select count(*)::text from analytics.m"),
        Some("4".into())
    );
}

#[test]
fn a_failed_increment_leaves_the_table_as_it_was() {
    let db = TestDb::new("inc_failed");
    let dir = setup(&db, "merge");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    // Two new rows with one key: MERGE refuses to change a row twice.
    db.exec("insert into raw.events values (1, 'x', 2), (1, 'y', 2), (5, 'e', 2);");
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("cannot affect row a second time"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.lines("select id, v from analytics.m order by id"),
        vec!["1|a", "2|b", "3|c"]
    );
    assert!(db
        .lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
        .is_empty());
}

#[test]
fn sigterm_while_the_increment_is_applied_leaves_the_old_contents() {
    let db = TestDb::new("inc_sigterm");
    let dir = setup(&db, "delete+insert");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    // The insert of the increment (after its delete) waits inside a trigger.
    db.exec(
        "create function public.slow() returns trigger language plpgsql as $$ begin perform pg_sleep(60); return null; end $$;
         create trigger slow before insert on analytics.m for each statement execute function public.slow();
         update raw.events set v = 'A', at = 2 where id = 1;",
    );
    let child = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the increment's insert runs", || {
        db.value(
            "select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database() and state = 'active' and query ilike 'insert into %'",
        ) != Some("0".into())
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nterrupted"), "{}", stderr(&out));
    // The delete of row 1 was rolled back with the rest.
    assert_eq!(
        db.lines("select id, v from analytics.m order by id"),
        vec!["1|a", "2|b", "3|c"]
    );
    wait_until("no query of the binary is running", || {
        db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database()")
            == Some("0".into())
    });
}

#[test]
fn an_increment_waits_politely_and_fails_naming_a_writer_that_holds_the_table() {
    let db = TestDb::new("inc_locked");
    let dir = setup(&db, "append");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    db.exec("insert into raw.events values (4, 'd', 2);");
    // A session that writes to the table (SHARE conflicts with the increment's
    // EXCLUSIVE lock) and keeps its transaction open.
    let mut writer = db.client();
    writer
        .batch_execute("begin; lock table analytics.m in share mode")
        .unwrap();
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "0.2")
        .env("RELUVIA_TRANSFORM_SWAP_RETRIES", "1")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "cannot apply the increment of analytics.m: it was still in use after 2 tries"
        ),
        "{err}"
    );
    assert!(err.contains("increment try 1 of 2"), "{err}");
    writer.batch_execute("rollback").unwrap();
    assert_eq!(
        db.value("select count(*)::text from analytics.m"),
        Some("3".into())
    );
    // Another invocation applying an increment of it: wait_for_lock false fails
    // at once, naming it.
    let mut other = db.client();
    other
        .batch_execute("begin; select pg_advisory_xact_lock(hashtextextended('reluvia-transform:analytics.m', 0))")
        .unwrap();
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_WAIT_FOR_LOCK", "false")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("is building analytics.m right now"),
        "{}",
        stderr(&out)
    );
    other.batch_execute("rollback").unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    assert_eq!(
        db.value("select count(*)::text from analytics.m"),
        Some("4".into())
    );
}
