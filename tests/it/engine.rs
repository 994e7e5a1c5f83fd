//! The engine through the binary, on real PostgreSQL: settings precedence and
//! validation, selection, cycles and template errors, execution (failures, skips,
//! swaps, leftovers, OIDs), session settings, artifacts, exit codes.

use crate::common::*;
use serde_json::Value;

/// A 4-model project: two independent staging views over a raw table, a mart
/// table on both, and a second mart on the first.
fn basic_project() -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: shop\nversion: '1.0'\nmodels:\n  shop:\n    +materialized: view\n    marts:\n      +materialized: table\n      +tags: [daily]\n",
        ),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: raw_shop\n    tables:\n      - name: orders\n      - name: customers\n",
        ),
        ("models/staging/stg_orders.sql", "select id, customer_id, amount from {{ source('raw', 'orders') }}\n"),
        ("models/staging/stg_customers.sql", "select id, name from {{ source('raw', 'customers') }}\n"),
        (
            "models/marts/revenue.sql",
            "select c.name, sum(o.amount) as revenue\nfrom {{ ref('stg_orders') }} o\njoin {{ ref('stg_customers') }} c on c.id = o.customer_id\ngroup by c.name\n",
        ),
        ("models/marts/top_customer.sql", "{{ config(tags=['exec']) }}\nselect name from {{ ref('revenue') }} order by revenue desc limit 1\n"),
    ])
}

fn raw_data(db: &TestDb) {
    db.exec(
        "create schema raw_shop;
         create table raw_shop.orders (id int primary key, customer_id int, amount numeric);
         create table raw_shop.customers (id int primary key, name text);
         insert into raw_shop.customers values (1, 'ada'), (2, 'bob');
         insert into raw_shop.orders values (1, 1, 10), (2, 1, 5), (3, 2, 7);",
    );
}

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

fn read_json(path: std::path::PathBuf) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Leftover relations of a swap (temporary or backup names).
fn leftovers(db: &TestDb) -> Vec<String> {
    db.lines("select relname from pg_class where relname like '%\\_\\_rt\\_%' order by 1")
}

#[test]
fn run_builds_everything_in_order_and_writes_artifacts() {
    let db = TestDb::new("run_all");
    raw_data(&db);
    let dir = basic_project();
    // One thread, so the console lines come in a fixed order for the snapshot.
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--threads", "1"]);
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select name, revenue from analytics.revenue order by name"),
        vec!["ada|15", "bob|7"]
    );
    assert_eq!(
        db.lines("select name from analytics.top_customer"),
        vec!["ada"]
    );
    assert_eq!(
        db.lines("select table_name, table_type from information_schema.tables where table_schema = 'analytics' order by 1"),
        vec!["revenue|BASE TABLE", "stg_customers|VIEW", "stg_orders|VIEW", "top_customer|BASE TABLE"]
    );
    assert!(leftovers(&db).is_empty());
    assert!(stdout(&out).is_empty(), "run prints nothing on stdout");
    crate::assert_console_snapshot!("run_success_output", stderr(&out));

    let target = dir.path().join("target");
    let rr = read_json(target.join("run_results.json"));
    let results = rr["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let revenue = results
        .iter()
        .find(|r| r["unique_id"] == "model.shop.revenue")
        .unwrap();
    assert_eq!(revenue["status"], "success");
    assert_eq!(revenue["adapter_response"]["rows_affected"], 2);
    assert_eq!(revenue["adapter_response"]["_message"], "SELECT 2");
    // dbt-postgres's relation names: "database"."schema"."identifier".
    let db_q = format!("\"{}\"", db.name);
    assert!(revenue["compiled_code"]
        .as_str()
        .unwrap()
        .contains(&format!("from {db_q}.\"analytics\".\"stg_orders\" o")));
    assert!(rr["metadata"]["invocation_id"].as_str().unwrap().len() == 36);

    let m = read_json(target.join("manifest.json"));
    let node = &m["nodes"]["model.shop.revenue"];
    assert_eq!(
        node["depends_on"]["nodes"],
        serde_json::json!(["model.shop.stg_orders", "model.shop.stg_customers"])
    );
    assert_eq!(node["fqn"], serde_json::json!(["shop", "marts", "revenue"]));
    assert_eq!(node["config"]["materialized"], "table");
    assert_eq!(
        node["relation_name"],
        format!("{db_q}.\"analytics\".\"revenue\"")
    );
    assert_eq!(
        m["nodes"]["model.shop.top_customer"]["tags"],
        serde_json::json!(["daily", "exec"])
    );
    assert_eq!(
        m["sources"]["source.shop.raw.orders"]["relation_name"],
        format!("{db_q}.\"raw_shop\".\"orders\"")
    );
    assert_eq!(
        m["child_map"]["model.shop.revenue"],
        serde_json::json!(["model.shop.top_customer"])
    );
    let compiled =
        std::fs::read_to_string(target.join("compiled/shop/models/marts/top_customer.sql"))
            .unwrap();
    assert_eq!(
        compiled,
        format!(
            "select name from {db_q}.\"analytics\".\"revenue\" order by revenue desc limit 1\n"
        )
    );
    // Artifacts are written atomically: no temporary files remain.
    let stray: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty());
}

