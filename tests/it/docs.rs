//! `docs generate`, `docs serve`, `report` and exposures through the binary, on
//! the shipped project built over generated data in a real PostgreSQL; the site
//! and the report are opened in headless Chromium ([`crate::browser`]), which
//! checks what a reader sees, that nothing logs an error, that no page makes a
//! request, and keeps screenshots in `<target>/release/browser-artifacts/`.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::browser::{file_url, Browser};
use crate::common::*;

/// A database with 30 days of generated raw data, the shipped project built in
/// it with `build` (with `extra` environment) and its freshness checked; the
/// target path is a temporary directory.
fn built(prefix: &str, extra: &[(&str, &str)]) -> (TestDb, tempfile::TempDir) {
    let db = TestDb::new(prefix);
    assert_code(
        &db.cli(&[
            "generate",
            "--days",
            "30",
            "--sessions-per-day",
            "20",
            "--seed",
            "11",
        ]),
        0,
    );
    let target = tempfile::tempdir().unwrap();
    let mut build = db.cmd();
    build.args([
        "build",
        "--project-dir",
        shipped_project().to_str().unwrap(),
    ]);
    build.args(["--target-path", target.path().to_str().unwrap()]);
    for (k, v) in extra {
        build.env(k, v);
    }
    assert_code(&build.output().unwrap(), 0);
    assert_code(&run(&db, &target, &["source", "freshness"]), 0);
    (db, target)
}

