//! The analytics marts of the shipped project (`transforms/`), rule by rule
//! (docs/marts.md), plus the raw data contract they read
//! (`reluvia_sample::contract`, `schemas/raw/*.json`, docs/raw-contract.md).
//!
//! Every mart test loads a small hand-made fixture into fresh raw tables, runs the
//! binary (`run`) on the shipped project and compares the mart rows with the rows
//! worked out by hand from the spec. The test databases use an ICU `en-US` collation
//! and the default TimeZone America/New_York (the server's is Pacific/Chatham), so
//! byte-order and UTC rules are exercised; instants are shown in UTC with `utc()`.

use crate::common::*;
use reluvia_sample::contract::{self, Table};
use serde_json::Value;

const MARTS: [&str; 3] = [
    "mart_new_subscriptions",
    "mart_funnel_conversions",
    "mart_daily_kpis",
];

// ------------------------------------------------------------------ fixtures

/// A fresh database with the raw schemas and tables of the contract.
fn raw_db(prefix: &str) -> TestDb {
    let db = TestDb::new(prefix);
    db.exec(&contract::ddl());
    db
}

/// SQL string literal.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// SQL string literal or null.
fn opt(s: Option<&str>) -> String {
    s.map(q).unwrap_or_else(|| "null".into())
}

/// SQL literal of an optional number or boolean.
fn opt_lit<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

/// An `insert` of one row into a raw table, filling the loader's required `_sdc_*`
/// columns. `vals` are SQL literals matching `cols`.
fn insert(table: &str, cols: &str, vals: &str) -> String {
    format!(
        "insert into {table} ({cols}, _sdc_extracted_at, _sdc_received_at, _sdc_batched_at, _sdc_sequence) \
         values ({vals}, now() at time zone 'utc', now() at time zone 'utc', now() at time zone 'utc', 1);\n"
    )
}

/// Marks a raw row as deleted at the source.
fn delete(table: &str, key_col: &str, key: &str) -> String {
    format!(
        "update {table} set _sdc_deleted_at = now() at time zone 'utc' where {key_col} = {};\n",
        q(key)
    )
}

fn funnel(id: &str, title: &str) -> String {
    insert(
        "raw_funnelfox.funnels",
        "id, title",
        &format!("{}, {}", q(id), q(title)),
    )
}

/// A session without funnel, email or location. `created` is UTC wall-clock time.
fn session(id: &str, profile: &str, created: &str) -> String {
    session_full(id, profile, created, None, None, None)
}

fn session_email(id: &str, profile: &str, created: &str, email: Option<&str>) -> String {
    session_full(id, profile, created, None, email, None)
}

fn session_full(
    id: &str,
    profile: &str,
    created: &str,
    funnel: Option<&str>,
    email: Option<&str>,
    country: Option<&str>,
) -> String {
    insert(
        "raw_funnelfox.sessions",
        "id, profile_id, created_at, funnel_id, email, country",
        &format!(
            "{}, {}, {}, {}, {}, {}",
            q(id),
            q(profile),
            q(created),
            opt(funnel),
            opt(email),
            opt(country)
        ),
    )
}

/// A Stripe charge. `created` is UTC wall-clock time.
fn charge(id: &str, amount: i64, currency: &str, status: &str, created: &str) -> String {
    insert(
        "raw_stripe.charges",
        "id, amount, currency, status, created, livemode",
        &format!(
            "{}, {amount}, {}, {}, {}, true",
            q(id),
            q(currency),
            q(status),
            q(created)
        ),
    )
}

/// A failed Stripe charge of 10 USD.
fn failed_charge(id: &str, code: Option<&str>, created: &str) -> String {
    charge_with_code(id, "failed", code, created)
}

/// A Stripe charge of 10 USD with a status and a failure_code.
fn charge_with_code(id: &str, status: &str, code: Option<&str>, created: &str) -> String {
    insert(
        "raw_stripe.charges",
        "id, amount, currency, status, failure_code, created",
        &format!(
            "{}, 1000, 'usd', {}, {}, {}",
            q(id),
            q(status),
            opt(code),
            q(created)
        ),
    )
}

/// A FunnelFox subscription paid by charge `psp` (sandbox null, price_usd null,
/// provider stripe, created_at as given).
fn sub(id: &str, profile: &str, psp: &str, created_at: Option<&str>) -> String {
    sub_full(id, profile, Some(psp), created_at, None, None)
}

fn sub_full(
    id: &str,
    profile: &str,
    psp: Option<&str>,
    created_at: Option<&str>,
    sandbox: Option<bool>,
    price_usd: Option<i64>,
) -> String {
    insert(
        "raw_funnelfox.subscriptions",
        "id, profile_id, psp_id, payment_provider, status, sandbox, price_usd, created_at",
        &format!(
            "{}, {}, {}, 'stripe', 'active', {}, {}, {}",
            q(id),
            q(profile),
            opt(psp),
            opt_lit(sandbox),
            opt_lit(price_usd),
            opt(created_at)
        ),
    )
}

/// A new subscription in one go: a succeeded charge `ch_<id>` and a real
/// subscription `<id>` of `profile` paid by it (price_usd as given).
fn paid(
    id: &str,
    profile: &str,
    amount: i64,
    currency: &str,
    at: &str,
    price_usd: Option<i64>,
) -> String {
    let ch = format!("ch_{id}");
    charge(&ch, amount, currency, "succeeded", at)
        + &sub_full(id, profile, Some(&ch), Some(at), None, price_usd)
}

fn event(uuid: &str, user_id: Option<&str>, email: Option<&str>, time: &str) -> String {
    insert(
        "raw_amplitude.events",
        "uuid, event_type, user_id, email, event_time",
        &format!(
            "{}, 'app_open', {}, {}, {}",
            q(uuid),
            opt(user_id),
            opt(email),
            q(time)
        ),
    )
}

fn ad(date: &str, ad_id: &str, spend: Option<&str>) -> String {
    insert(
        "raw_facebook.ad_statistics",
        "date_start, date_stop, ad_id, spend, account_currency",
        &format!(
            "{}, {}, {}, {}, 'USD'",
            q(date),
            q(date),
            q(ad_id),
            spend.unwrap_or("null")
        ),
    )
}

/// Marks an ad_statistics row (key date_start, ad_id) as deleted at the source.
fn delete_ad(date: &str, ad_id: &str) -> String {
    format!(
        "update raw_facebook.ad_statistics set _sdc_deleted_at = now() at time zone 'utc' \
         where date_start = {} and ad_id = {};\n",
        q(date),
        q(ad_id)
    )
}

