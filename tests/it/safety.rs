//! Safe refreshes on real PostgreSQL: swaps under a reader load (observed through
//! pg_locks, not timings), a long reader holding a mart (lock timeout, retries,
//! the blocker named), analysts' views, grants and comments surviving a refresh,
//! dependents that cannot be carried over, concurrent invocations serialised per
//! relation, and interrupts while a swap waits.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn pd(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

/// Leftover relations of a swap (temporary or backup names).
fn leftovers(db: &TestDb) -> Vec<String> {
    db.lines("select relname from pg_class where relname like '%\\_\\_rt\\_%' order by 1")
}

/// The failure detail of a run's summary (the line after "Failure in model …"),
/// for snapshots: the user-facing message in full.
fn failure_detail(err: &str) -> String {
    let mut lines = err.lines();
    while let Some(l) = lines.next() {
        if l.contains("Failure in model") {
            let detail = lines.next().unwrap_or_default();
            // The failure's label ("Database error: ", "Lock timeout: ", …) is
            // asserted where it matters; the snapshots pin the message.
            for label in [
                "Database error: ",
                "Lock timeout: ",
                "Relation busy: ",
                "Dependent objects: ",
            ] {
                if let Some(i) = detail.find(label) {
                    return detail[i + label.len()..].to_string();
                }
            }
            return detail.to_string();
        }
    }
    panic!("no failure in {err}")
}

fn oid(db: &TestDb, rel: &str) -> String {
    db.value(&format!("select '{rel}'::regclass::oid::text"))
        .unwrap()
}

/// A client of its own on the test database, as a dashboard would have.
fn session(db: &TestDb, application_name: &str) -> postgres::Client {
    let (host, port, user) = server();
    postgres::Config::new()
        .host(&host)
        .port(port.parse().unwrap())
        .user(&user)
        .dbname(&db.name)
        .application_name(application_name)
        .connect(postgres::NoTls)
        .unwrap()
}

/// One mart `x` (a table of `n` rows of `raw.src`) with a column the analysts'
/// views do not use (`extra`), in a project whose models are tables.
fn mart_project(extra: &str) -> tempfile::TempDir {
    project(&[
        (
            "dbt_project.yml",
            "name: p\nmodels:\n  p:\n    +materialized: table\n",
        ),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: src\n",
        ),
        (
            "models/x.sql",
            &format!("select id, amount, {extra} as extra from {{{{ source('raw', 'src') }}}}\n"),
        ),
    ])
}

fn raw(db: &TestDb, rows: usize) {
    db.exec(&format!(
        "create schema raw; create table raw.src as select g as id, g * 10 as amount from generate_series(1, {rows}) g;"
    ));
}

