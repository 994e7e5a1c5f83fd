//! The generator's tests: determinism, the shape of every row, realistic proportions
//! and the edge cases the marts' rules need.

use super::calendar::{
    add_months, civil_from_days, day_number, days_from_civil, push_timestamp, weekday,
};
use super::copy_text::push_copy_escaped;
use super::*;
use std::collections::{HashMap, HashSet};

type Row = Vec<Option<String>>;

fn opts(seed: u64, days: u32, per_day: u32) -> GenOptions {
    let end = NaiveDate::from_ymd_opt(2026, 11, 24).expect("valid date");
    let now = end.and_hms_opt(18, 3, 11).expect("valid time");
    GenOptions {
        seed,
        days,
        sessions_per_day: per_day,
        end,
        now,
    }
}

/// Parses COPY text back into rows (the inverse of the writer).
fn parse_copy(text: &str) -> Vec<Row> {
    text.lines()
        .map(|line| {
            line.split('\t')
                .map(|f| {
                    if f == "\\N" {
                        return None;
                    }
                    let mut out = String::new();
                    let mut chars = f.chars();
                    while let Some(c) = chars.next() {
                        if c == '\\' {
                            match chars.next() {
                                Some('t') => out.push('\t'),
                                Some('n') => out.push('\n'),
                                Some('r') => out.push('\r'),
                                Some(o) => out.push(o),
                                None => panic!("dangling backslash in {f:?}"),
                            }
                        } else {
                            out.push(c);
                        }
                    }
                    Some(out)
                })
                .collect()
        })
        .collect()
}

/// A parsed table with access by column name.
struct Parsed {
    cols: Vec<&'static str>,
    rows: Vec<Row>,
}

impl Parsed {
    fn idx(&self, c: &str) -> usize {
        self.cols
            .iter()
            .position(|x| *x == c)
            .unwrap_or_else(|| panic!("no column {c}"))
    }
    fn get<'a>(&self, row: &'a Row, c: &str) -> Option<&'a str> {
        row[self.idx(c)].as_deref()
    }
    fn live(&self) -> Vec<&Row> {
        let d = self.idx("_sdc_deleted_at");
        self.rows.iter().filter(|r| r[d].is_none()).collect()
    }
}

fn parse_all(tables: &[TableData]) -> HashMap<String, Parsed> {
    tables
        .iter()
        .map(|t| {
            (
                format!("{}.{}", t.schema, t.table),
                Parsed {
                    cols: t.columns.clone(),
                    rows: parse_copy(&t.copy_text),
                },
            )
        })
        .collect()
}

fn ts(s: &str) -> Micros {
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("bad timestamp {s:?}: {e}"));
    t.and_utc().timestamp_micros()
}

#[test]
fn copy_escaping() {
    let mut out = String::new();
    push_copy_escaped(&mut out, "a\tb\nc\\d\re \\N");
    assert_eq!(out, "a\\tb\\nc\\\\d\\re \\\\N");
    assert_eq!(
        parse_copy(&out),
        vec![vec![Some("a\tb\nc\\d\re \\N".to_string())]]
    );
    let mut plain = String::new();
    push_copy_escaped(&mut plain, "São Paulo");
    assert_eq!(plain, "São Paulo");
}

#[test]
fn calendar_matches_chrono() {
    for day in (-800_000..800_000).step_by(997).chain(20_000..21_000) {
        let (y, m, d) = civil_from_days(day);
        let date = NaiveDate::from_ymd_opt(y as i32, m, d).expect("valid civil date");
        assert_eq!(day_number(date), day);
        assert_eq!(days_from_civil(y, m, d), day);
    }
    let jan31 = day_number(NaiveDate::from_ymd_opt(2024, 1, 31).expect("date")) * DAY + 5 * HOUR;
    let feb = add_months(jan31, 1);
    assert_eq!(civil_from_days(feb.div_euclid(DAY)), (2024, 2, 29));
    assert_eq!(feb.rem_euclid(DAY), 5 * HOUR);
    let mut s = String::new();
    push_timestamp(&mut s, jan31 + 123_456);
    assert_eq!(s, "2024-01-31 05:00:00.123456");
    s.clear();
    push_timestamp(&mut s, -1);
    assert_eq!(s, "1969-12-31 23:59:59.999999");
}

