//! Model contracts and constraints through the binary on real PostgreSQL: every
//! constraint kind created and enforced, each reason a contract check fails (that
//! model only, with dbt's table), a row that breaks a constraint leaving the old
//! table in place, foreign keys of other tables carried over when the table they
//! reference is rebuilt (and a carry-over that cannot be, failing the swap),
//! contracted views, and what `manifest.json` says.

use serde_json::Value;

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

const PROJECT_YML: &str = "name: shop\nmodels:\n  shop:\n    +materialized: table\n";

const SOURCES_YML: &str = "version: 2
sources:
  - name: raw
    schema: raw_shop
    tables:
      - name: categories
      - name: items
";

fn raw(db: &TestDb) {
    db.exec(
        "create schema raw_shop;
         create table raw_shop.categories (id int, name text);
         create table raw_shop.items (id int, code text, price numeric(10, 3), category_id int);
         insert into raw_shop.categories values (1, 'tools'), (2, 'toys');
         insert into raw_shop.items values (10, 'HAMMER', 12.5, 1), (11, 'KITE', 7, 2), (12, 'SAW', 20, 1);",
    );
}

/// `categories` (primary key named at the model level) and `items`, whose
/// contract has every kind of constraint; the SQL of `items` lists its columns
/// in another order than the contract.
const MODELS_YML: &str = "version: 2
models:
  - name: categories
    config:
      contract: {enforced: true}
    constraints:
      - type: primary_key
        name: categories_pk
        columns: [category_id]
    columns:
      - name: category_id
        data_type: int
      - name: name
        data_type: varchar(20)
        constraints: [{type: not_null}]
  - name: items
    config:
      contract: {enforced: true}
    constraints:
      - type: unique
        columns: [code, category_id]
      - type: check
        name: price_below_cap
        expression: price < 1000
      - type: custom
        expression: \"constraint code_upper check (code = upper(code))\"
    columns:
      - name: item_id
        data_type: bigint
        constraints:
          - type: primary_key
      - name: code
        data_type: text
        constraints:
          - type: not_null
          - type: unique
      - name: price
        data_type: numeric(8,2)
        constraints:
          - type: check
            expression: price >= 0
      - name: category_id
        data_type: integer
        constraints:
          - type: foreign_key
            to: ref('categories')
            to_columns: [category_id]
";

fn shop() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", PROJECT_YML),
        ("models/sources.yml", SOURCES_YML),
        ("models/_models.yml", MODELS_YML),
        (
            "models/categories.sql",
            "select id as category_id, name from {{ source('raw', 'categories') }}\n",
        ),
        (
            "models/items.sql",
            "select category_id, price, code, id::bigint as item_id from {{ source('raw', 'items') }}\n",
        ),
    ])
}

/// `contype definition` of each constraint of `rel`, sorted by byte.
fn constraints(db: &TestDb, rel: &str) -> Vec<String> {
    let mut out = db.lines(&format!(
        "select contype::text || ' ' || pg_get_constraintdef(oid) from pg_constraint where conrelid = '{rel}'::regclass"
    ));
    out.sort();
    out
}

fn oid(db: &TestDb, rel: &str) -> String {
    db.value(&format!("select '{rel}'::regclass::oid::text"))
        .unwrap()
}

/// Relations and constraints left with a temporary or backup name.
fn leftovers(db: &TestDb) -> Vec<String> {
    db.lines(
        "select relname::text from pg_class where relname like '%\\_\\_rt\\_%'
         union all select conname::text from pg_constraint where conname like '%\\_\\_rt\\_%' order by 1",
    )
}

/// The summary's detail of the failure of `model`, every line of it, with the
/// invocation's temporary names made stable.
fn failure_of(err: &str, model: &str) -> String {
    let head = format!("Failure in model {model} ");
    let mut lines = err.lines().skip_while(|l| !l.contains(&head)).skip(1);
    let mut out = Vec::new();
    if let Some(first) = lines.next() {
        out.push(strip_clock(first).trim_start().to_string());
    }
    for l in lines {
        if l.len() >= 10 && l.as_bytes()[2] == b':' && l.as_bytes()[5] == b':' {
            break; // the next console line
        }
        out.push(l.trim_start_matches("  ").to_string());
    }
    assert!(!out.is_empty(), "no failure of {model} in {err}");
    let text = out.join("\n");
    regex_replace(&text, "__rt_new_", 8)
}