#[test]
fn failing_model_skips_children_and_siblings_still_run() {
    let db = TestDb::new("fail_skip");
    raw_data(&db);
    let dir = basic_project();
    // First a good run, to have an old table whose OID must survive.
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let oid_before = db.value("select 'analytics.revenue'::regclass::oid::text");
    let rows_before = db.lines("select name, revenue from analytics.revenue order by name");

    write(dir.path(), "models/marts/revenue.sql", "select name, sum(amount) as revenue\nfrom {{ ref('stg_orders') }}\njoin no_such_table on true\ngroup by 1\n");
    write(
        dir.path(),
        "models/marts/independent.sql",
        "select 1 as one\n",
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--threads", "1"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("relation \"no_such_table\" does not exist (compiled SQL line 3)"),
        "{err}"
    );
    assert!(
        err.contains("Failure in model revenue (models/marts/revenue.sql)"),
        "{err}"
    );
    crate::assert_console_snapshot!("run_failure_output", err);

    // The old table is untouched: same OID, same rows; nothing left behind.
    assert_eq!(
        db.value("select 'analytics.revenue'::regclass::oid::text"),
        oid_before
    );
    assert_eq!(
        db.lines("select name, revenue from analytics.revenue order by name"),
        rows_before
    );
    assert!(leftovers(&db).is_empty(), "{:?}", leftovers(&db));
    assert_eq!(db.lines("select one from analytics.independent"), vec!["1"]);

    let rr = read_json(dir.path().join("target/run_results.json"));
    let status = |id: &str| {
        rr["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["unique_id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("model.shop.revenue"), "error");
    assert_eq!(status("model.shop.top_customer"), "skipped");
    assert_eq!(status("model.shop.independent"), "success");
    assert_eq!(status("model.shop.stg_orders"), "success");
}

#[test]
fn rebuild_swaps_in_a_new_table_and_leaves_nothing_behind() {
    let db = TestDb::new("swap");
    raw_data(&db);
    let dir = basic_project();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let oid1 = db.value("select 'analytics.revenue'::regclass::oid::text");
    db.exec("insert into raw_shop.orders values (4, 2, 100)");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let oid2 = db.value("select 'analytics.revenue'::regclass::oid::text");
    assert_ne!(oid1, oid2, "a rebuild creates a new table");
    assert_eq!(
        db.lines("select name, revenue from analytics.revenue order by name"),
        vec!["ada|15", "bob|107"]
    );
    assert!(leftovers(&db).is_empty());
    // Switching materialization replaces a table by a view.
    write(dir.path(), "models/marts/top_customer.sql", "{{ config(materialized='view') }}\nselect name from {{ ref('revenue') }} order by revenue desc limit 1\n");
    assert_code(
        &db.cli(&["run", "--project-dir", pd(&dir), "-s", "top_customer"]),
        0,
    );
    assert_eq!(
        db.value("select relkind::text from pg_class where relname = 'top_customer'"),
        Some("v".into())
    );
    assert_eq!(
        db.lines("select name from analytics.top_customer"),
        vec!["bob"]
    );
}