#[test]
fn readers_never_queue_behind_a_waiting_swap_over_30_refreshes() {
    let db = TestDb::new("readers");
    raw(&db, 1000);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    // An analyst's view, read too: a reader of a view locks the view, then the mart.
    db.exec("create schema analyst; create view analyst.big as select id, amount from analytics.x where amount > 5000;");

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let empty = Arc::new(AtomicU64::new(0));
    let worst_us = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for (i, (query, expected)) in [
        // Dashboard-like reads: each holds its locks for a few milliseconds, and
        // the three overlap, so a swap that queued for its lock instead of
        // waiting for a gap would be seen with readers queued behind it.
        ("select count(*) from analytics.x, pg_sleep(0.004)", 1000i64),
        ("select count(*) from analytics.x, pg_sleep(0.004)", 1000),
        ("select count(*) from analyst.big, pg_sleep(0.004)", 500),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = session(&db, &format!("reader-{i}"));
        let (stop, reads, errors, empty, worst_us) = (
            stop.clone(),
            reads.clone(),
            errors.clone(),
            empty.clone(),
            worst_us.clone(),
        );
        readers.push(std::thread::spawn(move || {
            let mut first_error = None;
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                match c.query_one(query, &[]) {
                    Ok(row) => {
                        let n: i64 = row.get(0);
                        if n != expected {
                            empty.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::SeqCst);
                        first_error.get_or_insert(e.to_string());
                    }
                }
                worst_us.fetch_max(t.elapsed().as_micros() as u64, Ordering::SeqCst);
                reads.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(3));
            }
            first_error
        }));
    }

    // The observer: every sample lists readers that wait on a lock, who blocks
    // them, and whether that blocker is itself waiting for a lock.
    let samples = Arc::new(AtomicU64::new(0));
    let behind_swap = Arc::new(AtomicU64::new(0));
    let observer = {
        let mut c = session(&db, "observer");
        let (stop, samples, behind_swap) = (stop.clone(), samples.clone(), behind_swap.clone());
        let dbname = db.name.clone();
        std::thread::spawn(move || {
            let mut violations = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let rows = c
                    .query(
                        "select w.application_name, b.pid, b.application_name,
                                exists (select 1 from pg_locks l where l.pid = b.pid and not l.granted)
                         from pg_stat_activity w
                         cross join lateral unnest(pg_blocking_pids(w.pid)) as bp(pid)
                         join pg_stat_activity b on b.pid = bp.pid
                         where w.datname = $1 and w.application_name like 'reader-%'",
                        &[&dbname],
                    )
                    .unwrap();
                samples.fetch_add(1, Ordering::SeqCst);
                for r in rows {
                    let blocker_app: String = r.get(2);
                    if blocker_app == "reluvia-transform" {
                        behind_swap.fetch_add(1, Ordering::SeqCst);
                        if r.get::<_, bool>(3) {
                            violations.push(format!(
                                "{} queued behind swap pid {} while it waited",
                                r.get::<_, String>(0),
                                r.get::<_, i32>(1)
                            ));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            violations
        })
    };

    let started = Instant::now();
    for i in 0..30 {
        // Alternate the unused column's type so every refresh changes the table.
        let extra = if i % 2 == 0 { "'two'" } else { "2" };
        crate::common::write(
            dir.path(),
            "models/x.sql",
            &format!("select id, amount, {extra} as extra from {{{{ source('raw', 'src') }}}}\n"),
        );
        let out = db.cli(&["run", "--project-dir", pd(&dir)]);
        assert_code(&out, 0);
    }
    let swaps_took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let first_errors: Vec<String> = readers
        .into_iter()
        .filter_map(|r| r.join().unwrap())
        .collect();
    let violations = observer.join().unwrap();

    let (reads, errors, empty) = (
        reads.load(Ordering::SeqCst),
        errors.load(Ordering::SeqCst),
        empty.load(Ordering::SeqCst),
    );
    eprintln!(
        "reader loop: 30 refreshes in {:.1}s; {reads} reads by 3 readers, {errors} errors, {empty} empty or wrong reads, worst read {:.1} ms; observer: {} samples, {} readers seen queued behind a swap holding its locks, {} behind a waiting swap",
        swaps_took.as_secs_f64(),
        worst_us.load(Ordering::SeqCst) as f64 / 1000.0,
        samples.load(Ordering::SeqCst),
        behind_swap.load(Ordering::SeqCst),
        violations.len()
    );
    assert_eq!(errors, 0, "reader errors: {first_errors:?}");
    assert_eq!(empty, 0);
    assert!(reads > 30, "the readers hardly ran: {reads}");
    assert!(samples.load(Ordering::SeqCst) > 30);
    assert!(violations.is_empty(), "{violations:?}");
    assert!(leftovers(&db).is_empty());
    assert_eq!(
        db.value("select count(*)::text from analyst.big"),
        Some("500".into())
    );
}

#[test]
fn a_long_reader_makes_the_swap_time_out_retry_and_name_it() {
    let db = TestDb::new("blocker");
    raw(&db, 10);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let before = oid(&db, "analytics.x");

    let mut dashboard = session(&db, "dashboard-42");
    let pid: i32 = dashboard
        .query_one("select pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    dashboard
        .batch_execute("begin; select count(*) from analytics.x;")
        .unwrap();

    crate::common::write(
        dir.path(),
        "models/x.sql",
        "select id, amount, 2 as extra from {{ source('raw', 'src') }}\n",
    );
    let started = Instant::now();
    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "0.5")
        .env("RELUVIA_TRANSFORM_SWAP_RETRIES", "2")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_code(&out, 1);
    let err = stderr(&out);
    // Two retries announced, each naming the blocker.
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("swap try") && l.contains(&format!("pid {pid}")))
            .count(),
        2,
        "{err}"
    );
    // 3 tries of (0.5 s polite + 0.5 s queued) and two backoffs of 0.5–1.25 s.
    assert!(took >= Duration::from_secs(3), "{took:?}");
    let failure = err
        .lines()
        .find_map(|l| {
            l.find("cannot swap in analytics.x")
                .map(|i| l[i..].to_string())
        })
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        failure.contains(&format!("pid {pid} (application_name 'dashboard-42'")),
        "{failure}"
    );
    assert!(failure.contains("idle in transaction"), "{failure}");
    // A lock timeout is labelled as one, on the console and in the summary.
    assert!(
        err.contains("ERROR creating sql table model analytics.x")
            && err.contains("[LOCK TIMEOUT in "),
        "{err}"
    );
    assert!(
        err.contains("  Lock timeout: cannot swap in analytics.x"),
        "{err}"
    );
    insta::with_settings!({filters => vec![
        (r"pid \d+", "pid PID"),
        (r"pg_terminate_backend\(\d+\)", "pg_terminate_backend(PID)"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME"),
        (r"user '[^']*'", "user 'USER'"),
    ]}, {
        insta::assert_snapshot!("blocker", failure);
    });
    // The old table is untouched, nothing is left behind, the reader never noticed.
    assert_eq!(oid(&db, "analytics.x"), before);
    assert!(leftovers(&db).is_empty(), "{:?}", leftovers(&db));
    let n: i64 = dashboard
        .query_one("select count(*) from analytics.x", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
    dashboard.batch_execute("commit").unwrap();

    // Released: the same refresh goes through.
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_ne!(oid(&db, "analytics.x"), before);
    assert_eq!(
        db.lines("select distinct extra from analytics.x"),
        vec!["2"]
    );
}

#[test]
fn a_reader_that_finishes_within_the_timeout_only_delays_the_swap() {
    let db = TestDb::new("short_reader");
    raw(&db, 10);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let mut dashboard = session(&db, "slow-dashboard");
    dashboard
        .batch_execute("begin; select count(*) from analytics.x;")
        .unwrap();
    let child = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "0.5")
        .env("RELUVIA_TRANSFORM_SWAP_RETRIES", "5")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    dashboard.batch_execute("commit").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("is in use by pid"),
        "{}",
        stderr(&out)
    );
    assert!(leftovers(&db).is_empty());
}

