//! The executive summary: the last days of `mart_daily_kpis` and conversion by
//! funnel from `mart_funnel_conversions`, as aligned text tables. The queries
//! quote the schema and bind every value.

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::manifest::relation_name;

/// A text table: header and rows of cells, numbers right-aligned.
fn format_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            rows.iter()
                .all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok() || r[i] == "-")
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if numeric[i] {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

async fn text_rows(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Vec<String>>> {
    let rows = client.query(sql, params).await.map_err(|e| {
        Error::runtime(format!(
            "executive summary: {}",
            crate::postgres::describe_db_error(&e, "")
        ))
    })?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i).unwrap_or_else(|| "-".into()))
                .collect()
        })
        .collect())
}

/// The executive summary of the marts in `schema`: the last `days` days of KPIs
/// and conversion by funnel.
pub(super) async fn executive_summary(client: &Client, schema: &str, days: i64) -> Result<String> {
    let kpis = relation_name(schema, "mart_daily_kpis");
    let funnels = relation_name(schema, "mart_funnel_conversions");
    let daily = text_rows(
        client,
        &format!(
            "select date::text, sessions::text, converted_sessions::text, conversion_rate::text,
                    new_subscriptions::text, revenue_usd::text, ad_spend_usd::text, cac_usd::text,
                    roas::text, failed_charges::text, top_failure_code
             from (select * from {kpis} order by date desc limit $1) d order by date"
        ),
        &[&days],
    )
    .await?;
    let by_funnel = text_rows(
        client,
        &format!(
            "select coalesce(funnel_title, funnel_id, '(no funnel)'), count(*)::text, sum(converted)::text,
                    round(100.0 * sum(converted) / nullif(count(*), 0), 2)::text,
                    coalesce(sum(revenue_usd), 0)::text
             from {funnels}
             group by 1 order by count(*) desc, 1"
        ),
        &[],
    )
    .await?;
    let mut out = format!("Daily KPIs, last {days} days ({kpis})\n\n");
    out.push_str(&format_table(
        &[
            "date",
            "sessions",
            "converted",
            "conv_rate",
            "new_subs",
            "revenue_usd",
            "ad_spend_usd",
            "cac_usd",
            "roas",
            "failed_charges",
            "top_failure_code",
        ],
        &daily,
    ));
    out.push_str(&format!("\nConversion by funnel, all days ({funnels})\n\n"));
    out.push_str(&format_table(
        &[
            "funnel",
            "sessions",
            "converted",
            "conversion_%",
            "revenue_usd",
        ],
        &by_funnel,
    ));
    Ok(out)
}