#[test]
fn new_tables_have_statistics_before_they_are_read() {
    // Without ANALYZE a new table has reltuples = -1 ("never analyzed") and the
    // planner assumes a default size for the models built on it.
    let db = TestDb::new("analyze");
    raw_data(&db);
    let dir = basic_project();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    for table in ["revenue", "top_customer"] {
        assert_eq!(
            db.value(&format!(
                "select reltuples::bigint::text || ' ' || (s.last_analyze is not null)::text
                 from pg_class c join pg_stat_user_tables s on s.relid = c.oid
                 where c.oid = 'analytics.{table}'::regclass"
            )),
            Some(
                if table == "revenue" {
                    "2 true"
                } else {
                    "1 true"
                }
                .into()
            ),
            "{table}"
        );
    }
    // A view has nothing to analyze.
    assert_eq!(
        db.value("select relkind::text from pg_class where oid = 'analytics.stg_orders'::regclass"),
        Some("v".into())
    );
}

#[test]
fn a_failed_first_build_leaves_no_table() {
    let db = TestDb::new("first_fail");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/bad.sql",
            "{{ config(materialized='table') }}\nselect 1/0 as x\n",
        ),
    ]);
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("division by zero"));
    assert_eq!(
        db.value("select count(*)::text from pg_class where relname like 'bad%'"),
        Some("0".into())
    );
}

#[test]
fn sessions_are_utc_with_configured_timeout_and_application_name() {
    let db = TestDb::new("session");
    assert_eq!(
        db.value("show timezone"),
        Some("America/New_York".into()),
        "test db default is not UTC"
    );
    let dir = project(&[
        ("dbt_project.yml", "name: p\nmodels:\n  p:\n    +materialized: table\n"),
        (
            "models/s.sql",
            "select current_setting('TimeZone') as tz, current_setting('statement_timeout') as st,\n current_setting('application_name') as app,\n (timestamp '2026-01-01 00:30:00' at time zone current_setting('TimeZone'))::date::text as d\n",
        ),
    ]);
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_STATEMENT_TIMEOUT", "7")
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select tz, st, app, d from analytics.s"),
        vec!["UTC|7s|reluvia-transform|2026-01-01"]
    );
}

