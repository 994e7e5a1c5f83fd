//! Relations beyond plain tables and views on real PostgreSQL: materialized views
//! (a failed rebuild or a refused configuration change leaves the old one, its OID
//! and nothing behind), `persist_docs` comments through the safe swap, `unlogged`
//! tables, and hooks and grants around an increment (a failing post-hook rolls the
//! increment back).
//!
//! The differential test (`tests/dbt`, fixtures `materialized_views`,
//! `persist_docs` and `incremental_extras`) checks the same against dbt-core; these
//! tests pin what the binary does on its own.

use crate::common::*;

fn matview_project() -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: materialized_view\n",
        ),
        (
            "models/totals.sql",
            "{{ config(indexes=[{'columns': ['id']}], on_configuration_change='fail') }}\nselect id, amount from public.sales",
        ),
    ])
}

#[test]
fn a_materialized_view_is_refreshed_and_a_failed_rebuild_leaves_it() {
    let db = TestDb::new("matview");
    db.exec(
        "create table public.sales (id int, amount int); insert into public.sales values (1, 10);",
    );
    let dir = matview_project();
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    let oid = db.value("select 'analytics.totals'::regclass::oid::text");
    assert_eq!(
        db.value("select relkind::text from pg_class where oid = 'analytics.totals'::regclass")
            .as_deref(),
        Some("m")
    );
    // A refresh: the same relation, the new rows.
    db.exec("insert into public.sales values (2, 20);");
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    assert_eq!(
        db.value("select 'analytics.totals'::regclass::oid::text"),
        oid
    );
    assert_eq!(
        db.value("select count(*)::text from analytics.totals")
            .as_deref(),
        Some("2")
    );

    // Changed indexes under apply: the index is replaced, the data not refreshed
    // (dbt-postgres' decision).
    write(
        dir.path(),
        "models/totals.sql",
        "{{ config(indexes=[{'columns': ['amount'], 'unique': True}]) }}\nselect id, amount from public.sales",
    );
    db.exec("insert into public.sales values (20, 200);");
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    assert_eq!(
        db.lines("select regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') from pg_indexes where schemaname = 'analytics' and tablename = 'totals'"),
        ["CREATE UNIQUE INDEX ON analytics.totals USING btree (amount)"]
    );
    assert_eq!(
        db.value("select count(*)::text from analytics.totals")
            .as_deref(),
        Some("2")
    );
    db.exec("delete from public.sales where id = 20;");

    // Changed indexes under on_configuration_change: fail.
    write(
        dir.path(),
        "models/totals.sql",
        "{{ config(indexes=[{'columns': ['amount']}], on_configuration_change='fail') }}\nselect id, amount from public.sales",
    );
    db.exec("insert into public.sales values (3, 30);");
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("`on_configuration_change` was set to `fail`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select count(*)::text from analytics.totals")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        db.lines("select regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') from pg_indexes where schemaname = 'analytics' and tablename = 'totals'"),
        ["CREATE UNIQUE INDEX ON analytics.totals USING btree (amount)"]
    );

    // A full refresh whose query fails leaves the old one and nothing behind.
    write(
        dir.path(),
        "models/totals.sql",
        "select id, amount / 0 as amount from public.sales",
    );
    let out = db.cli(&["run", "--full-refresh", "--project-dir", pd]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("division by zero"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select 'analytics.totals'::regclass::oid::text"),
        oid
    );
    assert!(db
        .lines("select relname from pg_class where relname like '%\\_\\_rt\\_%'")
        .is_empty());

    // A full refresh that works: a new relation with the new query and indexes.
    write(
        dir.path(),
        "models/totals.sql",
        "{{ config(indexes=[{'columns': ['amount']}]) }}\nselect id, amount * 2 as amount from public.sales",
    );
    assert_code(&db.cli(&["run", "--full-refresh", "--project-dir", pd]), 0);
    assert_eq!(
        db.lines("select amount::text from analytics.totals order by id"),
        ["20", "40", "60"]
    );
    assert_eq!(
        db.lines("select regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') from pg_indexes where schemaname = 'analytics' and tablename = 'totals'"),
        ["CREATE INDEX ON analytics.totals USING btree (amount)"]
    );
}

