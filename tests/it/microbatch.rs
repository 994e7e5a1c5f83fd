//! Microbatch models on real PostgreSQL, for what the differential test
//! (`tests/dbt`, fixture `microbatch`) does not see: a failed batch leaving the
//! batches before and after it applied and its own window exactly as it was,
//! nothing left behind, `batch_results` in run_results.json, `retry` running the
//! failed batch alone, a first batch failing under `--full-refresh` leaving the
//! old table; batches computed from `begin` and `lookback` against today's date
//! (which a cached dbt run cannot check); dbt-postgres' refusal of a batch without
//! a `unique_key`.

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

fn run_results(dir: &tempfile::TempDir) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap()
}

/// A source with an `event_time` and a daily microbatch model that casts `v`.
fn setup(db: &TestDb, begin: &str, key: bool) -> tempfile::TempDir {
    db.exec(
        "create schema raw; create table raw.events (id int, v text, at timestamp);
         insert into raw.events values (1, '10', '2024-01-01 08:00'), (2, '20', '2024-01-02 08:00'),
                                       (3, '30', '2024-01-03 08:00');",
    );
    let key = if key { ", unique_key='id'" } else { "" };
    project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: events\n        config:\n          event_time: at\n",
        ),
        (
            "models/m.sql",
            &format!(
                "{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='{begin}'{key}) }}}}\n\
                 select id, v::int as n, at from {{{{ source('raw', 'events') }}}}\n"
            ),
        ),
    ])
}

const WINDOW: [&str; 4] = [
    "--event-time-start",
    "2024-01-01",
    "--event-time-end",
    "2024-01-04",
];

#[test]
fn a_failed_batch_leaves_its_window_and_retry_runs_it_alone() {
    let db = TestDb::new("mb_failed");
    let dir = setup(&db, "2024-01-01", true);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--project-dir", pd(&dir)];
        args.extend_from_slice(extra);
        db.cli(&args)
    };
    let out = run(&WINDOW);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("START sql microbatch model analytics.m"),
        "{err}"
    );
    assert!(
        err.contains("Batch 1 of 3 OK created batch 2024-01-01 of analytics.m"),
        "{err}"
    );
    assert!(err.contains("[SELECT 1 in"), "{err}");
    assert!(err.contains("[MERGE 1 in"), "{err}");
    let table = db.value("select 'analytics.m'::regclass::oid::text");

    // New values for every day, one that breaks the cast on the second day.
    db.exec(
        "update raw.events set v = (id * 100)::text; update raw.events set v = 'bad' where id = 2;",
    );
    let out = run(&WINDOW);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("Batch 2 of 3 ERROR creating batch 2024-01-02 of analytics.m"),
        "{err}"
    );
    assert!(
        err.contains("PARTIALLY created sql microbatch model analytics.m"),
        "{err}"
    );
    assert!(err.contains("[PARTIAL SUCCESS (2/3) in"), "{err}");
    // The first and third batches are committed, the second day is untouched.
    assert_eq!(
        db.lines("select id, n from analytics.m order by id"),
        vec!["1|100", "2|20", "3|300"]
    );
    assert_eq!(db.value("select 'analytics.m'::regclass::oid::text"), table);
    assert!(db
        .lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
        .is_empty());
    let results = run_results(&dir);
    let r = &results["results"][0];
    assert_eq!(r["status"], "partial success");
    assert_eq!(r["message"], "PARTIAL SUCCESS (2/3)");
    assert_eq!(
        r["batch_results"],
        serde_json::json!({
            "successful": [["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00"],
                           ["2024-01-03T00:00:00+00:00", "2024-01-04T00:00:00+00:00"]],
            "failed": [["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"]]
        })
    );
    assert_eq!(results["args"]["event_time_start"], "2024-01-01T00:00:00");

    // Fixed; a change to the first day meanwhile is not picked up: retry runs
    // the failed batch only.
    db.exec("update raw.events set v = '222' where id = 2; update raw.events set v = '111' where id = 1;");
    let out = db.cli(&["retry", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("Batch 1 of 1 START batch 2024-01-02 of analytics.m"),
        "{err}"
    );
    assert_eq!(
        db.lines("select id, n from analytics.m order by id"),
        vec!["1|100", "2|222", "3|300"]
    );
    let r = &run_results(&dir)["results"][0];
    assert_eq!(r["status"], "success");
    assert_eq!(
        r["batch_results"]["successful"].as_array().unwrap().len(),
        3
    );

    // A full refresh whose first batch fails: the old table stays, the other
    // batches are skipped.
    db.exec("update raw.events set v = 'bad' where id = 1;");
    let out = run(&["--full-refresh", WINDOW[0], WINDOW[1], WINDOW[2], WINDOW[3]]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("Batch 2 of 3 SKIP batch 2024-01-02 of analytics.m"),
        "{err}"
    );
    assert_eq!(
        db.lines("select id, n from analytics.m order by id"),
        vec!["1|100", "2|222", "3|300"]
    );
    assert_eq!(db.value("select 'analytics.m'::regclass::oid::text"), table);
    assert_eq!(run_results(&dir)["results"][0]["status"], "error");
}