#[test]
fn same_options_same_bytes_and_other_seed_differs() {
    let a = generate(&opts(7, 20, 30));
    let b = generate(&opts(7, 20, 30));
    let c = generate(&opts(8, 20, 30));
    assert_eq!(a.len(), 8);
    for ((x, y), z) in a.iter().zip(&b).zip(&c) {
        assert_eq!(
            x.copy_text, y.copy_text,
            "{}.{} differs between runs",
            x.schema, x.table
        );
        assert_eq!(x.rows, y.rows);
        // The funnels/campaigns ids come from the seed too, so every table differs.
        assert_ne!(
            x.copy_text, z.copy_text,
            "{}.{} ignores the seed",
            x.schema, x.table
        );
    }
}

#[test]
fn every_row_has_every_field_and_unique_key() {
    for t in generate(&opts(3, 30, 50)) {
        assert!(t.rows > 0, "{}.{} is empty", t.schema, t.table);
        assert_eq!(t.copy_text.lines().count(), t.rows);
        let table = Table::ALL
            .into_iter()
            .find(|x| x.schema() == t.schema && x.name() == t.table)
            .expect("known table");
        let key: Vec<usize> = table
            .key()
            .iter()
            .map(|k| t.columns.iter().position(|c| c == k).expect("key column"))
            .collect();
        let mut keys = HashSet::new();
        for line in t.copy_text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                fields.len(),
                t.columns.len(),
                "{}.{}: {line}",
                t.schema,
                t.table
            );
            let k: Vec<&str> = key.iter().map(|&i| fields[i]).collect();
            assert!(
                key.iter().all(|&i| fields[i] != "\\N"),
                "null key in {}.{}",
                t.schema,
                t.table
            );
            assert!(
                keys.insert(k.join("\t")),
                "duplicate key {k:?} in {}.{}",
                t.schema,
                t.table
            );
        }
        assert!(t.copy_text.ends_with('\n'));
    }
}

#[test]
fn streaming_matches_and_chunks_end_at_rows() {
    let o = opts(11, 30, 150);
    let whole = generate(&o);
    let data = Dataset::new(&o);
    for (table, t) in Table::ALL.into_iter().zip(&whole) {
        let mut chunks = Vec::new();
        let rows = generate_table(&data, table, |c| chunks.push(c.to_string()));
        assert_eq!(rows, t.rows);
        assert!(chunks.iter().all(|c| c.ends_with('\n')));
        assert!(chunks.iter().all(|c| c.len() < CHUNK_BYTES + 64 * 1024));
        assert_eq!(chunks.concat(), t.copy_text);
        if table == Table::Events {
            assert!(chunks.len() > 1, "events should stream in several chunks");
        }
    }
}

#[test]
fn empty_scale_does_not_panic() {
    for (days, per_day) in [(0, 40), (3, 0), (1, 1)] {
        let t = generate(&opts(1, days, per_day));
        assert_eq!(t.len(), 8);
    }
}

