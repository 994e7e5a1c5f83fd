//! SIGTERM at each phase of a run: while the project loads, right after
//! connecting, during the freshness check of `build --check-freshness`, during
//! `source freshness`, during a model and while a swap waits for a lock. Each
//! time the binary exits 1 (never the default 143), says it was interrupted,
//! leaves the marts as they were (same OID, same rows), no relation and no
//! temporary file behind, and no query of its own running on the server.
//!
//! The tests synchronise on state the binary cannot pass while the test holds
//! it — a FIFO it reads, a lock, an uncommitted schema — observed in
//! `/proc` or `pg_stat_activity`, never on sleeps.

use std::process::{Child, Command, Stdio};

use crate::common::*;

/// A mart `m` over `raw.src`, built once with `v = 1`.
fn built_project(db: &TestDb) -> (tempfile::TempDir, String) {
    db.exec(
        "create schema raw;
         create table raw.src (id int, v int, loaded_at timestamptz default now());
         insert into raw.src (id, v) values (1, 1), (2, 1);",
    );
    let dir = project(&[
        ("dbt_project.yml", "name: p\nmodels:\n  p:\n    +materialized: table\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    loaded_at_field: loaded_at\n    freshness:\n      error_after: {count: 1, period: day}\n    tables:\n      - name: src\n",
        ),
        ("models/m.sql", "select id, v from {{ source('raw', 'src') }}\n"),
    ]);
    let out = db.cli(&["run", "--project-dir", dir.path().to_str().unwrap()]);
    assert_code(&out, 0);
    let oid = db
        .value("select 'analytics.m'::regclass::oid::text")
        .unwrap();
    db.exec("update raw.src set v = 2");
    (dir, oid)
}

