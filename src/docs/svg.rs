//! Lineage drawings as SVG, laid out at generate time ([`super::layout`]): one
//! box per node, coloured by kind (CSS classes `k-<kind>`) with its latest status
//! (`st-<status>`), curves from parents to children. On node pages each box is a
//! link to its page; in the overview the boxes carry their index for the focus
//! script.

use std::fmt::Write;

use super::layout::{layout, Item, NODE_H};

use super::model::{Docs, Kind};
use crate::report::chart::esc;

/// Width of a node's box for its label.
fn width(label: &str) -> f64 {
    (label.chars().count().min(44) as f64) * 6.9 + 28.0
}

fn shown(label: &str) -> String {
    if label.chars().count() > 44 {
        format!("{}…", label.chars().take(43).collect::<String>())
    } else {
        label.to_string()
    }
}

/// How boxes behave.
pub(crate) enum Mode<'a> {
    /// Boxes link to pages under `prefix`; `focus` is the page's own node.
    Links { prefix: &'a str, focus: usize },
    /// Boxes carry `data-i` for the overview's script.
    Overview,
}

/// An SVG of `nodes` (indexes into `docs.nodes`) and the edges between them.
/// Returns the SVG and the edges drawn as (from, to) positions in `nodes`.
pub(crate) fn lineage(
    docs: &Docs,
    nodes: &[usize],
    id: &str,
    mode: Mode,
) -> (String, Vec<(usize, usize)>) {
    let local: std::collections::HashMap<usize, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let items: Vec<Item> = nodes
        .iter()
        .map(|n| Item {
            width: width(&docs.nodes[*n].label),
        })
        .collect();
    let mut edges = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for p in &docs.nodes[*n].parents {
            if let Some(&j) = local.get(p) {
                edges.push((j, i));
            }
        }
    }
    let placed = layout(&items, &edges);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="lineage" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}" data-w="{w:.0}" data-h="{h:.0}"><g class="edges">"#,
        w = placed.width,
        h = placed.height
    );
    for (a, b) in &edges {
        let x1 = placed.x[*a] + items[*a].width;
        let y1 = placed.y[*a] + NODE_H / 2.0;
        let x2 = placed.x[*b];
        let y2 = placed.y[*b] + NODE_H / 2.0;
        let dx = ((x2 - x1) / 2.0).max(20.0);
        let _ = write!(
            s,
            r#"<path d="M{x1:.0} {y1:.0}C{:.0} {y1:.0} {:.0} {y2:.0} {x2:.0} {y2:.0}"/>"#,
            x1 + dx,
            x2 - dx
        );
    }
    s.push_str("</g><g class=\"nodes\">");
    for (i, n) in nodes.iter().enumerate() {
        let node = &docs.nodes[*n];
        let status = node
            .status
            .as_ref()
            .map(|st| format!(" st-{}", st.status.replace(' ', "-")))
            .unwrap_or_default();
        let (x, y, w) = (placed.x[i], placed.y[i], items[i].width);
        // Box height, corners and the kind's dot are in the CSS (SVG 2 geometry
        // properties): a 2,000-node drawing is a third smaller for it.
        let body = format!(
            r#"<rect width="{w:.0}"/><circle/><text x="19" y="15">{}</text>"#,
            esc(&shown(&node.label)),
        );
        match &mode {
            Mode::Links { prefix, focus } => {
                let cls = if i == *focus { " focus" } else { "" };
                match &node.page {
                    Some(page) if i != *focus => {
                        let _ = write!(
                            s,
                            r#"<a href="{prefix}{}"><g class="n k-{}{status}{cls}" transform="translate({x:.0},{y:.0})">{body}</g></a>"#,
                            esc(page),
                            node.kind.label(),
                        );
                    }
                    _ => {
                        let anchor = if node.kind == Kind::Test {
                            format!(r##"<a href="#test-{}">"##, esc(&node.name))
                        } else {
                            String::new()
                        };
                        let _ = write!(
                            s,
                            r#"{anchor}<g class="n k-{}{status}{cls}" transform="translate({x:.0},{y:.0})">{body}</g>{}"#,
                            node.kind.label(),
                            if anchor.is_empty() { "" } else { "</a>" }
                        );
                    }
                }
            }
            Mode::Overview => {
                let _ = write!(
                    s,
                    r#"<g class="n k-{}{status}" data-i="{i}" data-id="{}" transform="translate({x:.0},{y:.0})">{body}<title>{} {}</title></g>"#,
                    node.kind.label(),
                    esc(&node.id),
                    node.kind.label(),
                    esc(&node.id)
                );
            }
        }
    }
    s.push_str("</g></svg>");
    (s, edges)
}
