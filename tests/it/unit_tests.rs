//! Unit tests (`unit_tests:`) on real PostgreSQL: in `build` they run before
//! their model, a failing one shows dbt's diff of actual and expected rows and
//! skips the model and what is downstream (the previous relation stays as it
//! was); `test` runs them, `run` does not; mistakes in their YAML are one-line
//! errors with file and line.
//!
//! The differential test (`tests/dbt`, fixture `unit_tests`) checks the same
//! against dbt-core itself.

use crate::common::*;

const UNIT_TESTS: &str = "version: 2
unit_tests:
  - name: doubles_amounts
    model: doubled
    given:
      - input: ref('base')
        rows:
          - {id: 1, amount: 10}
          - {id: 2}
    expect:
      rows:
        - {id: 1, amount: EXPECTED}
        - {id: 2, amount: null}
";

fn unit_project(expected: &str) -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        ("models/base.sql", "select 1 as id, 10 as amount"),
        (
            "models/doubled.sql",
            "select id, amount * 2 as amount from {{ ref('base') }}",
        ),
        ("models/report.sql", "select * from {{ ref('doubled') }}"),
        (
            "models/unit_tests.yml",
            &UNIT_TESTS.replace("EXPECTED", expected),
        ),
    ])
}

fn statuses(dir: &std::path::Path) -> Vec<(String, String)> {
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let mut out: Vec<(String, String)> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_failing_unit_test_shows_the_diff_and_skips_its_model() {
    let db = TestDb::new("unit_fail");
    let dir = unit_project("21");
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["build", "--project-dir", pd, "--threads", "1"]);
    assert_code(&out, 1);
    crate::assert_console_snapshot!("unit_test_failure_console", stderr(&out));
    assert_eq!(
        statuses(dir.path()),
        [
            ("model.shop.base".to_string(), "success".to_string()),
            ("model.shop.doubled".to_string(), "skipped".to_string()),
            ("model.shop.report".to_string(), "skipped".to_string()),
            (
                "unit_test.shop.doubled.doubles_amounts".to_string(),
                "fail".to_string()
            ),
        ]
    );
    assert_eq!(
        db.value("select to_regclass('analytics.doubled')::text"),
        None
    );

    // Fixed, it passes and the model is built; `run` does not run it.
    write(
        dir.path(),
        "models/unit_tests.yml",
        &UNIT_TESTS.replace("EXPECTED", "20"),
    );
    let out = db.cli(&["build", "--project-dir", pd]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("PASS unit_test doubled::doubles_amounts"));
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("unit_test"));
    let oid = db.value("select 'analytics.doubled'::regclass::oid::text");

    // Failing again: the model keeps its previous relation; `test` fails too.
    write(
        dir.path(),
        "models/doubled.sql",
        "select id, amount * 3 as amount from {{ ref('base') }}",
    );
    let out = db.cli(&["build", "--project-dir", pd]);
    assert_code(&out, 1);
    assert_eq!(
        db.value("select 'analytics.doubled'::regclass::oid::text"),
        oid
    );
    assert_eq!(
        db.value("select amount::text from analytics.doubled"),
        Some("20".into())
    );
    let out = db.cli(&["test", "--project-dir", pd, "--select", "test_type:unit"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("→ ,1 ,20→30"), "{}", stderr(&out));
}

#[test]
fn unit_test_mistakes_are_one_line_errors_with_file_and_line() {
    let db = TestDb::new("unit_usage");
    let given = "        rows:\n          - {id: 1, amount: 10}\n          - {id: 2}\n";
    let cases = [
        ("model: doubled", "model: nowhere"),
        (given, "        format: xml\n        rows: []\n"),
        (
            given,
            "        format: csv\n        fixture: missing_rows\n",
        ),
    ];
    let mut messages = Vec::new();
    for (old, new) in cases {
        let dir = unit_project("20");
        let yml = UNIT_TESTS.replace("EXPECTED", "20").replacen(old, new, 1);
        write(dir.path(), "models/unit_tests.yml", &yml);
        let out = db.cli(&["parse", "--project-dir", dir.path().to_str().unwrap()]);
        assert_code(&out, 2);
        messages.push(stderr(&out).trim().to_string());
    }
    crate::assert_console_snapshot!("unit_test_usage_errors", messages.join("\n"));
}