/// An instant column shown as UTC wall-clock text.
fn utc(col: &str) -> String {
    format!("to_char({col} at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
}

fn project_dir() -> String {
    shipped_project().to_str().unwrap().to_string()
}

/// Runs the shipped project (`run`) against the test database; must succeed.
fn run_marts(db: &TestDb) {
    let target = tempfile::tempdir().unwrap();
    let out = db.cli(&[
        "run",
        "--project-dir",
        &project_dir(),
        "--target-path",
        target.path().to_str().unwrap(),
    ]);
    assert_code(&out, 0);
}

// ------------------------------------------------------------ mart_new_subscriptions

#[test]
fn new_subscription_needs_a_succeeded_charge() {
    let db = raw_db("ns_paid");
    db.exec(
        &[
            charge("ch_ok", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub("sub_ok", "p1", "ch_ok", Some("2024-03-01 09:59:00")),
            charge("ch_failed", 1000, "usd", "failed", "2024-03-01 10:00:00"),
            sub("sub_failed", "p2", "ch_failed", Some("2024-03-01 09:59:00")),
            charge("ch_pending", 1000, "usd", "pending", "2024-03-01 10:00:00"),
            sub(
                "sub_pending",
                "p3",
                "ch_pending",
                Some("2024-03-01 09:59:00"),
            ),
            // A paid charge without subscription, subscriptions without (known) charge.
            charge("ch_orphan", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub(
                "sub_missing_charge",
                "p4",
                "ch_missing",
                Some("2024-03-01 09:59:00"),
            ),
            sub_full(
                "sub_no_psp",
                "p5",
                None,
                Some("2024-03-01 09:59:00"),
                None,
                None,
            ),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select subscription_id, user_profile_id, stripe_charge_id, subscription_date, {}, payment_provider
             from analytics.mart_new_subscriptions order by subscription_id collate \"C\"",
            utc("subscribed_at")
        )),
        vec!["sub_ok|p1|ch_ok|2024-03-01|2024-03-01 10:00:00|stripe"]
    );
}

#[test]
fn sandbox_subscriptions_are_not_real() {
    let db = raw_db("ns_sandbox");
    db.exec(
        &[
            charge("ch1", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub_full(
                "sub_true",
                "p1",
                Some("ch1"),
                Some("2024-03-01 10:00:00"),
                Some(true),
                None,
            ),
            charge("ch2", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub_full(
                "sub_false",
                "p2",
                Some("ch2"),
                Some("2024-03-01 10:00:00"),
                Some(false),
                None,
            ),
            charge("ch3", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub_full(
                "sub_null",
                "p3",
                Some("ch3"),
                Some("2024-03-01 10:00:00"),
                None,
                None,
            ),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select subscription_id, stripe_charge_id, is_sandbox from analytics.mart_new_subscriptions
             order by subscription_id collate \"C\""
        ),
        vec!["sub_false|ch2|f", "sub_null|ch3|f"]
    );
}

#[test]
fn new_subscriptions_ignore_soft_deleted_rows() {
    let db = raw_db("ns_deleted");
    db.exec(
        &[
            // Deleted charge: its subscription is not new.
            paid("sub1", "p1", 1000, "usd", "2024-03-01 10:00:00", None),
            delete("raw_stripe.charges", "id", "ch_sub1"),
            // Deleted subscription.
            paid("sub2", "p2", 1000, "usd", "2024-03-01 10:00:00", None),
            delete("raw_funnelfox.subscriptions", "id", "sub2"),
            // Deleted later session: the acquisition session is the earlier live one.
            funnel("f_live", "Live funnel"),
            paid("sub3", "p3", 1000, "usd", "2024-03-01 10:00:00", None),
            session_full(
                "s3_old",
                "p3",
                "2024-03-01 08:00:00",
                Some("f_live"),
                None,
                Some("US"),
            ),
            session_full(
                "s3_new",
                "p3",
                "2024-03-01 09:00:00",
                Some("f_live"),
                None,
                Some("CA"),
            ),
            delete("raw_funnelfox.sessions", "id", "s3_new"),
            // Deleted funnel: no title.
            funnel("f_gone", "Gone funnel"),
            delete("raw_funnelfox.funnels", "id", "f_gone"),
            paid("sub4", "p4", 1000, "usd", "2024-03-01 10:00:00", None),
            session_full(
                "s4",
                "p4",
                "2024-03-01 09:00:00",
                Some("f_gone"),
                None,
                Some("FR"),
            ),
            // A deleted earlier duplicate does not hide the live one.
            charge("ch5", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub("sub5a", "p5", "ch5", Some("2024-03-01 09:00:00")),
            sub("sub5b", "p5", "ch5", Some("2024-03-01 09:30:00")),
            delete("raw_funnelfox.subscriptions", "id", "sub5a"),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select subscription_id, stripe_charge_id, session_id, funnel_id, funnel_title, country
             from analytics.mart_new_subscriptions order by subscription_id collate \"C\""
        ),
        vec![
            "sub3|ch_sub3|s3_old|f_live|Live funnel|US",
            "sub4|ch_sub4|s4|f_gone|∅|FR",
            "sub5b|ch5|∅|∅|∅|∅",
        ]
    );
}

#[test]
fn duplicate_subscriptions_keep_the_earliest_then_least_id_in_byte_order() {
    let db = raw_db("ns_duplicates");
    let at = "2024-03-01 12:00:00";
    db.exec(
        &[
            // Same created_at: least id in byte order ('B' < 'a'; en-US says 'a' < 'B').
            charge("ch1", 1000, "usd", "succeeded", at),
            sub("a1", "p_a1", "ch1", Some("2024-03-01 11:00:00")),
            sub("B1", "p_B1", "ch1", Some("2024-03-01 11:00:00")),
            session("s_a1", "p_a1", "2024-03-01 09:00:00"),
            session("s_B1", "p_B1", "2024-03-01 09:00:00"),
            // A null created_at sorts after every value.
            charge("ch2", 1000, "usd", "succeeded", at),
            sub("a2", "p2", "ch2", None),
            sub("z2", "p2", "ch2", Some("2024-03-01 11:00:00")),
            // Two nulls tie: the id decides, byte order.
            charge("ch3", 1000, "usd", "succeeded", at),
            sub("n_a", "p3", "ch3", None),
            sub("n_B", "p3", "ch3", None),
            // created_at decides before the id.
            charge("ch4", 1000, "usd", "succeeded", at),
            sub("x4", "p4", "ch4", Some("2024-03-01 11:00:00")),
            sub("y4", "p4", "ch4", Some("2024-03-01 10:00:00")),
            // An earlier sandbox subscription is not a real one: it does not compete.
            charge("ch5", 1000, "usd", "succeeded", at),
            sub_full(
                "c5",
                "p5",
                Some("ch5"),
                Some("2024-03-01 09:00:00"),
                Some(true),
                None,
            ),
            sub("d5", "p5", "ch5", Some("2024-03-01 11:00:00")),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select subscription_id, stripe_charge_id from analytics.mart_new_subscriptions
             order by subscription_id collate \"C\""
        ),
        vec!["B1|ch1", "d5|ch5", "n_B|ch3", "y4|ch4", "z2|ch2"]
    );
    // Duplicates appear nowhere: not as conversions, purchases or daily counts.
    assert_eq!(
        db.lines(
            "select session_id, converted, conversions, had_purchase from analytics.mart_funnel_conversions
             order by session_id collate \"C\""
        ),
        vec!["s_B1|1|1|t", "s_a1|0|0|f"]
    );
    assert_eq!(
        db.lines("select \"date\", new_subscriptions, revenue_usd from analytics.mart_daily_kpis"),
        vec!["2024-03-01|5|50.00"]
    );
}

#[test]
fn revenue_is_in_major_units_of_the_charge_currency() {
    let db = raw_db("ns_money");
    let zero_decimal = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    let three_decimal = ["bhd", "jod", "kwd", "omr", "tnd"];
    let two_decimal = ["usd", "eur", "gbp", "huf", "inr"];
    let mut fixture = String::new();
    let mut expected = Vec::new();
    let at = "2024-03-01 10:00:00";
    for c in zero_decimal {
        fixture += &paid(&format!("z_{c}"), "p", 100, c, at, Some(1));
        expected.push(format!("z_{c}|100|100.00|{}", c.to_uppercase()));
    }
    for c in three_decimal {
        fixture += &paid(&format!("t_{c}"), "p", 100, c, at, Some(1));
        expected.push(format!("t_{c}|100|0.10|{}", c.to_uppercase()));
    }
    for c in two_decimal {
        fixture += &paid(&format!("w_{c}"), "p", 100, c, at, Some(1));
        expected.push(format!("w_{c}|100|1.00|{}", c.to_uppercase()));
    }
    // Codes in any case; rounding of three-decimal amounts is half away from zero.
    for (id, amount, currency, revenue, upper) in [
        ("x_JPY", 700, "JPY", "700.00", "JPY"),
        ("x_Krw", 5, "Krw", "5.00", "KRW"),
        ("x_KWD", 1005, "KWD", "1.01", "KWD"),
        ("x_kwd", 12345, "kwd", "12.35", "KWD"),
        ("x_tnd", 5, "tnd", "0.01", "TND"),
        ("x_bhd", 4, "bhd", "0.00", "BHD"),
        ("x_Usd", 1999, "Usd", "19.99", "USD"),
        ("x_EUR", 5, "EUR", "0.05", "EUR"),
    ] {
        fixture += &paid(id, "p", amount, currency, at, Some(1));
        expected.push(format!("{id}|{amount}|{revenue}|{upper}"));
    }
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    db.exec(&fixture);
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select n.subscription_id, c.amount, n.revenue, n.currency
             from analytics.mart_new_subscriptions n join raw_stripe.charges c on c.id = n.stripe_charge_id
             order by n.subscription_id collate \"C\""
        ),
        expected
    );
}

#[test]
fn revenue_usd_is_the_charge_in_usd_else_funnelfox_price_usd() {
    let db = raw_db("ns_revenue_usd");
    let at = "2024-03-01 10:00:00";
    db.exec(
        &[
            // usd: the charge's revenue, whatever price_usd says.
            paid("u1", "p1", 1000, "usd", at, Some(5000)),
            paid("u2", "p2", 250, "USD", at, None),
            // Other currencies: price_usd / 100, null when null.
            paid("e1", "p3", 1000, "eur", at, Some(1234)),
            paid("e2", "p4", 1000, "eur", at, None),
            paid("j1", "p5", 1500, "jpy", at, Some(999)),
            paid("k1", "p6", 1005, "kwd", at, Some(327)),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select subscription_id, revenue, revenue_usd, currency from analytics.mart_new_subscriptions
             order by subscription_id collate \"C\""
        ),
        vec![
            "e1|10.00|12.34|EUR",
            "e2|10.00|∅|EUR",
            "j1|1500.00|9.99|JPY",
            "k1|1.01|3.27|KWD",
            "u1|10.00|10.00|USD",
            "u2|2.50|2.50|USD",
        ]
    );
}

#[test]
fn acquisition_session_is_the_latest_live_session_at_or_before_the_charge() {
    let db = raw_db("ns_acquisition");
    let at = "2024-03-01 10:00:00";
    db.exec(
        &[
            funnel("f1", "Funnel one"),
            funnel("f2", "Funnel two"),
            // p1: the session created exactly at the charge counts; the later one not.
            paid("sub1", "p1", 1000, "usd", at, None),
            session_full("s1_early", "p1", "2024-02-28 08:00:00", Some("f1"), None, Some("US")),
            session_full("s1_exact", "p1", at, Some("f2"), None, Some("DE")),
            session_full("s1_after", "p1", "2024-03-01 10:00:01", Some("f1"), None, Some("GB")),
            "update raw_funnelfox.sessions set city = 'Berlin', origin = 'https://a.example/?utm_source=fb'
             where id = 's1_exact';"
                .into(),
            // p2: only a session after the charge: no acquisition session.
            paid("sub2", "p2", 1000, "usd", at, None),
            session_full("s2_after", "p2", "2024-03-01 10:30:00", Some("f1"), None, Some("US")),
            // p3: no session at all (another profile's earlier session does not count).
            paid("sub3", "p3", 1000, "usd", at, None),
            session_full("s_other", "p_other", "2024-03-01 09:00:00", Some("f1"), None, Some("US")),
            // p4: a tie on created_at goes to the greatest id in byte order
            // ('a' > 'B'; en-US says 'B' > 'a'); an older session with a greater id loses.
            paid("sub4", "p4", 1000, "usd", at, None),
            session_full("a", "p4", "2024-03-01 09:00:00", Some("f1"), None, Some("FR")),
            session_full("B", "p4", "2024-03-01 09:00:00", Some("f2"), None, Some("GB")),
            session_full("zz", "p4", "2024-03-01 08:00:00", Some("f2"), None, Some("IT")),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select subscription_id, session_id, funnel_id, funnel_title, country, city, origin, payment_provider
             from analytics.mart_new_subscriptions order by subscription_id collate \"C\""
        ),
        vec![
            "sub1|s1_exact|f2|Funnel two|DE|Berlin|https://a.example/?utm_source=fb|stripe",
            "sub2|∅|∅|∅|∅|∅|∅|stripe",
            "sub3|∅|∅|∅|∅|∅|∅|stripe",
            "sub4|a|f1|Funnel one|FR|∅|∅|stripe",
        ]
    );
    assert_eq!(
        db.lines(
            "select session_id, converted, had_purchase from analytics.mart_funnel_conversions
             order by session_id collate \"C\""
        ),
        vec![
            "B|0|t",
            "a|1|t",
            "s1_after|0|t",
            "s1_early|0|t",
            "s1_exact|1|t",
            "s2_after|0|t",
            "s_other|0|f",
            "zz|0|t",
        ]
    );
}

#[test]
fn dates_and_instants_are_utc_at_midnight_boundaries() {
    let db = raw_db("ns_utc");
    db.exec(
        &[
            // 23:59:59 UTC is the same day in New York but the next day in Chatham;
            // 00:00:00 UTC is the previous day in New York.
            paid(
                "sub_late",
                "p_late",
                1000,
                "usd",
                "2024-03-01 23:59:59",
                None,
            ),
            session("s_late", "p_late", "2024-03-01 23:59:59"),
            paid("sub_mid", "p_mid", 1000, "usd", "2024-03-02 00:00:00", None),
            session("s_mid", "p_mid", "2024-03-02 00:00:00"),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select subscription_id, subscription_date, {}, pg_typeof(subscribed_at)
             from analytics.mart_new_subscriptions order by subscription_id collate \"C\"",
            utc("subscribed_at")
        )),
        vec![
            "sub_late|2024-03-01|2024-03-01 23:59:59|timestamp with time zone",
            "sub_mid|2024-03-02|2024-03-02 00:00:00|timestamp with time zone",
        ]
    );
    // The instants themselves, compared with explicit UTC literals.
    assert_eq!(
        db.value(
            "select count(*) from analytics.mart_new_subscriptions
             where subscribed_at in ('2024-03-01 23:59:59+00', '2024-03-02 00:00:00+00')"
        ),
        Some("2".into())
    );
    assert_eq!(
        db.lines(&format!(
            "select session_id, session_date, {}, {}, time_to_conversion_hours
             from analytics.mart_funnel_conversions order by session_id collate \"C\"",
            utc("session_created_at"),
            utc("converted_at")
        )),
        vec![
            "s_late|2024-03-01|2024-03-01 23:59:59|2024-03-01 23:59:59|0.00",
            "s_mid|2024-03-02|2024-03-02 00:00:00|2024-03-02 00:00:00|0.00",
        ]
    );
    assert_eq!(
        db.lines(
            "select \"date\", sessions, converted_sessions, new_subscriptions, revenue_usd
             from analytics.mart_daily_kpis order by 1"
        ),
        vec!["2024-03-01|1|1|1|10.00", "2024-03-02|1|1|1|10.00"]
    );
}

// ------------------------------------------------------------ mart_funnel_conversions

#[test]
fn funnel_conversions_have_one_row_per_live_session() {
    let db = raw_db("fc_sessions");
    db.exec(
        &[
            funnel("f1", "Quiz"),
            funnel("f_del", "Gone"),
            delete("raw_funnelfox.funnels", "id", "f_del"),
            session_full(
                "s1",
                "p1",
                "2024-03-01 10:00:00",
                Some("f1"),
                None,
                Some("US"),
            ),
            session_full(
                "s2",
                "p2",
                "2024-03-01 23:30:00",
                Some("f_del"),
                None,
                Some("CA"),
            ),
            session_full(
                "s3",
                "p3",
                "2024-03-01 12:00:00",
                Some("f1"),
                None,
                Some("US"),
            ),
            delete("raw_funnelfox.sessions", "id", "s3"),
            session("s4", "p4", "2024-03-02 00:15:00"),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select session_id, session_date, {}, profile_id, funnel_id, funnel_title, country,
                    converted, conversions, revenue_usd, converted_at, time_to_conversion_hours,
                    had_purchase, activated_in_app
             from analytics.mart_funnel_conversions order by session_id collate \"C\"",
            utc("session_created_at")
        )),
        vec![
            "s1|2024-03-01|2024-03-01 10:00:00|p1|f1|Quiz|US|0|0|∅|∅|∅|f|f",
            "s2|2024-03-01|2024-03-01 23:30:00|p2|f_del|∅|CA|0|0|∅|∅|∅|f|f",
            "s4|2024-03-02|2024-03-02 00:15:00|p4|∅|∅|∅|0|0|∅|∅|∅|f|f",
        ]
    );
}

#[test]
fn conversions_revenue_and_time_to_conversion() {
    let db = raw_db("fc_conversions");
    db.exec(
        &[
            // sA acquires two subscriptions: revenue 10.00 + 12.34, converted at the first.
            session("sA", "pA", "2024-03-01 10:00:00"),
            paid("A1", "pA", 1000, "usd", "2024-03-01 12:00:00", None),
            paid("A2", "pA", 500, "eur", "2024-03-01 11:00:00", Some(1234)),
            // sB: one subscription without revenue_usd: revenue_usd null, still converted.
            session("sB", "pB", "2024-03-01 10:00:00"),
            paid("B1", "pB", 500, "eur", "2024-03-02 12:30:00", None),
            // sC: null revenue_usd skipped; 18 s = 0.005 h rounds away from zero to 0.01.
            session("sC", "pC", "2024-03-01 10:00:00"),
            paid("C1", "pC", 500, "eur", "2024-03-01 10:00:18", None),
            paid("C2", "pC", 500, "usd", "2024-03-01 10:30:00", None),
            // sD: fractional seconds are kept: 17.5 s = 0.00486 h rounds to 0.00.
            session("sD", "pD", "2024-03-01 10:00:00"),
            paid("D1", "pD", 1000, "usd", "2024-03-01 10:00:17.5", None),
            // sE: across New York's DST change (2024-03-10 07:00 UTC): 2 hours, not 3.
            session("sE", "pE", "2024-03-10 06:00:00"),
            paid("E1", "pE", 1000, "usd", "2024-03-10 08:00:00", None),
            // sF2 is the acquisition session; sF (earlier, same profile) is not converted.
            session("sF", "pF", "2024-03-01 09:00:00"),
            session("sF2", "pF", "2024-03-01 09:30:00"),
            paid("F1", "pF", 1000, "usd", "2024-03-01 10:15:00", None),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select session_id, converted, conversions, revenue_usd, {}, time_to_conversion_hours, had_purchase
             from analytics.mart_funnel_conversions order by session_id collate \"C\"",
            utc("converted_at")
        )),
        vec![
            "sA|1|2|22.34|2024-03-01 11:00:00|1.00|t",
            "sB|1|1|∅|2024-03-02 12:30:00|26.50|t",
            "sC|1|2|5.00|2024-03-01 10:00:18|0.01|t",
            "sD|1|1|10.00|2024-03-01 10:00:17|0.00|t",
            "sE|1|1|10.00|2024-03-10 08:00:00|2.00|t",
            "sF|0|0|∅|∅|∅|t",
            "sF2|1|1|10.00|2024-03-01 10:15:00|0.75|t",
        ]
    );
    assert_eq!(
        db.value(
            "select converted_at = '2024-03-01 10:00:17.5+00'::timestamptz
             from analytics.mart_funnel_conversions where session_id = 'sD'"
        ),
        Some("t".into())
    );
}

#[test]
fn had_purchase_is_any_new_subscription_of_the_profile() {
    let db = raw_db("fc_had_purchase");
    db.exec(
        &[
            // pH: the session before the charge converts, the one after only had_purchase.
            session("h1", "pH", "2024-03-01 09:00:00"),
            session("h2", "pH", "2024-03-01 11:00:00"),
            paid("H", "pH", 1000, "usd", "2024-03-01 10:00:00", None),
            // pI: sandbox only.
            session("i1", "pI", "2024-03-01 09:00:00"),
            charge("ch_I", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub_full(
                "I",
                "pI",
                Some("ch_I"),
                Some("2024-03-01 10:00:00"),
                Some(true),
                None,
            ),
            // pJ: failed charge.
            session("j1", "pJ", "2024-03-01 09:00:00"),
            charge("ch_J", 1000, "usd", "failed", "2024-03-01 10:00:00"),
            sub("J", "pJ", "ch_J", Some("2024-03-01 10:00:00")),
            // pK: new subscription without acquisition session.
            session("k1", "pK", "2024-03-01 11:00:00"),
            paid("K", "pK", 1000, "usd", "2024-03-01 10:00:00", None),
            // pL's subscription is a duplicate of pM's (later created_at).
            session("l1", "pL", "2024-03-01 09:00:00"),
            session("m1", "pM", "2024-03-01 09:00:00"),
            charge("ch_LM", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub("L", "pL", "ch_LM", Some("2024-03-01 10:00:00")),
            sub("M", "pM", "ch_LM", Some("2024-03-01 09:59:00")),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select session_id, converted, had_purchase from analytics.mart_funnel_conversions
             order by session_id collate \"C\""
        ),
        vec!["h1|1|t", "h2|0|t", "i1|0|f", "j1|0|f", "k1|0|t", "l1|0|f", "m1|1|t"]
    );
}

#[test]
fn activated_in_app_follows_the_identity_rule() {
    let db = raw_db("fc_identity");
    let at = "2024-03-01 10:00:00";
    let later = "2024-03-01 12:00:00";
    db.exec(
        &[
            // user_id = profile_id, at or after created_at.
            session("s_uid", "p_uid", at),
            event("e1", Some("p_uid"), None, later),
            session("s_at", "p_at", at),
            event("e2", Some("p_at"), None, at),
            session("s_before", "p_before", at),
            event("e3", Some("p_before"), None, "2024-03-01 09:59:59"),
            // user_id is compared exactly.
            session("s_case", "p_case", at),
            event("e4", Some("P_CASE"), None, later),
            // user_id null: email, in any case.
            session_email("s_mail", "p_mail", at, Some("Ann@Example.COM")),
            event("e5", None, Some("ann@example.com"), later),
            session_email("s_mail_at", "p_mail_at", at, Some("dee@x.com")),
            event("e14", None, Some("dee@x.com"), at),
            session_email("s_mail_before", "p_mail_before", at, Some("early@x.com")),
            event("e6", None, Some("EARLY@x.com"), "2024-03-01 09:00:00"),
            // user_id set but another profile: the email does not count.
            session_email("s_other", "p_other", at, Some("bob@x.com")),
            event("e7", Some("someone_else"), Some("bob@x.com"), later),
            // Empty or null emails never match.
            session_email("s_empty", "p_empty", at, Some("")),
            event("e8", None, Some(""), later),
            session_email("s_null", "p_null", at, None),
            event("e9", None, None, later),
            // The session's own email: a sibling session's email does not count.
            session_email("s_sib_none", "p_sib", at, None),
            session_email("s_sib_mail", "p_sib", at, Some("cat@x.com")),
            event("e10", None, Some("cat@x.com"), later),
            // A deleted event does not exist.
            session("s_del", "p_del", at),
            event("e11", Some("p_del"), None, later),
            delete("raw_amplitude.events", "uuid", "e11"),
            // One early and one later event: activated.
            session("s_multi", "p_multi", at),
            event("e12", Some("p_multi"), None, "2024-03-01 09:00:00"),
            event("e13", Some("p_multi"), None, "2024-03-01 10:00:01"),
            // One email in three spellings, the latest event in the last: one
            // identity (int_app_activity folds the spellings after aggregating
            // them), activated.
            session_email("s_spelt", "p_spelt", at, Some("Eve@x.com")),
            event("e15", None, Some("eve@x.com"), "2024-03-01 09:00:00"),
            event("e16", None, Some("EVE@x.com"), "2024-03-01 09:30:00"),
            event("e17", None, Some("eVe@X.com"), later),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select session_id, activated_in_app from analytics.mart_funnel_conversions
             order by session_id collate \"C\""
        ),
        vec![
            "s_at|t",
            "s_before|f",
            "s_case|f",
            "s_del|f",
            "s_empty|f",
            "s_mail|t",
            "s_mail_at|t",
            "s_mail_before|f",
            "s_multi|t",
            "s_null|f",
            "s_other|f",
            "s_sib_mail|t",
            "s_sib_none|f",
            "s_spelt|t",
            "s_uid|t",
        ]
    );
}

/// Emails match as the database's lower() compares them (docs/marts.md, "Identity
/// in the app"), also outside ASCII and in a collation whose lower() of ASCII is
/// not ASCII's: int_app_activity and the mart take a shortcut for ASCII emails
/// that must give the same text.
#[test]
fn activated_in_app_matches_emails_as_the_database_lowers_them() {
    let at = "2024-03-01 10:00:00";
    let later = "2024-03-01 12:00:00";
    let rows = [
        session_email("s_ascii", "p_ascii", at, Some("Ida@Example.COM")),
        event("e1", None, Some("ida@example.com"), later),
        session_email("s_accent", "p_accent", at, Some("ÉLODIE@x.com")),
        event("e2", None, Some("élodie@X.com"), later),
        session_email("s_same", "p_same", at, Some("IDA@x.com")),
        event("e3", None, Some("IDA@X.com"), later),
    ]
    .concat();
    let activated = |db: &TestDb| {
        run_marts(db);
        db.lines(
            "select session_id, activated_in_app from analytics.mart_funnel_conversions
             order by session_id collate \"C\"",
        )
    };
    let db = raw_db("fc_email_en");
    db.exec(&rows);
    assert_eq!(
        activated(&db),
        vec!["s_accent|t", "s_ascii|t", "s_same|t"],
        "en-US lowers every letter here to its small letter"
    );
    // Turkish lowers I to dotless ı: 'Ida@Example.COM' is 'ıda@example.com', which
    // is not 'ida@example.com', and 'ÉLODIE' is 'élodıe'.
    let db = TestDb::with_icu_locale("fc_email_tr", "tr-TR");
    db.exec(&contract::ddl());
    db.exec(&rows);
    assert_eq!(
        db.value("select lower('I')").as_deref(),
        Some("ı"),
        "the database lowers as Turkish"
    );
    assert_eq!(activated(&db), vec!["s_accent|f", "s_ascii|f", "s_same|t"]);
}

/// A run after a load of late-arriving, soft-deleted (by an upsert or by
/// target-postgres' activate_version, which sets only `_sdc_deleted_at`),
/// re-identified and retimed events gives the rows of a `--full-refresh`
/// (docs/raw-contract.md: every mart equals a full rebuild from the raw tables).
#[test]
fn app_activity_after_a_load_equals_a_full_rebuild() {
    let db = raw_db("fc_increment");
    let at = "2024-03-01 10:00:00";
    let early = "2024-03-01 09:00:00";
    let later = "2024-03-01 12:00:00";
    db.exec(
        &[
            // Late-arriving: only an early event, then a late one after created_at.
            session("s_late", "p_late", at),
            event("a1", Some("p_late"), None, early),
            // Soft-deleted latest event, an earlier one left: no longer activated.
            session("s_del", "p_del", at),
            event("b1", Some("p_del"), None, early),
            event("b2", Some("p_del"), None, later),
            // The only event soft-deleted by the loader's activate_version (which
            // sets _sdc_deleted_at only): the identity's row goes.
            session_email("s_gone", "p_gone", at, Some("gone@x.com")),
            event("c1", None, Some("Gone@x.com"), later),
            // The latest event moved to another user_id by an upsert.
            session("s_moved", "p_moved", at),
            session("s_target", "p_target", at),
            event("d1", Some("p_moved"), None, early),
            event("d2", Some("p_moved"), None, later),
            // The latest event retimed before created_at.
            session("s_retimed", "p_retimed", at),
            event("f1", Some("p_retimed"), None, later),
            // An earlier (not latest) event deleted: nothing changes.
            session("s_same", "p_same", at),
            event("g1", Some("p_same"), None, early),
            event("g2", Some("p_same"), None, later),
            // Ties: two events at the latest time, one deleted.
            session("s_tie", "p_tie", at),
            event("h1", Some("p_tie"), None, later),
            event("h2", Some("p_tie"), None, later),
            // An event without identity gains an email.
            session_email("s_mail", "p_mail", at, Some("new@x.com")),
            event("i1", None, Some(""), later),
        ]
        .concat(),
    );
    run_marts(&db);
    let activated = "select session_id, activated_in_app from analytics.mart_funnel_conversions \
                     order by session_id collate \"C\"";
    let activity =
        "select by_email, identity_key, last_event_time from analytics.int_app_activity \
                    order by by_email, identity_key collate \"C\"";
    assert_eq!(
        db.lines(activated),
        vec![
            "s_del|t",
            "s_gone|t",
            "s_late|f",
            "s_mail|f",
            "s_moved|t",
            "s_retimed|t",
            "s_same|t",
            "s_target|f",
            "s_tie|t",
        ]
    );
    // The next load, in a later transaction (later loader times).
    let upsert = |uuid: &str, set: &str| {
        format!(
            "update raw_amplitude.events set {set}, _sdc_batched_at = clock_timestamp() at time zone 'utc' \
             where uuid = {};\n",
            q(uuid)
        )
    };
    let activate_version_delete = |uuid: &str| {
        format!(
            "update raw_amplitude.events set _sdc_deleted_at = clock_timestamp() at time zone 'utc' \
             where uuid = {};\n",
            q(uuid)
        )
    };
    db.exec(
        &[
            event("a2", Some("p_late"), None, later),
            upsert(
                "b2",
                "_sdc_deleted_at = clock_timestamp() at time zone 'utc'",
            ),
            activate_version_delete("c1"),
            upsert("d2", "user_id = 'p_target'"),
            upsert("f1", "event_time = timestamp '2024-03-01 08:00:00'"),
            activate_version_delete("g1"),
            activate_version_delete("h1"),
            upsert("i1", "email = 'NEW@x.com'"),
        ]
        .concat(),
    );
    run_marts(&db);
    let expected = vec![
        "s_del|f",
        "s_gone|f",
        "s_late|t",
        "s_mail|t",
        "s_moved|f",
        "s_retimed|f",
        "s_same|t",
        "s_target|t",
        "s_tie|t",
    ];
    assert_eq!(db.lines(activated), expected);
    let after_load = db.lines(activity);
    // The same rows as a full rebuild.
    let target = tempfile::tempdir().unwrap();
    let out = db.cli(&[
        "run",
        "--full-refresh",
        "--project-dir",
        &project_dir(),
        "--target-path",
        target.path().to_str().unwrap(),
    ]);
    assert_code(&out, 0);
    assert_eq!(db.lines(activated), expected);
    let rebuilt = db.lines(activity);
    assert_eq!(after_load, rebuilt);
    // A run with nothing new changes nothing.
    run_marts(&db);
    assert_eq!(db.lines(activity), rebuilt);
}

/// A table of int_app_activity from when it was incremental (two more columns,
/// rows of an earlier load): a plain `run` replaces it with the rebuilt table.
#[test]
fn app_activity_of_the_incremental_shape_is_replaced_by_a_run() {
    let db = raw_db("fc_old_shape");
    db.exec(
        &[
            session("s1", "p1", "2024-03-01 10:00:00"),
            event("e1", Some("p1"), None, "2024-03-01 12:00:00"),
            "create schema analytics;
             create table analytics.int_app_activity (by_email boolean, identity_key text,
                 last_event_time timestamp, last_event_hash integer, loaded_through timestamp);
             insert into analytics.int_app_activity values
                 (false, 'p1', timestamp '2024-03-01 09:00:00', 0, timestamp '2030-01-01');"
                .to_string(),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select column_name from information_schema.columns \
             where table_schema = 'analytics' and table_name = 'int_app_activity' \
             order by ordinal_position"
        ),
        vec!["by_email", "identity_key", "last_event_time"]
    );
    assert_eq!(
        db.lines("select session_id, activated_in_app from analytics.mart_funnel_conversions"),
        vec!["s1|t"]
    );
}

#[test]
fn sum_of_conversions_equals_subscriptions_with_a_session() {
    let db = raw_db("fc_consistency");
    db.exec(
        &[
            // p1: one session acquires two subscriptions.
            session("s1", "p1", "2024-03-01 09:00:00"),
            paid("n1a", "p1", 1000, "usd", "2024-03-01 10:00:00", None),
            paid("n1b", "p1", 2000, "usd", "2024-03-01 11:00:00", None),
            // p2: no session at all.
            paid("n2", "p2", 1000, "usd", "2024-03-01 10:00:00", None),
            // p3: only a later session.
            session("s3", "p3", "2024-03-01 12:00:00"),
            paid("n3", "p3", 1000, "eur", "2024-03-01 10:00:00", Some(1100)),
            // p4: duplicates of one charge.
            session("s4", "p4", "2024-03-01 09:00:00"),
            charge("ch4", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub("n4a", "p4", "ch4", Some("2024-03-01 10:00:00")),
            sub("n4b", "p4", "ch4", Some("2024-03-01 10:00:01")),
            // p5: sandbox.
            session("s5", "p5", "2024-03-01 09:00:00"),
            charge("ch5", 1000, "usd", "succeeded", "2024-03-01 10:00:00"),
            sub_full("n5", "p5", Some("ch5"), None, Some(true), None),
            // p6: two sessions around the charge.
            session("s6a", "p6", "2024-03-01 09:00:00"),
            session("s6b", "p6", "2024-03-01 10:30:00"),
            paid("n6", "p6", 1000, "jpy", "2024-03-01 10:00:00", Some(700)),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(
            "select subscription_id, session_id from analytics.mart_new_subscriptions
             order by subscription_id collate \"C\""
        ),
        vec!["n1a|s1", "n1b|s1", "n2|∅", "n3|∅", "n4a|s4", "n6|s6a"]
    );
    assert_eq!(
        db.lines(
            "select session_id, conversions from analytics.mart_funnel_conversions
             order by session_id collate \"C\""
        ),
        vec!["s1|2", "s3|0", "s4|1", "s5|0", "s6a|1", "s6b|0"]
    );
    assert_eq!(
        db.lines(
            "select (select sum(conversions) from analytics.mart_funnel_conversions),
                    (select count(*) from analytics.mart_new_subscriptions where session_id is not null)"
        ),
        vec!["4|4"]
    );
}

// ------------------------------------------------------------------ mart_daily_kpis

const KPI_COLUMNS: &str =
    "\"date\", sessions, converted_sessions, conversion_rate, new_subscriptions, revenue_usd, \
                           ad_spend_usd, cac_usd, roas, failed_charges, top_failure_code";

#[test]
fn daily_kpis_have_one_row_per_day_with_any_activity() {
    let db = raw_db("kpi_days");
    db.exec(
        &[
            // 03-01: sessions only; s1 converts the next day.
            session("s1", "p1", "2024-03-01 10:00:00"),
            session("s2", "p2", "2024-03-01 11:00:00"),
            session("s3", "p3", "2024-03-01 12:00:00"),
            // 03-02: a new subscription, no session, no spend.
            paid("n1", "p1", 1000, "usd", "2024-03-02 09:00:00", None),
            // 03-03: spend only.
            ad("2024-03-03", "ad1", Some("12.50")),
            ad("2024-03-03", "ad2", Some("0")),
            // 03-04: a zero-spend row; 03-05: a null-spend row.
            ad("2024-03-04", "ad1", Some("0")),
            ad("2024-03-05", "ad1", None),
            // 03-06: a pending charge; 03-07: a failed one.
            charge("ch_pending", 1000, "usd", "pending", "2024-03-06 10:00:00"),
            failed_charge("ch_failed", Some("card_declined"), "2024-03-07 10:00:00"),
            // 03-08: the succeeded charge of a sandbox subscription.
            charge(
                "ch_sandbox",
                1000,
                "usd",
                "succeeded",
                "2024-03-08 10:00:00",
            ),
            sub_full(
                "n_sandbox",
                "p9",
                Some("ch_sandbox"),
                None,
                Some(true),
                None,
            ),
            // 03-09: only deleted rows: no day.
            session("s_del", "p_del", "2024-03-09 10:00:00"),
            delete("raw_funnelfox.sessions", "id", "s_del"),
            charge("ch_del", 1000, "usd", "failed", "2024-03-09 10:00:00"),
            delete("raw_stripe.charges", "id", "ch_del"),
            ad("2024-03-09", "ad1", Some("100")),
            delete_ad("2024-03-09", "ad1"),
            paid("n_del", "p_del", 1000, "usd", "2024-03-09 11:00:00", None),
            delete("raw_funnelfox.subscriptions", "id", "n_del"),
            delete("raw_stripe.charges", "id", "ch_n_del"),
            // 03-10: a session; the day's ad row is deleted.
            session("s10", "p10", "2024-03-10 10:00:00"),
            ad("2024-03-10", "ad1", Some("100")),
            delete_ad("2024-03-10", "ad1"),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select {KPI_COLUMNS} from analytics.mart_daily_kpis order by 1"
        )),
        vec![
            "2024-03-01|3|1|0.3333|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-02|0|0|∅|1|10.00|0.00|0.00|∅|0|∅",
            "2024-03-03|0|0|∅|0|0.00|12.50|∅|0.0000|0|∅",
            "2024-03-04|0|0|∅|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-05|0|0|∅|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-06|0|0|∅|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-07|0|0|∅|0|0.00|0.00|∅|∅|1|card_declined",
            "2024-03-08|0|0|∅|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-10|1|0|0.0000|0|0.00|0.00|∅|∅|0|∅",
        ]
    );
}

#[test]
fn daily_ratios_use_the_rounded_row_values_and_round_half_away_from_zero() {
    let db = raw_db("kpi_ratios");
    let mut fixture = String::new();
    // 04-01: 32 sessions, one converted the same day: 1/32 = 0.03125 -> 0.0313;
    // spend 3.125 -> 3.13; cac 3.13; roas 10.00 / 3.13 = 3.19488 -> 3.1949
    // (10 / 3.125 would be 3.2000).
    for i in 0..32 {
        fixture += &session(
            &format!("q{i:02}"),
            &format!("pq{i:02}"),
            "2024-04-01 10:00:00",
        );
    }
    fixture += &paid("n01", "pq00", 1000, "usd", "2024-04-01 11:00:00", None);
    fixture += &ad("2024-04-01", "ad1", Some("3.125"));
    // 04-02: spend 0.1249 + 0.1249 = 0.2498 -> 0.25; cac 0.25 / 2 = 0.125 -> 0.13 (not
    // 0.2498 / 2 -> 0.12); roas 2.00 / 0.25 = 8.0000 (not 8.0064).
    fixture += &paid("n02a", "p2a", 100, "usd", "2024-04-02 10:00:00", None);
    fixture += &paid("n02b", "p2b", 100, "usd", "2024-04-02 11:00:00", None);
    fixture += &ad("2024-04-02", "ad1", Some("0.1249"));
    fixture += &ad("2024-04-02", "ad2", Some("0.1249"));
    // 04-03: roas 1.00 / 32.00 = 0.03125 -> 0.0313.
    fixture += &paid("n03", "p3", 100, "usd", "2024-04-03 10:00:00", None);
    fixture += &ad("2024-04-03", "ad1", Some("32"));
    // 04-04: spend 0.004 rounds to 0.00: roas null, cac 0.00.
    fixture += &paid("n04", "p4", 500, "usd", "2024-04-04 10:00:00", None);
    fixture += &ad("2024-04-04", "ad1", Some("0.004"));
    // 04-05: a null revenue_usd is skipped: revenue 1.00; cac 5.00 / 2; roas 1 / 5.
    fixture += &paid("n05a", "p5a", 500, "eur", "2024-04-05 10:00:00", None);
    fixture += &paid("n05b", "p5b", 100, "usd", "2024-04-05 10:00:00", None);
    fixture += &ad("2024-04-05", "ad1", Some("5"));
    // 04-06: all revenue_usd null: revenue 0.00, roas 0.0000.
    fixture += &paid("n06", "p6", 500, "eur", "2024-04-06 10:00:00", None);
    fixture += &ad("2024-04-06", "ad1", Some("5"));
    db.exec(&fixture);
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select {KPI_COLUMNS} from analytics.mart_daily_kpis order by 1"
        )),
        vec![
            "2024-04-01|32|1|0.0313|1|10.00|3.13|3.13|3.1949|0|∅",
            "2024-04-02|0|0|∅|2|2.00|0.25|0.13|8.0000|0|∅",
            "2024-04-03|0|0|∅|1|1.00|32.00|32.00|0.0313|0|∅",
            "2024-04-04|0|0|∅|1|5.00|0.00|0.00|∅|0|∅",
            "2024-04-05|0|0|∅|2|1.00|5.00|2.50|0.2000|0|∅",
            "2024-04-06|0|0|∅|1|0.00|5.00|5.00|0.0000|0|∅",
        ]
    );
}

#[test]
fn failed_charges_and_top_failure_code() {
    let db = raw_db("kpi_failures");
    let d1 = "2024-05-01 12:00:00";
    db.exec(
        &[
            // 05-01: 8 live failed charges; 'a_code' and 'B_code' tie at 2: byte order
            // picks 'B_code' (en-US would pick 'a_code'); null codes are not codes.
            failed_charge("f1", Some("a_code"), d1),
            failed_charge("f2", Some("a_code"), d1),
            failed_charge("f3", Some("B_code"), d1),
            failed_charge("f4", Some("B_code"), d1),
            failed_charge("f5", Some("c"), d1),
            failed_charge("f6", None, d1),
            failed_charge("f7", None, d1),
            failed_charge("f8", None, d1),
            // Deleted failed charges, and codes on charges that did not fail, do not count.
            failed_charge("f9", Some("c"), d1),
            failed_charge("f10", Some("c"), d1),
            delete("raw_stripe.charges", "id", "f9"),
            delete("raw_stripe.charges", "id", "f10"),
            charge_with_code("ok1", "succeeded", Some("zzz"), d1),
            charge_with_code("ok2", "succeeded", Some("zzz"), d1),
            charge_with_code("ok3", "pending", Some("zzz"), d1),
            // 05-02 ends at 23:59:59 UTC; 05-03 starts at 00:00:00 UTC.
            failed_charge("g1", None, "2024-05-02 12:00:00"),
            failed_charge("g2", None, "2024-05-02 12:00:00"),
            failed_charge("g3", Some("y"), "2024-05-02 23:59:59"),
            failed_charge("h1", Some("x"), "2024-05-03 00:00:00"),
            // 05-04: failed charges without code.
            failed_charge("i1", None, "2024-05-04 08:00:00"),
            failed_charge("i2", None, "2024-05-04 09:00:00"),
        ]
        .concat(),
    );
    run_marts(&db);
    assert_eq!(
        db.lines(&format!(
            "select {KPI_COLUMNS} from analytics.mart_daily_kpis order by 1"
        )),
        vec![
            "2024-05-01|0|0|∅|0|0.00|0.00|∅|∅|8|B_code",
            "2024-05-02|0|0|∅|0|0.00|0.00|∅|∅|3|y",
            "2024-05-03|0|0|∅|0|0.00|0.00|∅|∅|1|x",
            "2024-05-04|0|0|∅|0|0.00|0.00|∅|∅|2|∅",
        ]
    );
}

// ------------------------------------------------------------- time zones, schemas

/// A fixture touching every mart and every UTC-midnight edge.
fn mixed_fixture() -> String {
    [
        funnel("f1", "Quiz"),
        session_full(
            "s1",
            "p1",
            "2024-03-01 23:59:59",
            Some("f1"),
            Some("a@x.com"),
            Some("US"),
        ),
        session_full(
            "s2",
            "p1",
            "2024-03-02 00:00:00",
            Some("f1"),
            None,
            Some("US"),
        ),
        session_full(
            "s3",
            "p2",
            "2024-03-02 10:45:00",
            None,
            Some("B@x.com"),
            Some("DE"),
        ),
        session_full(
            "s4",
            "p3",
            "2024-03-09 23:30:00",
            Some("f1"),
            None,
            Some("US"),
        ),
        paid("n1", "p1", 1999, "usd", "2024-03-02 00:00:00", None),
        paid(
            "n2",
            "p2",
            1500,
            "jpy",
            "2024-03-02 23:59:59.999",
            Some(1012),
        ),
        paid("n3", "p3", 1000, "eur", "2024-03-10 06:30:00", Some(1090)),
        paid("n4", "p4", 1000, "usd", "2024-03-10 07:30:00", None),
        failed_charge("x1", Some("card_declined"), "2024-03-02 23:59:59"),
        failed_charge("x2", Some("expired_card"), "2024-03-03 00:00:00"),
        event("e1", None, Some("b@X.com"), "2024-03-02 11:00:00"),
        event("e2", Some("p3"), None, "2024-03-10 00:00:00"),
        ad("2024-03-02", "ad1", Some("12.345")),
        ad("2024-03-03", "ad1", Some("7")),
    ]
    .concat()
}

#[test]
fn same_rows_under_any_timezone() {
    let db = raw_db("tz_any");
    db.exec(&mixed_fixture());
    run_marts(&db);
    let target = tempfile::tempdir().unwrap();
    let out = db.cli(&[
        "compile",
        "--project-dir",
        &project_dir(),
        "--target-path",
        target.path().to_str().unwrap(),
    ]);
    assert_code(&out, 0);
    for tz in ["Pacific/Chatham", "America/Adak", "UTC"] {
        db.exec(&format!("SET TimeZone = '{tz}'"));
        for mart in MARTS {
            let path = target.path().join(format!(
                "compiled/reluvia_analytics/models/marts/{mart}.sql"
            ));
            let sql = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let sql = sql.trim().trim_end_matches(';');
            let built: usize = db
                .value(&format!("select count(*) from analytics.{mart}"))
                .unwrap()
                .parse()
                .unwrap();
            assert!(built > 0, "{mart} is empty");
            assert_eq!(
                db.value(&format!("select count(*) from ({sql}\n) q"))
                    .unwrap()
                    .parse::<usize>()
                    .unwrap(),
                built,
                "{mart} under {tz}"
            );
            assert_eq!(
                db.lines(&format!(
                    "(select * from analytics.{mart} except all select * from ({sql}\n) q)
                     union all
                     (select * from ({sql}\n) q except all select * from analytics.{mart})"
                )),
                Vec::<String>::new(),
                "{mart} under TimeZone {tz} differs from the built table"
            );
        }
    }
    db.exec("SET TimeZone = 'UTC'");
    assert_eq!(
        db.lines(&format!(
            "select {KPI_COLUMNS} from analytics.mart_daily_kpis order by 1"
        )),
        vec![
            "2024-03-01|1|0|0.0000|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-02|2|2|1.0000|2|30.11|12.35|6.18|2.4381|1|card_declined",
            "2024-03-03|0|0|∅|0|0.00|7.00|∅|0.0000|1|expired_card",
            "2024-03-09|1|1|1.0000|0|0.00|0.00|∅|∅|0|∅",
            "2024-03-10|0|0|∅|2|20.90|0.00|0.00|∅|0|∅",
        ]
    );
    assert_eq!(
        db.lines(
            "select session_id, session_date, converted, time_to_conversion_hours, activated_in_app
             from analytics.mart_funnel_conversions order by session_id collate \"C\""
        ),
        vec![
            "s1|2024-03-01|0|∅|f",
            "s2|2024-03-02|1|0.00|f",
            "s3|2024-03-02|1|13.25|t",
            "s4|2024-03-09|1|7.00|t",
        ]
    );
}

#[test]
fn marts_build_in_the_target_schema() {
    let db = raw_db("schema_env");
    db.exec(&mixed_fixture());
    let target = tempfile::tempdir().unwrap();
    let out = db
        .cmd()
        .env("RELUVIA_TRANSFORM_SCHEMA", "dev_alice")
        .args([
            "run",
            "--project-dir",
            &project_dir(),
            "--target-path",
            target.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_code(&out, 0);
    for mart in MARTS {
        assert_eq!(
            db.value(&format!(
                "select to_regclass('dev_alice.{mart}') is not null"
            )),
            Some("t".into())
        );
        assert_eq!(
            db.value(&format!("select to_regclass('analytics.{mart}') is null")),
            Some("t".into())
        );
    }
    // The marts read each other in dev_alice.
    assert_eq!(
        db.lines(
            "select (select sum(conversions) from dev_alice.mart_funnel_conversions),
                    (select sum(new_subscriptions) from dev_alice.mart_daily_kpis)"
        ),
        vec!["3|4"]
    );
}

/// Plan nodes (and their relation names) under `node`, `node` included.
fn plan_relations(node: &Value, out: &mut Vec<String>) {
    if let Some(r) = node.get("Relation Name").and_then(Value::as_str) {
        out.push(r.to_string());
    }
    for child in node
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        plan_relations(child, out);
    }
}

/// Nested loops and subplans of a plan tree, each with the relations it reads.
fn nested_loops(node: &Value, out: &mut Vec<(String, Vec<String>)>) {
    let kind = node["Node Type"].as_str().unwrap_or("").to_string();
    let subplan = node
        .get("Subplan Name")
        .and_then(Value::as_str)
        .map(str::to_string);
    if kind == "Nested Loop" || subplan.is_some() {
        let mut rels = Vec::new();
        plan_relations(node, &mut rels);
        out.push((subplan.unwrap_or(kind), rels));
    }
    for child in node
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        nested_loops(child, out);
    }
}

/// Scale: the identity join must be equi-joinable. On a year's worth of shape (many
/// events per session, analyzed tables) the events are scanned once
/// (int_app_activity) and no nested loop or subplan reads them or their aggregate.
#[test]
fn funnel_conversions_plan_joins_events_without_nested_loops() {
    let db = raw_db("plan_events");
    db.exec(
        "insert into raw_funnelfox.sessions (id, created_at, profile_id, email, funnel_id, country,
             _sdc_extracted_at, _sdc_received_at, _sdc_batched_at, _sdc_sequence)
         select 's' || i, timestamp '2024-01-01' + i * interval '1 minute', 'p' || (i / 2),
                case when i % 3 = 0 then null else 'u' || (i / 2) || '@x.com' end, 'f' || (i % 7), 'US',
                now(), now(), now(), 1
         from generate_series(1, 20000) i;
         insert into raw_stripe.charges (id, amount, currency, status, created,
             _sdc_extracted_at, _sdc_received_at, _sdc_batched_at, _sdc_sequence)
         select 'ch' || i, 1000, 'usd', 'succeeded', timestamp '2024-01-01' + i * interval '10 minutes',
                now(), now(), now(), 1
         from generate_series(1, 2000) i;
         insert into raw_funnelfox.subscriptions (id, profile_id, psp_id, created_at,
             _sdc_extracted_at, _sdc_received_at, _sdc_batched_at, _sdc_sequence)
         select 'sub' || i, 'p' || (i * 5), 'ch' || i, timestamp '2024-01-01' + i * interval '10 minutes',
                now(), now(), now(), 1
         from generate_series(1, 2000) i;
         insert into raw_amplitude.events (uuid, event_time, user_id, email,
             _sdc_extracted_at, _sdc_received_at, _sdc_batched_at, _sdc_sequence)
         select 'e' || i, timestamp '2024-01-01' + i * interval '3 seconds',
                case when i % 3 = 0 then null else 'p' || (i % 10000) end, 'U' || (i % 10000) || '@x.com',
                now(), now(), now(), 1
         from generate_series(1, 300000) i;",
    );
    // Plan only, never run: a nested loop over the events would take hours.
    db.exec("analyze");
    let target = tempfile::tempdir().unwrap();
    let out = db.cli(&[
        "compile",
        "--project-dir",
        &project_dir(),
        "--target-path",
        target.path().to_str().unwrap(),
    ]);
    assert_code(&out, 0);
    let compiled = |model: &str| {
        let folder = if model.starts_with("int_") {
            "intermediate"
        } else {
            "marts"
        };
        let path = target.path().join(format!(
            "compiled/reluvia_analytics/models/{folder}/{model}.sql"
        ));
        let sql =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        sql.trim().trim_end_matches(';').to_string()
    };
    let over_events = |sql: &str| {
        let plan = db.value(&format!("explain (format json) {sql}")).unwrap();
        let plan: Value = serde_json::from_str(&plan).unwrap();
        let mut relations = Vec::new();
        plan_relations(&plan[0]["Plan"], &mut relations);
        let mut loops = Vec::new();
        nested_loops(&plan[0]["Plan"], &mut loops);
        loops.retain(|(_, rels)| {
            rels.iter()
                .any(|r| r == "events" || r == "int_app_activity")
        });
        (
            relations.iter().filter(|r| *r == "events").count(),
            loops,
            plan,
        )
    };
    // The events, aggregated in one scan per identity.
    let (scans, loops, plan) = over_events(&compiled("int_app_activity"));
    assert_eq!(scans, 1, "events are scanned once\n{plan:#}");
    assert!(
        loops.is_empty(),
        "nested loops or subplans over events: {loops:?}\n{plan:#}"
    );
    // With the model's session_settings, each parallel process aggregates its
    // share of the events (a partial aggregate), not the leader all of them.
    let model =
        std::fs::read_to_string(shipped_project().join("models/intermediate/int_app_activity.sql"))
            .unwrap();
    let tuple_cost = model
        .split("'parallel_tuple_cost': ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("int_app_activity sets parallel_tuple_cost");
    db.exec(&format!(
        "set jit = off; set work_mem = '64MB'; set enable_sort = off;
         set parallel_tuple_cost = {tuple_cost}; set enable_nestloop = off;"
    ));
    let (_, _, plan) = over_events(&compiled("int_app_activity"));
    db.exec("reset all");
    assert!(
        plan.to_string().contains("\"Partial Mode\":\"Partial\""),
        "no partial aggregate of the events\n{plan:#}"
    );
    // The upstream models, as the engine would have built them.
    db.exec(&format!(
        "create schema if not exists analytics;
         create table analytics.mart_new_subscriptions as {};
         analyze analytics.mart_new_subscriptions;
         create table analytics.int_app_activity as {};
         analyze analytics.int_app_activity;",
        compiled("mart_new_subscriptions"),
        compiled("int_app_activity")
    ));
    let (scans, loops, plan) = over_events(&compiled("mart_funnel_conversions"));
    assert_eq!(
        scans, 0,
        "the mart reads the aggregate, not the events\n{plan:#}"
    );
    assert!(
        loops.is_empty(),
        "nested loops or subplans over the events' aggregate: {loops:?}\n{plan:#}"
    );
}

// ------------------------------------------------------------ columns and docs

/// Columns of each mart with their type as information_schema names it (docs/marts.md).
const MART_COLUMNS: [(&str, &[(&str, &str)]); 3] = [
    (
        "mart_new_subscriptions",
        &[
            ("subscription_date", "date"),
            ("subscription_id", "text"),
            ("user_profile_id", "text"),
            ("stripe_charge_id", "text"),
            ("subscribed_at", "timestamp with time zone"),
            ("revenue", "numeric"),
            ("revenue_usd", "numeric"),
            ("currency", "text"),
            ("session_id", "text"),
            ("funnel_id", "text"),
            ("funnel_title", "text"),
            ("country", "text"),
            ("city", "text"),
            ("origin", "text"),
            ("payment_provider", "text"),
            ("is_sandbox", "boolean"),
        ],
    ),
    (
        "mart_funnel_conversions",
        &[
            ("session_date", "date"),
            ("session_id", "text"),
            ("session_created_at", "timestamp with time zone"),
            ("profile_id", "text"),
            ("funnel_id", "text"),
            ("funnel_title", "text"),
            ("country", "text"),
            ("converted", "integer"),
            ("conversions", "integer"),
            ("revenue_usd", "numeric"),
            ("converted_at", "timestamp with time zone"),
            ("time_to_conversion_hours", "numeric"),
            ("had_purchase", "boolean"),
            ("activated_in_app", "boolean"),
        ],
    ),
    (
        "mart_daily_kpis",
        &[
            ("date", "date"),
            ("sessions", "bigint"),
            ("converted_sessions", "bigint"),
            ("conversion_rate", "numeric"),
            ("new_subscriptions", "bigint"),
            ("revenue_usd", "numeric"),
            ("ad_spend_usd", "numeric"),
            ("cac_usd", "numeric"),
            ("roas", "numeric"),
            ("failed_charges", "bigint"),
            ("top_failure_code", "text"),
        ],
    ),
];

#[test]
fn marts_have_the_specified_columns_and_types_even_when_empty() {
    let db = raw_db("cols_types");
    run_marts(&db);
    for (mart, cols) in MART_COLUMNS {
        let expected: Vec<String> = cols.iter().map(|(c, t)| format!("{c}|{t}")).collect();
        assert_eq!(
            db.lines(&format!(
                "select column_name, data_type from information_schema.columns
                 where table_schema = 'analytics' and table_name = '{mart}' order by ordinal_position"
            )),
            expected,
            "{mart}"
        );
        assert_eq!(
            db.value(&format!(
                "select relkind from pg_class where oid = 'analytics.{mart}'::regclass"
            )),
            Some("r".into()),
            "{mart} is a table"
        );
        assert_eq!(
            db.value(&format!("select count(*) from analytics.{mart}")),
            Some("0".into())
        );
    }
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(shipped_project().join(path)).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names of the tests in a `data_tests:` (or `tests:`) list.
fn test_names(node: &Value) -> Vec<String> {
    let list = node.get("data_tests").or_else(|| node.get("tests"));
    list.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|t| match t {
                    Value::String(s) => s.clone(),
                    Value::Object(m) => m.keys().next().unwrap().clone(),
                    other => panic!("test {other}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The configuration of test `name` in a node's test list.
fn test_config<'a>(node: &'a Value, name: &str) -> &'a Value {
    let list = node
        .get("data_tests")
        .or_else(|| node.get("tests"))
        .unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find_map(|t| t.get(name))
        .unwrap_or_else(|| panic!("no {name} test"))
}

#[test]
fn every_mart_column_is_documented_and_tested_as_specified() {
    let doc = yaml("models/marts/schema.yml");
    let models = doc["models"].as_array().unwrap();
    for (mart, cols) in MART_COLUMNS {
        let model = models
            .iter()
            .find(|m| m["name"] == mart)
            .unwrap_or_else(|| panic!("{mart} undocumented"));
        assert!(
            model["description"].as_str().unwrap().len() > 40,
            "{mart} description"
        );
        let documented: Vec<&str> = model["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        let specified: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        assert_eq!(documented, specified, "{mart} columns");
        for c in model["columns"].as_array().unwrap() {
            assert!(
                !c["description"].as_str().unwrap_or("").trim().is_empty(),
                "{mart}.{} description",
                c["name"]
            );
        }
    }
    let column = |mart: &str, col: &str| -> Value {
        let model = models.iter().find(|m| m["name"] == mart).unwrap();
        model["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == col)
            .unwrap()
            .clone()
    };
    // unique + not_null on every key.
    for (mart, key) in [
        ("mart_new_subscriptions", "subscription_id"),
        ("mart_funnel_conversions", "session_id"),
        ("mart_daily_kpis", "date"),
    ] {
        let names = test_names(&column(mart, key));
        assert!(
            names.contains(&"unique".into()) && names.contains(&"not_null".into()),
            "{mart}.{key}: {names:?}"
        );
    }
    for (mart, col) in [
        ("mart_new_subscriptions", "subscription_date"),
        ("mart_new_subscriptions", "subscribed_at"),
        ("mart_new_subscriptions", "user_profile_id"),
        ("mart_new_subscriptions", "stripe_charge_id"),
        ("mart_new_subscriptions", "currency"),
        ("mart_funnel_conversions", "session_date"),
        ("mart_funnel_conversions", "profile_id"),
        ("mart_funnel_conversions", "converted"),
    ] {
        assert!(
            test_names(&column(mart, col)).contains(&"not_null".into()),
            "not_null on {mart}.{col}"
        );
    }
    let converted = column("mart_funnel_conversions", "converted");
    let accepted = test_config(&converted, "accepted_values");
    assert_eq!(accepted["values"], serde_json::json!([0, 1]));
    assert_eq!(accepted["quote"], Value::Bool(false));
    let session = column("mart_new_subscriptions", "session_id");
    let rel = test_config(&session, "relationships");
    assert_eq!(rel["to"], "ref('mart_funnel_conversions')");
    assert_eq!(rel["field"], "session_id");
}

#[test]
fn sources_declare_key_tests_and_freshness() {
    let doc = yaml("models/sources.yml");
    let sources = doc["sources"].as_array().unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "raw_funnelfox",
            "raw_stripe",
            "raw_amplitude",
            "raw_facebook"
        ]
    );
    let single_keys = [
        ("raw_funnelfox", "funnels", "id"),
        ("raw_funnelfox", "sessions", "id"),
        ("raw_funnelfox", "subscriptions", "id"),
        ("raw_stripe", "charges", "id"),
        ("raw_stripe", "subscriptions", "id"),
        ("raw_amplitude", "events", "uuid"),
        ("raw_facebook", "campaigns", "id"),
    ];
    for s in sources {
        let name = s["name"].as_str().unwrap();
        assert_eq!(s["schema"], name);
        assert!(
            !s["description"].as_str().unwrap_or("").is_empty(),
            "{name} description"
        );
        assert_eq!(s["loaded_at_field"], "_sdc_batched_at", "{name}");
        assert_eq!(
            s["freshness"],
            serde_json::json!({"warn_after": {"count": 26, "period": "hour"}, "error_after": {"count": 50, "period": "hour"}}),
            "{name}"
        );
    }
    let table = |src: &str, t: &str| -> Value {
        let s = sources.iter().find(|s| s["name"] == src).unwrap();
        s["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == t)
            .unwrap_or_else(|| panic!("{src}.{t}"))
            .clone()
    };
    let column = |t: &Value, c: &str| -> Value {
        t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == c)
            .unwrap_or_else(|| panic!("{c}"))
            .clone()
    };
    for (src, t, key) in single_keys {
        let names = test_names(&column(&table(src, t), key));
        assert!(
            names.contains(&"unique".into()) && names.contains(&"not_null".into()),
            "{src}.{t}.{key}: {names:?}"
        );
    }
    let ads = table("raw_facebook", "ad_statistics");
    for c in ["date_start", "ad_id"] {
        assert!(
            test_names(&column(&ads, c)).contains(&"not_null".into()),
            "ad_statistics.{c}"
        );
    }
    assert_eq!(
        test_config(&ads, "unique_combination_of_columns")["combination_of_columns"],
        serde_json::json!(["date_start", "ad_id"])
    );
    let macro_sql = std::fs::read_to_string(
        shipped_project().join("macros/test_unique_combination_of_columns.sql"),
    )
    .unwrap();
    assert!(macro_sql
        .contains("{% test unique_combination_of_columns(model, combination_of_columns) %}"));
    let project = yaml("dbt_project.yml");
    assert_eq!(project["name"], "reluvia_analytics");
    assert_eq!(project["profile"], "reluvia");
    assert_eq!(
        project["models"]["reluvia_analytics"]["marts"]["+materialized"],
        "table"
    );
    assert!(project["models"]["reluvia_analytics"]["marts"]
        .get("+schema")
        .is_none());
}

/// The generic test macro returns the duplicated (date_start, ad_id) pairs, rendered
/// the way the engine renders it, and nothing on a clean table.
#[test]
fn unique_combination_test_returns_duplicated_pairs() {
    let db = raw_db("uniq_combo");
    let target = tempfile::tempdir().unwrap();
    let out = db.cli(&[
        "compile",
        "--project-dir",
        &project_dir(),
        "--target-path",
        target.path().to_str().unwrap(),
    ]);
    assert_code(&out, 0);
    let compiled = find_files(&target.path().join("compiled"))
        .into_iter()
        .find(|p| {
            // dbt's short file name of a test name of 64+ characters: its first
            // 30 characters and an md5.
            p.to_string_lossy()
                .contains("source_unique_combination_of_c_")
        })
        .unwrap_or_else(|| {
            panic!(
                "no compiled unique_combination_of_columns test under {}",
                target.path().display()
            )
        });
    let sql = std::fs::read_to_string(&compiled).unwrap();
    let sql = sql.trim().trim_end_matches(';').to_string();
    db.exec(
        &[
            ad("2024-03-01", "ad1", Some("1")),
            ad("2024-03-01", "ad2", Some("1")),
            ad("2024-03-02", "ad1", Some("1")),
        ]
        .concat(),
    );
    assert_eq!(
        db.value(&format!("select count(*) from ({sql}\n) q")),
        Some("0".into())
    );
    // The primary key would forbid the duplicate: drop it as a broken loader would.
    db.exec("alter table raw_facebook.ad_statistics drop constraint ad_statistics_pkey;");
    db.exec(
        &[
            ad("2024-03-01", "ad1", Some("2")),
            ad("2024-03-01", "ad1", Some("3")),
        ]
        .concat(),
    );
    assert_eq!(
        db.value(&format!("select count(*) from ({sql}\n) q")),
        Some("1".into())
    );
}

fn find_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(find_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

// ------------------------------------------------------------ data tests, freshness

/// Runs a command of the binary on the shipped project with a fresh target path;
/// returns its output and the parsed artifact `artifact` (e.g. run_results.json).
fn cli_artifact(db: &TestDb, args: &[&str], artifact: &str) -> (std::process::Output, Value) {
    let target = tempfile::tempdir().unwrap();
    let mut all: Vec<&str> = args.to_vec();
    let dir = project_dir();
    all.extend([
        "--project-dir",
        &dir,
        "--target-path",
        target.path().to_str().unwrap(),
    ]);
    let out = db.cli(&all);
    let path = target.path().join(artifact);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}\n{}",
            path.display(),
            stdout(&out),
            stderr(&out)
        )
    });
    (out, serde_json::from_str(&text).unwrap())
}