#[test]
fn statement_timeout_fails_a_slow_model() {
    let db = TestDb::new("timeout");
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/slow.sql",
            "{{ config(materialized='table') }}\nselect 1 as s from pg_sleep(5)\n",
        ),
    ]);
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_STATEMENT_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("canceling statement due to statement timeout"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn pool_reuses_at_most_threads_connections() {
    let db = TestDb::new("pool");
    let mut files = vec![(
        "dbt_project.yml".to_string(),
        "name: p\nmodels:\n  p:\n    +materialized: table\n".to_string(),
    )];
    for i in 0..8 {
        files.push((
            format!("models/m{i}.sql"),
            "select pg_backend_pid() as pid from pg_sleep(0.05)\n".to_string(),
        ));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = project(&refs);
    assert_code(
        &db.cli(&["run", "--project-dir", pd(&dir), "--threads", "2"]),
        0,
    );
    let union = (0..8)
        .map(|i| format!("select pid from analytics.m{i}"))
        .collect::<Vec<_>>()
        .join(" union ");
    let pids = db.value(&format!(
        "select count(distinct pid)::text from ({union}) u"
    ));
    // One connection checks the server and is reused; at most `threads` in all.
    assert!(
        matches!(pids.as_deref(), Some("1") | Some("2")),
        "distinct backends: {pids:?}"
    );
}

#[test]
fn selection_methods() {
    let db = TestDb::new("select");
    let dir = basic_project();
    let ls = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ls", "--project-dir", pd(&dir), "--output", "name"];
        a.extend_from_slice(args);
        let out = db.cli(&a);
        assert_code(&out, 0);
        stdout(&out).lines().map(str::to_string).collect()
    };
    assert_eq!(
        ls(&["--resource-type", "model"]),
        vec!["revenue", "stg_customers", "stg_orders", "top_customer"]
    );
    assert_eq!(ls(&["-s", "revenue"]), vec!["revenue"]);
    assert_eq!(
        ls(&["-s", "+revenue", "--resource-type", "model"]),
        vec!["revenue", "stg_customers", "stg_orders"]
    );
    assert_eq!(
        ls(&["-s", "stg_orders+"]),
        vec!["revenue", "stg_orders", "top_customer"]
    );
    assert_eq!(ls(&["-s", "stg_orders+1"]), vec!["revenue", "stg_orders"]);
    assert_eq!(ls(&["-s", "tag:exec"]), vec!["top_customer"]);
    assert_eq!(ls(&["-s", "tag:daily"]), vec!["revenue", "top_customer"]);
    assert_eq!(
        ls(&["-s", "path:models/staging"]),
        vec!["stg_customers", "stg_orders"]
    );
    assert_eq!(
        ls(&["-s", "tag:daily", "--exclude", "top_customer"]),
        vec!["revenue"]
    );
    assert_eq!(
        ls(&["-s", "tag:daily,+top_customer"]),
        vec!["revenue", "top_customer"]
    );
    assert_eq!(
        ls(&["-s", "source:raw.orders+", "--resource-type", "model"]),
        vec!["revenue", "stg_orders", "top_customer"]
    );
    assert_eq!(
        ls(&["-s", "stg_orders", "stg_customers"]),
        vec!["stg_customers", "stg_orders"]
    );
    let out = db.cli(&["ls", "--project-dir", pd(&dir), "-s", "revenue"]);
    assert_eq!(stdout(&out), "shop.marts.revenue\n");
    let out = db.cli(&[
        "ls",
        "--project-dir",
        pd(&dir),
        "-s",
        "revenue",
        "--output",
        "json",
    ]);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["unique_id"], "model.shop.revenue");
    assert_eq!(
        v["depends_on"]["nodes"],
        serde_json::json!(["model.shop.stg_orders", "model.shop.stg_customers"])
    );
    let out = db.cli(&["ls", "--project-dir", pd(&dir), "-s", "bogus:x"]);
    assert_code(&out, 2);

    // run honours selection: only the selected model is built.
    raw_data(&db);
    assert_code(
        &db.cli(&["run", "--project-dir", pd(&dir), "-s", "stg_orders"]),
        0,
    );
    assert_eq!(
        db.lines(
            "select table_name from information_schema.tables where table_schema = 'analytics'"
        ),
        vec!["stg_orders"]
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir), "-s", "nothing_matches"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("Nothing to do"));
}