fn strip_clock(l: &str) -> &str {
    if l.len() > 10 && l.as_bytes()[2] == b':' && l.as_bytes()[5] == b':' {
        &l[10..]
    } else {
        l
    }
}

/// Replaces the `n` characters after each `marker` with `X`s.
fn regex_replace(text: &str, marker: &str, n: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        out.push_str(&"X".repeat(n));
        rest = rest[i + marker.len()..].get(n..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[test]
fn a_contracted_table_gets_its_declared_columns_and_every_kind_of_constraint() {
    let db = TestDb::new("contract_kinds");
    raw(&db);
    let dir = shop();
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let err = stderr(&out);
    // The foreign key's `to:` is a dependency: categories is built first.
    let started = |m: &str| {
        err.find(&format!("START sql table model analytics.{m}"))
            .unwrap()
    };
    assert!(started("categories") < started("items"), "{err}");
    assert!(err.contains("[INSERT 0 3 in"), "{err}");

    // Declared order and types, whatever the SQL's order.
    assert_eq!(
        db.lines("select attname::text || ' ' || format_type(atttypid, atttypmod) || case when attnotnull then ' not null' else '' end
                  from pg_attribute where attrelid = 'analytics.items'::regclass and attnum > 0 order by attnum"),
        [
            "item_id bigint not null",
            "code text not null",
            "price numeric(8,2)",
            "category_id integer"
        ]
    );
    assert_eq!(
        constraints(&db, "analytics.items"),
        [
            "c CHECK ((code = upper(code)))",
            "c CHECK ((price < (1000)::numeric))",
            "c CHECK ((price >= (0)::numeric))",
            "f FOREIGN KEY (category_id) REFERENCES analytics.categories(category_id)",
            "p PRIMARY KEY (item_id)",
            "u UNIQUE (code)",
            "u UNIQUE (code, category_id)",
        ]
    );
    assert_eq!(
        db.lines("select conname from pg_constraint where conrelid = 'analytics.items'::regclass and conname in ('price_below_cap', 'code_upper') order by 1"),
        ["code_upper", "price_below_cap"]
    );
    assert_eq!(
        db.lines("select item_id || ' ' || code || ' ' || price || ' ' || category_id from analytics.items order by 1"),
        ["10 HAMMER 12.50 1", "11 KITE 7.00 2", "12 SAW 20.00 1"]
    );
    assert_eq!(
        db.lines("select conname::text || ' ' || contype::text from pg_constraint where conrelid = 'analytics.categories'::regclass order by 1"),
        ["categories_pk p"]
    );

    // A rebuild: the named primary key (whose index name the old table holds
    // until the swap) keeps its name, and items' foreign key follows the new
    // categories. dbt fails here with `relation "categories_pk" already exists`.
    let items_before = oid(&db, "analytics.items");
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--select", "categories"]);
    assert_code(&out, 0);
    assert!(
        !stderr(&out).contains("not carried over"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        db.value("select conname::text from pg_constraint where conrelid = 'analytics.categories'::regclass and contype = 'p'"),
        Some("categories_pk".into())
    );
    assert_eq!(oid(&db, "analytics.items"), items_before);
    assert_eq!(
        db.value("select confrelid::text from pg_constraint where conrelid = 'analytics.items'::regclass and contype = 'f'"),
        Some(oid(&db, "analytics.categories"))
    );
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    assert!(leftovers(&db).is_empty());
}

#[test]
fn each_constraint_rejects_the_rows_that_break_it_and_the_old_table_stays() {
    let db = TestDb::new("contract_violations");
    raw(&db);
    let dir = shop();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let before = oid(&db, "analytics.items");
    let rows_before = db.lines("select item_id::text from analytics.items order by 1");
    let cases = [
        ("insert into raw_shop.items values (13, 'NAIL', -1, 1)", "violates check constraint \"items__rt_new_XXXXXXXX_price_check\""),
        ("insert into raw_shop.items values (13, null, 1, 1)", "null value in column \"code\" of relation \"items__rt_new_XXXXXXXX\" violates not-null constraint"),
        ("insert into raw_shop.items values (10, 'NAIL', 1, 1)", "duplicate key value violates unique constraint \"items__rt_new_XXXXXXXX_pkey\""),
        ("insert into raw_shop.items values (13, 'KITE', 1, 1)", "duplicate key value violates unique constraint \"items__rt_new_XXXXXXXX_code_key\""),
        ("insert into raw_shop.items values (13, 'NAIL', 1, 9)", "violates foreign key constraint"),
        ("insert into raw_shop.items values (13, 'NAIL', 2000, 1)", "violates check constraint \"price_below_cap\""),
        ("insert into raw_shop.items values (13, 'nail', 1, 1)", "violates check constraint \"code_upper\""),
    ];
    for (sql, expect) in cases {
        db.exec(sql);
        let out = db.cli(&["run", "--project-dir", pd(&dir), "--select", "items"]);
        assert_code(&out, 1);
        let detail = failure_of(&stderr(&out), "items");
        assert!(detail.starts_with("Database error: "), "{detail}");
        assert!(detail.contains(expect), "{sql}: {detail}");
        db.exec("delete from raw_shop.items where id = 13 or (id = 10 and code = 'NAIL')");
        assert_eq!(oid(&db, "analytics.items"), before, "{sql}");
        assert_eq!(
            db.lines("select item_id::text from analytics.items order by 1"),
            rows_before
        );
        assert!(leftovers(&db).is_empty());
    }
    db.exec("insert into raw_shop.items values (13, 'NAIL', -1, 1)");
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--select", "items"]);
    insta::assert_snapshot!("check_violated", failure_of(&stderr(&out), "items"));
}

/// A project of one contracted model per way a contract check can fail, and
/// models whose columns match although their SQL says it otherwise (precision,
/// length, int2 for integer, varchar for text, `string`).
fn mismatch_project() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", PROJECT_YML),
        (
            "models/_models.yml",
            "version: 2
models:
  - name: wrong_type
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer}
      - {name: amount, data_type: integer}
  - name: missing_and_extra
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer}
      - {name: name, data_type: text}
  - name: extra_column
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer}
  - name: untyped
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer}
      - {name: label}
  - name: unknown_type
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer}
      - {name: label, data_type: strng}
  - name: quoted_name
    config: {contract: {enforced: true}}
    columns:
      - {name: Id, data_type: integer}
  - name: loose_types
    config: {contract: {enforced: true}}
    columns:
      - {name: small, data_type: integer}
      - {name: price, data_type: \"numeric(4,1)\"}
      - {name: code, data_type: text}
      - {name: label, data_type: string}
      - {name: CamelCase, data_type: date}
",
        ),
        (
            "models/wrong_type.sql",
            "select 1 as id, 'ten'::text as amount\n",
        ),
        (
            "models/missing_and_extra.sql",
            "select 1 as id, 'x' as nickname\n",
        ),
        ("models/extra_column.sql", "select 1 as id, 2 as other\n"),
        ("models/untyped.sql", "select 1 as id, 'x' as label\n"),
        ("models/unknown_type.sql", "select 1 as id, 'x' as label\n"),
        ("models/quoted_name.sql", "select 1 as \"Id\"\n"),
        (
            "models/loose_types.sql",
            "select 1::int2 as small, 2.55::numeric(10,3) as price, 'abc'::varchar(3) as code,
                    'x'::char(1) as label, date '2026-01-01' as camelcase\n",
        ),
        ("models/fine.sql", "select 1 as id\n"),
        (
            "models/no_properties.sql",
            "{{ config(contract={'enforced': true}) }}\nselect 1 as id\n",
        ),
    ])
}

