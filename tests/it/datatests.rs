//! Data tests, source freshness and `build`, through the binary on real
//! PostgreSQL: each generic test passing and failing, severity, `where`,
//! error_if/warn_if, custom generic and singular tests, --store-failures, build
//! skipping descendants of a model whose error test fails, freshness
//! pass/warn/error on controlled `_sdc_batched_at`, and the exit codes.

use crate::common::*;
use serde_json::Value;

const PROJECT_YML: &str = "name: shop\nmodels:\n  shop:\n    +materialized: table\n";

/// Raw tables: customers, orders (one with an unknown customer), a status column.
fn raw(db: &TestDb) {
    db.exec(
        "create schema raw_shop;
         create table raw_shop.customers (id int, name text, tier text);
         create table raw_shop.orders (id int, customer_id int, status text, amount numeric,
                                        _sdc_batched_at timestamp);
         insert into raw_shop.customers values (1, 'ada', 'gold'), (2, 'bob', 'silver'), (3, null, 'tin');
         insert into raw_shop.orders values
           (10, 1, 'paid', 5, now() at time zone 'utc'), (11, 2, 'paid', 7, now() at time zone 'utc'),
           (11, 9, 'refunded', 1, now() at time zone 'utc');",
    );
}

fn sources_yml(extra_table_tests: &str) -> String {
    format!(
        "version: 2\nsources:\n  - name: raw\n    schema: raw_shop\n    tables:\n      - name: customers\n        columns:\n          - name: id\n            data_tests: [unique, not_null]\n      - name: orders\n{extra_table_tests}"
    )
}

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

fn results(dir: &tempfile::TempDir) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["results"].as_array().unwrap().clone()
}

/// (name-ish suffix of unique_id, status, failures) of every result, sorted.
fn summary(dir: &tempfile::TempDir) -> Vec<String> {
    let mut out: Vec<String> = results(dir)
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap();
            let parts: Vec<&str> = id.split('.').collect();
            let name = if id.starts_with("test.") {
                parts[2]
            } else {
                parts[parts.len() - 1]
            };
            format!("{name}|{}|{}", r["status"].as_str().unwrap(), r["failures"])
        })
        .collect();
    out.sort();
    out
}

/// [`summary`] without the source tests every project here carries.
fn model_tests(dir: &tempfile::TempDir) -> Vec<String> {
    summary(dir)
        .into_iter()
        .filter(|s| !s.starts_with("source_"))
        .collect()
}

fn models_project(schema_yml: &str) -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", PROJECT_YML),
        ("models/sources.yml", &sources_yml("")),
        (
            "models/customers.sql",
            "select id, name, tier from {{ source('raw', 'customers') }}\n",
        ),
        (
            "models/orders.sql",
            "select id, customer_id, status, amount from {{ source('raw', 'orders') }}\n",
        ),
        (
            "models/customer_revenue.sql",
            "select customer_id, sum(amount) as revenue from {{ ref('orders') }} group by 1\n",
        ),
        ("models/schema.yml", schema_yml),
    ])
}

#[test]
fn generic_tests_pass_and_fail_with_counts() {
    let db = TestDb::new("generic");
    raw(&db);
    let dir = models_project(
        "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n      - name: name\n        data_tests: [not_null]\n      - name: tier\n        data_tests:\n          - accepted_values:\n              values: [gold, silver]\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [unique]\n      - name: customer_id\n        data_tests:\n          - relationships:\n              to: ref('customers')\n              field: id\n      - name: status\n        data_tests:\n          - accepted_values:\n              values: ['paid', 'refunded']\n",
    );
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert_eq!(
        summary(&dir),
        vec![
            "accepted_values_customers_tier__gold__silver|fail|1",
            "accepted_values_orders_status__paid__refunded|pass|0",
            "not_null_customers_id|pass|0",
            "not_null_customers_name|fail|1",
            "relationships_orders_customer_id__id__ref_customers_|fail|1",
            "source_not_null_raw_customers_id|pass|0",
            "source_unique_raw_customers_id|pass|0",
            "unique_customers_id|pass|0",
            "unique_orders_id|fail|1",
        ]
    );
    let err = stderr(&out);
    assert!(
        err.contains("Failure in test unique_orders_id (models/schema.yml)"),
        "{err}"
    );
    assert!(
        err.contains("Got 1 result, configured to fail if != 0"),
        "{err}"
    );
    assert!(
        err.contains("Done. PASS=5 WARN=0 ERROR=4 SKIP=0 TOTAL=9"),
        "{err}"
    );
    // The compiled test SQL is on disk, under its YAML file as dbt lays it out.
    assert!(dir
        .path()
        .join("target/compiled/shop/models/schema.yml/unique_orders_id.sql")
        .is_file());

    // Fix the data: everything passes, exit 0.
    db.exec("delete from raw_shop.orders where customer_id = 9; update raw_shop.customers set name = 'cy', tier = 'gold' where id = 3;");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(
        summary(&dir).iter().all(|s| s.contains("|pass|0")),
        "{:?}",
        summary(&dir)
    );
}