#[test]
fn cycle_is_named_in_full() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select * from {{ ref('c') }}\n"),
        ("models/b.sql", "select * from {{ ref('a') }}\n"),
        ("models/c.sql", "select * from {{ ref('b') }}\n"),
    ]);
    let out = clean_command()
        .args(["compile", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .output()
        .unwrap();
    assert_code(&out, 2);
    crate::assert_console_snapshot!("cycle_error", stderr(&out));
}

fn compile_error(files: &[(&str, &str)]) -> String {
    let dir = project(files);
    let out = clean_command()
        .args(["compile", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err.replace(pd(&dir), "PROJECT")
}

#[test]
fn template_errors_name_file_and_line() {
    crate::assert_console_snapshot!(
        "unknown_ref",
        compile_error(&[
            ("dbt_project.yml", "name: p\n"),
            ("models/a.sql", "select 1\n-- two\nfrom {{ ref('nope') }}\n")
        ])
    );
    crate::assert_console_snapshot!(
        "unknown_source",
        compile_error(&[
            ("dbt_project.yml", "name: p\n"),
            ("models/a.sql", "select * from {{ source('raw', 'x') }}\n")
        ])
    );
    crate::assert_console_snapshot!(
        "syntax_error",
        compile_error(&[
            ("dbt_project.yml", "name: p\n"),
            ("models/a.sql", "select 1\n{% if true %}\nselect 2\n")
        ])
    );
    crate::assert_console_snapshot!(
        "missing_var",
        compile_error(&[
            ("dbt_project.yml", "name: p\n"),
            ("models/a.sql", "select {{ var('start') }}\n")
        ])
    );
    crate::assert_console_snapshot!(
        "bad_yaml",
        compile_error(&[("dbt_project.yml", "name: p\nmodels: [\n")])
    );
    crate::assert_console_snapshot!(
        "macro_error",
        compile_error(&[("dbt_project.yml", "name: p\n"), ("macros/m.sql", "{% macro boom() %}\n{{ exceptions.raise_compiler_error('boom happened') }}\n{% endmacro %}\n"), ("models/a.sql", "select {{ boom() }}\n")])
    );
}

#[test]
fn templates_support_dbt_context() {
    let db = TestDb::new("ctx");
    let dir = project(&[
        ("dbt_project.yml", "name: p\nvars:\n  factor: 2\nmodels:\n  p:\n    +materialized: table\n    marts:\n      +schema: marts\n"),
        ("macros/money.sql", "{% macro cents_to_dollars(col, scale=100) %}({{ col }} / {{ scale }}.0){% endmacro %}\n{% macro double(x) %}{{ return(x * 2) }}{% endmacro %}\n"),
        (
            "models/base.sql",
            "{% set ids = [1, 2, 3] %}\n{% for i in ids %}select {{ i }} as id, {{ cents_to_dollars(i * 100) }} as usd, {{ var('factor') }} as f, {{ double(21) }} as d, '{{ env_var('RT_TEST_ENV', 'dflt') }}' as e, '{{ this.identifier }}' as me{% if not loop.last %} union all\n{% endif %}{% endfor %}\n",
        ),
        ("models/marts/rollup.sql", "select sum(id * f) as total, '{{ target.schema }}' as ts, '{{ this.schema }}' as mine from {{ ref('base') }}\n"),
    ]);
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir), "--vars", "factor: 3"])
        .env("RT_TEST_ENV", "set")
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select id, round(usd, 2), f, d, e, me from analytics.base order by id"),
        vec![
            "1|1.00|3|42|set|base",
            "2|2.00|3|42|set|base",
            "3|3.00|3|42|set|base"
        ]
    );
    // dbt's default naming: +schema under target schema analytics → analytics_marts.
    assert_eq!(
        db.lines("select total, ts, mine from analytics_marts.rollup"),
        vec!["18|analytics|analytics_marts"]
    );

    // A project's own generate_schema_name override uses the custom schema as is.
    write(
        dir.path(),
        "macros/naming.sql",
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n{%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n{%- endmacro %}\n",
    );
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    assert_eq!(
        db.lines("select total, mine from marts.rollup"),
        vec!["12|marts"]
    );
}

#[test]
fn disabled_models_are_not_built() {
    let db = TestDb::new("disabled");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    old:\n      +enabled: false\n",
        ),
        ("models/old/legacy.sql", "select 1 as x\n"),
        ("models/keep.sql", "select 1 as x\n"),
    ]);
    let out = db.cli(&["ls", "--project-dir", pd(&dir)]);
    assert_eq!(stdout(&out), "p.keep\n");
    write(
        dir.path(),
        "models/keep.sql",
        "select * from {{ ref('legacy') }}\n",
    );
    let out = db.cli(&["compile", "--project-dir", pd(&dir)]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("disabled"), "{}", stderr(&out));
}