#[test]
fn analysts_views_grants_and_comments_survive_a_refresh() {
    let db = TestDb::new("views");
    raw(&db, 10);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    db.exec(
        "do $$ begin
           if not exists (select from pg_roles where rolname = 'rt_analyst') then create role rt_analyst; end if;
           if not exists (select from pg_roles where rolname = 'rt_bi') then create role rt_bi; end if;
         end $$;
         create schema analyst_space;
         create view analyst_space.v1 with (security_barrier = true) as select id, amount * 2 as doubled from analytics.x;
         create view analyst_space.v2 as select id, doubled from analyst_space.v1 where doubled > 40;
         create view analyst_space.both as select x.id, v1.doubled from analytics.x join analyst_space.v1 using (id);
         grant usage on schema analyst_space to rt_analyst;
         grant select on analyst_space.v1 to rt_analyst;
         alter view analyst_space.v2 owner to rt_analyst;
         grant select on analyst_space.v1 to rt_bi;
         grant select on analyst_space.v2 to rt_bi with grant option;
         comment on view analyst_space.v1 is 'doubled amounts';
         comment on column analyst_space.v1.doubled is 'amount times two';
         grant select on analytics.x to rt_bi;
         grant select (amount) on analytics.x to rt_analyst;
         grant insert, update on analytics.x to rt_analyst with grant option;
         comment on table analytics.x is 'the mart';
         comment on column analytics.x.amount is 'in cents';
         comment on column analytics.x.extra is 'goes away';",
    );
    let snapshot = |db: &TestDb| {
        db.lines(
            "select c.relname, c.oid::text, pg_get_viewdef(c.oid), pg_get_userbyid(c.relowner), coalesce(c.relacl::text, ''),
                    coalesce(obj_description(c.oid, 'pg_class'), ''), coalesce(col_description(c.oid, 2), ''),
                    coalesce(array_to_string(c.reloptions, ','), '')
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'analyst_space' order by 1",
        )
    };
    let views_before = snapshot(&db);
    let x_before = oid(&db, "analytics.x");

    // A refresh that changes a column no view uses (its type; then it drops it).
    crate::common::write(
        dir.path(),
        "models/x.sql",
        "select id, amount + 1 as amount, 'text' as extra from {{ source('raw', 'src') }}\n",
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert_ne!(oid(&db, "analytics.x"), x_before);
    // Same views: same OIDs, definitions, owners, grants, comments and options.
    assert_eq!(snapshot(&db), views_before);
    // And they read the new table.
    assert_eq!(
        db.value("select string_agg(doubled::text, ',' order by id) from analyst_space.v2"),
        Some("42,62,82,102,122,142,162,182,202".into())
    );
    assert_eq!(
        db.value("select count(*)::text from analyst_space.both"),
        Some("10".into())
    );
    // The mart's own grants and comments carried over.
    let acl = db
        .value("select relacl::text from pg_class where oid = 'analytics.x'::regclass")
        .unwrap();
    assert!(acl.contains("rt_bi=r/"), "{acl}");
    assert!(acl.contains("rt_analyst=a*w*/"), "{acl}");
    assert_eq!(
        db.value("select attacl::text from pg_attribute where attrelid = 'analytics.x'::regclass and attname = 'amount'"),
        Some("{rt_analyst=r/postgres}".into())
    );
    assert_eq!(
        db.value("select obj_description('analytics.x'::regclass, 'pg_class')"),
        Some("the mart".into())
    );
    assert_eq!(
        db.value("select col_description('analytics.x'::regclass, 2)"),
        Some("in cents".into())
    );
    assert!(leftovers(&db).is_empty());

    // A refresh without the `extra` column: its comment cannot follow, and says so.
    crate::common::write(
        dir.path(),
        "models/x.sql",
        "select id, amount from {{ source('raw', 'src') }}\n",
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("analytics.x: comment on column extra not carried over"),
        "{}",
        stderr(&out)
    );
    assert_eq!(snapshot(&db), views_before);
    assert!(leftovers(&db).is_empty());
}

#[test]
fn a_dependent_that_cannot_be_carried_over_fails_the_refresh_naming_it() {
    let db = TestDb::new("blocked_deps");
    raw(&db, 10);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    db.exec("create schema analyst; create view analyst.uses_extra as select id, extra from analytics.x;");
    let x_before = oid(&db, "analytics.x");
    let view_before = oid(&db, "analyst.uses_extra");

    // The new version no longer has the column the view reads.
    crate::common::write(
        dir.path(),
        "models/x.sql",
        "select id, amount from {{ source('raw', 'src') }}\n",
    );
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("view analyst.uses_extra (owner postgres) depends on analytics.x and cannot be recreated on its new version"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.contains("column x.extra does not exist") || line.contains("extra"),
        "{line}"
    );
    assert!(line.contains("analytics.x was left as it was"), "{line}");
    assert!(
        line.contains("Dependent objects: view analyst.uses_extra"),
        "{line}"
    );
    insta::assert_snapshot!("view_cannot_follow", failure_detail(&err));
    assert_eq!(oid(&db, "analytics.x"), x_before);
    assert_eq!(oid(&db, "analyst.uses_extra"), view_before);
    assert_eq!(
        db.value("select count(extra)::text from analyst.uses_extra"),
        Some("10".into())
    );
    assert!(leftovers(&db).is_empty());

    // A materialized view: its data cannot follow.
    db.exec("drop view analyst.uses_extra; create materialized view analyst.summary as select count(*) as n from analytics.x;");
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    assert!(
        stderr(&out)
            .contains("materialized view analyst.summary (owner postgres) depends on analytics.x"),
        "{}",
        stderr(&out)
    );
    insta::assert_snapshot!("matview_cannot_follow", failure_detail(&stderr(&out)));
    assert_eq!(oid(&db, "analytics.x"), x_before);

    // A foreign key to the mart is carried over to the new version (dropped and
    // added again, so PostgreSQL re-validates it): here it cannot be, since the
    // new version has no unique key on `id` (the index was made by hand, on the
    // old one). The swap fails naming the key and its table.
    db.exec("drop materialized view analyst.summary;
             create table analyst.refs (id int);
             create unique index on analytics.x (id);
             alter table analyst.refs add constraint refs_x foreign key (id) references analytics.x (id);");
    let out = db.cli(&["run", "--project-dir", pd(&dir)]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("Dependent objects: foreign key refs_x of table analyst.refs references analytics.x and cannot be carried over to its new version"),
        "{err}"
    );
    assert!(!err.contains("__rt_"), "{err}");
    insta::assert_snapshot!("foreign_key_cannot_follow", failure_detail(&err));
    assert_eq!(oid(&db, "analytics.x"), x_before);
    assert_eq!(
        db.value("select confrelid::text from pg_constraint where conname = 'refs_x'"),
        Some(x_before.clone())
    );
    assert!(leftovers(&db).is_empty());
}

#[test]
fn a_swap_that_cannot_replace_a_view_it_does_not_own_says_what_to_do() {
    let db = TestDb::new("not_owner");
    db.exec("do $$ begin if not exists (select from pg_roles where rolname = 'rt_builder') then create role rt_builder login; end if;
             if not exists (select from pg_roles where rolname = 'rt_owner') then create role rt_owner; end if; end $$;
             revoke rt_owner from rt_builder;"); // roles outlive test databases
    db.exec(&format!(
        "grant create on database \"{}\" to rt_builder;",
        db.name
    ));
    raw(&db, 3);
    db.exec("grant usage on schema raw to rt_builder; grant select on raw.src to rt_builder;");
    let dir = mart_project("1");
    let run = || {
        db.cmd()
            .args(["run", "--project-dir", pd(&dir)])
            .env("PG_ANALYTICS_USER", "rt_builder")
            .output()
            .unwrap()
    };
    assert_code(&run(), 0);
    db.exec("create schema other; grant usage on schema analytics to rt_owner; grant select on analytics.x to rt_owner;
             create view other.v as select id from analytics.x; alter view other.v owner to rt_owner;
             grant usage, create on schema other to rt_builder;");
    let before = oid(&db, "analytics.x");
    let out = run();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("view other.v (owner rt_owner) depends on analytics.x and cannot be recreated: must be owner of view v; analytics.x was left as it was. The transform user needs to be a member of role rt_owner and to have CREATE on schema other to carry it over"),
        "{err}"
    );
    assert_eq!(oid(&db, "analytics.x"), before);
    // With the membership it suggests, the refresh keeps the view and its owner.
    db.exec("grant rt_owner to rt_builder;");
    assert_code(&run(), 0);
    assert_eq!(
        db.value(
            "select pg_get_userbyid(relowner)::text from pg_class where oid = 'other.v'::regclass"
        ),
        Some("rt_owner".into())
    );
    assert!(leftovers(&db).is_empty());
}

#[test]
fn ten_concurrent_invocations_serialise_and_leave_nothing_behind() {
    let db = TestDb::new("concurrent");
    db.exec(
        "create schema raw_shop;
         create table raw_shop.orders as select g as id, g % 7 as customer_id, g * 3 as amount from generate_series(1, 2000) g;
         create table raw_shop.customers as select g as id, 'c' || g as name from generate_series(0, 6) g;",
    );
    // Views on views and tables on both: every kind of swap, with dependents.
    let dir = project(&[
        (
            "dbt_project.yml",
            "name: shop\nmodels:\n  shop:\n    +materialized: view\n    marts:\n      +materialized: table\n",
        ),
        (
            "models/sources.yml",
            "version: 2\nsources:\n  - name: raw\n    schema: raw_shop\n    tables:\n      - name: orders\n      - name: customers\n",
        ),
        ("models/stg_orders.sql", "select id, customer_id, amount from {{ source('raw', 'orders') }}\n"),
        ("models/stg_customers.sql", "select id, name from {{ source('raw', 'customers') }}\n"),
        ("models/orders_named.sql", "select o.id, c.name, o.amount from {{ ref('stg_orders') }} o join {{ ref('stg_customers') }} c on c.id = o.customer_id\n"),
        ("models/marts/revenue.sql", "select name, sum(amount) as revenue, count(*) as orders from {{ ref('orders_named') }} group by name\n"),
        ("models/marts/top.sql", "select name from {{ ref('revenue') }} order by revenue desc, name limit 1\n"),
        ("models/marts/totals.sql", "select sum(revenue) as total from {{ ref('revenue') }}\n"),
    ]);
    let started = Instant::now();
    let children: Vec<_> = (0..10)
        .map(|_| {
            db.cmd()
                .args(["run", "--project-dir", pd(&dir), "--threads", "2"])
                .stderr(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let took = started.elapsed();
    let exits: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    let waited = outputs
        .iter()
        .filter(|o| stderr(o).contains("waiting for another invocation building"))
        .count();
    let left = leftovers(&db);
    eprintln!(
        "concurrency: 10 invocations x 6 models in {:.1}s; exits {exits:?}; {waited} said they waited for another invocation; {} leftover relations",
        took.as_secs_f64(),
        left.len()
    );
    for o in &outputs {
        assert_code(o, 0);
    }
    assert!(left.is_empty(), "{left:?}");
    // Every relation is whole and right.
    assert_eq!(
        db.value("select count(*)::text from analytics.orders_named"),
        Some("2000".into())
    );
    assert_eq!(
        db.value("select sum(orders)::text from analytics.revenue"),
        Some("2000".into())
    );
    assert_eq!(
        db.value("select total::text from analytics.totals"),
        db.value("select sum(amount)::text from raw_shop.orders")
    );
    assert_eq!(
        db.value("select count(*)::text from analytics.top"),
        Some("1".into())
    );
    // One relation per model, of the right kind.
    assert_eq!(
        db.lines("select relname || ':' || relkind::text from pg_class where relnamespace = 'analytics'::regnamespace and relkind in ('r', 'v') order by 1"),
        vec!["orders_named:v", "revenue:r", "stg_customers:v", "stg_orders:v", "top:r", "totals:r"]
    );
}

#[test]
fn wait_for_lock_false_fails_fast_and_true_waits_saying_so() {
    let db = TestDb::new("adv");
    raw(&db, 3);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    // Another invocation building analytics.x, as far as the lock is concerned.
    let mut other = session(&db, "other-invocation");
    other
        .batch_execute(
            "select pg_advisory_lock(hashtextextended('reluvia-transform:analytics.x', 0))",
        )
        .unwrap();
    let pid: i32 = other
        .query_one("select pg_backend_pid()", &[])
        .unwrap()
        .get(0);

    let out = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_WAIT_FOR_LOCK", "false")
        .output()
        .unwrap();
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "another invocation (pid {pid}, application_name 'other-invocation', since "
        )),
        "{err}"
    );
    assert!(
        err.contains("is building analytics.x right now and wait_for_lock is false"),
        "{err}"
    );
    assert!(err.contains("Relation busy: another invocation"), "{err}");
    insta::with_settings!({filters => vec![
        (r"pid \d+", "pid PID"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "TIME"),
    ]}, {
        insta::assert_snapshot!("wait_for_lock_false", failure_detail(&err));
    });

    let mut child = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut waiting = false;
    for _ in 0..100 {
        if db.value("select count(*)::text from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())")
            == Some("1".into())
        {
            waiting = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(waiting, "the second run never waited for the lock");
    assert!(child.try_wait().unwrap().is_none());
    other
        .batch_execute("select pg_advisory_unlock_all()")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains(&format!(
            "waiting for another invocation building analytics.x (pid {pid}, application_name 'other-invocation'"
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sigterm_while_a_swap_waits_leaves_the_old_table_and_nothing_else() {
    let db = TestDb::new("term_wait");
    raw(&db, 5);
    let dir = mart_project("1");
    assert_code(&db.cli(&["run", "--project-dir", pd(&dir)]), 0);
    let before = oid(&db, "analytics.x");
    let mut dashboard = session(&db, "dashboard");
    dashboard
        .batch_execute("begin; select count(*) from analytics.x;")
        .unwrap();
    crate::common::write(
        dir.path(),
        "models/x.sql",
        "select id, amount, 2 as extra from {{ source('raw', 'src') }}\n",
    );
    let child = db
        .cmd()
        .args(["run", "--project-dir", pd(&dir)])
        .env("RELUVIA_TRANSFORM_LOCK_TIMEOUT", "30")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the new table is built and the swap is trying for its lock:
    // each failed polite try rolls back to the savepoint taken after the build.
    let mut building = false;
    for _ in 0..2000 {
        if db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and query like '%rt_built%' and datname = current_database()")
            != Some("0".into())
        {
            building = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(building, "the refresh never started");
    let status = std::process::Command::new("kill")
        .args(["-15", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 1);
    assert!(started.elapsed() < Duration::from_secs(10), "slow to stop");
    assert!(stderr(&out).contains("nterrupted"), "{}", stderr(&out));
    dashboard.batch_execute("commit").unwrap();
    assert_eq!(oid(&db, "analytics.x"), before);
    assert_eq!(
        db.lines("select distinct extra::text from analytics.x"),
        vec!["1"]
    );
    assert!(leftovers(&db).is_empty(), "{:?}", leftovers(&db));
    assert_eq!(
        db.value("select count(*)::text from pg_stat_activity where application_name = 'reluvia-transform' and state <> 'idle' and datname = current_database()"),
        Some("0".into())
    );
}
