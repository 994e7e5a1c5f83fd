//! Right advice: each failure says what is wrong in terms of the user's settings
//! and files: which variable the password came from, that none was given, which
//! grant a role lacks, which model file has no SQL or a name PostgreSQL would cut.

use std::process::Output;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// The message of the last line of stderr, without its clock time.
fn last_error(out: &Output) -> String {
    let err = stderr(out);
    let last = err.lines().last().unwrap_or_default();
    last[last.find("error: ").unwrap_or(0)..].to_string()
}

/// A role that must give a password (`pw_users`, see the test cluster) and may
/// build in `db`.
fn password_role(db: &TestDb, name: &str) {
    db.exec(&format!(
        "do $$ begin if not exists (select from pg_roles where rolname = '{name}') then create role {name} login password 'right-one'; end if; end $$; grant pw_users to {name}; grant all on database \"{}\" to {name};",
        db.name
    ));
}

#[test]
fn password_messages_name_where_the_password_came_from() {
    let db = TestDb::new("pw_advice");
    password_role(&db, "advice_pw");
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/a.sql", "select 1 as x\n"),
    ]);
    let (host, port, _) = server();
    let profiles = tempfile::tempdir().unwrap();
    write(
        profiles.path(),
        "profiles.yml",
        &format!(
            "p:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      host: {host}\n      port: {port}\n      user: advice_pw\n      password: wrong-one\n      dbname: {}\n",
            db.name
        ),
    );
    let run = |env: &[(&str, String)]| -> String {
        let mut c = db.cmd();
        c.env("PG_ANALYTICS_USER", "advice_pw")
            .env("HOME", profiles.path().join("nowhere"))
            .args(["run", "--project-dir", pd(&dir)]);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert_code(&out, 1);
        last_error(&out)
            .replace(&port, "PORT")
            .replace(profiles.path().to_str().unwrap(), "PROFILES")
    };
    let url = format!(
        "postgres://advice_pw:wrong-one@{host}:{port}/{}?sslmode=disable",
        db.name
    );
    let messages = [
        // No password at all, when the server asks for one.
        run(&[]),
        run(&[("PGPASSWORD", "wrong-one".into())]),
        run(&[("PG_ANALYTICS_PASSWORD", "wrong-one".into())]),
        run(&[("DBT_POSTGRES_PASSWORD", "wrong-one".into())]),
        run(&[("RELUVIA_TRANSFORM_URL", url)]),
        run(&[
            ("DBT_PROFILES_DIR", profiles.path().display().to_string()),
            ("PG_ANALYTICS_USER", String::new()),
        ]),
    ];
    assert!(
        messages[0].contains("asks a password for user 'advice_pw' and none is set"),
        "{}",
        messages[0]
    );
    assert!(messages[1].ends_with("the password (from env PGPASSWORD)"));
    insta::assert_snapshot!("password_advice", messages.join("\n"));
}

#[test]
fn permission_denied_names_the_role_and_the_grant() {
    let db = TestDb::new("grants");
    db.exec(
        "do $$ begin if not exists (select from pg_roles where rolname = 'advice_builder') then create role advice_builder login; end if; end $$;
         create schema analytics; create schema raw_shop; create table raw_shop.orders as select 1 as id;",
    );
    let dir = project(&[
        ("dbt_project.yml", "name: p\n"),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: shop\n    schema: raw_shop\n    tables:\n      - name: orders\n",
        ),
        ("models/orders.sql", "select id from {{ source('shop', 'orders') }}\n"),
    ]);
    let run = || {
        let out = db
            .cmd()
            .env("PG_ANALYTICS_USER", "advice_builder")
            .args(["run", "--project-dir", pd(&dir)])
            .output()
            .unwrap();
        assert_code(&out, 1);
        let results = std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&results).unwrap();
        v["results"][0]["message"].as_str().unwrap().to_string()
    };
    // No CREATE where the model is built, then no USAGE where it reads.
    db.exec("grant usage on schema raw_shop to advice_builder; grant select on raw_shop.orders to advice_builder");
    let build = run();
    db.exec("grant usage, create on schema analytics to advice_builder; revoke usage on schema raw_shop from advice_builder");
    let read = run();
    db.exec("grant usage on schema raw_shop to advice_builder");
    let out = db
        .cmd()
        .env("PG_ANALYTICS_USER", "advice_builder")
        .args(["run", "--project-dir", pd(&dir)])
        .output()
        .unwrap();
    assert_code(&out, 0);
    insta::assert_snapshot!("permission_denied", format!("{build}\n{read}"));
}

#[test]
fn compile_errors_for_models_postgresql_cannot_build() {
    let long = "a".repeat(64);
    let mut messages = Vec::new();
    for (file, content, extra) in [
        ("models/empty.sql", "", ""),
        (
            "models/only_config.sql",
            "{{ config(materialized='table') }}\n-- to do\n/* later */\n",
            "",
        ),
        (&*format!("models/{long}.sql"), "select 1 as x\n", ""),
        (
            "models/aliased.sql",
            &*format!("{{{{ config(alias='{long}') }}}}\nselect 1 as x\n"),
            "",
        ),
        (
            "models/marts/m.sql",
            "select 1 as x\n",
            "models:\n  p:\n    marts:\n      +schema: a_custom_schema_name_that_is_rather_long_and_descriptive\n",
        ),
    ] {
        let dir = project(&[
            ("dbt_project.yml", &format!("name: p\n{extra}")),
            ("models/fine.sql", "select 1 as x\n"),
            (file, content),
        ]);
        // compile: no database is needed to find these.
        let out = clean_command()
            .env("PG_ANALYTICS_USER", "u")
            .env("PG_ANALYTICS_DBNAME", "d")
            .args(["compile", "--project-dir", pd(&dir)])
            .output()
            .unwrap();
        assert_code(&out, 2);
        messages.push(last_error(&out));
    }
    insta::assert_snapshot!("unbuildable_models", messages.join("\n"));
}

#[test]
fn values_the_system_or_server_refuses_are_settings_errors() {
    // Linux caps keepalives (32767 s, 127 probes): past that the socket refused
    // them and the run failed as "cannot reach PostgreSQL: Invalid argument".
    // PostgreSQL caps statement_timeout at 2^31 - 1 ms: past that the server
    // refused the connection without naming the setting's source.
    let dir = project(&[("dbt_project.yml", "name: p\n")]);
    let mut messages = Vec::new();
    for (var, value) in [
        ("RELUVIA_TRANSFORM_KEEPALIVES_IDLE", "40000"),
        ("RELUVIA_TRANSFORM_KEEPALIVES_INTERVAL", "40000"),
        ("RELUVIA_TRANSFORM_KEEPALIVES_COUNT", "200"),
        ("RELUVIA_TRANSFORM_STATEMENT_TIMEOUT", "9999999"),
    ] {
        let out = clean_command()
            .env("PG_ANALYTICS_USER", "u")
            .env("PG_ANALYTICS_DBNAME", "d")
            .env(var, value)
            .args(["debug", "--project-dir", pd(&dir)])
            .output()
            .unwrap();
        assert_code(&out, 2);
        messages.push(last_error(&out));
    }
    insta::assert_snapshot!("setting_limits", messages.join("\n"));
}