#[test]
fn a_contract_mismatch_fails_that_model_only_with_dbts_table() {
    let db = TestDb::new("contract_mismatch");
    let dir = mismatch_project();
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let err = stderr(&out);
    for m in [
        "wrong_type",
        "missing_and_extra",
        "extra_column",
        "untyped",
        "unknown_type",
        "quoted_name",
        "no_properties",
    ] {
        assert!(
            err.contains(&format!("ERROR creating sql table model analytics.{m} ")),
            "{m}: {err}"
        );
        assert_eq!(
            db.value(&format!(
                "select count(*)::text from pg_class where relname = '{m}'"
            )),
            Some("0".into()),
            "{m}"
        );
    }
    // The others were built, with the declared types.
    assert!(
        err.contains("OK created sql table model analytics.fine "),
        "{err}"
    );
    assert_eq!(
        db.lines("select attname::text || ' ' || format_type(atttypid, atttypmod) from pg_attribute
                  where attrelid = 'analytics.loose_types'::regclass and attnum > 0 order by attnum"),
        ["small integer", "price numeric(4,1)", "code text", "label text", "camelcase date"]
    );
    assert_eq!(
        db.value("select price::text from analytics.loose_types"),
        Some("2.6".into())
    );

    let mut all = String::new();
    for m in [
        "wrong_type",
        "missing_and_extra",
        "extra_column",
        "untyped",
        "unknown_type",
        "quoted_name",
        "no_properties",
    ] {
        all.push_str(&format!("--- {m}\n{}\n", failure_of(&err, m)));
    }
    insta::assert_snapshot!("mismatches", all);

    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).unwrap(),
    )
    .unwrap();
    let wrong = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.wrong_type")
        .unwrap();
    assert_eq!(wrong["status"], "error");
    assert!(wrong["message"]
        .as_str()
        .unwrap()
        .contains("| amount      | TEXT            | INTEGER       | data type mismatch |"));
}