/// What every interrupted run must leave: exit 1 with the word, the mart as it
/// was, nothing behind, nothing of ours still running.
fn assert_stopped_cleanly(
    db: &TestDb,
    out: &std::process::Output,
    oid: &str,
    dir: &std::path::Path,
) {
    assert_code(out, 1);
    let err = stderr(out);
    assert!(err.contains("nterrupted"), "{err}");
    assert_eq!(
        db.value("select 'analytics.m'::regclass::oid::text")
            .as_deref(),
        Some(oid),
        "the mart was replaced"
    );
    assert_eq!(db.lines("select distinct v from analytics.m"), vec!["1"]);
    assert!(
        db.lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
            .is_empty(),
        "a temporary relation was left"
    );
    let tmp: Vec<_> = walk(&dir.join("target"))
        .into_iter()
        .filter(|p| p.ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    // Cancelled on the server, not left running (the statistics view follows
    // the backend's state with a small lag).
    wait_until("no query of the binary is running", || {
        db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and state = 'active' and datname = current_database()")
            == Some("0".into())
    });
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// The binary's session waits for a lock (pg_stat_activity).
fn waiting_on_lock(db: &TestDb) -> bool {
    db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and wait_event_type = 'Lock' and datname = current_database()")
        != Some("0".into())
}

fn spawn(db: &TestDb, args: &[&str]) -> Child {
    db.cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn sigterm_while_loading_the_project() {
    let db = TestDb::new("cancel_load");
    let (dir, oid) = built_project(&db);
    // A model file that is a FIFO: reading it blocks until the test writes.
    let fifo = dir.path().join("models/zz_pending.sql");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let child = spawn(&db, &["run", "--project-dir", dir.path().to_str().unwrap()]);
    // A writer can open the FIFO without blocking only once a reader has it open.
    let mut writer = None;
    wait_until("the binary reads the FIFO", || {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open(&fifo)
        {
            Ok(f) => {
                writer = Some(f);
                true
            }
            Err(_) => false,
        }
    });
    sigterm(&child);
    {
        use std::io::Write;
        let mut w = writer.unwrap();
        let _ = w.write_all(b"select 1 as id\n");
    } // closing the writer ends the binary's read
    let out = child.wait_with_output().unwrap();
    assert_stopped_cleanly(&db, &out, &oid, dir.path());
}

#[test]
fn sigterm_right_after_connecting() {
    let db = TestDb::new("cancel_connect");
    let (dir, oid) = built_project(&db);
    let schema_dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n    +schema: fresh\n",
        ),
        ("models/m2.sql", "select 1 as id\n"),
    ]);
    // The binary's first statement creates the target schema; an uncommitted
    // CREATE SCHEMA of the same name makes it wait on the test's transaction.
    let mut holder = db.client();
    holder
        .batch_execute("begin; create schema analytics_fresh;")
        .unwrap();
    let child = spawn(
        &db,
        &["run", "--project-dir", schema_dir.path().to_str().unwrap()],
    );
    wait_until("the binary waits to create its schema", || {
        waiting_on_lock(&db)
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    // Checked while the lock is still held: a query that was not cancelled on
    // the server would still be waiting for it.
    assert_stopped_cleanly(&db, &out, &oid, dir.path());
    holder.batch_execute("rollback").unwrap();
    assert!(
        stderr(&out).contains("interrupted while creating the target schemas"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select count(*)::text from pg_namespace where nspname = 'analytics_fresh'"),
        Some("0".into())
    );
}

#[test]
fn sigterm_during_the_freshness_check_of_build() {
    let db = TestDb::new("cancel_fresh");
    let (dir, oid) = built_project(&db);
    let mut holder = db.client();
    holder
        .batch_execute("begin; lock table raw.src in access exclusive mode;")
        .unwrap();
    let child = spawn(
        &db,
        &[
            "build",
            "--check-freshness",
            "--project-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    wait_until("the freshness query waits", || waiting_on_lock(&db));
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    // Checked while the lock is still held: a query that was not cancelled on
    // the server would still be waiting for it.
    assert_stopped_cleanly(&db, &out, &oid, dir.path());
    holder.batch_execute("rollback").unwrap();
    assert!(
        stderr(&out).contains("interrupted while checking source freshness"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigterm_during_source_freshness() {
    let db = TestDb::new("cancel_srcfresh");
    let (dir, oid) = built_project(&db);
    let mut holder = db.client();
    holder
        .batch_execute("begin; lock table raw.src in access exclusive mode;")
        .unwrap();
    let child = spawn(
        &db,
        &[
            "source",
            "freshness",
            "--project-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    wait_until("the freshness query waits", || waiting_on_lock(&db));
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    // Checked while the lock is still held: a query that was not cancelled on
    // the server would still be waiting for it.
    assert_stopped_cleanly(&db, &out, &oid, dir.path());
    holder.batch_execute("rollback").unwrap();
}

#[test]
fn sigterm_during_a_model() {
    let db = TestDb::new("cancel_model");
    let (dir, oid) = built_project(&db);
    // Readers of raw.src wait behind the test's lock: the model's build blocks.
    let mut holder = db.client();
    holder
        .batch_execute("begin; lock table raw.src in access exclusive mode;")
        .unwrap();
    let child = spawn(&db, &["run", "--project-dir", dir.path().to_str().unwrap()]);
    wait_until("the model's build waits", || waiting_on_lock(&db));
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    // Checked while the lock is still held: a query that was not cancelled on
    // the server would still be waiting for it.
    assert_stopped_cleanly(&db, &out, &oid, dir.path());
    holder.batch_execute("rollback").unwrap();
    let err = stderr(&out);
    assert!(err.contains("[CANCELLED in "), "{err}");
    assert!(
        err.contains("Interrupted: cancelled; analytics.m was left as it was"),
        "{err}"
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["results"][0]["status"], "error");
    assert!(results["results"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Interrupted: "));
}

#[test]
fn sigterm_while_a_swap_waits_for_its_lock() {
    let db = TestDb::new("cancel_swap");
    let (dir, oid) = built_project(&db);
    // A dashboard reading the mart in an open transaction: the swap cannot
    // take its lock and keeps trying (polite phase) for lock_timeout.
    let mut dashboard = db.client();
    dashboard
        .batch_execute("begin; select count(*) from analytics.m;")
        .unwrap();
    let child = db
        .cmd()
        .args(["run", "--project-dir", dir.path().to_str().unwrap()])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each failed polite try rolls back to the savepoint taken after the build.
    wait_until("the swap retries for its lock", || {
        db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and query like '%rt_built%' and datname = current_database()")
            != Some("0".into())
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_stopped_cleanly(&db, &out, &oid, dir.path());
    dashboard.batch_execute("commit").unwrap();
}
