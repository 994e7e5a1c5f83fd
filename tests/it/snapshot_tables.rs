//! Snapshots on real PostgreSQL: versions recorded over loads and read by a model
//! in `build` order, `run_results.json` of a snapshot, a failed or interrupted
//! application leaving the previous contents and nothing behind, and the configs
//! refused with their file and line before any connection.
//!
//! The differential test (`tests/dbt`, fixtures `snapshots` and
//! `snapshot_handover`) checks the meta columns against dbt-core itself; these
//! tests pin the safety the binary adds.

use std::process::Stdio;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// A source of three rows, a timestamp snapshot of it that invalidates deleted
/// keys, and a table model of its current rows.
fn setup(db: &TestDb) -> tempfile::TempDir {
    db.exec(
        "create schema raw; create table raw.people (id int, name text, at timestamp);
         insert into raw.people values (1, 'ann', '2024-01-01'), (2, 'ben', '2024-01-01'), (3, 'cat', '2024-01-01');",
    );
    project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: people\n",
        ),
        (
            "snapshots/people.sql",
            "{% snapshot people_history %}\n\
             {{ config(target_schema='snaps', unique_key='id', strategy='timestamp', updated_at='at', hard_deletes='invalidate') }}\n\
             select * from {{ source('raw', 'people') }}\n\
             {% endsnapshot %}\n",
        ),
        (
            "models/people_now.sql",
            "{{ config(materialized='table') }}\nselect id, name from {{ ref('people_history') }} where dbt_valid_to is null\n",
        ),
    ])
}

fn history(db: &TestDb) -> Vec<String> {
    db.lines(
        "select id || ' ' || name || ' ' || (dbt_valid_to is null) from snaps.people_history order by id, dbt_valid_from",
    )
}