/// The binary on the shipped project with the target path `target`.
fn run(db: &TestDb, target: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = args.to_vec();
    let project = shipped_project();
    all.extend(["--project-dir", project.to_str().unwrap()]);
    all.extend(["--target-path", target.path().to_str().unwrap()]);
    db.cli(&all)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const KPIS: &str = "model.reluvia_analytics.mart_daily_kpis";

#[test]
fn docs_generate_writes_the_catalog_and_a_site_a_browser_shows() {
    let (db, target) = built("docs", &[]);
    let out = run(&db, &target, &["docs", "generate"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("Wrote catalog.json and the documentation site"),
        "{}",
        stderr(&out)
    );

    // catalog.json: dbt's shape, types and counts from the database.
    let catalog = json(&target.path().join("catalog.json"));
    assert_eq!(
        catalog["metadata"]["dbt_schema_version"],
        "https://schemas.getdbt.com/dbt/catalog/v1.json"
    );
    let kpis = &catalog["nodes"][KPIS];
    assert_eq!(kpis["metadata"]["type"], "BASE TABLE");
    assert_eq!(kpis["metadata"]["schema"], "analytics");
    assert_eq!(kpis["columns"]["date"]["type"], "date");
    assert_eq!(kpis["columns"]["date"]["index"], 1);
    assert_eq!(kpis["columns"]["sessions"]["type"], "bigint");
    assert_eq!(kpis["columns"]["top_failure_code"]["type"], "text");
    let rows = db
        .value("select count(*) from analytics.mart_daily_kpis")
        .unwrap();
    assert_eq!(kpis["stats"]["row_count"]["value"].to_string(), rows);
    assert_eq!(kpis["stats"]["row_count"]["include"], true);
    let charges = &catalog["sources"]["source.reluvia_analytics.raw_stripe.charges"];
    assert_eq!(
        charges["columns"]["created"]["type"],
        "timestamp without time zone"
    );
    assert_eq!(
        charges["stats"]["row_count"]["value"].to_string(),
        db.value("select count(*) from raw_stripe.charges").unwrap()
    );
    assert_eq!(catalog["sources"].as_object().unwrap().len(), 8);
    // The manifest lists the exposure; docs generate left run_results.json alone.
    let manifest = json(&target.path().join("manifest.json"));
    let exposure = &manifest["exposures"]["exposure.reluvia_analytics.executive_report"];
    assert_eq!(exposure["type"], "dashboard");
    assert_eq!(exposure["depends_on"]["nodes"][0], KPIS);
    assert!(manifest["child_map"][KPIS]
        .as_array()
        .unwrap()
        .contains(&Value::from("exposure.reluvia_analytics.executive_report")));
    let results = json(&target.path().join("run_results.json"));
    assert_eq!(results["args"]["which"], "build");

    let mut b = Browser::launch();
    // The index: counts, the overview, focus and search.
    let index = file_url(&target.path().join("index.html"));
    b.open(&index);
    b.assert_clean(&index);
    let counts = b.text("document.getElementById('counts').innerText");
    assert!(
        counts.contains("8 sources")
            && counts.contains("4 models")
            && counts.contains("1 exposure"),
        "{counts}"
    );
    assert!(counts.contains("33 data tests"), "{counts}");
    let run = b.text("document.getElementById('run-summary').innerText");
    assert!(
        run.contains("33 pass") && run.contains("4 success") && run.contains("8 pass"),
        "{run}"
    );
    b.screenshot("docs-index");
    // Focus mart_daily_kpis: its ancestors and descendant stay lit, the rest dims.
    assert_eq!(
        b.eval(&format!("document.querySelector('g.n[data-id=\"{KPIS}\"]').dispatchEvent(new MouseEvent('click', {{bubbles: true}}))")),
        Value::Bool(true)
    );
    let lit = b.eval("[...document.querySelectorAll('#overview g.n.on')].map(g => g.getAttribute('data-id')).sort()");
    let lit: Vec<&str> = lit
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        lit,
        vec![
            "exposure.reluvia_analytics.executive_report",
            "model.reluvia_analytics.int_app_activity",
            "model.reluvia_analytics.mart_daily_kpis",
            "model.reluvia_analytics.mart_funnel_conversions",
            "model.reluvia_analytics.mart_new_subscriptions",
            "source.reluvia_analytics.raw_amplitude.events",
            "source.reluvia_analytics.raw_facebook.ad_statistics",
            "source.reluvia_analytics.raw_funnelfox.funnels",
            "source.reluvia_analytics.raw_funnelfox.sessions",
            "source.reluvia_analytics.raw_funnelfox.subscriptions",
            "source.reluvia_analytics.raw_stripe.charges",
        ]
    );
    let info = b.text("document.getElementById('focus-info').innerText");
    assert!(
        info.contains("mart_daily_kpis") && info.contains("9 upstream, 1 downstream"),
        "{info}"
    );
    let dim = b.eval("getComputedStyle(document.querySelector('g.n[data-id=\"source.reluvia_analytics.raw_stripe.subscriptions\"]')).opacity");
    assert_eq!(dim, Value::from("0.18"));
    b.screenshot("docs-index-focus-mart_daily_kpis");
    // Search finds columns: typing into the box lists the models that have one.
    b.eval("const q = document.getElementById('q'); q.value = 'failure_code'; q.dispatchEvent(new Event('input')); true");
    let hits = b.text("document.getElementById('results').innerText");
    assert!(
        hits.contains("mart_daily_kpis") && hits.contains("top_failure_code"),
        "{hits}"
    );
    assert!(hits.contains("raw_stripe.charges"), "{hits}");
    assert!(!b
        .eval("document.getElementById('results').hidden")
        .as_bool()
        .unwrap());
    b.assert_clean(&index);

    // The page of mart_daily_kpis: lineage with its sources, columns with their tests.
    let page = target.path().join(format!("nodes/{KPIS}.html"));
    let url = file_url(&page);
    b.open(&url);
    b.assert_clean(&url);
    let lineage = b.text("document.getElementById('lineage').textContent");
    for source in [
        "raw_stripe.charges",
        "raw_facebook.ad_statistics",
        "raw_funnelfox.sessions",
        "raw_funnelfox.subscriptions",
        "raw_funnelfox.funnels",
        "raw_amplitude.events",
        "mart_funnel_conversions",
        "mart_new_subscriptions",
        "Executive daily report",
        "unique_mart_daily_kpis_date",
    ] {
        assert!(
            lineage.contains(source),
            "lineage lacks {source}: {lineage}"
        );
    }
    assert!(!lineage.contains("raw_stripe.subscriptions"), "{lineage}");
    let boxes = b.eval("document.getElementById('lineage').getBoundingClientRect().height");
    assert!(
        boxes.as_f64().unwrap() > 100.0,
        "lineage drawn {boxes} px tall"
    );
    let date_tests =
        b.text("document.getElementById('col-date').querySelector('.tests').innerText");
    assert!(
        date_tests.contains("unique") && date_tests.contains("not_null"),
        "{date_tests}"
    );
    let date_type = b.text("document.getElementById('col-date').querySelector('.ty').innerText");
    assert_eq!(date_type, "date");
    let status = b.text("document.getElementById('status').innerText");
    assert!(
        status.contains("last build success") && status.contains(&format!("{rows} rows")),
        "{status}"
    );
    assert!(status.contains("2 data tests: 2 pass"), "{status}");
    let sql = b.text("document.getElementById('compiled-sql').textContent");
    assert!(
        sql.contains("\"analytics\".\"mart_funnel_conversions\""),
        "{sql}"
    );
    b.screenshot("docs-mart_daily_kpis");

    // A column's tests on the funnel mart, and a source's freshness.
    let url = file_url(
        &target
            .path()
            .join("nodes/model.reluvia_analytics.mart_funnel_conversions.html"),
    );
    b.open(&url);
    b.assert_clean(&url);
    let converted = b.text("document.getElementById('col-converted').innerText");
    assert!(
        converted.contains("not_null") && converted.contains("accepted_values"),
        "{converted}"
    );
    let url = file_url(
        &target
            .path()
            .join("nodes/source.reluvia_analytics.raw_stripe.charges.html"),
    );
    b.open(&url);
    b.assert_clean(&url);
    let status = b.text("document.getElementById('status').innerText");
    assert!(
        status.contains("freshness pass") && status.contains("newest row loaded"),
        "{status}"
    );
    let id_tests = b.text("document.getElementById('col-id').innerText");
    assert!(
        id_tests.contains("unique") && id_tests.contains("not_null"),
        "{id_tests}"
    );
    // The exposure's page.
    let url = file_url(
        &target
            .path()
            .join("nodes/exposure.reluvia_analytics.executive_report.html"),
    );
    b.open(&url);
    b.assert_clean(&url);
    let text = b.text("document.body.innerText");
    assert!(
        text.contains("Executive daily report")
            && text.contains("Reluvia data team <data@reluvia.dev>"),
        "{text}"
    );
    assert!(b
        .text("document.getElementById('lineage').textContent")
        .contains("mart_daily_kpis"));
}

#[test]
fn build_writes_the_report_whose_figures_are_the_marts() {
    let (db, target) = built(
        "report",
        &[("RELUVIA_TRANSFORM_REPORT_AFTER_BUILD", "true")],
    );
    let report = target.path().join("report.html");
    assert!(
        report.is_file(),
        "build with report_after_build wrote no report"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href=\"http"));

    // The mart's row for the latest complete UTC day, formatted as the report says.
    let fmt_money = |c: &str| format!("coalesce('$' || to_char({c}, 'FM999,999,990.00'), 'n/a')");
    let expected = db.rows(&format!(
        "select (now() at time zone 'UTC')::date - 1,
                sessions::text, to_char(sessions, 'FM999,999,990'),
                conversion_rate::text, coalesce(to_char(round(conversion_rate * 100, 2), 'FM990.00') || '%', 'n/a'),
                new_subscriptions::text, to_char(new_subscriptions, 'FM999,999,990'),
                revenue_usd::text, {}, ad_spend_usd::text, {}, cac_usd::text, {},
                roas::text, coalesce(to_char(round(roas, 2), 'FM999,990.00') || '×', 'n/a'),
                failed_charges::text, to_char(failed_charges, 'FM999,999,990')
         from analytics.mart_daily_kpis where date = (now() at time zone 'UTC')::date - 1",
        fmt_money("revenue_usd"),
        fmt_money("ad_spend_usd"),
        fmt_money("cac_usd")
    ));
    assert_eq!(expected.len(), 1, "the sample has a row for yesterday");
    let e = &expected[0];
    let columns = [
        "sessions",
        "conversion_rate",
        "new_subscriptions",
        "revenue_usd",
        "ad_spend_usd",
        "cac_usd",
        "roas",
        "failed_charges",
    ];

    let mut b = Browser::launch();
    let url = file_url(&report);
    b.open(&url);
    b.assert_clean(&url);
    assert_eq!(
        b.text("document.getElementById('report-date').dataset.date"),
        e[0].clone().unwrap()
    );
    for (i, col) in columns.iter().enumerate() {
        let card = format!("document.querySelector('.kpi[data-kpi=\"{col}\"]')");
        let value = b.eval(&format!("{card}.dataset.value ?? null"));
        assert_eq!(value.as_str(), e[1 + 2 * i].as_deref(), "{col}: data-value");
        let shown = b.text(&format!("{card}.querySelector('.value').innerText"));
        assert_eq!(
            Some(shown.as_str()),
            e[2 + 2 * i].as_deref(),
            "{col}: shown"
        );
        let unit = b.text(&format!("{card}.querySelector('.unit').innerText"));
        assert!(!unit.is_empty(), "{col} states no unit");
    }
    // The partial day is labelled, in the strip and on the charts' last day.
    let today = db
        .value("select (now() at time zone 'UTC')::date::text")
        .unwrap();
    let strip = b.text("document.getElementById('partial-day').innerText");
    assert!(strip.contains("partial day"), "{strip}");
    let label = b.text("[...document.querySelectorAll('#trend-sessions text.partial')].map(t => t.textContent).join()");
    assert_eq!(label, "today*");
    let hatched = b.eval("[...document.querySelectorAll('#trend-sessions rect')].filter(r => (r.getAttribute('fill') || '').includes('hatch')).length");
    let has_today = db
        .value(&format!(
            "select count(*) from analytics.mart_daily_kpis where date = '{today}'"
        ))
        .unwrap();
    assert_eq!(hatched.to_string(), has_today, "today's bar is hatched");
    let tip = b.text("[...document.querySelectorAll('#trend-sessions rect title')].map(t => t.textContent).pop()");
    if has_today == "1" {
        assert!(tip.contains("(today, partial)"), "{tip}");
    }
    // Funnels and failure codes agree with the marts.
    let funnel_sessions = db.value(&format!(
        "select count(*) from analytics.mart_funnel_conversions where session_date between (now() at time zone 'UTC')::date - 28 and '{today}'::date - 1"
    )).unwrap();
    let shown: i64 = b
        .eval("[...document.querySelectorAll('table.funnels tbody tr')].map(r => +r.cells[1].innerText.replace(/,/g, '')).reduce((a, b) => a + b, 0)")
        .as_i64()
        .unwrap();
    assert_eq!(shown.to_string(), funnel_sessions);
    b.screenshot("report");

    // `report --png` into another path, for a chosen date.
    let png = target.path().join("out/exec.html");
    let out = run(
        &db,
        &target,
        &[
            "report",
            "--png",
            "--days",
            "7",
            "--output",
            png.to_str().unwrap(),
        ],
    );
    assert_code(&out, 0);
    let bytes = std::fs::read(png.with_extension("png")).unwrap();
    assert_eq!(&bytes[..4], b"\x89PNG");
    println!("report PNG: {}", png.with_extension("png").display());
}