/// `(name, status)` of each result of run_results.json, sorted by name; the name is
/// the unique id without the project and hash (`test.<project>.<name>.<hash>`).
fn result_statuses(results: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let id = r["unique_id"].as_str().unwrap();
            let name = id.split('.').nth(2).unwrap_or(id).to_string();
            (name, r["status"].as_str().unwrap().to_string())
        })
        .collect();
    v.sort();
    v
}

/// The shipped data tests pass on built marts, and each mart test catches the
/// breakage it is there for.
#[test]
fn shipped_data_tests_pass_and_catch_broken_marts() {
    let db = raw_db("data_tests");
    db.exec(&mixed_fixture());
    let (out, results) = cli_artifact(&db, &["build"], "run_results.json");
    assert_code(&out, 0);
    let mut statuses = result_statuses(&results);
    // The shipped exposure (the executive report) is a no-op in build, as in dbt.
    let exposure = ("executive_report".to_string(), "no-op".to_string());
    assert!(statuses.contains(&exposure), "{statuses:?}");
    statuses.retain(|x| x != &exposure);
    let tests: Vec<&(String, String)> = statuses
        .iter()
        .filter(|(n, _)| !n.starts_with("mart_") && !n.starts_with("int_"))
        .collect();
    assert_eq!(tests.len(), 33, "{statuses:?}");
    assert!(
        statuses.iter().all(|(_, s)| s == "pass" || s == "success"),
        "{statuses:?}"
    );
    let source_tests: Vec<&str> = tests
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("source_"))
        .collect();
    assert_eq!(source_tests.len(), 17, "{source_tests:?}");
    assert!(source_tests
        .iter()
        .any(|n| n.starts_with("source_unique_combination_of_columns_raw_facebook_ad")));

    // Each mart's key has a unique index (its `indexes` config): its `unique` test
    // is answered from the catalog instead of reading the mart.
    for (mart, key) in [
        ("mart_new_subscriptions", "subscription_id"),
        ("mart_funnel_conversions", "session_id"),
        ("mart_daily_kpis", "date"),
    ] {
        let console = format!("{}{}", stdout(&out), stderr(&out));
        let line = console
            .lines()
            .find(|l| l.contains(&format!("PASS test unique_{mart}_{key} ")))
            .unwrap_or_default()
            .to_string();
        assert!(line.contains("[PASS, guaranteed by "), "{mart}:\n{console}");
    }

    // Break every mart rule the tests guard, in marts that lost their indexes (as
    // if built by hand): the unique indexes would refuse the duplicates.
    db.exec(
        "do $$ declare i record; begin
             for i in select indexrelid::regclass::text as name from pg_index
                      where indrelid in ('analytics.mart_new_subscriptions'::regclass,
                          'analytics.mart_funnel_conversions'::regclass,
                          'analytics.mart_daily_kpis'::regclass)
             loop execute 'drop index ' || i.name; end loop;
         end $$;",
    );
    db.exec(
        "insert into analytics.mart_new_subscriptions (subscription_id, session_id) values ('n1', 'no_such_session');
         insert into analytics.mart_new_subscriptions (subscription_id) values (null);
         insert into analytics.mart_funnel_conversions (session_id, converted) values ('s1', 2);
         insert into analytics.mart_funnel_conversions (session_id, converted) values (null, null);
         insert into analytics.mart_daily_kpis (\"date\") values ('2024-03-02'), (null);",
    );
    let (out, results) = cli_artifact(&db, &["test"], "run_results.json");
    assert_code(&out, 1);
    let statuses = result_statuses(&results);
    let failed: Vec<&str> = statuses
        .iter()
        .filter(|(_, s)| s == "fail")
        .map(|(n, _)| n.as_str())
        .collect();
    let passed: Vec<&str> = statuses
        .iter()
        .filter(|(_, s)| s == "pass")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(failed.len(), 16, "failed: {failed:?}");
    assert!(
        failed.iter().all(|n| !n.starts_with("source_")),
        "{failed:?}"
    );
    assert!(
        passed.iter().all(|n| n.starts_with("source_")) && passed.len() == 17,
        "{passed:?}"
    );
    for expected in [
        "unique_mart_new_subscriptions_subscription_id",
        "not_null_mart_new_subscriptions_subscription_id",
        "not_null_mart_new_subscriptions_subscription_date",
        "not_null_mart_new_subscriptions_subscribed_at",
        "not_null_mart_new_subscriptions_user_profile_id",
        "not_null_mart_new_subscriptions_stripe_charge_id",
        "not_null_mart_new_subscriptions_currency",
        "relationships_mart_new_subscriptions_session_id",
        "unique_mart_funnel_conversions_session_id",
        "not_null_mart_funnel_conversions_session_id",
        "not_null_mart_funnel_conversions_session_date",
        "not_null_mart_funnel_conversions_profile_id",
        "not_null_mart_funnel_conversions_converted",
        "accepted_values_mart_funnel_conversions_converted",
        "unique_mart_daily_kpis_date",
        "not_null_mart_daily_kpis_date",
    ] {
        assert!(
            failed.iter().any(|n| n.starts_with(expected)),
            "{expected} did not fail: {failed:?}"
        );
    }
}