#[test]
fn a_snapshot_records_versions_and_build_runs_it_before_its_readers() {
    let db = TestDb::new("snap_versions");
    let dir = setup(&db);
    let out = db.cli(&[
        "snapshot",
        "--project-dir",
        pd(&dir),
        "--log-format",
        "text",
    ]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("Found 1 model, 1 snapshot, 0 data tests"),
        "{err}"
    );
    assert!(err.contains("START snapshot snaps.people_history"), "{err}");
    assert!(err.contains("[SELECT 3 in"), "{err}");
    assert!(err.contains("Finished running 1 snapshot in"), "{err}");
    assert_eq!(history(&db), vec!["1 ann true", "2 ben true", "3 cat true"]);
    db.exec(
        "update raw.people set name = 'anna', at = '2024-01-02' where id = 1;
         delete from raw.people where id = 2;",
    );
    let out = db.cli(&["build", "--project-dir", pd(&dir), "--threads", "1"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    let snap = err.find("START snapshot snaps.people_history").unwrap();
    let model = err
        .find("START sql table model analytics.people_now")
        .unwrap();
    assert!(snap < model, "{err}");
    assert_eq!(
        history(&db),
        vec!["1 ann false", "1 anna true", "2 ben false", "3 cat true"]
    );
    assert_eq!(
        db.lines("select id || ' ' || name from analytics.people_now order by id"),
        vec!["1 anna", "3 cat"]
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let r = &results["results"][0];
    assert_eq!(r["unique_id"], "snapshot.p.people_history");
    assert_eq!(r["status"], "success");
    // The new version and the deleted key's row, both inserted by the last statement.
    assert_eq!(r["adapter_response"]["_message"], "INSERT 0 1");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap(),
    )
    .unwrap();
    let node = &manifest["nodes"]["snapshot.p.people_history"];
    assert_eq!(node["resource_type"], "snapshot");
    assert_eq!(node["schema"], "snaps");
    assert_eq!(node["config"]["strategy"], "timestamp");
    // Nothing left behind.
    assert!(db
        .lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
        .is_empty());
}

#[test]
fn a_failed_snapshot_leaves_the_table_as_it_was() {
    let db = TestDb::new("snap_failed");
    let dir = setup(&db);
    assert_code(&db.cli(&["snapshot", "--project-dir", pd(&dir)]), 0);
    // The insert of the new versions fails after their predecessors were closed.
    db.exec(
        "create function public.nope() returns trigger language plpgsql as $$ begin raise exception 'no new versions today'; end $$;
         create trigger nope before insert on snaps.people_history for each statement execute function public.nope();
         update raw.people set name = 'anna', at = '2024-01-02' where id = 1;",
    );
    let out = db.cli(&["snapshot", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("no new versions today"),
        "{}",
        stderr(&out)
    );
    assert_eq!(history(&db), vec!["1 ann true", "2 ben true", "3 cat true"]);
    assert!(db
        .lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
        .is_empty());
}

#[test]
fn sigterm_while_the_snapshot_is_applied_leaves_the_old_contents() {
    let db = TestDb::new("snap_sigterm");
    let dir = setup(&db);
    assert_code(&db.cli(&["snapshot", "--project-dir", pd(&dir)]), 0);
    db.exec(
        "create function public.slow() returns trigger language plpgsql as $$ begin perform pg_sleep(60); return null; end $$;
         create trigger slow before insert on snaps.people_history for each statement execute function public.slow();
         update raw.people set name = 'anna', at = '2024-01-02' where id = 1;",
    );
    let child = db
        .cmd()
        .args(["snapshot", "--project-dir", pd(&dir)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the snapshot's insert runs", || {
        db.value(
            "select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database() and state = 'active' and query ilike 'insert into %'",
        ) != Some("0".into())
    });
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nterrupted"), "{}", stderr(&out));
    // Ann's version closed by the update was rolled back with the rest.
    assert_eq!(history(&db), vec!["1 ann true", "2 ben true", "3 cat true"]);
    wait_until("no query of the binary is running", || {
        db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and datname = current_database()")
            == Some("0".into())
    });
}

#[test]
fn snapshot_configs_dbt_refuses_are_refused_with_their_place() {
    let db = TestDb::new("snap_refused");
    for (file, content, wanted) in [
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='id') }}\nselect 1 as id\n{% endsnapshot %}\n",
            "snapshots/s.sql: snapshot 's': Snapshots must be configured with a 'strategy' and 'unique_key'",
        ),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='id', strategy='check') }}\nselect 1 as id\n{% endsnapshot %}\n",
            "must specify a check_cols configuration",
        ),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='id', strategy='check', check_cols='all', hard_deletes='new_record', invalidate_hard_deletes=true) }}\nselect 1 as id\n{% endsnapshot %}\n",
            "You cannot set both the invalidate_hard_deletes and hard_deletes",
        ),
        (
            "snapshots/s.sql",
            "\n{% snapshot s %}\nselect 1 as id\n",
            "snapshots/s.sql line 2: snapshot 's' is not closed",
        ),
        (
            "snapshots/s.sql",
            "{% snapshot s %}\n{{ config(unique_key='id', strategy='timestamp', updated_at='at', hard_deletes='purge') }}\nselect 1 as id\n{% endsnapshot %}\n",
            "config(hard_deletes=…): expected 'ignore', 'invalidate' or 'new_record'",
        ),
        (
            "snapshots/s.yml",
            "version: 2\nsnapshots:\n  - name: s\n    relation: raw.people\n    config: {unique_key: id, strategy: check, check_cols: all}\n",
            "snapshots/s.yml line 4: snapshots.s.relation: expected ref('…') or source('…', '…')",
        ),
    ] {
        let dir = project(&[("dbt_project.yml", "name: p\n"), (file, content)]);
        let out = db.cli(&["snapshot", "--project-dir", pd(&dir)]);
        assert_code(&out, 2);
        assert!(stderr(&out).contains(wanted), "{wanted}\n{}", stderr(&out));
    }
}
