//! The landing contract (README "The landing contract"): source tables that declare
//! column types are compared with the live tables before `build`/`run` and by
//! `source check`; and the shipped project declares exactly the raw contract of
//! `schemas/raw/*.json` (the Singer schemas the loaders use).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

const SOURCES: &str = "version: 2
sources:
  - name: raw
    schema: raw
    tables:
      - name: orders
        columns:
          - name: id
            data_type: bigint
          - name: amount
            data_type: numeric
          - name: created_at
            data_type: timestamp
      - name: notes
";

fn project_with_model() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/sources.yml", SOURCES),
        (
            "models/totals.sql",
            "{{ config(materialized='table') }}\nselect sum(amount) as total from {{ source('raw', 'orders') }}\n",
        ),
    ])
}

fn db_with_orders() -> TestDb {
    let db = TestDb::new("landing");
    db.exec(
        "create schema raw;
         create table raw.orders (id bigint, amount numeric(10,2), created_at timestamp);
         insert into raw.orders values (1, 9.50, '2026-03-01 10:00');",
    );
    db
}

fn run(db: &TestDb, dir: &Path, args: &[&str]) -> std::process::Output {
    db.cmd()
        .args(args)
        .args(["--project-dir", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

/// The first `lines` lines of the differences table in `err` (its header
/// first), each without its `HH:MM:SS  ` time.
fn difference_table(err: &str, lines: usize) -> Vec<&str> {
    err.lines()
        .map(|l| l.split_once("  ").map_or(l, |(_, rest)| rest))
        .skip_while(|l| !l.starts_with("source"))
        .take(lines)
        .collect()
}

#[test]
fn matching_tables_build_and_new_columns_only_warn() {
    let db = db_with_orders();
    let p = project_with_model();
    let out = run(&db, p.path(), &["source", "check"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("1 source table checked against the declared columns; 1 source table without declared column types skipped"),
        "{}",
        stderr(&out)
    );
    db.exec("alter table raw.orders add column coupon text");
    let out = run(&db, p.path(), &["run"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("raw     orders  coupon  (not declared)  text"),
        "{err}"
    );
    assert!(
        err.contains("1 column of the source tables is not declared in the project"),
        "{err}"
    );
    assert_eq!(
        db.value("select total from analytics.totals").unwrap(),
        "9.50"
    );
}

#[test]
fn a_dropped_or_retyped_column_stops_the_run_before_anything_is_built() {
    let db = db_with_orders();
    let p = project_with_model();
    assert_code(&run(&db, p.path(), &["run"]), 0);
    db.exec(
        "insert into raw.orders values (2, 1, now());
         alter table raw.orders rename column amount to amount_cents;
         alter table raw.orders alter column created_at type text;",
    );
    for args in [&["run"][..], &["build"], &["source", "check"]] {
        let out = run(&db, p.path(), args);
        assert_code(&out, 1);
        let err = stderr(&out);
        let table = difference_table(&err, 4);
        assert_eq!(
            table,
            [
                "source  table   column        declared        found",
                "raw     orders  amount        numeric         no such column",
                "raw     orders  created_at    timestamp       text",
                "raw     orders  amount_cents  (not declared)  numeric",
            ],
            "{args:?}: {err}"
        );
        assert!(
            err.contains("error: the landed tables differ from the project's source declarations in 2 places"),
            "{err}"
        );
    }
    // The mart is untouched: the run stopped before building it.
    assert_eq!(
        db.value("select total from analytics.totals").unwrap(),
        "9.50"
    );
    // The setting turns the check into warnings; the build then fails in SQL.
    let out = db
        .cmd()
        .env("RELUVIA_TRANSFORM_SOURCE_CHECK_WARN_ONLY", "true")
        .args(["run", "--project-dir", p.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("column \"amount\" does not exist"),
        "{}",
        stderr(&out)
    );
    // A missing table.
    db.exec("drop table raw.orders");
    let out = run(&db, p.path(), &["source", "check"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("raw     orders  -       table     no such table"),
        "{}",
        stderr(&out)
    );
}

/// Several declared tables are checked together: each difference under its own
/// table, in declaration order, a type the server does not know said so, and
/// aliases of a type (`int8`, `timestamp`) match what the server resolves.
#[test]
fn several_tables_and_a_type_unknown_to_the_server() {
    let db = TestDb::new("landing_many");
    db.exec(
        "create schema raw;
         create table raw.orders (id bigint, amount numeric(10,2), created_at timestamp);
         create table raw.refunds (id bigint, reason text);
         create table raw.events (id int8, at timestamp);",
    );
    let p = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        (
            "models/sources.yml",
            "version: 2
sources:
  - name: raw
    schema: raw
    tables:
      - name: orders
        columns:
          - name: id
            data_type: int8
          - name: amount
            data_type: no_such_type
      - name: missing
        columns:
          - name: id
            data_type: bigint
      - name: refunds
        columns:
          - name: id
            data_type: bigint
          - name: reason
            data_type: integer
      - name: events
        columns:
          - name: id
            data_type: bigint
          - name: at
            data_type: timestamp without time zone
",
        ),
    ]);
    let out = run(&db, p.path(), &["source", "check"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    let table = difference_table(&err, 5);
    assert_eq!(
        table,
        [
            "source  table    column      declared        found",
            "raw     orders   amount      no_such_type    numeric (the declared type is unknown to the server)",
            "raw     orders   created_at  (not declared)  timestamp without time zone",
            "raw     missing  -           table           no such table",
            "raw     refunds  reason      integer         text",
        ],
        "{err}"
    );
}

/// The PostgreSQL type of a property of a Singer schema, as target-postgres lands it.
fn landed_type(prop: &serde_json::Value) -> &'static str {
    let types: Vec<&str> = match &prop["type"] {
        serde_json::Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
        t => vec![t.as_str().unwrap()],
    };
    let t = types.into_iter().find(|t| *t != "null").unwrap();
    match (t, prop["format"].as_str()) {
        ("string", Some("date-time")) => "timestamp",
        ("string", Some("date")) => "date",
        ("string", _) => "text",
        ("integer", _) => "bigint",
        ("number", _) => "numeric",
        ("boolean", _) => "boolean",
        ("object", _) => "jsonb",
        other => panic!("no PostgreSQL type for {other:?}"),
    }
}

#[test]
fn the_shipped_project_declares_the_raw_contract_of_the_singer_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sdc = [
        ("_sdc_extracted_at", "timestamp"),
        ("_sdc_received_at", "timestamp"),
        ("_sdc_batched_at", "timestamp"),
        ("_sdc_deleted_at", "timestamp"),
        ("_sdc_sequence", "bigint"),
        ("_sdc_table_version", "bigint"),
        ("_sdc_sync_started_at", "bigint"),
    ];
    let mut want: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("schemas/raw")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let (schema, table) = stem.split_once('.').unwrap();
        let msg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let cols = want.entry((schema.into(), table.into())).or_default();
        for (name, prop) in msg["schema"]["properties"].as_object().unwrap() {
            cols.insert(name.clone(), landed_type(prop).into());
        }
        for (name, t) in sdc {
            cols.insert(name.into(), t.into());
        }
    }
    let yaml = std::fs::read_to_string(shipped_project().join("models/sources.yml")).unwrap();
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    let mut got: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for source in doc["sources"].as_array().unwrap() {
        let schema = source["schema"].as_str().unwrap();
        for table in source["tables"].as_array().unwrap() {
            let cols = got
                .entry((schema.into(), table["name"].as_str().unwrap().into()))
                .or_default();
            for c in table["columns"].as_array().unwrap() {
                let name = c["name"].as_str().unwrap();
                let t = c["data_type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{schema}.{}.{name}: no data_type", table["name"]));
                cols.insert(name.into(), t.into());
            }
        }
    }
    assert_eq!(got, want);
}