#[test]
fn an_enforced_contract_on_a_materialized_view_is_refused() {
    let db = TestDb::new("matview_contract");
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shop\n"),
        (
            "models/totals.sql",
            "{{ config(materialized='materialized_view', contract={'enforced': true}) }}\nselect 1 as id",
        ),
        (
            "models/_models.yml",
            "version: 2\nmodels:\n  - name: totals\n    columns:\n      - name: id\n        data_type: int\n",
        ),
    ]);
    let out = db.cli(&["run", "--project-dir", dir.path().to_str().unwrap()]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("models/totals.sql")
            && stderr(&out).contains("an enforced contract on a materialized view"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn persist_docs_comments_follow_the_swap_and_unlogged_tables() {
    let db = TestDb::new("persist_docs");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n    +persist_docs: {relation: true, columns: true}\n",
        ),
        (
            "models/orders.sql",
            "{{ config(unlogged=true) }}\nselect 1 as id, 'x' as note",
        ),
        (
            "models/_models.yml",
            "version: 2\nmodels:\n  - name: orders\n    description: \"Orders; it's documented\"\n    columns:\n      - name: id\n        description: The id\n",
        ),
    ]);
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    let comments = |db: &TestDb| {
        db.lines(
            "select coalesce(a.attname::text, '-') || ': ' || d.description from pg_description d left join pg_attribute a on a.attrelid = d.objoid and a.attnum = d.objsubid where d.objoid = 'analytics.orders'::regclass order by d.objsubid",
        )
    };
    assert_eq!(comments(&db), ["-: Orders; it's documented", "id: The id"]);
    assert_eq!(
        db.value(
            "select relpersistence::text from pg_class where oid = 'analytics.orders'::regclass"
        )
        .as_deref(),
        Some("u")
    );
    // A hand-made comment on an undocumented column is replaced by the model's
    // (none) on the rebuild, as dbt's new relation has none.
    db.exec("comment on column analytics.orders.note is 'by hand'");
    write(
        dir.path(),
        "models/_models.yml",
        "version: 2\nmodels:\n  - name: orders\n    description: Changed\n",
    );
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    assert_eq!(comments(&db), ["-: Changed"]);
}

#[test]
fn hooks_and_grants_around_an_increment() {
    let db = TestDb::new("inc_extras");
    db.exec(
        "do $$ begin create role rt_it_inc_reader; exception when duplicate_object then null; end $$;
         create table public.events (id int); insert into public.events values (1);
         create table public.log (what text);",
    );
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shop\n"),
        (
            "models/events.sql",
            "{{ config(materialized='incremental', grants={'select': ['rt_it_inc_reader']}, post_hook=\"insert into public.log select 'rows ' || count(*) from {{ this }}\") }}\nselect id from public.events\n{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}",
        ),
    ]);
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    db.exec("insert into public.events values (2); grant update on analytics.events to rt_it_inc_reader;");
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    assert_eq!(
        db.lines("select what from public.log order by what"),
        ["rows 1", "rows 2"]
    );
    // The hand-made grant is revoked, the configured one kept.
    assert_eq!(
        db.lines("select privilege_type from information_schema.role_table_grants where table_name = 'events' and grantee = 'rt_it_inc_reader'"),
        ["SELECT"]
    );
    // A failing in-transaction post-hook rolls the increment back.
    write(
        dir.path(),
        "models/events.sql",
        "{{ config(materialized='incremental', post_hook='select 1/0') }}\nselect id from public.events\n{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}",
    );
    db.exec("insert into public.events values (3);");
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 1);
    assert_eq!(
        db.lines("select id::text from analytics.events order by id"),
        ["1", "2"]
    );
}

/// PostgreSQL builds only in the target's database, as dbt-postgres says: a model
/// given another one by its `database` config or by a `generate_database_name`
/// override stops `run` before anything is built (exit 2, naming the file), where
/// it was built in the target's database before; an override returning the
/// target's database is fine, and `ls` does not connect.
#[test]
fn another_database_is_refused_before_anything_runs() {
    let db = TestDb::new("cross_db");
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shop\n"),
        (
            "models/a.sql",
            "{{ config(database='otherdb') }}\nselect 1 as id",
        ),
        ("models/b.sql", "select 2 as id"),
    ]);
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("models/a.sql: Cross-db references not allowed in postgres (otherdb vs "),
        "{err}"
    );
    assert_eq!(
        db.value("select count(*) from pg_tables where tablename in ('a', 'b')")
            .as_deref(),
        Some("0")
    );
    assert_code(&db.cli(&["ls", "--project-dir", pd]), 0);

    // The same through a generate_database_name override.
    write(dir.path(), "models/a.sql", "select 1 as id");
    write(
        dir.path(),
        "macros/names.sql",
        "{% macro generate_database_name(custom_database_name=none, node=none) %}{{ 'elsewhere' if node.name == 'b' else target.database }}{% endmacro %}",
    );
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 2);
    assert!(
        stderr(&out)
            .contains("models/b.sql: Cross-db references not allowed in postgres (elsewhere vs "),
        "{}",
        stderr(&out)
    );
    write(
        dir.path(),
        "macros/names.sql",
        "{% macro generate_database_name(custom_database_name=none, node=none) %}{{ target.database }}{% endmacro %}",
    );
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
}