/// Freshness on `_sdc_batched_at` (UTC wall-clock): warn after 26 hours, error after 50.
#[test]
fn source_freshness_warns_after_26_hours_and_errors_after_50() {
    let db = raw_db("freshness");
    db.exec(
        &[
            funnel("f1", "Quiz"),
            session("s1", "p1", "2024-03-01 10:00:00"),
            paid("n1", "p1", 1000, "usd", "2024-03-01 10:00:00", None),
            insert("raw_stripe.subscriptions", "id", "'sub_1'"),
            event("e1", Some("p1"), None, "2024-03-01 11:00:00"),
            insert("raw_facebook.campaigns", "id", "'c1'"),
            ad("2024-03-01", "ad1", Some("1")),
        ]
        .concat(),
    );
    let age = |table: &str, hours: u32| {
        format!("update {table} set _sdc_batched_at = now() at time zone 'utc' - interval '{hours} hours';\n")
    };
    // Ages away from the thresholds by more than any time-zone offset.
    db.exec(
        &[
            age("raw_funnelfox.funnels", 0),
            age("raw_funnelfox.sessions", 20),
            age("raw_funnelfox.subscriptions", 33),
            age("raw_stripe.charges", 44),
            age("raw_stripe.subscriptions", 57),
            age("raw_amplitude.events", 1),
            age("raw_facebook.campaigns", 12),
            age("raw_facebook.ad_statistics", 100),
        ]
        .concat(),
    );
    let statuses = |v: &Value| -> Vec<String> {
        let mut s: Vec<String> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}|{}",
                    r["unique_id"].as_str().unwrap(),
                    r["status"].as_str().unwrap()
                )
            })
            .collect();
        s.sort();
        s
    };
    let (out, sources) = cli_artifact(&db, &["source", "freshness"], "sources.json");
    assert_code(&out, 1);
    assert_eq!(
        statuses(&sources),
        vec![
            "source.reluvia_analytics.raw_amplitude.events|pass",
            "source.reluvia_analytics.raw_facebook.ad_statistics|error",
            "source.reluvia_analytics.raw_facebook.campaigns|pass",
            "source.reluvia_analytics.raw_funnelfox.funnels|pass",
            "source.reluvia_analytics.raw_funnelfox.sessions|pass",
            "source.reluvia_analytics.raw_funnelfox.subscriptions|warn",
            "source.reluvia_analytics.raw_stripe.charges|warn",
            "source.reluvia_analytics.raw_stripe.subscriptions|error",
        ]
    );
    // Warnings alone do not fail.
    db.exec(
        &[
            age("raw_stripe.subscriptions", 30),
            age("raw_facebook.ad_statistics", 40),
        ]
        .concat(),
    );
    let (out, sources) = cli_artifact(&db, &["source", "freshness"], "sources.json");
    assert_code(&out, 0);
    assert_eq!(
        statuses(&sources)
            .iter()
            .filter(|s| s.ends_with("|warn"))
            .count(),
        4,
        "{:?}",
        statuses(&sources)
    );
}