#[test]
fn a_contracted_view_has_its_columns_checked_and_no_constraints() {
    let db = TestDb::new("contract_view");
    let dir = project(&[
        ("dbt_project.yml", "name: shop\n"),
        (
            "models/_models.yml",
            "version: 2
models:
  - name: labels
    config: {contract: {enforced: true}}
    columns:
      - name: id
        data_type: integer
        constraints: [{type: primary_key}]
      - name: label
        data_type: text
",
        ),
        ("models/labels.sql", "select 1 as id, 'a' as label\n"),
    ]);
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(
        err.contains("[WARNING]: models/_models.yml line 3: model labels: constraints are not applied to views"),
        "{err}"
    );
    assert_eq!(
        db.value("select relkind::text from pg_class where relname = 'labels'"),
        Some("v".into())
    );
    assert!(constraints(&db, "analytics.labels").is_empty());

    crate::common::write(
        dir.path(),
        "models/labels.sql",
        "select 1 as id, 2 as label\n",
    );
    let before = oid(&db, "analytics.labels");
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let detail = failure_of(&stderr(&out), "labels");
    assert!(
        detail.contains("| label       | INTEGER         | TEXT          | data type mismatch |"),
        "{detail}"
    );
    assert_eq!(oid(&db, "analytics.labels"), before);
    assert_eq!(
        db.value("select label from analytics.labels"),
        Some("a".into())
    );
}

/// `plans` with a primary key, and `subscriptions` whose foreign key references it.
fn billing() -> tempfile::TempDir {
    project(&[
        ("dbt_project.yml", PROJECT_YML),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: raw_billing\n    tables:\n      - name: plans\n      - name: subscriptions\n",
        ),
        (
            "models/_models.yml",
            "version: 2
models:
  - name: plans
    config: {contract: {enforced: true}}
    columns:
      - name: plan_id
        data_type: integer
        constraints: [{type: primary_key}]
      - name: name
        data_type: text
  - name: subscriptions
    config: {contract: {enforced: true}}
    columns:
      - name: id
        data_type: integer
      - name: plan_id
        data_type: integer
        constraints:
          - {type: foreign_key, to: \"ref('plans')\", to_columns: [plan_id]}
",
        ),
        ("models/plans.sql", "select plan_id, name from {{ source('raw', 'plans') }}\n"),
        (
            "models/subscriptions.sql",
            "select id, plan_id from {{ source('raw', 'subscriptions') }}\n",
        ),
    ])
}

