//! What the report shows, read from the marts: the KPI rows of a window of days,
//! the 7- and 28-day averages ending on the report date, conversion and revenue
//! by funnel, and the failure codes of failed charges. Numeric values stay text
//! (exact); days without a row in `mart_daily_kpis` had no activity and count as
//! zeros in averages. Queries quote the relations and bind every value.

use chrono::NaiveDate;
use tokio_postgres::{Client, Row};

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// The relations the report reads, resolved through the manifest (so a private
/// target schema or an alias is followed).
#[derive(Debug, Clone)]
pub(crate) struct Relations {
    pub(crate) kpis: String,
    pub(crate) funnels: String,
    /// `raw_stripe.charges`, for the failure codes (what `top_failure_code` is
    /// computed from); None when the project does not declare it.
    pub(crate) charges: Option<String>,
}

impl Relations {
    pub(crate) fn of(manifest: &Manifest) -> Result<Relations> {
        let model = |name: &str| {
            manifest
                .nodes
                .iter()
                .find(|n| n.name == name)
                .map(|n| n.relation_name())
                .ok_or_else(|| {
                    Error::usage(format!(
                        "the report reads model '{name}', which the project does not have (or is disabled); it needs the shipped marts"
                    ))
                })
        };
        Ok(Relations {
            kpis: model("mart_daily_kpis")?,
            funnels: model("mart_funnel_conversions")?,
            charges: manifest
                .sources
                .iter()
                .find(|s| s.table.source_name == "raw_stripe" && s.table.name == "charges")
                .map(|s| s.relation_name()),
        })
    }
}

/// One row of `mart_daily_kpis`.
#[derive(Debug, Clone)]
pub(crate) struct Kpis {
    pub(crate) date: NaiveDate,
    pub(crate) sessions: i64,
    pub(crate) converted_sessions: i64,
    pub(crate) conversion_rate: Option<String>,
    pub(crate) new_subscriptions: i64,
    pub(crate) revenue_usd: String,
    pub(crate) ad_spend_usd: String,
    pub(crate) cac_usd: Option<String>,
    pub(crate) roas: Option<String>,
    pub(crate) failed_charges: i64,
    pub(crate) top_failure_code: Option<String>,
}

/// Averages per day over the complete days ending on the report date; the rates
/// pool the days' counts (conversions over sessions, spend over subscriptions,
/// revenue over spend).
#[derive(Debug, Clone)]
pub(crate) struct Averages {
    pub(crate) sessions: String,
    pub(crate) conversion_rate: Option<String>,
    pub(crate) new_subscriptions: String,
    pub(crate) revenue_usd: String,
    pub(crate) ad_spend_usd: String,
    pub(crate) cac_usd: Option<String>,
    pub(crate) roas: Option<String>,
    pub(crate) failed_charges: String,
}

/// Conversion and revenue of one funnel over the window's complete days.
#[derive(Debug, Clone)]
pub(crate) struct Funnel {
    pub(crate) name: String,
    pub(crate) sessions: i64,
    pub(crate) converted: i64,
    pub(crate) conversion_rate: Option<String>,
    /// Sum of the revenue_usd its sessions acquired; None when none had any.
    pub(crate) revenue_usd: Option<String>,
}

/// Failed charges of one failure code (None: failed without a code).
#[derive(Debug, Clone)]
pub(crate) struct FailureCode {
    pub(crate) code: Option<String>,
    pub(crate) charges: i64,
}

/// Everything one report shows.
#[derive(Debug, Clone)]
pub(crate) struct ReportData {
    pub(crate) relations: Relations,
    /// The current UTC date (partial) and time, from the database's clock.
    pub(crate) today: NaiveDate,
    pub(crate) now_utc: String,
    /// The day the report is about: the latest complete UTC day unless chosen.
    pub(crate) date: NaiveDate,
    /// The latest date of the mart, to tell stale marts.
    pub(crate) latest: Option<NaiveDate>,
    /// The window: `days` complete days ending on `date`, then the days after it up
    /// to today; a day without a row is None.
    pub(crate) window: Vec<(NaiveDate, Option<Kpis>)>,
    pub(crate) avg7: Averages,
    pub(crate) avg28: Averages,
    pub(crate) funnels: Vec<Funnel>,
    pub(crate) failure_codes: Vec<FailureCode>,
    /// First and last day of the funnel and failure-code tables.
    pub(crate) span: (NaiveDate, NaiveDate),
}

impl ReportData {
    /// The report date's row.
    pub(crate) fn day(&self) -> Option<&Kpis> {
        self.row(self.date)
    }

    /// Today's (partial) row, when the window reaches today.
    pub(crate) fn today_row(&self) -> Option<&Kpis> {
        self.row(self.today)
    }

    fn row(&self, d: NaiveDate) -> Option<&Kpis> {
        self.window
            .iter()
            .find(|(date, _)| *date == d)
            .and_then(|(_, k)| k.as_ref())
    }

    /// Whether `d` is the current, partial day.
    pub(crate) fn is_partial(&self, d: NaiveDate) -> bool {
        d >= self.today
    }
}

fn db(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| {
        Error::runtime(format!(
            "report: {what}: {}; build the marts first (reluvia-transform build)",
            crate::postgres::describe_db_error(&e, "")
        ))
    }
}

fn kpis_of(r: &Row) -> Kpis {
    Kpis {
        date: r.get(0),
        sessions: r.get(1),
        converted_sessions: r.get(2),
        conversion_rate: r.get(3),
        new_subscriptions: r.get(4),
        revenue_usd: r.get::<_, Option<String>>(5).unwrap_or_else(|| "0".into()),
        ad_spend_usd: r.get::<_, Option<String>>(6).unwrap_or_else(|| "0".into()),
        cac_usd: r.get(7),
        roas: r.get(8),
        failed_charges: r.get(9),
        top_failure_code: r.get(10),
    }
}