// ------------------------------------------------------------ raw contract

/// The name of a contract type in `information_schema.columns.data_type`.
fn information_schema_type(sql_type: &str) -> &str {
    match sql_type {
        "timestamp" => "timestamp without time zone",
        other => other,
    }
}

#[test]
fn raw_ddl_creates_the_contract_tables_idempotently() {
    let db = raw_db("raw_ddl");
    db.exec(&contract::ddl()); // a second time: IF NOT EXISTS everywhere
    assert_eq!(
        db.lines(
            "select table_schema || '.' || table_name from information_schema.tables
             where table_schema like 'raw\\_%'
             order by (table_schema || '.' || table_name) collate \"C\""
        ),
        {
            let mut t: Vec<String> = Table::ALL
                .iter()
                .map(|t| format!("{}.{}", t.schema(), t.name()))
                .collect();
            t.sort();
            t
        }
    );
    for t in Table::ALL {
        let (schema, name) = (t.schema(), t.name());
        let table = format!("{schema}.{name}");
        let expected: Vec<String> = t
            .columns()
            .iter()
            .map(|c| {
                let nullable = if c.not_null { "NO" } else { "YES" };
                format!(
                    "{}|{}|{nullable}",
                    c.name,
                    information_schema_type(c.sql_type)
                )
            })
            .collect();
        assert_eq!(
            db.lines(&format!(
                "select column_name, data_type, is_nullable from information_schema.columns
                 where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position"
            )),
            expected,
            "{table}"
        );
        assert_eq!(
            db.value(&format!(
                "select string_agg(a.attname, ',' order by k.ord)
                 from pg_index i
                 cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                 where i.indrelid = '{table}'::regclass and i.indisprimary"
            )),
            Some(t.key().join(",")),
            "primary key of {table}"
        );
    }
}