fn raw_billing(db: &TestDb) {
    db.exec(
        "create schema raw_billing;
         create table raw_billing.plans (plan_id int, name text);
         create table raw_billing.subscriptions (id int, plan_id int);
         insert into raw_billing.plans values (1, 'basic'), (2, 'pro'), (3, 'free');
         insert into raw_billing.subscriptions values (10, 1), (11, 2);",
    );
}

#[test]
fn foreign_keys_referencing_a_rebuilt_table_are_carried_over_and_revalidated() {
    let db = TestDb::new("contract_fk_carry");
    raw_billing(&db);
    let dir = billing();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    // An analyst's table with a foreign key to the mart, with its own options.
    db.exec(
        "create schema analyst;
         create table analyst.notes (plan_id int, note text);
         insert into analyst.notes values (3, 'free plan');
         alter table analyst.notes add constraint notes_plan foreign key (plan_id)
           references analytics.plans (plan_id) on delete cascade deferrable;",
    );
    let subs_fk = "f FOREIGN KEY (plan_id) REFERENCES analytics.plans(plan_id)";
    assert_eq!(constraints(&db, "analytics.subscriptions"), [subs_fk]);
    let plans_before = oid(&db, "analytics.plans");

    // Rebuilding plans alone: both keys now reference the new plans.
    db.exec("update raw_billing.plans set name = 'basic+' where plan_id = 1");
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--select", "plans"]);
    assert_code(&out, 0);
    let plans_after = oid(&db, "analytics.plans");
    assert_ne!(plans_after, plans_before);
    assert_eq!(constraints(&db, "analytics.subscriptions"), [subs_fk]);
    assert_eq!(
        constraints(&db, "analyst.notes"),
        ["f FOREIGN KEY (plan_id) REFERENCES analytics.plans(plan_id) ON DELETE CASCADE DEFERRABLE"]
    );
    assert_eq!(
        db.lines("select confrelid::text from pg_constraint where contype = 'f' order by 1"),
        [plans_after.clone(), plans_after.clone()]
    );
    // PostgreSQL enforces them against the new plans.
    let mut c = db.client();
    let e = c
        .batch_execute("insert into analytics.subscriptions values (12, 99)")
        .unwrap_err();
    let e = e.as_db_error().unwrap().message().to_string();
    assert!(e.contains("violates foreign key constraint"), "{e}");
    assert!(leftovers(&db).is_empty());

    // A new version that lacks a referenced key: the carry-over fails, names the
    // table and the key, and nothing changes.
    db.exec("delete from raw_billing.plans where plan_id = 3");
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--select", "plans"]);
    assert_code(&out, 1);
    let detail = failure_of(&stderr(&out), "plans");
    assert!(detail.starts_with("Dependent objects: foreign key notes_plan of table analyst.notes references analytics.plans"), "{detail}");
    insta::assert_snapshot!("foreign_key_carry_over_fails", detail);
    assert_eq!(oid(&db, "analytics.plans"), plans_after);
    assert_eq!(
        db.value("select count(*)::text from analytics.plans"),
        Some("3".into())
    );
    assert_eq!(constraints(&db, "analyst.notes").len(), 1);
    assert_eq!(constraints(&db, "analytics.subscriptions"), [subs_fk]);
    assert!(leftovers(&db).is_empty());

    // Once the analyst's rows fit, the refresh goes through.
    db.exec("delete from analyst.notes where plan_id = 3");
    assert_code(
        &db.cli(&["run", "--project-dir", pd(&dir), "--select", "plans"]),
        0,
    );
    assert_eq!(constraints(&db, "analyst.notes").len(), 1);
    assert!(leftovers(&db).is_empty());
}

