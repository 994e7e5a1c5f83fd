//! Seeds on real PostgreSQL: dbt's type inference rule by rule, `column_types`,
//! `quote_columns: false`, `delimiter`, a BOM; reloads swapped in while readers
//! read (never empty, never half-loaded) and while a reader holds the old
//! version; a failed load and an interrupted one leaving the previous table;
//! seed tests, `ref()` to a seed, selection and `--full-refresh`.
//!
//! The differential test (`tests/dbt`, fixture `seeds`) checks the same
//! against dbt-core itself; these tests pin what the binary does on its own.

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// `column: type` of a relation, in order.
fn columns(db: &TestDb, rel: &str) -> Vec<String> {
    db.lines(&format!(
        "select attname || ': ' || format_type(atttypid, atttypmod) from pg_attribute where attrelid = '{rel}'::regclass and attnum > 0 and not attisdropped order by attnum"
    ))
}

fn oid(db: &TestDb, rel: &str) -> String {
    db.value(&format!("select '{rel}'::regclass::oid::text"))
        .unwrap()
}

fn leftovers(db: &TestDb) -> Vec<String> {
    db.lines("select relname from pg_class where relname like '%\\_\\_rt\\_%' order by 1")
}

#[test]
fn inference_rules_column_types_quoting_and_delimiter() {
    let db = TestDb::new("seed_infer");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nseeds:\n  p:\n    piped:\n      +delimiter: '|'\n      +quote_columns: false\n      +column_types:\n        Code: varchar(3)\n",
        ),
        (
            "seeds/kinds.csv",
            // Every rule of tests/dbt/NOTES.md ("Seeds"), one column each.
            "\u{feff}whole,decimal,one_dot_zero,grouped,money,percent,sci,day,loose_day,stamp,iso,iso_offset,flag,yes_no,mixed_stamp,us_day,empty,text\n\
             7,-7.25,1.0,\"1,234\",$5.00,5%,1e3,2026-03-01,2026-3-1,2026-03-01 10:15:00,2026-03-01T10:15:00,2026-02-28T23:59:59+02:00,true,yes,2026-03-01 10:15:00,03/01/2026,,alpha\n\
             007,0.5,2.00,999,$0.50,,2.5e-1,2024-02-29,2024-02-29,2024-02-29 00:00:00,2024-02-29T00:00:00.250,2024-02-29T00:00:00Z,FALSE,no,2024-02-29T00:00:00,02/29/2024,null,NULL\n",
        ),
        (
            "seeds/piped.csv",
            "Code|Display_Name|isPaid\nfb|x|true\nseo|\"a|b\"|false\n",
        ),
    ]);
    let out = db.cli(&["seed", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_eq!(
        columns(&db, "analytics.kinds"),
        vec![
            "whole: integer",
            "decimal: double precision",
            "one_dot_zero: integer",
            "grouped: integer",
            "money: double precision",
            "percent: integer",
            "sci: double precision",
            "day: date",
            "loose_day: date",
            "stamp: timestamp without time zone",
            "iso: timestamp without time zone",
            "iso_offset: timestamp without time zone",
            "flag: boolean",
            "yes_no: text",
            "mixed_stamp: text",
            "us_day: text",
            "empty: integer",
            "text: text",
        ]
    );
    assert_eq!(
        db.lines("select * from analytics.kinds order by decimal"),
        vec![
            "7|-7.25|1|1234|5|5|1000|2026-03-01|2026-03-01|2026-03-01 10:15:00|2026-03-01 10:15:00|2026-02-28 21:59:59|t|yes|2026-03-01 10:15:00|03/01/2026|∅|alpha",
            "7|0.5|2|999|0.5|∅|0.25|2024-02-29|2024-02-29|2024-02-29 00:00:00|2024-02-29 00:00:00.25|2024-02-29 00:00:00|f|no|2024-02-29T00:00:00|02/29/2024|∅|∅",
        ]
    );
    // quote_columns false: names folded as PostgreSQL folds them; the one with a
    // space cannot be written unquoted, so the load fails like dbt's SQL would.
    let err = stderr(&out);
    assert!(err.contains("OK loaded seed file analytics.kinds"), "{err}");
    assert!(err.contains("[INSERT 2 in"), "{err}");
    assert_eq!(
        columns(&db, "analytics.piped"),
        vec![
            "code: character varying(3)",
            "display_name: text",
            "ispaid: boolean"
        ]
    );
    assert_eq!(
        db.lines("select * from analytics.piped order by 1"),
        vec!["fb|x|t", "seo|a|b|f"]
    );
    write(dir.path(), "seeds/piped.csv", "Code|Display Name\nfb|x\n");
    let out = db.cli(&[
        "seed",
        "--project-dir",
        pd(&dir),
        "--select",
        "piped",
        "--full-refresh",
    ]);
    assert_code(&out, 1);
    assert!(
        stderr(&out)
            .contains("column 'Display Name' of seeds/piped.csv cannot be written unquoted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn column_types_override_and_are_read_by_postgres() {
    let db = TestDb::new("seed_types");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("seeds/rates.csv", "code,rate,day\nEUR,1.0,2026-03-01\nUSD,,\n"),
        (
            "seeds/props.yml",
            "version: 2\nseeds:\n  - name: rates\n    description: FX rates\n    config:\n      column_types: {code: varchar(3), rate: 'numeric(12, 4)'}\n",
        ),
    ]);
    assert_code(&db.cli(&["seed", "--project-dir", pd(&dir)]), 0);
    assert_eq!(
        columns(&db, "analytics.rates"),
        vec![
            "code: character varying(3)",
            "rate: numeric(12,4)",
            "day: date"
        ]
    );
    assert_eq!(
        db.lines("select * from analytics.rates order by 1"),
        vec!["EUR|1.0000|2026-03-01", "USD|∅|∅"]
    );
}

/// A project with a seed `s` of `n` rows (`id`, `v`), a model on it and tests.
fn seed_project(rows: usize) -> tempfile::TempDir {
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nseeds:\n  p:\n    +schema: ref\n    +tags: [lookup]\nmodels:\n  p:\n    +materialized: table\n",
        ),
        (
            "seeds/props.yml",
            "version: 2\nseeds:\n  - name: s\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n",
        ),
        ("models/m.sql", "select count(*) as n from {{ ref('s') }}\n"),
    ]);
    write_rows(&dir, rows, 1);
    dir
}