#[test]
fn json_columns_are_objects_and_loader_times_are_fresh() {
    let o = opts(5, 30, 60);
    let now = o.now.and_utc().timestamp_micros();
    let tables = parse_all(&generate(&o));
    for (name, col) in [
        ("raw_stripe.charges", "metadata"),
        ("raw_stripe.subscriptions", "plan"),
        ("raw_stripe.subscriptions", "metadata"),
        ("raw_amplitude.events", "event_properties"),
        ("raw_amplitude.events", "user_properties"),
    ] {
        let t = &tables[name];
        for r in &t.rows {
            let text = t.get(r, col).expect("json present");
            let v: serde_json::Value = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{name}.{col} invalid JSON {text:?}: {e}"));
            assert!(v.is_object());
        }
    }
    for (name, t) in &tables {
        let mut newest = i64::MIN;
        let mut last_seq = i64::MIN;
        for r in &t.rows {
            let b = ts(t.get(r, "_sdc_batched_at").expect("batched"));
            let e = ts(t.get(r, "_sdc_extracted_at").expect("extracted"));
            assert!(e <= b && b < now, "{name}: bad loader times");
            newest = newest.max(b);
            let seq: i64 = t
                .get(r, "_sdc_sequence")
                .expect("seq")
                .parse()
                .expect("int");
            assert!(seq > last_seq, "{name}: _sdc_sequence not increasing");
            last_seq = seq;
        }
        assert!(
            now - newest < 2 * HOUR,
            "{name}: newest _sdc_batched_at is stale"
        );
        let deleted = t.rows.len() - t.live().len();
        assert!(deleted >= 1, "{name}: no soft-deleted rows");
    }
    // No source record is after `now`.
    for (name, col) in [
        ("raw_funnelfox.sessions", "created_at"),
        ("raw_stripe.charges", "created"),
        ("raw_amplitude.events", "event_time"),
    ] {
        let t = &tables[name];
        assert!(
            t.rows
                .iter()
                .all(|r| ts(t.get(r, col).expect("time")) < now),
            "{name}"
        );
    }
}

/// The marts' "new subscription" rule, computed here to check proportions:
/// (subscription id, profile id, charge id, charge created).
fn new_subscriptions(t: &HashMap<String, Parsed>) -> Vec<(String, String, String, Micros)> {
    let charges = &t["raw_stripe.charges"];
    let paid: HashMap<&str, Micros> = charges
        .live()
        .into_iter()
        .filter(|r| charges.get(r, "status") == Some("succeeded"))
        .map(|r| {
            (
                charges.get(r, "id").expect("id"),
                ts(charges.get(r, "created").expect("created")),
            )
        })
        .collect();
    let subs = &t["raw_funnelfox.subscriptions"];
    let mut best: HashMap<&str, (bool, Option<Micros>, &str, &str)> = HashMap::new();
    for r in subs.live() {
        if subs.get(r, "sandbox") == Some("t") {
            continue;
        }
        let Some(psp) = subs.get(r, "psp_id") else {
            continue;
        };
        if !paid.contains_key(psp) {
            continue;
        }
        let created = subs.get(r, "created_at").map(ts);
        let cand = (
            created.is_none(),
            created,
            subs.get(r, "id").expect("id"),
            subs.get(r, "profile_id").expect("profile"),
        );
        let e = best.entry(psp).or_insert(cand);
        if (cand.0, cand.1, cand.2.as_bytes()) < (e.0, e.1, e.2.as_bytes()) {
            *e = cand;
        }
    }
    best.into_iter()
        .map(|(psp, (_, _, id, profile))| {
            (
                id.to_string(),
                profile.to_string(),
                psp.to_string(),
                paid[psp],
            )
        })
        .collect()
}