#[test]
fn manifest_json_has_contracts_constraints_and_the_foreign_key_dependency() {
    let db = TestDb::new("contract_manifest");
    raw_billing(&db);
    let dir = billing();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let m: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/manifest.json")).unwrap(),
    )
    .unwrap();
    let subs = &m["nodes"]["model.shop.subscriptions"];
    assert_eq!(
        subs["config"]["contract"],
        serde_json::json!({"enforced": true, "alias_types": true})
    );
    assert_eq!(subs["contract"]["enforced"], true);
    assert_eq!(
        subs["contract"]["checksum"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(subs["constraints"], serde_json::json!([]));
    let fk = &subs["columns"]["plan_id"]["constraints"][0];
    assert_eq!(fk["type"], "foreign_key");
    assert_eq!(fk["to"], format!("\"{}\".\"analytics\".\"plans\"", db.name));
    assert_eq!(fk["to_columns"], serde_json::json!(["plan_id"]));
    assert_eq!(subs["columns"]["plan_id"]["data_type"], "integer");
    assert!(subs["depends_on"]["nodes"]
        .as_array()
        .unwrap()
        .contains(&Value::from("model.shop.plans")));
    assert_eq!(
        m["child_map"]["model.shop.plans"],
        serde_json::json!(["model.shop.subscriptions"])
    );
    // dbt's checksum of `plans`' contract (computed by dbt-core 1.10 on the same
    // properties): columns, types, constraints and the materialization.
    assert_eq!(
        m["nodes"]["model.shop.plans"]["contract"]["checksum"],
        "b529c89420fb5a5f028482fab3dd3487f1566ce0b3b6afb7e57400ee1284a5ef"
    );
}

#[test]
fn foreign_keys_to_a_source_and_by_expression_and_contracts_from_every_place() {
    let db = TestDb::new("contract_fk_kinds");
    raw(&db);
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nmodels:\n  shop:\n    +materialized: table\n    marts:\n      +contract: {enforced: true}\n"),
        ("models/sources.yml", SOURCES_YML),
        (
            "models/_models.yml",
            "version: 2
models:
  - name: by_source
    contract: {enforced: true}
    columns:
      - name: id
        data_type: int
        constraints:
          - {type: unique}
          - {type: foreign_key, to: \"source('raw', 'categories')\", to_columns: [id]}
  - name: by_expression
    config:
      contract: {alias_types: false}
    constraints:
      - type: foreign_key
        name: by_expression_category
        columns: [id]
        expression: \"analytics.by_source (id)\"
    columns:
      - {name: id, data_type: integer, constraints: [{type: unique}]}
  - name: by_config
    columns:
      - {name: id, data_type: integer}
",
        ),
        ("models/by_source.sql", "select id from {{ source('raw', 'categories') }}\n"),
        // The expression names no model: a `depends_on` comment orders the build.
        (
            "models/marts/by_expression.sql",
            "-- depends_on: {{ ref('by_source') }}\nselect id from {{ source('raw', 'categories') }}\n",
        ),
        (
            "models/by_config.sql",
            "{{ config(contract={'enforced': true}) }}\nselect 'one' as id\n",
        ),
    ]);
    db.exec("alter table raw_shop.categories add constraint unique_id unique (id);");
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("OK created sql table model analytics.by_expression "),
        "{err}"
    );
    assert_eq!(
        constraints(&db, "analytics.by_source"),
        [
            "f FOREIGN KEY (id) REFERENCES raw_shop.categories(id)",
            "u UNIQUE (id)"
        ]
    );
    assert_eq!(
        constraints(&db, "analytics.by_expression"),
        [
            "f FOREIGN KEY (id) REFERENCES analytics.by_source(id)",
            "u UNIQUE (id)"
        ]
    );
    // The contract of by_config comes from its config() call: 'one' is not an integer.
    let detail = failure_of(&stderr(&out), "by_config");
    assert!(
        detail.contains("| id          | TEXT            | INTEGER       | data type mismatch |"),
        "{detail}"
    );

    // A new by_source without category 2, which by_expression references: its
    // key cannot follow the rebuild, and says so.
    crate::common::write(
        dir.path(),
        "models/by_source.sql",
        "select id from {{ source('raw', 'categories') }} where id <> 2\n",
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir), "--select", "by_source"]);
    assert_code(&out, 1);
    let detail = failure_of(&stderr(&out), "by_source");
    assert!(
        detail.contains("foreign key by_expression_category of table analytics.by_expression references analytics.by_source and cannot be carried over"),
        "{detail}"
    );
    assert!(leftovers(&db).is_empty());
}

