//! Data tests that share a scan: dbt's own `not_null` and `accepted_values` tests
//! on one relation are counted together, by one query that reads the relation
//! once and returns one count per test (with each test's `warn_if`/`error_if`
//! judged on it), instead of one scan per test. Each test is still reported on
//! its own, as dbt reports it.
//!
//! A test takes part only when its compiled SQL is exactly the shape dbt's macro
//! renders (so a project's override of the macro, a `where` config, which wraps
//! the relation in a subquery, or anything unusual keeps it on its own query),
//! with the default `fail_calc`, no `limit`, no stored failures, and when at least
//! one other test of the invocation can share its relation. When the shared
//! query fails, every test of the group runs its own query instead, so errors are
//! reported as before.

use std::collections::HashMap;

use tokio::sync::OnceCell;
use tokio_postgres::Client;

use crate::manifest::{Manifest, TestNode};
use crate::project::valid_condition;
use crate::results::TestOutcome;

use super::{catalog_column_name, judge};

/// The shared scans of one invocation: which tests share which relation.
#[derive(Default)]
pub(crate) struct SharedScans {
    /// Test id → its group.
    member_of: HashMap<String, usize>,
    groups: Vec<Group>,
}

/// A test of a group.
struct Member {
    id: String,
    /// Its failing rows' count, as an aggregate of the relation's rows.
    failing: String,
    /// Whether that count is the test's own; otherwise it is zero exactly when
    /// the test's is, and a test with failing rows runs its own query to count
    /// them as dbt does.
    exact: bool,
    warn_if: String,
    error_if: String,
}

/// Per test id: (failures, warn, error, exact).
type Counts = HashMap<String, (i64, bool, bool, bool)>;

struct Group {
    /// The relation the tests read, as their SQL names it.
    relation: String,
    members: Vec<Member>,
    /// Per test id: (failures, warn, error), once the first of them has run;
    /// `None` when the shared query failed.
    counts: OnceCell<Option<Counts>>,
}

impl SharedScans {
    /// Groups the tests of `order` that can share a scan. `stores(t)` says
    /// whether test `t` keeps its failing rows (then it runs on its own).
    pub(crate) fn new(
        manifest: &Manifest,
        order: &[String],
        stores: impl Fn(&TestNode) -> bool,
    ) -> SharedScans {
        let mut by_relation: Vec<(String, Vec<Member>)> = Vec::new();
        for id in order {
            let Some(t) = manifest.test(id) else { continue };
            if t.unit.is_some()
                || t.compile_error.is_some()
                || manifest.render_at_run.contains(id)
                || stores(t)
                || t.config.contains_key("where")
                || t.config.contains_key("limit")
                || t.config
                    .get("fail_calc")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|f| f != "count(*)")
            {
                continue;
            }
            let (warn_if, error_if) = (t.warn_if(), t.error_if());
            if !valid_condition(&warn_if) || !valid_condition(&error_if) {
                continue;
            }
            let Some((relation, failing, exact)) = t.compiled_code.as_deref().and_then(shape)
            else {
                continue;
            };
            let member = Member {
                id: id.clone(),
                failing,
                exact,
                warn_if,
                error_if,
            };
            match by_relation.iter_mut().find(|(r, _)| *r == relation) {
                Some((_, members)) => members.push(member),
                None => by_relation.push((relation, vec![member])),
            }
        }
        let mut scans = SharedScans::default();
        for (relation, members) in by_relation.into_iter().filter(|(_, m)| m.len() > 1) {
            for m in &members {
                scans.member_of.insert(m.id.clone(), scans.groups.len());
            }
            scans.groups.push(Group {
                relation,
                members,
                counts: OnceCell::new(),
            });
        }
        scans
    }

    /// Test `t`'s outcome from its group's shared scan (run on `client` by the
    /// first test of the group to get here); `None` when `t` has no group, when
    /// the shared query failed, or when it found failing rows that only `t`'s
    /// own query counts as dbt does (then `t` runs its own query).
    pub(crate) async fn outcome(&self, client: &Client, t: &TestNode) -> Option<TestOutcome> {
        let group = &self.groups[*self.member_of.get(&t.unique_id)?];
        let counts = group
            .counts
            .get_or_init(|| async { group.count(client).await })
            .await
            .as_ref()?;
        let (failures, warn, error, exact) = *counts.get(&t.unique_id)?;
        if failures != 0 && !exact {
            return None;
        }
        log::debug!(
            "test {}: counted by one scan of {} shared by {} tests",
            t.name,
            group.relation,
            group.members.len()
        );
        Some(judge(t, failures.max(0) as u64, warn, error, None))
    }
}

impl Group {
    /// Runs the shared query: every member's count and conditions in one row.
    async fn count(&self, client: &Client) -> Option<Counts> {
        let mut judged = Vec::new();
        let mut counted = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            counted.push(format!("{} as n{i}", m.failing));
            judged.push(format!("n{i}, n{i} {}, n{i} {}", m.warn_if, m.error_if));
        }
        let statement = format!(
            "select {}\nfrom (\n    select {}\n    from {}\n) as shared_scan",
            judged.join(",\n       "),
            counted.join(",\n           "),
            self.relation
        );
        let row = match client.query_one(statement.as_str(), &[]).await {
            Ok(row) => row,
            Err(e) => {
                log::debug!(
                    "shared scan of {} failed ({e}): each test runs on its own",
                    self.relation
                );
                return None;
            }
        };
        let mut out = HashMap::new();
        for (i, m) in self.members.iter().enumerate() {
            let n: i64 = row.try_get(3 * i).ok()?;
            let warn: bool = row.try_get(3 * i + 1).ok()?;
            let error: bool = row.try_get(3 * i + 2).ok()?;
            out.insert(m.id.clone(), (n, warn, error, m.exact));
        }
        Some(out)
    }
}