#[test]
fn proportions_are_realistic() {
    let tables = parse_all(&generate(&opts(42, 60, 200)));
    let sessions = &tables["raw_funnelfox.sessions"];
    let n_sessions = sessions.rows.len() as f64;
    let profiles: HashSet<&str> = sessions
        .rows
        .iter()
        .filter_map(|r| sessions.get(r, "profile_id"))
        .collect();
    let per_profile = n_sessions / profiles.len() as f64;
    eprintln!(
        "sessions {n_sessions}, profiles {}, sessions/profile {per_profile:.2}",
        profiles.len()
    );
    assert!(
        (1.5..=3.0).contains(&per_profile),
        "sessions per profile {per_profile}"
    );
    assert!(
        (n_sessions / 60.0 - 200.0).abs() < 30.0,
        "sessions per day {}",
        n_sessions / 60.0
    );

    // Weekends busier than mid-week; evenings (UTC) busier than early mornings.
    let mut by_hour = [0usize; 24];
    let mut by_weekday = [0usize; 7];
    for r in &sessions.rows {
        let t = ts(sessions.get(r, "created_at").expect("created"));
        by_hour[(t.rem_euclid(DAY) / HOUR) as usize] += 1;
        by_weekday[weekday(t.div_euclid(DAY))] += 1;
    }
    assert!(by_hour[20] > 3 * by_hour[4], "{by_hour:?}");
    assert!(by_weekday[6] > by_weekday[2], "{by_weekday:?}");

    let new = new_subscriptions(&tables);
    let conv = new.len() as f64 / n_sessions;
    eprintln!(
        "new subscriptions {} = {:.2}% of sessions",
        new.len(),
        100.0 * conv
    );
    assert!((0.03..=0.05).contains(&conv), "conversion {conv}");

    let charges = &tables["raw_stripe.charges"];
    let n_charges = charges.rows.len() as f64;
    let count = |col: &str, v: &str| {
        charges
            .rows
            .iter()
            .filter(|r| charges.get(r, col) == Some(v))
            .count() as f64
    };
    let failed = count("status", "failed") / n_charges;
    let pending = count("status", "pending") / n_charges;
    let usd = count("currency", "usd") / n_charges;
    eprintln!(
        "charges {n_charges}: failed {:.2}%, pending {:.2}%, usd {:.1}%",
        100.0 * failed,
        100.0 * pending,
        100.0 * usd
    );
    assert!((0.025..=0.07).contains(&failed), "failed {failed}");
    assert!((0.004..=0.02).contains(&pending), "pending {pending}");
    assert!((0.70..=0.92).contains(&usd), "usd {usd}");
    for code in ["USD", "eur", "gbp", "jpy", "kwd"] {
        assert!(count("currency", code) > 0.0, "no {code} charge");
    }
    let mut codes: HashMap<&str, usize> = HashMap::new();
    for r in &charges.rows {
        if let Some(c) = charges.get(r, "failure_code") {
            *codes.entry(c).or_default() += 1;
        }
    }
    eprintln!("failure codes {codes:?}");
    // card_declined leads (with a few dozen failures, another code can come
    // close: the tie days add to the runners-up).
    let declined = codes.get("card_declined").copied().unwrap_or(0);
    let coded: usize = codes.values().sum();
    let ahead = codes.values().filter(|&&n| n > declined).count();
    assert!(ahead <= 1 && declined * 3 >= coded, "{codes:?}");
    // Days on which the two most frequent codes tie.
    let mut per_day: HashMap<i64, HashMap<&str, usize>> = HashMap::new();
    for r in &charges.live() {
        if let Some(c) = charges.get(r, "failure_code") {
            let day = ts(charges.get(r, "created").expect("created")).div_euclid(DAY);
            *per_day.entry(day).or_default().entry(c).or_default() += 1;
        }
    }
    let tie_days = per_day
        .values()
        .filter(|m| {
            let mut v: Vec<usize> = m.values().copied().collect();
            v.sort_unstable_by(|a, b| b.cmp(a));
            v.len() >= 2 && v[0] == v[1]
        })
        .count();
    assert!(tie_days >= 3, "tie days {tie_days}");

    let subs = &tables["raw_funnelfox.subscriptions"];
    let n_subs = subs.rows.len() as f64;
    let sandbox = subs
        .rows
        .iter()
        .filter(|r| subs.get(r, "sandbox") == Some("t"))
        .count() as f64
        / n_subs;
    let sandbox_null = subs
        .rows
        .iter()
        .filter(|r| subs.get(r, "sandbox").is_none())
        .count();
    let mut psp_counts: HashMap<&str, usize> = HashMap::new();
    for r in &subs.rows {
        if let Some(p) = subs.get(r, "psp_id") {
            *psp_counts.entry(p).or_default() += 1;
        }
    }
    let dups = psp_counts.values().filter(|&&n| n > 1).count() as f64 / n_subs;
    let non_usd = subs.rows.iter().filter(|r| {
        !subs
            .get(r, "currency")
            .unwrap_or("")
            .eq_ignore_ascii_case("usd")
    });
    let non_usd_null_price = non_usd
        .filter(|r| subs.get(r, "price_usd").is_none())
        .count();
    eprintln!("ff subscriptions {n_subs}: sandbox {:.2}%, duplicates {:.2}%, sandbox null {sandbox_null}, non-USD without price_usd {non_usd_null_price}", 100.0 * sandbox, 100.0 * dups);
    assert!((0.005..=0.04).contains(&sandbox), "sandbox {sandbox}");
    assert!((0.005..=0.03).contains(&dups), "duplicates {dups}");
    assert!(sandbox_null > 0 && non_usd_null_price > 0);

    // Renewals and orphan failures: charges no subscription points at.
    let orphan = charges
        .rows
        .iter()
        .filter(|r| !psp_counts.contains_key(charges.get(r, "id").unwrap_or("")))
        .count();
    assert!(orphan as f64 > 0.1 * n_charges, "orphan charges {orphan}");

    // Acquisition: the latest live session of the profile at or before the charge.
    let mut by_profile: HashMap<&str, Vec<Micros>> = HashMap::new();
    for r in sessions.live() {
        by_profile
            .entry(sessions.get(r, "profile_id").expect("p"))
            .or_default()
            .push(ts(sessions.get(r, "created_at").expect("t")));
    }
    let mut within_hour = 0;
    let mut without = 0;
    for (_, profile, _, at) in &new {
        match by_profile
            .get(profile.as_str())
            .and_then(|v| v.iter().filter(|&&t| t <= *at).max())
        {
            Some(t) if at - t <= HOUR => within_hour += 1,
            Some(_) => {}
            None => without += 1,
        }
    }
    eprintln!("converted within an hour {within_hour}, without session {without}");
    assert!(within_hour as f64 > 0.4 * new.len() as f64);
    assert!(without >= 1 && (without as f64) < 0.05 * new.len() as f64);

    // App events.
    let events = &tables["raw_amplitude.events"];
    let n_events = events.rows.len() as f64;
    let by_email = events
        .rows
        .iter()
        .filter(|r| {
            events.get(r, "user_id").is_none()
                && events.get(r, "email").is_some_and(|e| !e.is_empty())
        })
        .count() as f64
        / n_events;
    eprintln!(
        "events {n_events} = {:.1} per session; null user_id with e-mail {:.1}%",
        n_events / n_sessions,
        100.0 * by_email
    );
    assert!(n_events / n_sessions > 8.0, "events per session");
    assert!(
        (0.15..=0.25).contains(&by_email),
        "email-only events {by_email}"
    );
    let session_emails: HashMap<String, HashSet<&str>> = sessions
        .rows
        .iter()
        .filter_map(|r| {
            let e = sessions.get(r, "email").filter(|e| !e.is_empty())?;
            Some((e.to_lowercase(), sessions.get(r, "profile_id")?))
        })
        .fold(HashMap::new(), |mut m, (e, p)| {
            m.entry(e).or_default().insert(p);
            m
        });
    let mut active: HashSet<&str> = HashSet::new();
    for r in &events.rows {
        if let Some(u) = events.get(r, "user_id") {
            active.insert(u);
        } else if let Some(ps) = events
            .get(r, "email")
            .and_then(|e| session_emails.get(&e.to_lowercase()))
        {
            active.extend(ps.iter().copied());
        }
    }
    let buyers: HashSet<&str> = new.iter().map(|n| n.1.as_str()).collect();
    let buyers_active =
        buyers.iter().filter(|p| active.contains(*p)).count() as f64 / buyers.len() as f64;
    let others: Vec<&&str> = profiles.iter().filter(|p| !buyers.contains(*p)).collect();
    let others_active =
        others.iter().filter(|p| active.contains(**p)).count() as f64 / others.len() as f64;
    eprintln!(
        "activated: buyers {:.1}%, others {:.1}%",
        100.0 * buyers_active,
        100.0 * others_active
    );
    assert!(
        (0.3..=0.5).contains(&buyers_active),
        "buyers activated {buyers_active}"
    );
    assert!(
        (0.03..=0.08).contains(&others_active),
        "others activated {others_active}"
    );

    // Ads: a few days with spend before the first session.
    let ads = &tables["raw_facebook.ad_statistics"];
    let first_session_day = sessions
        .rows
        .iter()
        .map(|r| ts(sessions.get(r, "created_at").expect("t")).div_euclid(DAY))
        .min()
        .expect("sessions");
    let early = ads
        .rows
        .iter()
        .filter(|r| {
            let d = NaiveDate::parse_from_str(ads.get(r, "date_start").expect("date"), "%Y-%m-%d")
                .expect("date");
            day_number(d) < first_session_day && ads.get(r, "spend").is_some_and(|s| s != "0.00")
        })
        .count();
    assert!(early > 0);
    assert!(ads.rows.iter().any(|r| ads.get(r, "spend") == Some("0.00")));
}

