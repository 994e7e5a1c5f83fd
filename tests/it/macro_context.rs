//! The run-time macro context on real PostgreSQL: `execute`, `run_query` reading
//! a model built earlier in the same run, `statement`/`load_result`, the
//! adapter's introspection, `exceptions.raise_compiler_error`, `log`, and
//! `run-operation` (its transaction, its exit codes, its errors).
//!
//! The differential test (`tests/dbt`, fixture `macro_context`) checks the same
//! against dbt-core itself; these tests pin what the binary does on its own.

use crate::common::*;

fn context_project() -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: ctx\nprofile: ctx\nmodels:\n  ctx:\n    +materialized: table\n",
        ),
        ("models/base.sql", "select 'a' as kind union all select 'b'"),
        (
            "models/pivot.sql",
            "{%- set kinds = run_query('select distinct kind from ' ~ ref('base') ~ ' order by 1') -%}\nselect 1 as one\n{%- if execute %}{% for k in kinds.columns[0].values() %}, 1 as {{ k }}_seen{% endfor %}{% endif %}",
        ),
        (
            "macros/ops.sql",
            "{% macro make_table(name, n=1) %}\n  {% if n < 1 %}{{ exceptions.raise_compiler_error('make_table: n must be at least 1') }}{% endif %}\n  {% do run_query('create table public.' ~ name ~ ' (n int)') %}\n  {% call statement('fill') %}insert into public.{{ name }} select generate_series(1, {{ n }}){% endcall %}\n  {% do run_query('commit') %}\n  {% do log('made ' ~ name, info=True) %}\n{% endmacro %}\n",
        ),
    ])
}

#[test]
fn run_query_sees_the_parents_built_in_the_same_run() {
    let db = TestDb::new("ctx_run_query");
    let dir = context_project();
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    let cols = db.lines(
        "select column_name from information_schema.columns where table_name = 'pivot' order by ordinal_position",
    );
    assert_eq!(cols, ["one", "a_seen", "b_seen"]);
    // Its compiled SQL is written when it runs.
    let compiled =
        std::fs::read_to_string(dir.path().join("target/compiled/ctx/models/pivot.sql")).unwrap();
    assert!(compiled.contains("1 as b_seen"), "{compiled}");
}

#[test]
fn a_failing_run_query_fails_its_model_only() {
    let db = TestDb::new("ctx_run_query_fails");
    let dir = context_project();
    write(
        dir.path(),
        "models/broken.sql",
        "{% set r = run_query('select * from public.nowhere') %}select 1 as x",
    );
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("Database Error in run_query(): ") && err.contains("nowhere"),
        "{err}"
    );
    assert_eq!(
        db.value("select count(*) from analytics.pivot").as_deref(),
        Some("1")
    );
}

#[test]
fn run_operation_runs_a_macro_with_args() {
    let db = TestDb::new("ctx_run_operation");
    let dir = context_project();
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&[
        "run-operation",
        "make_table",
        "--args",
        "{name: numbers, n: 3}",
        "--project-dir",
        pd,
    ]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("made numbers"), "{}", stderr(&out));
    assert_eq!(
        db.value("select sum(n) from public.numbers").as_deref(),
        Some("6")
    );
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(results["results"][0]["unique_id"], "macro.ctx.make_table");
    assert_eq!(results["results"][0]["status"], "success");
}

#[test]
fn run_operation_errors() {
    let db = TestDb::new("ctx_run_operation_errors");
    let dir = context_project();
    let pd = dir.path().to_str().unwrap();
    let mut text = String::new();
    for (args, code) in [
        (
            &[
                "run-operation",
                "make_table",
                "--args",
                "{name: zero, n: 0}",
            ][..],
            1,
        ),
        (&["run-operation", "no_such_macro"], 2),
        (&["run-operation", "make_table", "--args", "[1, 2]"], 2),
    ] {
        let mut all = args.to_vec();
        all.extend(["--project-dir", pd]);
        let out = db.cli(&all);
        assert_code(&out, code);
        let err = stderr(&out);
        let errors: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("error"))
            .map(|l| l.trim())
            .collect();
        text.push_str(&format!("$ {}\n{}\n\n", args.join(" "), errors.join("\n")));
    }
    crate::assert_console_snapshot!("run_operation_errors", text);
    assert_eq!(
        db.value("select count(*) from pg_class where relname = 'zero'")
            .as_deref(),
        Some("0")
    );
}