#[test]
fn without_flags_batches_run_from_begin_then_over_the_lookback() {
    let db = TestDb::new("mb_clock");
    // Today in UTC, as the binary reckons batches.
    let day = |n: i32| {
        db.value(&format!(
            "select ((now() at time zone 'utc')::date - {n})::text"
        ))
        .unwrap()
    };
    let dir = setup(&db, &day(3), true);
    db.exec(&format!(
        "truncate raw.events; insert into raw.events values
           (1, '1', '{} 10:00'), (2, '2', '{} 10:00'), (3, '3', '{} 00:00');",
        day(3),
        day(1),
        day(0)
    ));
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("Batch 4 of 4 OK created batch"), "{err}");
    assert_eq!(
        db.value("select count(*)::text from analytics.m"),
        Some("3".into())
    );
    // Late rows two days back (outside the default lookback of 1) and yesterday.
    db.exec(&format!(
        "insert into raw.events values (4, '4', '{} 10:00'), (5, '5', '{} 11:00');",
        day(2),
        day(1)
    ));
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "Batch 1 of 2 START batch {} of analytics.m",
            day(1)
        )),
        "{err}"
    );
    assert_eq!(
        db.lines("select id from analytics.m order by id"),
        vec!["1", "2", "3", "5"]
    );
    // --full-refresh starts again from `begin`.
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--full-refresh"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("Batch 4 of 4"), "{}", stderr(&out));
    assert_eq!(
        db.lines("select id from analytics.m order by id"),
        vec!["1", "2", "3", "4", "5"]
    );
}

#[test]
fn a_batch_without_unique_key_fails_as_in_dbt_postgres() {
    let db = TestDb::new("mb_nokey");
    let dir = setup(&db, "2024-01-01", false);
    let mut args = vec!["run", "--project-dir", pd(&dir)];
    args.extend_from_slice(&WINDOW);
    let out = db.cli(&args);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("dbt-postgres 'microbatch' requires a `unique_key` config"),
        "{err}"
    );
    // The first batch built the table, the others failed.
    assert_eq!(
        db.lines("select id from analytics.m order by id"),
        vec!["1"]
    );
    assert_eq!(run_results(&dir)["results"][0]["status"], "partial success");
}

#[test]
fn a_model_whose_inputs_have_no_event_time_reads_them_whole_with_a_warning() {
    let db = TestDb::new("mb_unfiltered");
    let dir = setup(&db, "2024-01-01", true);
    write(
        dir.path(),
        "models/sources.yml",
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: events\n",
    );
    let mut args = vec!["run", "--project-dir", pd(&dir)];
    args.extend_from_slice(&WINDOW);
    let out = db.cli(&args);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("The microbatch model 'm' has no 'ref' or 'source' input with an 'event_time' configuration"),
        "{err}"
    );
    // Every batch read every row: the table holds them all, merged on `id`.
    assert_eq!(
        db.value("select count(*)::text from analytics.m"),
        Some("3".into())
    );
}

#[test]
fn pre_hooks_run_with_the_first_batch_and_post_hooks_with_the_last() {
    let db = TestDb::new("mb_hooks");
    let dir = setup(&db, "2024-01-01", true);
    db.exec("create table raw.log (what text, n serial);");
    write(
        dir.path(),
        "models/m.sql",
        "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='at', batch_size='day', begin='2024-01-01', unique_key='id',\n\
         pre_hook=\"insert into raw.log (what) values ('pre')\", post_hook=\"insert into raw.log (what) values ('post')\") }}\n\
         select id, v::int as n, at from {{ source('raw', 'events') }}\n",
    );
    let mut args = vec!["run", "--project-dir", pd(&dir)];
    args.extend_from_slice(&WINDOW);
    assert_code(&db.cli(&args), 0);
    assert_eq!(
        db.lines("select what from raw.log order by n"),
        vec!["pre", "post"]
    );
}