#[test]
fn docs_serve_serves_the_site_on_localhost() {
    let db = TestDb::new("serve");
    let target = tempfile::tempdir().unwrap();
    // No database needed without the catalog; it renders the manifest alone.
    assert_code(&run(&db, &target, &["docs", "generate", "--no-catalog"]), 0);
    let mut cmd = db.cmd();
    cmd.args(["docs", "serve", "--port", "0"])
        .args(["--project-dir", shipped_project().to_str().unwrap()])
        .args(["--target-path", target.path().to_str().unwrap()])
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut seen = String::new();
    let addr = loop {
        let mut buf = [0u8; 256];
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "docs serve exited: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(rest) = seen.split("at http://").nth(1) {
            if let Some(end) = rest.find('/') {
                break rest[..end].to_string();
            }
        }
    };
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let index = get("/");
    assert!(index.starts_with("HTTP/1.1 200 OK"), "{index}");
    assert!(index.contains("text/html") && index.contains("mart_daily_kpis"));
    let page = get(&format!("/nodes/{KPIS}.html"));
    assert!(
        page.starts_with("HTTP/1.1 200 OK") && page.contains("Columns"),
        "{page}"
    );
    assert!(get("/../Cargo.toml").starts_with("HTTP/1.1 404"));
    assert!(get("/nodes/nothing.html").starts_with("HTTP/1.1 404"));
    // SIGTERM stops it cleanly.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_bad_exposure_is_a_usage_error_naming_the_file() {
    let db = TestDb::new("exposure");
    let dir = project(&[
        ("dbt_project.yml", "name: p\nprofile: p\n"),
        ("models/a.sql", "select 1 as x\n"),
        (
            "models/exposures.yml",
            "version: 2\nexposures:\n  - name: weekly\n    type: dashboard\n    owner: {name: Ops}\n    depends_on: [\"ref('a')\", \"ref('missing')\"]\n",
        ),
    ]);
    let out = db.cli(&["compile", "--project-dir", dir.path().to_str().unwrap()]);
    assert_code(&out, 2);
    crate::assert_console_snapshot!("bad_exposure", stderr(&out));
    // Fixed, the manifest has it with its dependency.
    common_write_ok(dir.path());
    let out = db.cli(&["compile", "--project-dir", dir.path().to_str().unwrap()]);
    assert_code(&out, 0);
    let manifest = json(&dir.path().join("target/manifest.json"));
    let x = &manifest["exposures"]["exposure.p.weekly"];
    assert_eq!(x["depends_on"]["nodes"], serde_json::json!(["model.p.a"]));
    assert_eq!(x["owner"]["name"], "Ops");
    assert_eq!(
        manifest["parent_map"]["exposure.p.weekly"],
        serde_json::json!(["model.p.a"])
    );
}