#[test]
fn a_reader_of_a_referencing_table_is_waited_for_politely_and_named() {
    let db = TestDb::new("contract_fk_reader");
    raw_billing(&db);
    let dir = billing();
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let before = oid(&db, "analytics.plans");
    // A dashboard reads subscriptions (whose foreign key must move to the new plans).
    let mut dashboard = db.client();
    dashboard
        .batch_execute("set application_name = 'dashboard-7'; begin; select count(*) from analytics.subscriptions;")
        .unwrap();
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir), "--select", "plans"])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "0.3")
        .env("RELUVIA_TRANSFORM_SWAP_RETRIES", "0")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("Lock timeout: cannot swap in analytics.plans"),
        "{err}"
    );
    assert!(err.contains("application_name 'dashboard-7'"), "{err}");
    assert!(err.contains("on analytics.subscriptions"), "{err}");
    assert_eq!(oid(&db, "analytics.plans"), before);
    // Once the dashboard is done, the swap goes through and the key follows.
    dashboard.batch_execute("commit").unwrap();
    assert_code(
        &db.cli(&["run", "--project-dir", pd(&dir), "--select", "plans"]),
        0,
    );
    assert_eq!(
        db.value("select confrelid::text from pg_constraint where conrelid = 'analytics.subscriptions'::regclass and contype = 'f'"),
        Some(oid(&db, "analytics.plans"))
    );
    assert!(leftovers(&db).is_empty());
}

/// A contracted table is built by `create table … as select cast(…)` then one
/// `alter table`, except where an explicit cast reads a value differently from
/// an insert: to `varchar(n)` a cast cuts a longer value, an insert refuses it,
/// as dbt-postgres does. Numeric scales round the same way both paths.
#[test]
fn a_longer_value_than_a_declared_length_fails_instead_of_being_cut() {
    let db = TestDb::new("contract_cast_paths");
    let dir = project(&[
        ("dbt_project.yml", PROJECT_YML),
        (
            "models/_models.yml",
            "version: 2
models:
  - name: short
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer, constraints: [{type: not_null}, {type: primary_key}]}
      - {name: code, data_type: varchar(3)}
  - name: rounded
    config: {contract: {enforced: true}}
    columns:
      - {name: id, data_type: integer, constraints: [{type: primary_key}, {type: unique}, {type: check, expression: id > 0}]}
      - {name: amount, data_type: 'numeric(4,1)', constraints: [{type: not_null}, {type: check, expression: amount > 0}]}
    constraints:
      - {type: check, expression: amount > id}
      - {type: unique, columns: [id, amount]}
",
        ),
        ("models/short.sql", "select 1 as id, 'abcd'::text as code"),
        (
            "models/rounded.sql",
            "select 1 as id, 12.35::numeric as amount",
        ),
    ]);
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let detail = failure_of(&stderr(&out), "short");
    assert!(
        detail.contains("value too long for type character varying(3)"),
        "{detail}"
    );
    assert_eq!(
        db.lines("select amount::text from analytics.rounded"),
        ["12.4"]
    );
    assert_eq!(
        db.lines(
            "select conname || ' ' || pg_get_constraintdef(oid) from pg_constraint
             where conrelid = 'analytics.rounded'::regclass order by 1"
        ),
        [
            "rounded_amount_check CHECK ((amount > (0)::numeric))",
            "rounded_check CHECK ((amount > (id)::numeric))",
            "rounded_id_amount_key UNIQUE (id, amount)",
            "rounded_id_check CHECK ((id > 0))",
            "rounded_pkey PRIMARY KEY (id)",
        ]
    );
    assert_eq!(
        db.lines(
            "select attname || ' ' || attnotnull from pg_attribute
             where attrelid = 'analytics.rounded'::regclass and attnum > 0 order by attnum"
        ),
        ["id true", "amount true"]
    );
}