#[test]
fn a_ref_the_parse_did_not_see_fails_its_model_as_in_dbt() {
    let db = TestDb::new("ctx_hidden_ref");
    let dir = context_project();
    write(
        dir.path(),
        "models/hidden.sql",
        "select {% if execute %}(select count(*) from {{ ref('base') }}){% else %}0{% endif %} as n",
    );
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd, "--select", "base", "hidden"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("unable to infer all dependencies for the model \"hidden\"")
            && err.contains("-- depends_on: {{ ref('base') }}"),
        "{err}"
    );
    // With the hint, it builds after its parent.
    write(
        dir.path(),
        "models/hidden.sql",
        "-- depends_on: {{ ref('base') }}\nselect {% if execute %}(select count(*) from {{ ref('base') }}){% else %}0{% endif %} as n",
    );
    let out = db.cli(&["run", "--project-dir", pd, "--select", "base", "hidden"]);
    assert_code(&out, 0);
    assert_eq!(
        db.value("select n from analytics.hidden").as_deref(),
        Some("2")
    );
}

/// What package macros lean on: Python's mutable lists and dicts, `return()`
/// ending its macro, `_private` macros, a relation as a mapping with
/// `incorporate`/`include`/`render`, `adapter.drop_relation`, and a model that
/// renders nothing until it runs.
#[test]
fn package_style_macros() {
    let db = TestDb::new("ctx_package_style");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: ctx\nprofile: ctx\nmodels:\n  ctx:\n    +materialized: table\n",
        ),
        (
            "macros/helpers.sql",
            "{% macro _kind(r) %}{{ return(r.get('metadata', {}).get('type', '')) }}{% endmacro %}\n{% macro first_power(n) %}{% for _ in range(1, 100) %}{% if n <= 2 ** loop.index %}{{ return(loop.index) }}{% endif %}{% endfor %}{% endmacro %}\n{% macro cols() %}{% set out = [] %}{% for c in ['a', 'b'] %}{% do out.append(c ~ '_x') %}{% endfor %}{% set m = {'k': 1} %}{% do m.update({'j': 2}) %}{% do out.extend(m.keys() | list) %}{{ return(out) }}{% endmacro %}\n{% macro drop_it() %}{% do adapter.drop_relation(api.Relation.create(database=target.database, schema='analytics', identifier='doomed').incorporate(type='table')) %}{% endmacro %}\n{% macro late_rows() %}{% if not execute %}{{ return([]) }}{% endif %}{{ return(['1 as n']) }}{% endmacro %}\n",
        ),
        (
            "models/shapes.sql",
            "select {{ first_power(10) }} as power, '{{ cols() | join(',') }}' as cols, '{{ _kind(this) }}' as kind, {{ this is mapping }} as is_mapping, '{{ this.include(database=false).render() }}' as rendered, '{{ this.incorporate(type='view').type }}' as incorporated",
        ),
        (
            "models/late.sql",
            "{% for r in late_rows() %}select {{ r }}{% endfor %}",
        ),
        ("models/doomed.sql", "select 1 as n"),
    ]);
    let pd = dir.path().to_str().unwrap();
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    assert_eq!(
        db.lines("select concat_ws('|', power, cols, kind, is_mapping, rendered, incorporated) from analytics.shapes"),
        ["4|a_x,b_x,k,j|PostgresRelation|t|\"analytics\".\"shapes\"|view"]
    );
    assert_eq!(
        db.value("select n from analytics.late").as_deref(),
        Some("1")
    );
    assert_code(
        &db.cli(&["run-operation", "drop_it", "--project-dir", pd]),
        0,
    );
    assert_eq!(
        db.value("select count(*) from pg_class where relname = 'doomed'")
            .as_deref(),
        Some("0")
    );
}
