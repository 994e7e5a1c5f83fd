//! The static site: `index.html` (counts, the latest run, the lineage overview
//! with zoom and focus, search across nodes and columns, every node by kind) and
//! one page per node (description, facts, status, its lineage, columns with
//! their types and tests, the tests, raw and compiled SQL, config, catalog
//! statistics). Every page is one file with its CSS (and, for the index, its
//! script and search index) inline: it opens from the file system and fetches
//! nothing. Node pages have no script at all; their search box is a form that
//! opens the index.

use std::fmt::Write;

use serde_json::{json, Value};

use super::model::{DocNode, Docs, Kind, Status};
use super::svg::{lineage, Mode};
use crate::report::chart::esc;
use crate::report::format::count;

const CSS: &str = include_str!("assets/site.css");
const JS: &str = include_str!("assets/site.js");
/// What only the index needs: search results, zoom tools, focus.
const INDEX_CSS: &str = include_str!("assets/index.css");

/// Nodes drawn at most on a node page; beyond, its lineage is cut to the
/// nearest levels and the overview's focus shows the rest.
pub(crate) const PAGE_LINEAGE_MAX: usize = 60;

/// Descriptions are Markdown in dbt; this renders the common part: paragraphs,
/// `code`, **bold**, and bullet lines.
pub(crate) fn markdown(text: &str) -> String {
    let mut out = String::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let lines: Vec<&str> = para.lines().collect();
        if lines
            .iter()
            .all(|l| l.trim_start().starts_with("- ") || l.trim_start().starts_with("* "))
        {
            out.push_str("<ul>");
            for l in lines {
                let _ = write!(out, "<li>{}</li>", inline(&l.trim_start()[2..]));
            }
            out.push_str("</ul>");
        } else {
            let _ = write!(out, "<p>{}</p>", inline(&lines.join(" ")));
        }
    }
    out
}

fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            let mut bold = false;
            for (j, seg) in esc(part).split("**").enumerate() {
                if j > 0 {
                    out.push_str(if bold { "</b>" } else { "<b>" });
                    bold = !bold;
                }
                out.push_str(seg);
            }
            if bold {
                out.push_str("</b>");
            }
        }
    }
    out
}

