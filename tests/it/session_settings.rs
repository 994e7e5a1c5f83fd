//! `session_settings` of models on real PostgreSQL: applied with `SET LOCAL` inside
//! the transaction that builds the model (its SQL and in-transaction hooks see
//! them; tables, incremental models and their increments), the most specific
//! config wins, and the pooled connection goes back to the profile's settings
//! for the next node. Shape errors at load are fixture cases
//! (`tests/fixtures/config_*session_settings*`).

use crate::common::*;

const SEEN: &str = "select current_setting('work_mem') as work_mem, \
     current_setting('jit') as jit, current_setting('enable_nestloop') as nestloop";

#[test]
fn settings_hold_for_the_build_of_their_model_only() {
    let db = TestDb::new("session_settings");
    db.exec("create table public.seen (model text, work_mem text);");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n    tuned:\n      +session_settings:\n        work_mem: 48MB\n        jit: false\n",
        ),
        // The folder's settings, replaced by the model's own config().
        (
            "models/tuned/wide.sql",
            &format!(
                "{{{{ config(session_settings={{'work_mem': '96MB', 'enable_nestloop': False}}, \
                 pre_hook=\"insert into public.seen select 'wide', current_setting('work_mem')\") }}}}\n{SEEN}"
            ),
        ),
        ("models/tuned/narrow.sql", &format!("{SEEN}\nfrom {{{{ ref('wide') }}}}")),
        (
            "models/tuned/growing.sql",
            &format!(
                "{{{{ config(materialized='incremental') }}}}\n{SEEN}, now() as at\n\
                 {{% if is_incremental() %}}where true{{% endif %}}"
            ),
        ),
        // Outside the folder: the server's settings, on the same pooled connection.
        ("models/plain.sql", &format!("{SEEN}\nfrom {{{{ ref('narrow') }}}}, {{{{ ref('growing') }}}}")),
    ]);
    let pd = dir.path().to_str().unwrap();
    let default_work_mem = db.value("select current_setting('work_mem')").unwrap();
    for _ in 0..2 {
        // The second run applies an increment to `growing`.
        assert_code(&db.cli(&["run", "--project-dir", pd, "--threads", "1"]), 0);
    }
    let seen = |model: &str| {
        db.lines(&format!(
            "select distinct work_mem || ' ' || jit || ' ' || nestloop from analytics.{model}"
        ))
    };
    assert_eq!(seen("wide"), vec!["96MB on off"]);
    assert_eq!(seen("narrow"), vec!["48MB off on"]);
    assert_eq!(seen("growing"), vec!["48MB off on"]);
    assert_eq!(
        db.value("select count(*)::text from analytics.growing")
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        seen("plain"),
        vec![format!("{default_work_mem} on on")],
        "a model without settings is built with the server's"
    );
    assert_eq!(
        db.lines("select distinct model || ' ' || work_mem from public.seen"),
        vec!["wide 96MB"],
        "an in-transaction pre-hook sees the settings"
    );
}

#[test]
fn a_value_the_server_refuses_fails_the_model_and_leaves_its_table() {
    let db = TestDb::new("session_settings_bad");
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n",
        ),
        ("models/a.sql", "select 1 as id"),
    ]);
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    // Well-formed, but beyond what PostgreSQL accepts.
    write(
        dir.path(),
        "models/a.sql",
        "{{ config(session_settings={'work_mem': '9999TB'}) }}\nselect 2 as id",
    );
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 1);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("session_settings of a (work_mem: 9999TB)")
            && text.contains("fix the value in its config"),
        "{text}"
    );
    assert_eq!(
        db.value("select id::text from analytics.a").as_deref(),
        Some("1")
    );
}

#[test]
fn a_jit_threshold_of_minus_one_means_never() {
    // PostgreSQL's own value for "never" in the jit_*_above_cost thresholds: the
    // model builds with it, and with JIT on otherwise.
    let db = TestDb::new("session_settings_jit_never");
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shop\n"),
        (
            "models/jitted.sql",
            "{{ config(materialized='table', session_settings={'jit': True, 'jit_inline_above_cost': -1, 'jit_optimize_above_cost': 0.5}) }}\n\
             select current_setting('jit') as jit, current_setting('jit_inline_above_cost') as inline, \
             current_setting('jit_optimize_above_cost') as optimize",
        ),
    ]);
    let pd = dir.path().to_str().unwrap();
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    assert_eq!(
        db.lines("select jit || ' ' || inline || ' ' || optimize from analytics.jitted"),
        vec!["on -1 0.5"]
    );
}
