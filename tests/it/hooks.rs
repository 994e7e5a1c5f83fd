//! Hooks on real PostgreSQL: model hooks inside and around the safe swap (a
//! failing one leaves the previous table, its OID and nothing behind), and
//! `on-run-start`/`on-run-end` on the console and in `run_results.json`.
//!
//! The differential test (`tests/dbt`, fixtures `hooks` and `run_hooks`) checks
//! the same against dbt-core itself; these tests pin what the binary does on its
//! own.

use crate::common::*;

fn hooked_project() -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\non-run-start: \"create table if not exists public.log (what text)\"\non-run-end:\n  - \"insert into public.log select 'end ' || count(*) from public.log\"\nmodels:\n  shop:\n    +materialized: table\n    +pre-hook: \"insert into public.log values ('pre {{ this.identifier }}')\"\n",
        ),
        (
            "models/orders.sql",
            "{{ config(post_hook=\"insert into public.log select 'rows ' || count(*) from {{ this }}\") }}\nselect 1 as id union all select 2",
        ),
    ])
}

#[test]
fn model_and_run_hooks_on_the_console_and_in_run_results() {
    let db = TestDb::new("hooks_ok");
    let dir = hooked_project();
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    crate::assert_console_snapshot!("run_hooks_console", stderr(&out));
    assert_eq!(
        db.lines("select what from public.log order by what"),
        ["end 2", "pre orders", "rows 2"]
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let ids: Vec<(&str, &str)> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["unique_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("operation.shop.shop-on-run-start-0", "success"),
            ("model.shop.orders", "success"),
            ("operation.shop.shop-on-run-end-0", "success"),
        ]
    );
}

#[test]
fn a_failing_hook_leaves_the_previous_table_and_nothing_behind() {
    let db = TestDb::new("hooks_fail");
    let dir = hooked_project();
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    let oid = db.value("select 'analytics.orders'::regclass::oid::text");
    write(
        dir.path(),
        "models/orders.sql",
        "{{ config(post_hook=\"select 1/0\") }}\nselect 3 as id",
    );
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("division by zero"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select 'analytics.orders'::regclass::oid::text"),
        oid
    );
    assert_eq!(
        db.lines("select id::text from analytics.orders order by id"),
        ["1", "2"]
    );
    // The in-transaction pre-hook of the failed build was rolled back too.
    assert_eq!(
        db.value("select count(*)::text from public.log where what = 'pre orders'")
            .as_deref(),
        Some("1")
    );
    assert!(db
        .lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
        .is_empty());
}

#[test]
fn run_hooks_are_operation_nodes_of_the_manifest() {
    let db = TestDb::new("hooks_manifest");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\non-run-start:\n  - \"select 1\"\n  - \"select 2\"\non-run-end: \"{{ audit() }}\"\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        ("macros/audit.sql", "{% macro audit() %}select 3{% endmacro %}"),
        ("models/orders.sql", "select 1 as id"),
    ]);
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["parse", "--project-dir", pd]), 0);
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap(),
    )
    .unwrap();
    // As dbt-core 1.10 writes them (tests/dbt/NOTES.md, "Run hooks in manifest.json").
    let start = &m["nodes"]["operation.shop.shop-on-run-start-1"];
    let expected = serde_json::json!({
        "resource_type": "operation", "name": "shop-on-run-start-1",
        "alias": "shop-on-run-start-1", "package_name": "shop",
        "path": "hooks/shop-on-run-start-1.sql", "original_file_path": "./dbt_project.yml",
        "fqn": ["shop", "hooks", "shop-on-run-start-1"], "tags": ["on-run-start"],
        "index": 1, "raw_code": "select 2", "schema": "analytics",
        "unrendered_config": {"materialized": "table"},
        "depends_on": {"macros": [], "nodes": []}, "relation_name": null,
    });
    for (k, v) in expected.as_object().unwrap() {
        assert_eq!(&start[k], v, "{k}");
    }
    assert_eq!(start["config"]["materialized"], "table");
    assert_eq!(start["checksum"]["name"], "sha256");
    let end = &m["nodes"]["operation.shop.shop-on-run-end-0"];
    assert_eq!(end["tags"], serde_json::json!(["on-run-end"]));
    assert_eq!(
        end["depends_on"]["macros"],
        serde_json::json!(["macro.shop.audit"])
    );
    assert_eq!(
        end["checksum"], start["checksum"],
        "the checksum is dbt_project.yml's"
    );
    assert_eq!(
        m["parent_map"]["operation.shop.shop-on-run-end-0"],
        serde_json::json!([])
    );
    assert!(m["nodes"]["operation.shop.shop-on-run-start-0"].is_object());
}