#[test]
fn edge_cases_are_present() {
    let tables = parse_all(&generate(&opts(9, 45, 120)));
    let funnels = &tables["raw_funnelfox.funnels"];
    assert_eq!(funnels.live().len(), 6);
    assert_eq!(
        funnels
            .rows
            .iter()
            .filter(|r| funnels.get(r, "title").is_none())
            .count(),
        1
    );

    // Ids that differ only in case or punctuation.
    let fold = |s: &str| s.to_lowercase().replace('-', "_");
    for (name, col) in [
        ("raw_funnelfox.sessions", "id"),
        ("raw_funnelfox.subscriptions", "id"),
        ("raw_funnelfox.sessions", "profile_id"),
    ] {
        let t = &tables[name];
        let ids: HashSet<&str> = t.rows.iter().filter_map(|r| t.get(r, col)).collect();
        let folded: HashSet<String> = ids.iter().map(|s| fold(s)).collect();
        assert!(folded.len() < ids.len(), "{name}.{col}: no look-alike ids");
    }
    // Twin sessions of a profile at the same instant.
    let sessions = &tables["raw_funnelfox.sessions"];
    let mut seen = HashSet::new();
    let twins = sessions
        .rows
        .iter()
        .filter(|r| !seen.insert((sessions.get(r, "profile_id"), sessions.get(r, "created_at"))))
        .count();
    assert!(twins >= 3, "twin sessions {twins}");
    let emails: Vec<&str> = sessions
        .rows
        .iter()
        .filter_map(|r| sessions.get(r, "email"))
        .collect();
    assert!(emails.contains(&""));
    assert!(emails
        .iter()
        .any(|e| e.chars().any(|c| c.is_ascii_uppercase())));
    assert!(emails
        .iter()
        .any(|e| !e.is_empty() && !e.chars().any(|c| c.is_ascii_uppercase())));
    // Escaped characters survive in ad names and app search queries.
    let ads = &tables["raw_facebook.ad_statistics"];
    assert!(ads
        .rows
        .iter()
        .any(|r| ads.get(r, "ad_name").is_some_and(|n| n.contains('\t'))));
    let camps = &tables["raw_facebook.campaigns"];
    assert!(camps
        .rows
        .iter()
        .any(|r| camps.get(r, "name").is_some_and(|n| n.contains('\n'))));
    // Sessions exactly at the charge's instant (acquired: "at or before") and one
    // microsecond after it (not acquired).
    let mut session_times: HashSet<(&str, Micros)> = HashSet::new();
    for r in sessions.live() {
        session_times.insert((
            sessions.get(r, "profile_id").expect("p"),
            ts(sessions.get(r, "created_at").expect("t")),
        ));
    }
    let new = new_subscriptions(&tables);
    assert!(new
        .iter()
        .any(|(_, p, _, at)| session_times.contains(&(p.as_str(), *at))));
    assert!(new
        .iter()
        .any(|(_, p, _, at)| session_times.contains(&(p.as_str(), *at + 1))));
    // Stripe zero- and three-decimal amounts.
    let charges = &tables["raw_stripe.charges"];
    let amount = |cur: &str| {
        charges
            .rows
            .iter()
            .find(|r| {
                charges
                    .get(r, "currency")
                    .is_some_and(|c| c.eq_ignore_ascii_case(cur))
            })
            .and_then(|r| charges.get(r, "amount"))
            .map(str::to_string)
    };
    assert!(amount("jpy").is_some_and(|a| a.ends_with('0')));
    assert!(amount("kwd").is_some_and(|a| a.ends_with("50") || a.ends_with("00")));
}
