//! A model's `sql_header` on real PostgreSQL, beyond what the differential
//! fixture `sql_header` compares with dbt: the message of a header that fails
//! (one line naming the model and its file) with the old table kept, what a
//! header leaves in the session (a `set search_path`, a temporary function)
//! cleared before the pooled connection builds the next model, and the warning
//! for a header that is not run (a materialized view's).

use crate::common::*;

const CENTS: &str = "create or replace function pg_temp.cents(x numeric) returns bigint \
     language sql immutable as $$ select round(x * 100)::bigint $$;";

#[test]
fn a_failing_header_fails_its_model_in_one_line_and_keeps_the_table() {
    let db = TestDb::new("sql_header_bad");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        ("models/a.sql", "select 1 as id"),
    ]);
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    write(
        dir.path(),
        "models/a.sql",
        &format!(
            "{{% call set_sql_header(config) %}}\n{CENTS}\nselect pg_temp.cents(1) / 0;\n{{% endcall %}}\nselect 2 as id"
        ),
    );
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    let line = text
        .lines()
        .find(|l| l.contains("sql_header of a (models/a.sql)"))
        .unwrap_or_else(|| panic!("no line names the header: {text}"));
    assert!(
        line.contains("division by zero") && line.contains("fix the statements"),
        "{line}"
    );
    assert_eq!(
        db.value("select id::text from analytics.a").as_deref(),
        Some("1"),
        "the previous table is kept"
    );
}

#[test]
fn what_a_header_leaves_in_the_session_is_gone_for_the_next_model() {
    let db = TestDb::new("sql_header_session");
    db.exec("create schema raw; create table raw.orders (id int, amount numeric);");
    db.exec("insert into raw.orders values (1, 1.25);");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        // Session-wide, not `set local`: kept by the commit.
        (
            "models/first.sql",
            &format!(
                "{{% call set_sql_header(config) %}}\nset search_path = raw, public;\n{CENTS}\n{{% endcall %}}\n\
                 select id, pg_temp.cents(amount) as cents from orders"
            ),
        ),
        (
            "models/second.sql",
            "select current_setting('search_path') as search_path, \
             to_regprocedure('pg_temp.cents(numeric)') is null as no_function, count(*) as n \
             from {{ ref('first') }}",
        ),
    ]);
    let pd = dir.path().to_str().unwrap();
    // One connection: the second model is built on the first one's session.
    let out = db.cli(&["run", "--project-dir", pd, "--threads", "1"]);
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select id || ' ' || cents from analytics.first"),
        vec!["1 125"]
    );
    let default_path = db.value("select current_setting('search_path')").unwrap();
    assert_eq!(
        db.lines("select search_path || ' ' || no_function || ' ' || n from analytics.second"),
        vec![format!("{default_path} true 1")]
    );
}

#[test]
fn a_materialized_views_header_is_not_run_and_says_so() {
    let db = TestDb::new("sql_header_matview");
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shop\n"),
        (
            "models/mv.sql",
            "{{ config(materialized='materialized_view', sql_header=\"set local timezone = 'Asia/Tokyo';\") }}\n\
             select current_setting('TimeZone') as zone",
        ),
    ]);
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("model 'mv' (models/mv.sql): its sql_header is not run"),
        "{text}"
    );
    assert_eq!(
        db.value("select zone from analytics.mv").as_deref(),
        Some("UTC")
    );
}