/// Sequential and index scans of `raw_keyed.items` so far, once the statistics
/// of the sessions that ended have arrived.
fn scans_of_items(db: &TestDb) -> i64 {
    db.exec("select pg_stat_clear_snapshot()");
    db.value(
        "select (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text
         from pg_stat_user_tables where relid = 'raw_keyed.items'::regclass",
    )
    .unwrap()
    .parse()
    .unwrap()
}

#[test]
fn unique_and_not_null_guaranteed_by_constraints_are_answered_without_reading_the_table() {
    let db = TestDb::new("guaranteed");
    db.exec(
        "create schema raw_keyed;
         create table raw_keyed.items (id int primary key, code text not null, note text,
                                       \"Label\" text unique);
         create unique index on raw_keyed.items (note) where note <> '';
         insert into raw_keyed.items values (1, 'a', '', 'p'), (2, 'b', '', 'q'), (3, 'c', null, null);",
    );
    let tests = |extra: &str| {
        format!(
            "version: 2\nsources:\n  - name: raw\n    schema: raw_keyed\n    tables:\n      - name: items\n        columns:\n          - name: id\n            data_tests: [unique, not_null]\n          - name: code\n            data_tests:\n              - not_null\n              - not_null:\n                  name: code_warns_anyway\n                  config: {{severity: warn, warn_if: '>= 0'}}\n          - name: '\"Label\"'\n            data_tests: [unique]\n{extra}"
        )
    };
    let dir = project(&[
        ("dbt_project.yml", PROJECT_YML),
        ("models/sources.yml", &tests("")),
    ]);
    let before = scans_of_items(&db);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    // The conditions are still the test's own: `warn_if: >= 0` warns on 0 rows.
    assert_eq!(
        summary(&dir),
        vec![
            "code_warns_anyway|warn|0",
            "source_not_null_raw_items_code|pass|0",
            "source_not_null_raw_items_id|pass|0",
            "source_unique_raw_items__Label_|pass|0",
            "source_unique_raw_items_id|pass|0",
        ]
    );
    // The console says what answered each of them.
    let err = stderr(&out);
    for (test, by) in [
        ("source_unique_raw_items_id", "items_pkey"),
        ("source_unique_raw_items__Label_", "items_Label_key"),
        ("source_not_null_raw_items_id", "NOT NULL"),
        ("source_not_null_raw_items_code", "NOT NULL"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("PASS test {test} "))
                    && l.contains(&format!("[PASS, guaranteed by {by} in "))),
            "{test}: {err}"
        );
    }
    assert!(err.contains("[WARN 0, guaranteed by NOT NULL in "), "{err}");
    wait_until("the statistics of the test's sessions", || {
        // Nothing read the table: every answer came from the catalog.
        scans_of_items(&db) == before
    });

    // Tests the constraints do not guarantee read the table and find what is there.
    std::fs::write(
        dir.path().join("models/sources.yml"),
        tests("          - name: note\n            data_tests: [unique, not_null]\n"),
    )
    .unwrap();
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(summary(&dir).contains(&"source_unique_raw_items_note|fail|1".to_string()));
    assert!(summary(&dir).contains(&"source_not_null_raw_items_note|fail|1".to_string()));
    wait_until("the table to be read", || scans_of_items(&db) > before);

    // A project that defines its own `unique` test is run as written, never
    // answered for it.
    write(
        dir.path(),
        "macros/unique.sql",
        "{% test unique(model, column_name) %}select {{ column_name }} from {{ model }}{% endtest %}\n",
    );
    let out = db.cli(&["test", "--project-dir", pd(&dir), "-s", "test_name:unique"]);
    assert_code(&out, 1);
    assert!(
        summary(&dir).contains(&"source_unique_raw_items_id|fail|3".to_string()),
        "{:?}",
        summary(&dir)
    );
}