/// The first sentence-ish of a description, for lists and search.
fn snippet(text: &str, max: usize) -> String {
    let flat: String = text
        .replace(['`', '*'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

fn head(title: &str, extra_css: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"><title>{}</title><style>{CSS}{extra_css}</style></head><body>"#,
        esc(title)
    )
}

/// The bar on top of every page; `home` is the index's path from the page.
fn topbar(project: &str, home: &str) -> String {
    format!(
        r#"<nav class="top"><a class="home" href="{home}">{} <span>docs</span></a><form action="{home}" method="get" role="search"><input id="q" name="q" type="search" placeholder="Search models, sources, columns…" autocomplete="off" aria-label="Search"></form></nav>"#,
        esc(project)
    )
}

/// Where node pages go, relative to the index.
pub(crate) const PAGES: &str = "nodes";

fn status_badge(st: &Status) -> String {
    format!(
        r#"<span class="badge st-{}">{}</span>"#,
        esc(&st.status.replace(' ', "-")),
        esc(&st.status)
    )
}

/// A duration in seconds as a person reads it.
fn age(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5400.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 172_800.0 {
        format!("{:.1} hours", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86400.0)
    }
}

/// `2026-03-02T05:00:01.123456Z` → `2026-03-02 05:00 UTC`.
fn when(ts: &str) -> String {
    if ts.len() >= 16 {
        format!("{} {} UTC", &ts[..10], &ts[11..16])
    } else {
        ts.to_string()
    }
}

fn status_line(n: &DocNode, docs: &Docs) -> String {
    let mut parts: Vec<String> = Vec::new();
    match &n.status {
        Some(st) => {
            let what = match n.kind {
                Kind::Source => "freshness",
                Kind::Test => "last run",
                _ => "last build",
            };
            let mut p = format!("{what} {}", status_badge(st));
            if let Some(t) = &st.completed_at {
                let _ = write!(p, " at {}", esc(&when(t)));
            }
            if let Some(d) = st.execution_time {
                let _ = write!(p, " in {d:.2} s");
            }
            if let Some(r) = st.rows {
                let _ = write!(p, ", {} rows", count(r as i64));
            }
            if let Some(f) = st.failures.filter(|f| *f > 0) {
                let _ = write!(p, ", {} failing rows", count(f as i64));
            }
            parts.push(p);
            if let (Some(m), Some(a)) = (&st.max_loaded_at, st.age_seconds) {
                parts.push(format!(
                    "newest row loaded {} ({} old when checked)",
                    esc(&when(m)),
                    age(a)
                ));
            }
            if matches!(
                st.status.as_str(),
                "error" | "fail" | "warn" | "runtime error" | "skipped"
            ) {
                if let Some(m) = &st.message {
                    parts.push(format!(r#"<span class="msg">{}</span>"#, esc(m)));
                }
            }
        }
        None if n.kind.has_relation() && n.kind != Kind::Source => {
            parts.push(r#"<span class="muted">not in the latest run_results.json</span>"#.into())
        }
        None if n.kind == Kind::Source && n.facts.iter().any(|(k, _)| k == "freshness") => parts
            .push(r#"<span class="muted">freshness not in the latest sources.json</span>"#.into()),
        None => {}
    }
    let tests: Vec<&DocNode> = n.tests.iter().map(|t| &docs.nodes[*t]).collect();
    if !tests.is_empty() {
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for t in &tests {
            let key = t
                .status
                .as_ref()
                .map(|s| s.status.clone())
                .unwrap_or_else(|| "not run".into());
            *by.entry(key).or_default() += 1;
        }
        let list: Vec<String> = by
            .iter()
            .map(|(k, c)| {
                format!(
                    r#"{c} <span class="badge st-{}">{}</span>"#,
                    esc(&k.replace(' ', "-")),
                    esc(k)
                )
            })
            .collect();
        parts.push(format!(
            "{} data test{}: {}",
            tests.len(),
            if tests.len() == 1 { "" } else { "s" },
            list.join(" ")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="status" id="status">{}</p>"#, parts.join(" · "))
    }
}

fn link(docs: &Docs, i: usize) -> String {
    let n = &docs.nodes[i];
    let target = match (&n.page, n.attached) {
        (Some(p), _) => esc(p),
        (None, Some(a)) => format!(
            "{}#test-{}",
            esc(docs.nodes[a].page.as_deref().unwrap_or("../index.html")),
            esc(&n.name)
        ),
        _ => "../index.html".into(),
    };
    format!(
        r#"<a class="ref k-{}" href="{target}">{}</a>"#,
        n.kind.label(),
        esc(&n.label)
    )
}

/// The nodes of `i`'s lineage page drawing: itself first, its ancestors and
/// descendants (all of them when they fit, else the nearest levels), and its
/// tests. Also says how many were left out.
fn lineage_nodes(docs: &Docs, i: usize) -> (Vec<usize>, usize) {
    let walk = |n: &DocNode| n.kind != Kind::Test;
    let up = docs.reach(i, true, walk);
    let down = docs.reach(i, false, walk);
    let tests: Vec<usize> = docs.nodes[i].tests.clone();
    let total = up.len() + down.len();
    let budget = PAGE_LINEAGE_MAX.saturating_sub(1 + tests.len().min(20));
    let mut chosen: Vec<usize> = vec![i];
    let mut left_out = 0;
    if total <= budget {
        chosen.extend(up.iter().map(|(n, _)| *n));
        chosen.extend(down.iter().map(|(n, _)| *n));
    } else {
        // Nearest levels first, alternating up and down, within the budget.
        let mut depth = 1;
        let max_depth = up
            .iter()
            .chain(down.iter())
            .map(|(_, d)| *d)
            .max()
            .unwrap_or(0);
        while depth <= max_depth {
            let level: Vec<usize> = up
                .iter()
                .chain(down.iter())
                .filter(|(_, d)| *d == depth)
                .map(|(n, _)| *n)
                .collect();
            if chosen.len() + level.len() > budget + 1 {
                break;
            }
            chosen.extend(level);
            depth += 1;
        }
        left_out = total + 1 - chosen.len();
    }
    chosen.extend(tests.iter().take(20));
    (chosen, left_out)
}

/// A section with a heading, a count and the head of its table.
fn table_start(id: &str, title: &str, n: usize, heads: &[&str]) -> String {
    let heads: String = heads.iter().map(|h| format!("<th>{h}</th>")).collect();
    format!(
        r#"<section id="{id}"><h2>{title} <span class="count">{n}</span></h2><table class="{id}"><thead><tr>{heads}</tr></thead><tbody>"#
    )
}

fn columns_table(docs: &Docs, n: &DocNode) -> String {
    if n.columns.is_empty() {
        return String::new();
    }
    let mut s = table_start(
        "columns",
        "Columns",
        n.columns.len(),
        &["Column", "Type", "Description", "Tests"],
    );
    for c in &n.columns {
        let tests: Vec<String> = c
            .tests
            .iter()
            .map(|t| {
                let tn = &docs.nodes[*t];
                let label = tn
                    .facts
                    .iter()
                    .find(|(k, _)| k == "test")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| tn.name.clone());
                let st = tn
                    .status
                    .as_ref()
                    .map(|s| s.status.replace(' ', "-"))
                    .unwrap_or_else(|| "none".into());
                format!(
                    r##"<a class="test st-{st}" href="#test-{}" title="{}">{}</a>"##,
                    esc(&tn.name),
                    esc(&tn.name),
                    esc(&label)
                )
            })
            .collect();
        let mut flags = String::new();
        if c.undocumented {
            flags.push_str(r#" <span class="flag">not documented</span>"#);
        }
        if c.missing {
            flags.push_str(r#" <span class="flag bad">not in the database</span>"#);
        }
        let _ = write!(
            s,
            r#"<tr id="col-{}"><td class="cn"><code>{}</code>{flags}</td><td class="ty">{}</td><td>{}</td><td class="tests">{}</td></tr>"#,
            esc(&c.name),
            esc(&c.name),
            esc(c.data_type.as_deref().unwrap_or("")),
            markdown(&c.description),
            tests.join(" ")
        );
    }
    s.push_str("</tbody></table></section>");
    s
}

fn tests_table(docs: &Docs, n: &DocNode) -> String {
    if n.tests.is_empty() {
        return String::new();
    }
    let mut s = table_start(
        "tests",
        "Data tests",
        n.tests.len(),
        &["Test", "Column", "Status", "Definition"],
    );
    for t in &n.tests {
        let tn = &docs.nodes[*t];
        let st = match &tn.status {
            Some(st) => {
                let mut x = status_badge(st);
                if let Some(f) = st.failures {
                    let _ = write!(
                        x,
                        " {} failing row{}",
                        count(f as i64),
                        if f == 1 { "" } else { "s" }
                    );
                }
                if let Some(c) = &st.completed_at {
                    let _ = write!(x, r#"<div class="muted">{}</div>"#, esc(&when(c)));
                }
                x
            }
            None => r#"<span class="muted">not run</span>"#.into(),
        };
        let facts: Vec<String> = tn
            .facts
            .iter()
            .map(|(k, v)| format!("{}: <code>{}</code>", esc(k), esc(v)))
            .collect();
        let sql = tn
            .compiled_code
            .as_deref()
            .or(tn.raw_code.as_deref())
            .map(|c| {
                format!(
                    "<details><summary>SQL</summary><pre>{}</pre></details>",
                    esc(c.trim())
                )
            })
            .unwrap_or_default();
        let _ = write!(
            s,
            r#"<tr id="test-{}"><td><code>{}</code></td><td>{}</td><td>{st}</td><td>{}{sql}</td></tr>"#,
            esc(&tn.name),
            esc(&tn.name),
            tn.column
                .as_deref()
                .map(|c| format!("<code>{}</code>", esc(c)))
                .unwrap_or_default(),
            facts.join("<br>")
        );
    }
    s.push_str("</tbody></table></section>");
    s
}

/// The page of node `i`.
pub(crate) fn node_page(docs: &Docs, i: usize) -> String {
    let n = &docs.nodes[i];
    let mut s = head(
        &format!("{} · {} · {}", n.label, n.kind.label(), docs.project),
        "",
    );
    s.push_str(&topbar(&docs.project, "../index.html"));
    s.push_str("<main>");
    let _ = write!(
        s,
        r#"<header class="node"><div class="kind k-{k}">{k}</div><h1>{}</h1><p class="where">{}{}</p>{}</header>"#,
        esc(&n.label),
        n.relation
            .as_deref()
            .map(|r| format!("<code>{}</code> · ", esc(r)))
            .unwrap_or_default(),
        esc(&n.path),
        status_line(n, docs),
        k = n.kind.label()
    );
    if !n.description.is_empty() {
        let _ = write!(
            s,
            r#"<section class="desc" id="description">{}</section>"#,
            markdown(&n.description)
        );
    } else {
        s.push_str(r#"<p class="muted">No description.</p>"#);
    }
    if !n.facts.is_empty() || !n.tags.is_empty() {
        s.push_str(r#"<dl class="facts">"#);
        for (k, v) in &n.facts {
            let value = if k == "url" && (v.starts_with("http://") || v.starts_with("https://")) {
                format!(r#"<a href="{}">{}</a>"#, esc(v), esc(v))
            } else {
                esc(v)
            };
            let _ = write!(s, "<dt>{}</dt><dd>{value}</dd>", esc(k));
        }
        if !n.tags.is_empty() {
            let _ = write!(
                s,
                "<dt>tags</dt><dd>{}</dd>",
                n.tags
                    .iter()
                    .map(|t| format!(r#"<span class="tag">{}</span>"#, esc(t)))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        s.push_str("</dl>");
    }
    // Lineage.
    let (nodes, left_out) = lineage_nodes(docs, i);
    let (svg, _) = lineage(
        docs,
        &nodes,
        "lineage",
        Mode::Links {
            prefix: "",
            focus: 0,
        },
    );
    let up = docs.reach(i, true, |x| x.kind != Kind::Test).len();
    let down = docs.reach(i, false, |x| x.kind != Kind::Test).len();
    let _ = write!(
        s,
        r#"<section id="lineage-section"><h2>Lineage</h2><p class="sub">{up} upstream, {down} downstream{}. <a href="../index.html#focus={}">Focus it in the overview</a>.</p><div class="graph small">{svg}</div></section>"#,
        if left_out > 0 {
            format!("; the nearest levels are drawn, {left_out} more nodes are in the overview")
        } else {
            String::new()
        },
        esc(&n.id)
    );
    s.push_str(&columns_table(docs, n));
    s.push_str(&tests_table(docs, n));
    let refs = |list: &[usize]| -> String {
        let v: Vec<String> = list
            .iter()
            .filter(|x| docs.nodes[**x].kind != Kind::Test)
            .map(|x| link(docs, *x))
            .collect();
        if v.is_empty() {
            r#"<span class="muted">none</span>"#.into()
        } else {
            v.join(" ")
        }
    };
    let _ = write!(
        s,
        r#"<section id="deps"><h2>Depends on</h2><p>{}</p><h2>Referenced by</h2><p>{}</p></section>"#,
        refs(&n.parents),
        refs(&n.children)
    );
    if n.raw_code.is_some() || n.compiled_code.is_some() {
        s.push_str(r#"<section id="code"><h2>Code</h2>"#);
        if let Some(c) = &n.raw_code {
            let _ = write!(
                s,
                r#"<details open><summary>Source ({})</summary><pre class="sql" id="raw-sql">{}</pre></details>"#,
                esc(&n.path),
                esc(c.trim_end())
            );
        }
        if let Some(c) = &n.compiled_code {
            let _ = write!(
                s,
                r#"<details><summary>Compiled</summary><pre class="sql" id="compiled-sql">{}</pre></details>"#,
                esc(c.trim_end())
            );
        }
        s.push_str("</section>");
    }
    if n.config.as_object().is_some_and(|c| !c.is_empty()) {
        let _ = write!(
            s,
            r#"<section id="config"><h2>Config</h2><pre>{}</pre></section>"#,
            esc(&serde_json::to_string_pretty(&n.config).unwrap_or_default())
        );
    }
    if !n.stats.is_empty() {
        s.push_str(r#"<section id="catalog"><h2>In the database</h2><dl class="facts">"#);
        for (k, v) in &n.stats {
            let shown = v.parse::<i64>().map(count).unwrap_or_else(|_| v.clone());
            let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&shown));
        }
        let _ = write!(
            s,
            r#"</dl><p class="sub">From catalog.json{}.</p></section>"#,
            docs.catalog_at
                .as_deref()
                .map(|c| format!(", {}", when(c)))
                .unwrap_or_default()
        );
    }
    s.push_str("</main></body></html>\n");
    s
}

/// The search index: per node `[label, kind, page, snippet, columns, tags]`.
fn search_index(docs: &Docs) -> Value {
    let rows: Vec<Value> = docs
        .nodes
        .iter()
        .filter(|n| n.page.is_some())
        .map(|n| {
            json!([
                n.label,
                n.kind.label(),
                n.page.as_ref().map(|p| format!("{PAGES}/{p}")),
                snippet(&n.description, 110),
                n.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
                n.tags,
                n.id,
            ])
        })
        .collect();
    Value::Array(rows)
}

/// The overview: counts, latest run, lineage with zoom and focus, search, lists.
pub(crate) fn index_page(docs: &Docs) -> String {
    let mut s = head(&format!("{} · docs", docs.project), INDEX_CSS);
    s.push_str(&topbar(&docs.project, "index.html"));
    s.push_str("<main>");
    let _ = write!(
        s,
        r#"<header class="node"><div class="kind">project</div><h1>{}</h1>"#,
        esc(&docs.project)
    );
    let counts: Vec<String> = docs
        .counts()
        .iter()
        .map(|(k, c)| {
            format!(
                r#"<span class="ref k-{}">{c} {}</span>"#,
                k.label(),
                if *c == 1 { k.label() } else { k.plural() }
            )
        })
        .collect();
    let _ = write!(
        s,
        r#"<p class="where" id="counts">{}</p>"#,
        counts.join(" ")
    );
    // Latest run.
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for n in docs.nodes.iter().filter(|n| n.kind != Kind::Source) {
        if let Some(st) = &n.status {
            *by.entry(st.status.clone()).or_default() += 1;
        }
    }
    let mut fresh: std::collections::BTreeMap<String, usize> = Default::default();
    for n in docs.nodes.iter().filter(|n| n.kind == Kind::Source) {
        if let Some(st) = &n.status {
            *fresh.entry(st.status.clone()).or_default() += 1;
        }
    }
    let summary = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, c)| {
                format!(
                    r#"{c} <span class="badge st-{}">{}</span>"#,
                    esc(&k.replace(' ', "-")),
                    esc(k)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    s.push_str(r#"<p class="status" id="run-summary">"#);
    match &docs.run_at {
        Some(t) => {
            let _ = write!(s, "Latest run {}: {}", esc(&when(t)), summary(&by));
        }
        None => s.push_str(r#"<span class="muted">No run_results.json yet: run <code>build</code> for statuses.</span>"#),
    }
    if let Some(t) = &docs.freshness_at {
        let _ = write!(
            s,
            " · source freshness {}: {}",
            esc(&when(t)),
            summary(&fresh)
        );
    }
    if let Some(t) = &docs.generated_at {
        let _ = write!(
            s,
            r#" · <span class="muted">generated {}</span>"#,
            esc(&when(t))
        );
    }
    s.push_str("</p></header>");
    s.push_str(r#"<section id="results" hidden><h2>Search results <span class="count" id="nres"></span></h2><ol id="hits"></ol></section>"#);
    // Overview lineage.
    let nodes: Vec<usize> = (0..docs.nodes.len())
        .filter(|i| docs.nodes[*i].kind.in_overview())
        .collect();
    let (svg, edges) = lineage(docs, &nodes, "overview", Mode::Overview);
    let parents: Vec<Vec<usize>> = {
        let mut p = vec![Vec::new(); nodes.len()];
        for (a, b) in &edges {
            p[*b].push(*a);
        }
        p
    };
    let pages: Vec<Value> = nodes
        .iter()
        .map(|i| {
            json!([
                docs.nodes[*i].page.as_ref().map(|p| format!("{PAGES}/{p}")),
                docs.nodes[*i].label,
                docs.nodes[*i].kind.label(),
                docs.nodes[*i].id
            ])
        })
        .collect();
    let _ = write!(
        s,
        r#"<section id="overview-section"><h2>Lineage</h2><p class="sub">Sources on the left, exposures on the right. Click a node to focus it with its ancestors and descendants; drag to pan, wheel or buttons to zoom.</p><div class="tools"><button type="button" data-z="1.25">+</button><button type="button" data-z="0.8">−</button><button type="button" data-z="fit">fit</button><span id="focus-info" class="focus-info"></span></div><div class="graph" id="graph">{svg}</div></section>"#
    );
    // Lists by kind.
    for (kind, _) in docs.counts() {
        if !kind.has_page() {
            continue;
        }
        let _ = write!(
            s,
            r#"<section class="list" id="list-{}"><h2>{}</h2><table><tbody>"#,
            kind.label(),
            esc(&kind.plural()[..1].to_uppercase()) + &kind.plural()[1..]
        );
        for n in docs.nodes.iter().filter(|n| n.kind == kind) {
            let st = n.status.as_ref().map(status_badge).unwrap_or_default();
            let _ = write!(
                s,
                r#"<tr><td><a href="{PAGES}/{}">{}</a></td><td>{st}</td><td class="muted">{}</td></tr>"#,
                esc(n.page.as_deref().unwrap_or("")),
                esc(&n.label),
                esc(&snippet(&n.description, 120))
            );
        }
        s.push_str("</tbody></table></section>");
    }
    let data = json!({"index": search_index(docs), "parents": parents, "nodes": pages});
    let _ = writeln!(
        s,
        r#"</main><script type="application/json" id="data">{}</script><script>{JS}</script></body></html>"#,
        data.to_string().replace("</", "<\\/")
    );
    s
}
