//! `indexes` on real PostgreSQL: created on the new relation inside the swap, so
//! a rebuild neither piles them up nor reports them as lost, while an index made
//! outside the model is still reported. The differential test (`tests/dbt`,
//! fixture `indexes`) compares their definitions with dbt-core's.

use crate::common::*;

#[test]
fn rebuilt_indexes_neither_pile_up_nor_count_as_lost() {
    let db = TestDb::new("indexes");
    let dir = project(&[
        ("dbt_project.yml", "name: shop\nprofile: shop\n"),
        (
            "models/orders.sql",
            "{{ config(materialized='table', indexes=[{'columns': ['id'], 'unique': True}, {'columns': ['lower(note)']}]) }}\nselect 1 as id, 'A'::text as note",
        ),
    ]);
    let pd = dir.path().to_str().unwrap();
    let defs = || {
        db.lines(
            "select regexp_replace(pg_get_indexdef(indexrelid), 'INDEX \\S+ ON', 'INDEX ON') from pg_index where indrelid = 'analytics.orders'::regclass order by 1",
        )
    };
    assert_code(&db.cli(&["run", "--project-dir", pd]), 0);
    let first = defs();
    assert_eq!(
        first,
        [
            "CREATE INDEX ON analytics.orders USING btree (lower(note))",
            "CREATE UNIQUE INDEX ON analytics.orders USING btree (id)"
        ]
    );
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    assert!(
        !stderr(&out).contains("not carried over"),
        "{}",
        stderr(&out)
    );
    assert_eq!(defs(), first);
    db.exec("create index by_hand on analytics.orders (note)");
    let out = db.cli(&["run", "--project-dir", pd]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("index analytics.by_hand not carried over"),
        "{}",
        stderr(&out)
    );
    assert_eq!(defs(), first);
}