#[test]
fn settings_precedence() {
    let db = TestDb::new("prec");
    let cfg_dir = tempfile::tempdir().unwrap();
    let c1 = cfg_dir.path().join("a.json");
    let c2 = cfg_dir.path().join("b.json");
    std::fs::write(
        &c1,
        r#"{"threads": 2, "schema": "from_a", "application_name": "from_a", "connect_timeout": 5}"#,
    )
    .unwrap();
    std::fs::write(
        &c2,
        r#"{"threads": 3, "schema": "from_b", "host": "nowhere.invalid"}"#,
    )
    .unwrap();
    let debug = |extra_env: &[(&str, &str)], args: &[&str]| -> String {
        let mut c = db.cmd();
        c.args([
            "debug",
            "--project-dir",
            "/nonexistent",
            "--config",
            c1.to_str().unwrap(),
            "--config",
            c2.to_str().unwrap(),
        ]);
        c.args(args);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        stdout(&c.output().unwrap())
    };
    let line = |text: &str, name: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Files: later wins; PG_ANALYTICS_HOST beats the file's host.
    let t = debug(&[], &[]);
    assert_eq!(
        line(&t, "threads"),
        format!("3 config file {}", c2.display())
    );
    assert_eq!(
        line(&t, "application_name"),
        format!("from_a config file {}", c1.display())
    );
    assert_eq!(
        line(&t, "connect_timeout"),
        format!("5 config file {}", c1.display())
    );
    assert_eq!(line(&t, "host"), "127.0.0.1 env PG_ANALYTICS_HOST");
    assert_eq!(line(&t, "statement_timeout"), "0 default");
    // RELUVIA_TRANSFORM_* beats PG_ANALYTICS_* and files; flags beat everything.
    let t = debug(
        &[
            ("RELUVIA_TRANSFORM_THREADS", "5"),
            ("RELUVIA_TRANSFORM_HOST", "127.0.0.1"),
            ("PG_ANALYTICS_HOST", "bad.invalid"),
        ],
        &[],
    );
    assert_eq!(line(&t, "threads"), "5 env RELUVIA_TRANSFORM_THREADS");
    assert_eq!(line(&t, "host"), "127.0.0.1 env RELUVIA_TRANSFORM_HOST");
    let t = debug(&[("RELUVIA_TRANSFORM_THREADS", "5")], &["--threads", "6"]);
    assert_eq!(line(&t, "threads"), "6 flag --threads");
    // `--config ENV` reads nothing but the environment.
    let out = db
        .cmd()
        .args(["debug", "--config", "ENV"])
        .output()
        .unwrap();
    assert_eq!(line(&stdout(&out), "threads"), "4 default");
    assert!(stdout(&out).contains("Connection: OK"), "{}", stdout(&out));
}

