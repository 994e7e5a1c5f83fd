//! The demo through the binary: a throwaway cluster of its own, sample data,
//! `build`, and the executive summary on stdout.

use crate::common::*;

#[test]
fn demo_prints_the_executive_summary_and_cleans_up() {
    let outdir = tempfile::tempdir().unwrap();
    let out = clean_command()
        .args(["demo", "--output-dir", outdir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let summary = stdout(&out);
    let err = stderr(&out);
    assert!(
        err.contains("PASS freshness of raw_stripe.charges"),
        "{err}"
    );
    assert!(err.contains("Completed successfully"), "{err}");
    assert!(err.contains("ERROR=0 SKIP=0"), "{err}");
    // It fits a 100-column terminal.
    for line in summary.lines() {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line}"
        );
    }
    // 14 days of KPIs ending today (UTC), in date order, under an aligned header
    // with units; today is marked partial.
    let lines: Vec<&str> = summary.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("date (UTC) ") && l.contains("conversion"))
        .expect("KPI header");
    assert!(summary.contains("money in US dollars"), "{summary}");
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
    assert!(lines[header + 1].starts_with("------------  "));
    assert!(
        lines[header + 15].starts_with(&format!("{today} *")),
        "{summary}"
    );
    assert!(
        lines[header + 2].contains('$') && lines[header + 2].contains('%'),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("* {today} is today: a partial day, up to ")),
        "{summary}"
    );
    assert!(summary.contains("Conversion by funnel"), "{summary}");
    assert!(
        summary.contains("Failed charges by failure code"),
        "{summary}"
    );
    // The report and the docs site, written where it says.
    let report = outdir.path().join("report.html");
    assert!(
        summary.contains(&format!("Executive report: {}", report.display())),
        "{summary}"
    );
    assert!(std::fs::read_to_string(&report).unwrap().contains("<svg"));
    let site = outdir.path().join("docs/index.html");
    assert!(summary.contains(&format!("Documentation site: {}", site.display())));
    assert!(site.is_file());
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