/// Reads the report of `date` (default: the latest complete UTC day) with a
/// trend window of `days` complete days.
pub(crate) async fn read(
    client: &Client,
    relations: &Relations,
    date: Option<NaiveDate>,
    days: u32,
) -> Result<ReportData> {
    let clock = client
        .query_one(
            "select (now() at time zone 'UTC')::date, to_char(now() at time zone 'UTC', 'HH24:MI')",
            &[],
        )
        .await
        .map_err(db("reading the clock"))?;
    let today: NaiveDate = clock.get(0);
    let now_utc: String = clock.get(1);
    let date = date.unwrap_or(today - chrono::Duration::days(1));
    let days = i64::from(days.max(1));
    let first = date - chrono::Duration::days(days - 1);
    let last = today.max(date);
    let kpis = &relations.kpis;
    let rows = client
        .query(
            &format!(
                "select date, sessions::int8, converted_sessions::int8, conversion_rate::text,
                        new_subscriptions::int8, revenue_usd::text, ad_spend_usd::text, cac_usd::text,
                        roas::text, failed_charges::int8, top_failure_code
                 from {kpis} where date between $1 and $2 order by date"
            ),
            &[&first, &last],
        )
        .await
        .map_err(db(&format!("reading {kpis}")))?;
    let found: Vec<Kpis> = rows.iter().map(kpis_of).collect();
    let mut window = Vec::new();
    let mut d = first;
    while d <= last {
        window.push((d, found.iter().find(|k| k.date == d).cloned()));
        d += chrono::Duration::days(1);
    }
    let latest: Option<NaiveDate> = client
        .query_one(&format!("select max(date) from {kpis}"), &[])
        .await
        .map_err(db(&format!("reading {kpis}")))?
        .get(0);
    let avg7 = averages(client, kpis, date, 7).await?;
    let avg28 = averages(client, kpis, date, 28).await?;
    let span = (first, date);
    let funnels = client
        .query(
            &format!(
                "select coalesce(funnel_title, funnel_id, '(no funnel)') collate \"C\", count(*)::int8,
                        coalesce(sum(converted), 0)::int8,
                        round(sum(converted)::numeric / nullif(count(*), 0), 4)::text,
                        sum(revenue_usd)::text
                 from {} where session_date between $1 and $2
                 group by 1 order by count(*) desc, 1",
                relations.funnels
            ),
            &[&span.0, &span.1],
        )
        .await
        .map_err(db(&format!("reading {}", relations.funnels)))?
        .iter()
        .map(|r| Funnel {
            name: r.get(0),
            sessions: r.get(1),
            converted: r.get(2),
            conversion_rate: r.get(3),
            revenue_usd: r.get(4),
        })
        .collect();
    let failure_codes = match &relations.charges {
        None => Vec::new(),
        Some(charges) => client
            .query(
                &format!(
                    "select failure_code, count(*)::int8 from {charges}
                     where _sdc_deleted_at is null and status = 'failed'
                       and (created)::date between $1 and $2
                     group by failure_code order by count(*) desc, failure_code collate \"C\" nulls last"
                ),
                &[&span.0, &span.1],
            )
            .await
            .map_err(db(&format!("reading {charges}")))?
            .iter()
            .map(|r| FailureCode {
                code: r.get(0),
                charges: r.get(1),
            })
            .collect(),
    };
    Ok(ReportData {
        relations: relations.clone(),
        today,
        now_utc,
        date,
        latest,
        window,
        avg7,
        avg28,
        funnels,
        failure_codes,
        span,
    })
}

/// Averages over the `n` calendar days ending on `date`; a day without a row
/// counts as a day without activity.
async fn averages(client: &Client, kpis: &str, date: NaiveDate, n: i64) -> Result<Averages> {
    let first = date - chrono::Duration::days(n - 1);
    let r = client
        .query_one(
            &format!(
                "with days as (
                   select d::date as date from generate_series($1::date, $2::date, interval '1 day') d
                 ), k as (
                   select coalesce(m.sessions, 0) as sessions, coalesce(m.converted_sessions, 0) as converted,
                          coalesce(m.new_subscriptions, 0) as subs, coalesce(m.revenue_usd, 0) as revenue,
                          coalesce(m.ad_spend_usd, 0) as spend, coalesce(m.failed_charges, 0) as failed
                   from days left join {kpis} m on m.date = days.date
                 )
                 select count(*)::int8,
                        round(avg(sessions), 1)::text,
                        round(sum(converted)::numeric / nullif(sum(sessions), 0), 4)::text,
                        round(avg(subs), 1)::text,
                        round(avg(revenue), 2)::text,
                        round(avg(spend), 2)::text,
                        round(sum(spend) / nullif(sum(subs), 0), 2)::text,
                        round(sum(revenue) / nullif(sum(spend), 0), 4)::text,
                        round(avg(failed), 1)::text
                 from k"
            ),
            &[&first, &date],
        )
        .await
        .map_err(db(&format!("reading {kpis}")))?;
    Ok(Averages {
        sessions: r.get(1),
        conversion_rate: r.get(2),
        new_subscriptions: r.get(3),
        revenue_usd: r.get(4),
        ad_spend_usd: r.get(5),
        cac_usd: r.get(6),
        roas: r.get(7),
        failed_charges: r.get(8),
    })
}