#[test]
fn settings_errors_are_reported_together() {
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        cfg.path(),
        r#"{"threads": 0, "colour": "blue", "log_format": "xml"}"#,
    )
    .unwrap();
    let out = clean_command()
        .args(["run", "--config", cfg.path().to_str().unwrap()])
        .env("RELUVIA_TRANSFORM_PORT", "abc")
        .env("PG_ANALYTICS_DBNAME", "x")
        .env("PG_ANALYTICS_PASSWORD", "hunter2-secret")
        .output()
        .unwrap();
    assert_code(&out, 2);
    let err = stderr(&out).replace(cfg.path().to_str().unwrap(), "CONFIG");
    assert!(!err.contains("hunter2"), "password leaked: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    crate::assert_console_snapshot!("settings_errors", err);

    let out = clean_command()
        .args(["run", "--vars", "[1, 2]"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    let out = clean_command()
        .args(["run", "--config", "/no/such.json"])
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(stderr(&out).contains("/no/such.json"));
    let out = clean_command()
        .args(["run", "--no-such-flag"])
        .output()
        .unwrap();
    assert_code(&out, 2);
}

#[test]
fn password_is_masked_and_never_written() {
    let db = TestDb::new("secret");
    db.exec("do $$ begin if not exists (select from pg_roles where rolname = 'pw_alice') then create role pw_alice login password 'S3cret-pass'; end if; end $$; grant pw_users to pw_alice;");
    db.exec(&format!(
        "grant all on database \"{}\" to pw_alice; grant create on schema public to pw_alice;",
        db.name
    ));
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let run = |pw: &str, cmd: &str| {
        db.cmd()
            .args([cmd, "--project-dir", pd(&dir)])
            .env("PG_ANALYTICS_USER", "pw_alice")
            .env("PG_ANALYTICS_PASSWORD", pw)
            .output()
            .unwrap()
    };

    let out = run("S3cret-pass", "debug");
    assert_code(&out, 0);
    let password_line = stdout(&out)
        .lines()
        .find(|l| l.trim_start().starts_with("password "))
        .map(str::to_string);
    assert_eq!(
        password_line
            .as_deref()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>()),
        Some(vec!["password", "********"]),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("S3cret"));

    let out = run("S3cret-pass", "run");
    assert_code(&out, 0);
    for entry in walk(&dir.path().join("target")) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains("S3cret"), "password in {}", entry.display());
    }

    let out = run("wrong-pass", "run");
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(!err.contains("wrong-pass"));
    assert!(
        err.contains("authentication failed for user 'pw_alice'"),
        "{err}"
    );
    assert_eq!(err.lines().filter(|l| l.contains("error:")).count(), 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn unreachable_database_exits_1_with_one_line() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = clean_command()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_HOST", "127.0.0.1")
        .env("PG_ANALYTICS_PORT", port.to_string())
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .env("RELUVIA_TRANSFORM_CONNECT_RETRY_TIMEOUT", "0") // retries: tests/connect.rs
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    let last = err
        .lines()
        .last()
        .unwrap()
        .replace(&port.to_string(), "PORT");
    crate::assert_console_snapshot!("unreachable", last);

    let db = TestDb::new("nodb");
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_DBNAME", "no_such_db")
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(stderr(&out).contains("database 'no_such_db' does not exist"));
}

#[test]
fn json_log_format_is_one_object_per_line() {
    let db = TestDb::new("jsonlog");
    raw_data(&db);
    let dir = basic_project();
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--log-format", "json"]);
    assert_code(&out, 0);
    let events: Vec<Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let ends: Vec<&Value> = events.iter().filter(|e| e["event"] == "node_end").collect();
    assert_eq!(ends.len(), 4);
    assert!(ends.iter().all(|e| e["status"] == "success"));
    let rev = ends
        .iter()
        .find(|e| e["unique_id"] == "model.shop.revenue")
        .unwrap();
    assert_eq!(rev["rows_affected"], 2);
    assert_eq!(events.last().unwrap()["event"], "summary");
    assert_eq!(events.last().unwrap()["pass"], 4);
}

#[test]
fn compile_writes_sql_without_a_database() {
    let dir = basic_project();
    // An unreachable server: compile never connects.
    let out = clean_command()
        .args(["compile", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_HOST", "127.0.0.1")
        .env("PG_ANALYTICS_PORT", "1")
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .output()
        .unwrap();
    assert_code(&out, 0);
    let sql = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/shop/models/staging/stg_orders.sql"),
    )
    .unwrap();
    assert_eq!(
        sql,
        "select id, customer_id, amount from \"d\".\"raw_shop\".\"orders\"\n"
    );
    // --target-path redirects artifacts.
    let t = tempfile::tempdir().unwrap();
    let out = clean_command()
        .args([
            "compile",
            "--project-dir",
            pd(&dir),
            "--target-path",
            t.path().to_str().unwrap(),
        ])
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(t.path().join("manifest.json").is_file());
    assert!(t
        .path()
        .join("compiled/shop/models/marts/revenue.sql")
        .is_file());
}

#[test]
fn version_and_help() {
    let out = clean_command().arg("--version").output().unwrap();
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("reluvia-transform {}\n", env!("CARGO_PKG_VERSION"))
    );
    // No subcommand outside Meltano: help, exit 2.
    let out = clean_command().output().unwrap();
    assert_code(&out, 2);
    assert!(stdout(&out).contains("Usage: reluvia-transform"));
}