/// A unique index in byte order (`collate "C"`, as the shipped marts' keys) answers
/// `unique` for a column whose collation is deterministic (equal means byte-equal),
/// not for one whose collation is not: there `a` and `A` are one value to the test.
#[test]
fn a_unique_index_in_another_collation_answers_only_for_a_deterministic_column() {
    let db = TestDb::new("guaranteed_collation");
    db.exec(
        "create schema raw_keyed;
         create collation raw_keyed.nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         create table raw_keyed.items (code text, label text collate raw_keyed.nocase);
         create unique index items_code_bytes on raw_keyed.items (code collate \"C\");
         create unique index items_label_bytes on raw_keyed.items (label collate \"C\");
         insert into raw_keyed.items values ('a', 'x'), ('b', 'X');",
    );
    let dir = project(&[
        ("dbt_project.yml", PROJECT_YML),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: raw_keyed\n    tables:\n      - name: items\n        columns:\n          - name: code\n            data_tests: [unique]\n          - name: label\n            data_tests: [unique]\n",
        ),
    ]);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert_eq!(
        summary(&dir),
        vec![
            "source_unique_raw_items_code|pass|0",
            "source_unique_raw_items_label|fail|1",
        ]
    );
    let err = stderr(&out);
    assert!(
        err.contains("[PASS, guaranteed by items_code_bytes in "),
        "{err}"
    );
}

/// Sequential scans of the model table `customers` so far, once the statistics
/// of the sessions that ended have arrived.
fn scans_of_customers(db: &TestDb) -> i64 {
    db.exec("select pg_stat_clear_snapshot()");
    db.value(
        "select coalesce(sum(seq_scan), 0)::text from pg_stat_user_tables
         where relname = 'customers' and schemaname <> 'raw_shop'",
    )
    .unwrap()
    .parse()
    .unwrap()
}

#[test]
fn not_null_and_accepted_values_on_one_model_share_one_scan() {
    let db = TestDb::new("shared_scan");
    raw(&db);
    // Six tests of dbt's not_null and accepted_values on `customers`, passing,
    // failing and warning; the one with `where` and the one that stores its
    // failures read the table on their own.
    let dir = models_project(
        "version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: id\n        data_tests: [not_null]\n      - name: name\n        data_tests:\n          - not_null\n          - not_null:\n              name: name_warns\n              config: {severity: warn}\n          - not_null:\n              name: name_of_gold\n              config: {where: \"tier = 'gold'\"}\n      - name: tier\n        data_tests:\n          - accepted_values:\n              values: [gold, silver]\n          - accepted_values:\n              name: tier_known\n              values: [gold, silver, tin]\n          - accepted_values:\n              name: tier_stored\n              values: [gold]\n              config: {store_failures: true}\n          - not_null:\n              name: tier_warns_over_two\n              config: {warn_if: '>= 0', error_if: '> 2'}\n",
    );
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let before = scans_of_customers(&db);
    let out = db.cli(&["test", "--project-dir", pd(&dir), "-s", "customers"]);
    assert_code(&out, 1);
    // Each test reported on its own, with its own count and conditions.
    assert_eq!(
        model_tests(&dir),
        vec![
            "accepted_values_customers_tier__gold__silver|fail|1",
            "name_of_gold|pass|0",
            "name_warns|warn|1",
            "not_null_customers_id|pass|0",
            "not_null_customers_name|fail|1",
            "tier_known|pass|0",
            "tier_stored|fail|2",
            "tier_warns_over_two|warn|0",
        ]
    );
    let err = stderr(&out);
    assert!(
        err.contains("Done. PASS=3 WARN=2 ERROR=3 SKIP=0 TOTAL=8"),
        "{err}"
    );
    assert_eq!(
        db.value("select count(*)::text from analytics_dbt_test__audit.tier_stored"),
        Some("2".into())
    );
    // One scan for the six shared tests, one each for `where` and the stored
    // one, and one for the failing accepted_values, which counts its failing
    // values on its own, as dbt counts them.
    wait_until("the statistics of the tests' sessions", || {
        scans_of_customers(&db) >= before + 4
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(scans_of_customers(&db), before + 4);

    // Everything passing: the six shared tests read the table once.
    db.exec("update raw_shop.customers set name = 'cy', tier = 'gold' where id = 3");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let before = scans_of_customers(&db);
    let out = db.cli(&["test", "--project-dir", pd(&dir), "-s", "customers"]);
    assert_code(&out, 1);
    assert!(model_tests(&dir)
        .contains(&"accepted_values_customers_tier__gold__silver|pass|0".to_string()));
    wait_until("the statistics of the tests' sessions", || {
        scans_of_customers(&db) >= before + 3
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(scans_of_customers(&db), before + 3);
}

#[test]
fn severity_where_and_thresholds() {
    let db = TestDb::new("severity");
    raw(&db);
    let dir = models_project(
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests:\n          - unique:\n              config:\n                severity: warn\n          - unique:\n              name: unique_paid_order_id\n              config:\n                where: \"status = 'paid'\"\n      - name: customer_id\n        data_tests:\n          - relationships:\n              name: orders_have_customers_under_threshold\n              to: ref('customers')\n              field: id\n              config:\n                error_if: \">1\"\n                warn_if: \">0\"\n  - name: customers\n    columns:\n      - name: name\n        data_tests:\n          - not_null:\n              config:\n                error_if: \">= 1\"\n",
    );
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 1); // not_null with error_if >= 1 fails
    assert_eq!(
        model_tests(&dir),
        vec![
            "not_null_customers_name|fail|1",
            "orders_have_customers_under_threshold|warn|1",
            "unique_orders_id|warn|1",
            "unique_paid_order_id|pass|0",
        ]
    );
    // Only warnings left: exit 0.
    db.exec("update raw_shop.customers set name = 'cy' where id = 3");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("WARN=2"), "{}", stderr(&out));
}

#[test]
fn custom_generic_and_singular_tests() {
    let db = TestDb::new("custom");
    raw(&db);
    let dir = models_project(
        "version: 2\nmodels:\n  - name: orders\n    data_tests:\n      - positive_sum:\n          column: amount\n    columns:\n      - name: amount\n        data_tests: [is_positive]\n",
    );
    write(dir.path(), "macros/is_positive.sql", "{% test is_positive(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n");
    write(dir.path(), "tests/generic/positive_sum.sql", "{% test positive_sum(model, column) %}\nselect 1 from {{ model }} having sum({{ column }}) <= 0\n{% endtest %}\n");
    write(dir.path(), "tests/no_refunds.sql", "-- singular: refunded orders are failures\nselect * from {{ ref('orders') }} where status = 'refunded'\n");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert_eq!(
        model_tests(&dir),
        vec![
            "is_positive_orders_amount|pass|0",
            "no_refunds|fail|1",
            "positive_sum_orders_amount|pass|0"
        ]
    );
    // --select picks one model's tests only; test_type:singular only the singular one.
    let out = db.cli(&["test", "--project-dir", pd(&dir), "-s", "test_type:generic"]);
    assert_code(&out, 0);
    assert_eq!(model_tests(&dir).len(), 2);
    let out = db.cli(&[
        "ls",
        "--project-dir",
        pd(&dir),
        "--resource-type",
        "test",
        "--output",
        "name",
        "-s",
        "orders",
    ]);
    assert_eq!(
        stdout(&out),
        "is_positive_orders_amount\nno_refunds\npositive_sum_orders_amount\n"
    );
}

#[test]
fn store_failures_keeps_failing_rows() {
    let db = TestDb::new("store");
    raw(&db);
    let dir = models_project("version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [unique]\n");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir), "--store-failures"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("analytics_dbt_test__audit.unique_orders_id"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.lines("select unique_field, n_records from analytics_dbt_test__audit.unique_orders_id"),
        vec!["11|2"]
    );
    // dbt's not_null keeps whole rows when failures are stored.
    let dir_nn = models_project("version: 2\nmodels:\n  - name: customers\n    columns:\n      - name: name\n        data_tests: [not_null]\n");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir_nn)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir_nn), "--store-failures"]);
    assert_code(&out, 1);
    assert_eq!(
        db.lines("select id, name, tier from analytics_dbt_test__audit.not_null_customers_name"),
        vec!["3|∅|tin"]
    );
    // Replaced on the next run: once fixed, the table is empty.
    db.exec("delete from raw_shop.orders where customer_id = 9");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    assert_code(
        &db.cli(&["test", "--project-dir", pd(&dir), "--store-failures"]),
        0,
    );
    assert_eq!(
        db.value("select count(*)::text from analytics_dbt_test__audit.unique_orders_id"),
        Some("0".into())
    );
}

