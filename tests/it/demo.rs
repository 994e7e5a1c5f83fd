//! The demo through the binary: a throwaway cluster of its own, sample data,
//! `build`, and the executive summary on stdout.

use crate::common::*;

#[test]
fn demo_prints_the_executive_summary_and_cleans_up() {
    let out = clean_command().arg("demo").output().unwrap();
    assert_code(&out, 0);
    let summary = stdout(&out);
    let err = stderr(&out);
    assert!(
        err.contains("PASS freshness of raw_stripe.charges"),
        "{err}"
    );
    assert!(err.contains("Completed successfully"), "{err}");
    assert!(err.contains("ERROR=0 SKIP=0"), "{err}");
    // 14 days of KPIs ending today (UTC), in date order, under an aligned header.
    let lines: Vec<&str> = summary.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("date ") && l.contains("conv_rate"))
        .expect("KPI header");
    let days: Vec<&str> = lines[header + 2..header + 16]
        .iter()
        .map(|l| &l[..10])
        .collect();
    let today = chrono::Utc::now().date_naive();
    let expected: Vec<String> = (0..14)
        .rev()
        .map(|d| (today - chrono::Duration::days(d)).to_string())
        .collect();
    assert_eq!(days, expected);
    assert!(lines[header + 1].starts_with("----------  "));
    assert!(summary.contains("Conversion by funnel"), "{summary}");
    // No cluster left running: no postgres process of the demo's data directory.
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ps.stdout).contains("reluvia-demo"),
        "a demo server is still running"
    );
}

#[test]
fn demo_sample_is_deterministic_for_a_seed() {
    // `generate` into a test database twice gives the same rows.
    let db = TestDb::new("gen");
    let gen = |db: &TestDb| {
        assert_code(
            &db.cli(&[
                "generate",
                "--days",
                "5",
                "--sessions-per-day",
                "30",
                "--seed",
                "7",
            ]),
            0,
        );
        db.lines("select count(*), md5(string_agg(id || profile_id || created_at::text, ',' order by id collate \"C\")) from raw_funnelfox.sessions")
    };
    let first = gen(&db);
    assert_eq!(first, gen(&db));
    let count: u32 = first[0].split('|').next().unwrap().parse().unwrap();
    assert!(
        (100..=250).contains(&count),
        "5 days x 30 sessions/day gave {count} sessions"
    );
    // Another seed, other data.
    assert_code(
        &db.cli(&[
            "generate",
            "--days",
            "5",
            "--sessions-per-day",
            "30",
            "--seed",
            "8",
        ]),
        0,
    );
    let other = db.lines("select count(*), md5(string_agg(id || profile_id || created_at::text, ',' order by id collate \"C\")) from raw_funnelfox.sessions");
    assert_ne!(first, other);
}