#[test]
fn singer_schemas_describe_the_raw_tables() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/raw");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    let mut expected_files: Vec<String> = Table::ALL
        .iter()
        .map(|t| format!("{}.{}.json", t.schema(), t.name()))
        .collect();
    expected_files.sort();
    assert_eq!(files, expected_files);
    for t in Table::ALL {
        let table = format!("{}.{}", t.schema(), t.name());
        let path = dir.join(format!("{table}.json"));
        let msg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(msg["type"], "SCHEMA", "{table}");
        assert_eq!(msg["stream"], t.name(), "{table}");
        assert_eq!(msg["key_properties"], serde_json::json!(t.key()), "{table}");
        let schema = &msg["schema"];
        assert_eq!(schema["type"], "object");
        assert!(
            schema["description"]
                .as_str()
                .unwrap()
                .contains("_sdc_batched_at"),
            "{table} description"
        );
        assert!(schema.get("additionalProperties").is_some(), "{table}");
        let props = schema["properties"].as_object().unwrap();
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        let cols = t.source_columns();
        assert_eq!(
            names,
            cols.iter().map(|c| c.name).collect::<Vec<_>>(),
            "{table} properties"
        );
        for c in cols {
            let (json_type, format) = match c.sql_type {
                "text" => ("string", None),
                "timestamp" => ("string", Some("date-time")),
                "date" => ("string", Some("date")),
                "bigint" => ("integer", None),
                "numeric" => ("number", None),
                "boolean" => ("boolean", None),
                "jsonb" => ("object", None),
                other => panic!("{other}"),
            };
            let p = &props[c.name];
            let want = if c.not_null {
                serde_json::json!(json_type)
            } else {
                serde_json::json!(["null", json_type])
            };
            assert_eq!(p["type"], want, "{table}.{} type", c.name);
            assert_eq!(
                p.get("format").and_then(Value::as_str),
                format,
                "{table}.{} format",
                c.name
            );
        }
    }
}