fn write_rows(dir: &tempfile::TempDir, rows: usize, v: usize) {
    let mut csv = String::from("id,v\n");
    for i in 1..=rows {
        csv.push_str(&format!("{i},{v}\n"));
    }
    write(dir.path(), "seeds/s.csv", &csv);
}

#[test]
fn build_orders_seeds_models_and_tests_and_selection_picks_seeds() {
    let db = TestDb::new("seed_build");
    let dir = seed_project(3);
    // run leaves seeds alone: the model's ref has nothing to read yet.
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 1);
    let out = db.cli(&["build", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let err = stderr(&out);
    for line in [
        "Found 1 model, 1 seed, 2 data tests",
        "1 of 4 OK loaded seed file analytics_ref.s",
        "4 of 4 OK created sql table model analytics.m",
        "Finished running 1 seed, 1 table model, 2 data tests",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
    assert_eq!(
        db.value("select n::text from analytics.m").as_deref(),
        Some("3")
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let seed = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "seed.p.s")
        .unwrap();
    assert_eq!(seed["status"], "success");
    assert_eq!(seed["message"], "INSERT 3");

    let ls = |args: &[&str]| {
        let out = db.cli(&[&["ls", "--project-dir", pd(&dir)], args].concat());
        assert_code(&out, 0);
        stdout(&out)
    };
    assert_eq!(
        ls(&["--select", "resource_type:seed", "--resource-type", "seed"]),
        "p.s\n"
    );
    assert_eq!(
        ls(&["--resource-type", "seed", "--output", "path"]),
        "seeds/s.csv\n"
    );
    assert_eq!(
        ls(&["--select", "tag:lookup"]),
        "p.s\np.not_null_s_id\np.unique_s_id\n"
    );
    assert_eq!(ls(&["--select", "s+", "--resource-type", "model"]), "p.m\n");

    // A failing seed test skips what reads the seed.
    write(dir.path(), "seeds/s.csv", "id,v\n1,1\n1,2\n");
    let out = db.cli(&["build", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("SKIP relation analytics.m"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select n::text from analytics.m").as_deref(),
        Some("3")
    );

    // seed --select loads only that seed; --full-refresh recreates it (new types).
    write(dir.path(), "seeds/s.csv", "id,v\n1,x\n");
    let out = db.cli(&["seed", "--project-dir", pd(&dir), "--select", "s"]);
    assert_code(&out, 1); // the table keeps `v integer`, as dbt's truncate+insert
    assert_eq!(
        columns(&db, "analytics_ref.s"),
        vec!["id: integer", "v: integer"]
    );
    let out = db.cli(&["seed", "--project-dir", pd(&dir), "--full-refresh"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("[CREATE 1 in"), "{}", stderr(&out));
    assert_eq!(
        columns(&db, "analytics_ref.s"),
        vec!["id: integer", "v: text"]
    );
    assert!(leftovers(&db).is_empty());
}

#[test]
fn readers_never_see_a_seed_empty_or_half_loaded_over_10_reloads() {
    let db = TestDb::new("seed_readers");
    let dir = seed_project(2000);
    assert_code(&db.cli(&["seed", "--project-dir", pd(&dir)]), 0);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut c = db.client();
        let (stop, reads, bad) = (stop.clone(), reads.clone(), bad.clone());
        readers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let n: i64 = c
                    .query_one("select count(*) from analytics_ref.s", &[])
                    .unwrap()
                    .get(0);
                if n != 2000 && n != 3000 {
                    bad.lock().unwrap().push(n);
                }
                reads.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for i in 0..10 {
        write_rows(&dir, if i % 2 == 0 { 3000 } else { 2000 }, i);
        assert_code(&db.cli(&["seed", "--project-dir", pd(&dir)]), 0);
    }
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::SeqCst) > 10);
    assert!(
        bad.lock().unwrap().is_empty(),
        "readers saw {:?}",
        bad.lock().unwrap()
    );
    assert_eq!(
        db.value("select count(*)::text from analytics_ref.s")
            .as_deref(),
        Some("2000")
    );
    assert!(leftovers(&db).is_empty());
}

#[test]
fn a_reload_waits_for_a_reader_holding_the_old_version_then_swaps_in() {
    let db = TestDb::new("seed_holder");
    let dir = seed_project(5);
    assert_code(&db.cli(&["seed", "--project-dir", pd(&dir)]), 0);
    let mut reader = db.client();
    let mut tx = reader.transaction().unwrap();
    let n: i64 = tx
        .query_one("select count(*) from analytics_ref.s", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    write_rows(&dir, 7, 2);
    let child = db
        .cmd()
        .args(["seed", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "1")
        .env("RELUVIA_TRANSFORM_SWAP_RETRIES", "30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The new version is loaded and the swap queues for the reader's lock.
    wait_until("the swap waits for the reader", || {
        db.value(
            "select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database() and wait_event_type = 'Lock'",
        ) != Some("0".into())
    });
    // The reader still has the old version, whole.
    let n: i64 = tx
        .query_one("select count(*) from analytics_ref.s", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    tx.commit().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.value("select count(*)::text from analytics_ref.s")
            .as_deref(),
        Some("7")
    );
}

#[test]
fn a_failed_load_leaves_the_previous_table() {
    let db = TestDb::new("seed_fail");
    let dir = seed_project(3);
    assert_code(&db.cli(&["seed", "--project-dir", pd(&dir)]), 0);
    let before = oid(&db, "analytics_ref.s");
    for (csv, message) in [
        // A value the existing column cannot take (the table keeps its types).
        (
            "id,v\n1,1\n2,abc\n",
            "invalid input syntax for type integer",
        ),
        // A malformed row.
        (
            "id,v\n1,1\n2,2,3\n",
            "seeds/s.csv: line 3: the row has 3 values but the header names 2 columns",
        ),
        // A column the table does not have (dbt fails the same way).
        (
            "id,v,w\n1,1,1\n",
            "column \"w\" of relation \"s\" does not exist",
        ),
    ] {
        write(dir.path(), "seeds/s.csv", csv);
        let out = db.cli(&["seed", "--project-dir", pd(&dir)]);
        assert_code(&out, 1);
        assert!(
            stderr(&out).contains(message),
            "{message}\n{}",
            stderr(&out)
        );
        assert_eq!(oid(&db, "analytics_ref.s"), before);
        assert_eq!(
            db.value("select count(*)::text from analytics_ref.s")
                .as_deref(),
            Some("3")
        );
        assert!(leftovers(&db).is_empty());
    }
    // An overflow fails as dbt's does: integer inferred, the value out of range.
    write(dir.path(), "seeds/s.csv", "id,v\n1,8100000000\n");
    let out = db.cli(&["seed", "--project-dir", pd(&dir), "--full-refresh"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("out of range for type integer"),
        "{}",
        stderr(&out)
    );
    assert_eq!(oid(&db, "analytics_ref.s"), before);
    // A view of the seed's name is not replaced.
    db.exec("create view analytics_ref.v_seed as select 1 as id");
    write(dir.path(), "seeds/v_seed.csv", "id\n1\n");
    let out = db.cli(&["seed", "--project-dir", pd(&dir), "--select", "v_seed"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("is a view"), "{}", stderr(&out));
}

#[test]
fn sigterm_while_copy_runs_leaves_the_previous_table_and_nothing_behind() {
    let db = TestDb::new("seed_sigterm");
    let dir = seed_project(3);
    assert_code(&db.cli(&["seed", "--project-dir", pd(&dir)]), 0);
    let before = oid(&db, "analytics_ref.s");
    // The CSV becomes a FIFO: the binary reads it twice (types, then rows), and
    // the second reading blocks mid-file until the test writes more.
    let fifo = dir.path().join("seeds/s.csv");
    std::fs::remove_file(&fifo).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut rows = String::from("id,v\n");
    for i in 1..=1000 {
        rows.push_str(&format!("{i},9\n"));
    }
    let child = db
        .cmd()
        .args(["seed", "--project-dir", pd(&dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // First reading: the whole file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(rows.as_bytes())
        .unwrap();
    // The COPY starts before the second reading opens the file (and once the
    // first reading is done): then half of the rows, and the COPY waits for more.
    wait_until("the COPY runs", || {
        db.value(
            "select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database() and state = 'active' and query ilike 'copy %'",
        ) != Some("0".into())
    });
    let mut second = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    second
        .write_all(&rows.as_bytes()[..rows.len() / 2])
        .unwrap();
    second.flush().unwrap();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    drop(second);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nterrupted"), "{}", stderr(&out));
    assert_eq!(oid(&db, "analytics_ref.s"), before);
    assert_eq!(
        db.lines("select distinct v::text from analytics_ref.s"),
        vec!["1"]
    );
    assert!(leftovers(&db).is_empty());
    wait_until("no query of the binary is running", || {
        db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database()")
            == Some("0".into())
    });
}