/// The relation a test's compiled SQL reads, an aggregate of its rows that
/// counts the test's failing rows, and whether that count is exact, when the SQL
/// is dbt's `not_null` or `accepted_values` as its macros render it (whitespace
/// aside):
///
/// - `select C from R where C is null`: `count(*) filter (where C is null)`,
///   exact;
/// - `with all_values as (select C as value_field, count(*) as n_records from R
///   group by C) select * from all_values where value_field not in (V, …)`: one
///   failing row per distinct value outside the list (a null is never one, as
///   `null not in (…)` is not true). `count(*) filter (where C not in (V, …))`
///   is zero exactly when that is, and, unlike a count of distinct values,
///   PostgreSQL computes it in parallel in the shared scan.
fn shape(sql: &str) -> Option<(String, String, bool)> {
    let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(rest) = words.strip_prefix("select ") {
        let (column, rest) = rest.split_once(" from ")?;
        let (relation, condition) = rest.split_once(" where ")?;
        column_and_relation(column, relation)?;
        return (condition == format!("{column} is null")).then(|| {
            (
                relation.to_string(),
                format!("count(*) filter (where {column} is null)"),
                true,
            )
        });
    }
    let rest = words.strip_prefix("with all_values as ( select ")?;
    let (column, rest) = rest.split_once(" as value_field, count(*) as n_records from ")?;
    let (relation, rest) = rest.split_once(" group by ")?;
    column_and_relation(column, relation)?;
    let listed = rest
        .strip_prefix(column)?
        .strip_prefix(" ) select * from all_values where value_field not in (")?
        .strip_suffix(")")?;
    // The values as written (whitespace inside a quoted value counts).
    let (_, values) = sql.rsplit_once("not in (")?;
    let values = values.trim_end().strip_suffix(')')?.trim();
    if values.split_whitespace().collect::<Vec<_>>().join(" ") != listed.trim() {
        return None;
    }
    literals(values)?;
    Some((
        relation.to_string(),
        format!("count(*) filter (where {column} not in ({values}))"),
        false,
    ))
}

/// A column named as an identifier, and a relation named as dotted identifiers.
fn column_and_relation(column: &str, relation: &str) -> Option<()> {
    catalog_column_name(column)?;
    let mut rest = relation;
    loop {
        let part_len = if let Some(quoted) = rest.strip_prefix('"') {
            quoted.find('"')? + 2
        } else {
            rest.find('.').unwrap_or(rest.len())
        };
        let (part, after) = rest.split_at(part_len);
        catalog_column_name(part)?;
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => return Some(()),
            None => return None,
        }
    }
}

/// A non-empty list of numbers and single-quoted strings without quotes inside,
/// separated by commas.
fn literals(values: &str) -> Option<()> {
    let mut items = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in values.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return None;
    }
    items.push(current);
    items
        .iter()
        .all(|item| {
            let item = item.trim();
            let number = item.strip_prefix('-').unwrap_or(item);
            (item.len() >= 2
                && item.starts_with('\'')
                && item.ends_with('\'')
                && !item[1..item.len() - 1].contains('\''))
                || (!number.is_empty()
                    && number.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && number.chars().filter(|c| *c == '.').count() <= 1
                    && number.chars().any(|c| c.is_ascii_digit()))
        })
        .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_null_as_dbt_renders_it() {
        let (rel, agg, exact) =
            shape("select converted\nfrom \"db\".\"analytics\".\"m\"\nwhere converted is null\n")
                .unwrap();
        assert_eq!(rel, "\"db\".\"analytics\".\"m\"");
        assert_eq!(agg, "count(*) filter (where converted is null)");
        assert!(exact);
        assert!(shape("select \"date\" from a.b where \"date\" is null").is_some());
        // Another column in the condition, a subquery (`where` config), an expression.
        assert!(shape("select a from r where b is null").is_none());
        assert!(
            shape("select a from (select * from r where x) dbt_subquery where a is null").is_none()
        );
        assert!(shape("select a + 1 from r where a + 1 is null").is_none());
        assert!(shape("select a from r where a is null or true").is_none());
    }

    #[test]
    fn accepted_values_as_dbt_renders_it() {
        let sql = "with all_values as (\n    select\n        c as value_field,\n        count(*) as n_records\n    from \"d\".\"s\".\"t\"\n    group by c\n)\nselect *\nfrom all_values\nwhere value_field not in (\n    'a  b','x,y',-1.5\n)\n";
        let (rel, agg, exact) = shape(sql).unwrap();
        assert_eq!(rel, "\"d\".\"s\".\"t\"");
        assert_eq!(agg, "count(*) filter (where c not in ('a  b','x,y',-1.5))");
        assert!(!exact);
        // Anything but plain literals keeps the test on its own query.
        for values in ["0) or (1", "'it''s'", "", "a", "1.2.3"] {
            let sql = sql.replace("'a  b','x,y',-1.5", values);
            assert!(shape(&sql).is_none(), "{values}");
        }
    }
}