fn common_write_ok(root: &Path) {
    write(
        root,
        "models/exposures.yml",
        "version: 2\nexposures:\n  - name: weekly\n    type: dashboard\n    owner: {name: Ops}\n    depends_on: [\"ref('a')\"]\n",
    );
}

/// Load and search times of a generated site in headless Chromium, with dbt-core's
/// site beside it when `RELUVIA_BENCH_DBT_SITE` names its target directory. Run by
/// `bash bench/docs.sh`, which sets `RELUVIA_BENCH_SITE`.
#[test]
#[ignore = "a benchmark: bash bench/docs.sh"]
fn bench_docs_site() {
    let Ok(site) = std::env::var("RELUVIA_BENCH_SITE") else {
        return;
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let load = "performance.getEntriesByType('navigation')[0].loadEventEnd";
    let fcp =
        "(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: -1}).startTime";
    let mut b = Browser::launch();
    let site = Path::new(&site);
    let index = file_url(&site.join("index.html"));
    let (mut loads, mut paints) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        b.open(&index);
        b.assert_clean(&index);
        loads.push(b.eval(load).as_f64().unwrap());
        paints.push(b.eval(fcp).as_f64().unwrap());
    }
    let nodes = b.eval("document.querySelectorAll('#overview g.n').length");
    println!(
        "bench reluvia index.html ({nodes} nodes drawn): load {:.0} ms, first contentful paint {:.0} ms",
        median(loads),
        median(paints)
    );
    for term in ["fct_d3_1", "customer_id", "domain 7", "no_such_thing"] {
        let mut times = Vec::new();
        let mut hits = Value::Null;
        for _ in 0..5 {
            let r = b.eval(&format!(
                "(() => {{ const t0 = performance.now(); const n = reluviaSearch({term:?}); document.body.offsetHeight; return [performance.now() - t0, n]; }})()"
            ));
            times.push(r[0].as_f64().unwrap());
            hits = r[1].clone();
        }
        println!(
            "bench reluvia search {term:?}: {:.1} ms, {hits} matches",
            median(times)
        );
    }
    let mut page = None;
    for e in std::fs::read_dir(site.join("nodes")).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("model.") {
            page = Some(e.path());
            break;
        }
    }
    if let Some(page) = page {
        let url = file_url(&page);
        let mut loads = Vec::new();
        for _ in 0..5 {
            b.open(&url);
            b.assert_clean(&url);
            loads.push(b.eval(load).as_f64().unwrap());
        }
        println!(
            "bench reluvia node page {}: load {:.0} ms",
            page.file_name().unwrap().to_string_lossy(),
            median(loads)
        );
    }
    let dbt = std::env::var("RELUVIA_BENCH_DBT_SITE").unwrap_or_default();
    if dbt.is_empty() {
        return;
    }
    let url = file_url(&Path::new(&dbt).join("static_index.html"));
    // dbt's page reads its inlined manifest and catalog through requests whose
    // protocol events carry them whole: with the Network domain on, the test would
    // time its own protocol client rather than the page.
    b.call("Network.disable", serde_json::json!({}));
    let (mut loads, mut ready) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        b.open(&url);
        loads.push(b.eval(load).as_f64().unwrap());
        // The app is ready once its project tree has a link per model.
        ready.push(
            b.eval_within(
                "new Promise(r => { const t = () => [...document.querySelectorAll('a')].some(a => a.textContent.trim() === 'fct_d0_0') ? r(performance.now()) : performance.now() > 170000 ? r(-1) : setTimeout(t, 25); t(); })",
                180,
            )
            .as_f64()
            .unwrap(),
        );
    }
    println!(
        "bench dbt static_index.html: load {:.0} ms, project tree ready at {:.0} ms",
        median(loads),
        median(ready)
    );
    // One search: dbt's takes long enough on 2,000 models that one is the measure.
    let took = b
        .eval_within(
            "new Promise(r => { const q = document.getElementById('search'); if (!q) return r(-1); const t0 = performance.now();
               q.value = 'customer_id'; q.dispatchEvent(new Event('input', {bubbles: true}));
               const t = () => document.querySelectorAll('.search-result.ng-scope').length > 0 ? r(performance.now() - t0) : performance.now() - t0 > 300000 ? r(-1) : setTimeout(t, 5); t(); })",
            330,
        )
        .as_f64()
        .unwrap();
    let times = vec![took];
    println!(
        "bench dbt search \"customer_id\": {:.1} ms until results show (-1: none in 300 s)",
        median(times)
    );
}

/// The browser checks can fail: a page that requests an image, logs an error and
/// throws is caught by each of them.
#[test]
fn the_browser_checks_see_requests_console_errors_and_exceptions() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"missing.png\"><script>console.error('boom'); throw new Error('thrown');</script></body></html>",
    )
    .unwrap();
    let mut b = Browser::launch();
    let url = file_url(&page);
    b.open(&url);
    let requests = b.requests();
    assert!(
        requests.iter().any(|r| r.ends_with("/missing.png")),
        "{requests:?}"
    );
    let errors = b.errors().join("\n");
    assert!(
        errors.contains("boom") && errors.contains("thrown"),
        "{errors}"
    );
    let clean = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.assert_clean(&url)));
    assert!(
        clean.is_err(),
        "assert_clean passed a page with errors and requests"
    );
}