#[test]
fn source_tests_selected_by_source() {
    let db = TestDb::new("srcsel");
    raw(&db);
    let dir = project(&[
        ("dbt_project.yml", PROJECT_YML),
        (
            "models/sources.yml",
            &sources_yml(
                "        columns:\n          - name: id\n            data_tests: [unique]\n",
            ),
        ),
        (
            "models/orders.sql",
            "select * from {{ source('raw', 'orders') }}\n",
        ),
    ]);
    let out = db.cli(&["test", "--project-dir", pd(&dir), "-s", "source:raw.orders"]);
    assert_code(&out, 1);
    assert_eq!(summary(&dir), vec!["source_unique_raw_orders_id|fail|1"]);
    let out = db.cli(&["test", "--project-dir", pd(&dir), "-s", "source:raw"]);
    assert_eq!(summary(&dir).len(), 3);
    assert_code(&out, 1);
}

#[test]
fn build_runs_tests_after_their_model_and_skips_descendants_on_failure() {
    let db = TestDb::new("build");
    raw(&db);
    let dir = models_project(
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [unique]\n  - name: customers\n    columns:\n      - name: tier\n        data_tests:\n          - accepted_values:\n              values: [gold, silver]\n              config:\n                severity: warn\n",
    );
    write(dir.path(), "models/customer_report.sql", "select c.name, r.revenue from {{ ref('customers') }} c join {{ ref('customer_revenue') }} r on r.customer_id = c.id\n");
    let out = db.cli(&["build", "--project-dir", pd(&dir), "--threads", "1"]);
    assert_code(&out, 1);
    assert_eq!(
        summary(&dir),
        vec![
            "accepted_values_customers_tier__gold__silver|warn|1",
            "customer_report|skipped|null",
            "customer_revenue|skipped|null",
            "customers|success|null",
            "orders|success|null",
            "source_not_null_raw_customers_id|pass|0",
            "source_unique_raw_customers_id|pass|0",
            "unique_orders_id|fail|1",
        ]
    );
    // The test ran right after its model, before anything downstream.
    let order: Vec<String> = results(&dir)
        .iter()
        .map(|r| r["unique_id"].as_str().unwrap().to_string())
        .collect();
    let pos = |needle: &str| order.iter().position(|id| id.contains(needle)).unwrap();
    assert!(pos("model.shop.orders") < pos("unique_orders_id"));
    assert_eq!(
        db.value("select (to_regclass('analytics.customer_revenue') is null)::text"),
        Some("true".into()),
        "a skipped model is not built"
    );
    crate::assert_console_snapshot!("build_test_failure", stderr(&out));

    // A warning never stops anything: fix the error, keep the warning.
    db.exec("delete from raw_shop.orders where customer_id = 9");
    let out = db.cli(&["build", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select name, revenue from analytics.customer_report order by 1"),
        vec!["ada|5", "bob|7"]
    );
}

#[test]
fn a_failing_test_of_two_models_skips_only_what_depends_on_both() {
    // dbt's test edges: a relationships test on orders → customers holds back the
    // models downstream of both, not every child of orders.
    let db = TestDb::new("build_edges");
    raw(&db);
    let dir = models_project(
        "version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: customer_id\n        data_tests:\n          - relationships:\n              to: ref('customers')\n              field: id\n",
    );
    write(dir.path(), "models/customer_report.sql", "select c.name, r.revenue from {{ ref('customers') }} c join {{ ref('customer_revenue') }} r on r.customer_id = c.id\n");
    let out = db.cli(&["build", "--project-dir", pd(&dir), "--threads", "1"]);
    assert_code(&out, 1);
    assert_eq!(
        model_tests(&dir),
        vec![
            "customer_report|skipped|null",
            "customer_revenue|success|null",
            "customers|success|null",
            "orders|success|null",
            "relationships_orders_customer_id__id__ref_customers_|fail|1",
        ]
    );
}

#[test]
fn an_undefined_macro_fails_its_model_at_run_time() {
    let db = TestDb::new("undefined_macro");
    raw(&db);
    let dir = models_project("version: 2\n");
    write(
        dir.path(),
        "models/bad.sql",
        "select {{ no_such_macro('x') }} as x\n",
    );
    write(
        dir.path(),
        "models/after_bad.sql",
        "select * from {{ ref('bad') }}\n",
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert_eq!(
        model_tests(&dir),
        vec![
            "after_bad|skipped|null",
            "bad|error|null",
            "customer_revenue|success|null",
            "customers|success|null",
            "orders|success|null",
        ]
    );
    assert!(
        stderr(&out).contains("Compilation Error"),
        "{}",
        stderr(&out)
    );
    // A Jinja syntax error is still found before anything runs (exit 2).
    write(dir.path(), "models/bad.sql", "select {% if %} 1\n");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 2);
}

#[test]
fn test_that_cannot_compile_names_yaml_file_and_test() {
    let db = TestDb::new("badtest");
    raw(&db);
    // Unknown test name: a compile error (exit 2) naming the YAML file.
    let dir = models_project("version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: id\n        data_tests: [uniqe]\n");
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("models/schema.yml: unknown data test 'uniqe' on orders.id"),
        "{}",
        stderr(&out)
    );
    // Unknown column: the test errors at run time, naming the YAML file and the test.
    let dir = models_project("version: 2\nmodels:\n  - name: orders\n    columns:\n      - name: no_such_col\n        data_tests: [not_null]\n");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let out = db.cli(&["test", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert_eq!(
        model_tests(&dir),
        vec!["not_null_orders_no_such_col|error|null"]
    );
    assert!(stderr(&out).contains("models/schema.yml: test not_null_orders_no_such_col: column \"no_such_col\" does not exist"), "{}", stderr(&out));
}

#[test]
fn an_unsupported_config_set_inside_a_test_macro_is_an_error() {
    let db = TestDb::new("macrocfg");
    raw(&db);
    // config() inside the test's macro configures the test, so a key that is not
    // supported is refused there too, naming the macro's file (exit 2); the same
    // in a singular test's own config().
    let cases = [
        (
            "version: 2\nmodels:\n  - name: orders\n    data_tests: [stored_as_view]\n",
            "macros/stored.sql",
            "{% test stored_as_view(model) %}\n{{ config(store_failures_as='view') }}\nselect * from {{ model }}\n{% endtest %}\n",
        ),
        (
            "version: 2\n",
            "tests/stored.sql",
            "{{ config(store_failures_as='table') }}\nselect 1 as x where false\n",
        ),
    ];
    for (yaml, file, sql) in cases {
        let dir = models_project(yaml);
        write(dir.path(), file, sql);
        let out = db.cli(&["test", "--project-dir", pd(&dir)]);
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains(file) && err.contains("store_failures_as is not supported yet"),
            "{err}"
        );
    }
}

fn freshness_project(loaded_at: &str) -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", PROJECT_YML),
        (
            "models/sources.yml",
            &format!(
                "version: 2\nsources:\n  - name: raw\n    schema: raw_fresh\n    loaded_at_field: {loaded_at}\n    freshness:\n      warn_after: {{count: 26, period: hour}}\n      error_after: {{count: 50, period: hour}}\n    tables:\n      - name: fresh\n      - name: stale_warn\n      - name: stale_error\n      - name: empty\n      - name: broken\n        loaded_at_field: no_such_column\n      - name: unchecked\n        freshness: null\n"
            ),
        ),
        ("models/from_fresh.sql", "select * from {{ source('raw', 'fresh') }}\n"),
        ("models/from_stale.sql", "select * from {{ source('raw', 'stale_error') }}\n"),
    ])
}