#[test]
fn sigterm_rolls_back_the_model_in_flight() {
    let db = TestDb::new("sigterm");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        ("models/slow.sql", "select 1 as v\n"),
    ]);
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let oid = db.value("select 'analytics.slow'::regclass::oid::text");
    write(
        dir.path(),
        "models/slow.sql",
        "select 2 as v from pg_sleep(60)\n",
    );
    let child = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build statement is running on the server.
    let mut seen = false;
    for _ in 0..200 {
        if db.value("select count(*)::text from pg_stat_activity where query like 'create table%pg_sleep(60)%' and state = 'active'") == Some("1".into()) {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "the slow build never started");
    send_signal(child.id(), 15);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nterrupted"), "{}", stderr(&out));
    assert_eq!(
        db.value("select 'analytics.slow'::regclass::oid::text"),
        oid
    );
    assert_eq!(db.lines("select v from analytics.slow"), vec!["1"]);
    assert!(leftovers(&db).is_empty());
    // The query was cancelled on the server, not left running.
    assert_eq!(db.value("select count(*)::text from pg_stat_activity where query like 'create table%pg_sleep(60)%' and state = 'active'"), Some("0".into()));
}

fn send_signal(pid: u32, sig: i32) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn about_lists_every_setting_as_json_schema() {
    let out = clean_command()
        .args(["--about", "--format", "json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["name"], "reluvia-transform");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let props = v["settings"]["properties"].as_object().unwrap();
    for name in [
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "schema",
        "threads",
        "statement_timeout",
        "project_dir",
    ] {
        assert!(
            props[name]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name} is documented"
        );
    }
    assert_eq!(props["schema"]["default"], "analytics");
    assert_eq!(props["threads"]["default"], 4);
    let md = clean_command()
        .args(["--about", "--format", "markdown"])
        .output()
        .unwrap();
    assert!(
        stdout(&md)
            .contains("| password | no |  | RELUVIA_TRANSFORM_PASSWORD, PG_ANALYTICS_PASSWORD, DBT_POSTGRES_PASSWORD, PGPASSWORD |"),
        "{}",
        stdout(&md)
    );
}

#[test]
fn docs_blocks_render_into_descriptions() {
    let dir = project(&[
        ("dbt_project.yml", "name: p\nvars:\n  owner: finance\n"),
        (
            "models/docs/orders.md",
            "{% docs orders %}\nOne row per **order**.\n{% enddocs %}\n\n{% docs order_id %}The order's id.{% enddocs %}\n",
        ),
        ("models/orders.sql", "select 1 as id\n"),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: orders\n    description: \"{{ doc('orders') }} Owned by {{ var('owner') }}.\"\n    columns:\n      - name: id\n        description: \"{{ doc('order_id') }}\"\nsources:\n  - name: raw\n    description: plain text\n    tables:\n      - name: t\n        description: \"{{ doc('order_id') }}\"\n",
        ),
    ]);
    let out = clean_command()
        .args(["compile", "--project-dir", pd(&dir)])
        .env("PG_ANALYTICS_USER", "u")
        .env("PG_ANALYTICS_DBNAME", "d")
        .output()
        .unwrap();
    assert_code(&out, 0);
    let m = read_json(dir.path().join("target/manifest.json"));
    let orders = &m["nodes"]["model.p.orders"];
    assert_eq!(
        orders["description"],
        "\nOne row per **order**.\n Owned by finance."
    );
    assert_eq!(orders["columns"]["id"]["description"], "The order's id.");
    assert_eq!(
        m["sources"]["source.p.raw.t"]["description"],
        "The order's id."
    );
    assert_eq!(
        m["sources"]["source.p.raw.t"]["source_description"],
        "plain text"
    );
}
