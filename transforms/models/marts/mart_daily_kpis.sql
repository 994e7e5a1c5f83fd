{{ config(materialized='table', indexes=[{'columns': ['"date"'], 'unique': True}]) }}
{#-
  One row per UTC date with at least one live session, new subscription, live charge
  (any status) or live ad_statistics row (docs/marts.md, mart_daily_kpis); columns and
  interpretation choices are documented in schema.yml. Ratios are computed from this
  row's rounded values, in numeric.

  The key's unique index (`indexes`) refuses a build with a duplicate key and
  answers the key's `unique` test from the catalog.
-#}

with

sessions_by_day as (
    select
        session_date                              as day,
        count(*)                                  as sessions,
        count(*) filter (where converted = 1)     as converted_sessions
    from {{ ref('mart_funnel_conversions') }}
    group by session_date
),

subscriptions_by_day as (
    -- sum() of the rounded row values, skipping nulls.
    select
        subscription_date                         as day,
        count(*)                                  as new_subscriptions,
        sum(revenue_usd)                          as revenue_usd
    from {{ ref('mart_new_subscriptions') }}
    group by subscription_date
),

live_charges as (
    select
        (created)::date as day,
        status,
        failure_code
    from {{ source('raw_stripe', 'charges') }}
    where _sdc_deleted_at is null
),

charges_by_day as (
    select
        day,
        count(*) filter (where status = 'failed') as failed_charges
    from live_charges
    group by day
),

failure_codes_by_day as (
    -- The most frequent non-null failure_code of the day's failed charges; ties go
    -- to the alphabetically first code (byte order).
    select
        day,
        failure_code,
        row_number() over (
            partition by day
            order by count(*) desc, failure_code collate "C" asc
        ) as code_rank
    from live_charges
    where status = 'failed'
      and failure_code is not null
    group by day, failure_code
),

spend_by_day as (
    select
        date_start as day,
        sum(spend) as spend
    from {{ source('raw_facebook', 'ad_statistics') }}
    where _sdc_deleted_at is null
    group by date_start
),

days as (
    select day from sessions_by_day
    union
    select day from subscriptions_by_day
    union
    select day from charges_by_day
    union
    select day from spend_by_day
),

daily as (
    select
        d.day,
        coalesce(s.sessions, 0)                      as sessions,
        coalesce(s.converted_sessions, 0)            as converted_sessions,
        coalesce(n.new_subscriptions, 0)             as new_subscriptions,
        round(coalesce(n.revenue_usd, 0), 2)         as revenue_usd,
        round(coalesce(a.spend, 0), 2)               as ad_spend_usd,
        coalesce(c.failed_charges, 0)                as failed_charges,
        fc.failure_code                              as top_failure_code
    from days as d
    left join sessions_by_day as s
        on s.day = d.day
    left join subscriptions_by_day as n
        on n.day = d.day
    left join spend_by_day as a
        on a.day = d.day
    left join charges_by_day as c
        on c.day = d.day
    left join failure_codes_by_day as fc
        on fc.day = d.day
       and fc.code_rank = 1
)

select
    (day)::date                    as "date",
    (sessions)::bigint             as sessions,
    (converted_sessions)::bigint   as converted_sessions,
    (case
        when sessions = 0 then null
        else round(converted_sessions::numeric / sessions, 4)
    end)::numeric                  as conversion_rate,
    (new_subscriptions)::bigint    as new_subscriptions,
    (revenue_usd)::numeric         as revenue_usd,
    (ad_spend_usd)::numeric        as ad_spend_usd,
    (case
        when new_subscriptions = 0 then null
        else round(ad_spend_usd / new_subscriptions, 2)
    end)::numeric                  as cac_usd,
    (case
        when ad_spend_usd = 0 then null
        else round(revenue_usd / ad_spend_usd, 4)
    end)::numeric                  as roas,
    (failed_charges)::bigint       as failed_charges,
    (top_failure_code)::text       as top_failure_code
from daily