/// Raw tables whose newest `_sdc_batched_at` (UTC wall-clock) is 1 h, 30 h and
/// 60 h old; the database's default TimeZone is not UTC.
fn freshness_data(db: &TestDb, ty: &str) {
    let now_utc = if ty == "timestamptz" {
        "now()"
    } else {
        "(now() at time zone 'UTC')"
    };
    let mut sql = String::from("create schema raw_fresh;");
    for (t, hours) in [
        ("fresh", 1),
        ("stale_warn", 30),
        ("stale_error", 60),
        ("unchecked", 500),
    ] {
        sql.push_str(&format!(
            "create table raw_fresh.{t} (id int, _sdc_batched_at {ty});
             insert into raw_fresh.{t} values (1, {now_utc} - interval '{hours} hours' - interval '3 days'), (2, {now_utc} - interval '{hours} hours');"
        ));
    }
    sql.push_str(&format!("create table raw_fresh.empty (id int, _sdc_batched_at {ty}); create table raw_fresh.broken (id int);"));
    db.exec(&sql);
}

fn sources_json(dir: &tempfile::TempDir) -> Vec<String> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/sources.json")).unwrap(),
    )
    .unwrap();
    let mut out: Vec<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let age = r["max_loaded_at_time_ago_in_s"]
                .as_f64()
                .map(|a| format!("{:.0}h", a / 3600.0))
                .unwrap_or("-".into());
            format!(
                "{}|{}|{age}",
                r["unique_id"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn source_freshness_pass_warn_error_for_timestamp_and_timestamptz() {
    for ty in ["timestamp", "timestamptz"] {
        let db = TestDb::new(&format!("fresh_{ty}"));
        freshness_data(&db, ty);
        let dir = freshness_project("_sdc_batched_at");
        let out = db.cli(&["source", "freshness", "--project-dir", pd(&dir)]);
        assert_code(&out, 1);
        assert_eq!(
            sources_json(&dir),
            vec![
                "source.shop.raw.broken|runtime error|-",
                "source.shop.raw.empty|error|-",
                "source.shop.raw.fresh|pass|1h",
                "source.shop.raw.stale_error|error|60h",
                "source.shop.raw.stale_warn|warn|30h",
            ],
            "{ty}"
        );
        let err = stderr(&out);
        assert!(
            err.contains("ERROR STALE freshness of raw.stale_error"),
            "{err}"
        );
        assert!(err.contains("PASS freshness of raw.fresh"), "{err}");
        // Only warnings selected: exit 0.
        let out = db.cli(&[
            "source",
            "freshness",
            "--project-dir",
            pd(&dir),
            "-s",
            "source:raw.fresh",
            "source:raw.stale_warn",
        ]);
        assert_code(&out, 0);
        assert_eq!(
            sources_json(&dir),
            vec![
                "source.shop.raw.fresh|pass|1h",
                "source.shop.raw.stale_warn|warn|30h"
            ]
        );
    }
}

#[test]
fn build_with_check_freshness_stops_on_stale_sources() {
    let db = TestDb::new("fresh_build");
    freshness_data(&db, "timestamp");
    let dir = freshness_project("_sdc_batched_at");
    let out = db.cli(&["build", "--project-dir", pd(&dir), "--check-freshness"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("nothing was built"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select count(*)::text from pg_class where relname like 'from_%'"),
        Some("0".into())
    );
    // Selecting only the model on the fresh source builds it; the setting works too.
    let out = db
        .cmd()
        .args(["build", "--project-dir", pd(&dir), "-s", "from_fresh"])
        .env("RELUVIA_TRANSFORM_CHECK_FRESHNESS", "true")
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select count(*) from analytics.from_fresh"),
        vec!["2"]
    );
    // Without the check, build ignores freshness.
    assert_code(&db.cli(&["build", "--project-dir", pd(&dir)]), 0);
}
