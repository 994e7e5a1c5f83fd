{{ config(materialized='table', indexes=[{'columns': ['session_id collate "C"'], 'unique': True}]) }}
{#-
  One row per live session (docs/marts.md, mart_funnel_conversions); columns and
  interpretation choices are documented in schema.yml.

  Scale: a year is ~10M sessions and ~300M events. Events are aggregated once, in
  one scan (int_app_activity), to their latest event_time per user_id and per
  lower(email), then each session is hash-joined to both: a session is activated in the app when one of
  its events is at or after its created_at, i.e. when the latest such event is.
  No per-session correlated subquery, no join that is not an equi-join.

  The key's unique index (`indexes`) refuses a build with a duplicate key and
  answers the key's `unique` test from the catalog. It is in byte order (`collate
  "C"`): the column's own collation is deterministic, so the same values are
  equal, and building it sorts a million keys in half the time of ICU's order.

  `new_subscriptions` is read twice and `not materialized`: a materialized CTE
  keeps the whole statement out of PostgreSQL's parallel workers (with the
  marts' parallel_tuple_cost, dbt_project.yml), and the sessions are most of it.
-#}

with

live_sessions as (
    select
        id,
        created_at,
        profile_id,
        email,
        funnel_id,
        country
    from {{ source('raw_funnelfox', 'sessions') }}
    where _sdc_deleted_at is null
),

live_funnels as (
    select
        id,
        title
    from {{ source('raw_funnelfox', 'funnels') }}
    where _sdc_deleted_at is null
),

new_subscriptions as not materialized (
    select
        session_id,
        user_profile_id,
        subscribed_at,
        revenue_usd
    from {{ ref('mart_new_subscriptions') }}
),

conversions as (
    -- What each acquisition session acquired. sum() skips nulls and is null when
    -- every revenue_usd is null.
    select
        session_id,
        count(*)           as conversions,
        sum(revenue_usd)   as revenue_usd,
        min(subscribed_at) as converted_at
    from new_subscriptions
    where session_id is not null
    group by session_id
),

purchasers as (
    -- Profiles with at least one new subscription, whichever session acquired it.
    select distinct
        user_profile_id as profile_id
    from new_subscriptions
),

app_activity_by_user as (
    -- Identity, first branch: events.user_id = sessions.profile_id.
    select identity_key as user_id, last_event_time
    from {{ ref('int_app_activity') }}
    where not by_email
),

app_activity_by_email as (
    -- Identity, second branch: only events without user_id, by case-insensitive
    -- email, never an empty one.
    select identity_key as email_key, last_event_time
    from {{ ref('int_app_activity') }}
    where by_email
)

select
    (s.created_at)::date                           as session_date,
    (s.id)::text                                   as session_id,
    (s.created_at at time zone 'UTC')::timestamptz as session_created_at,
    (s.profile_id)::text                           as profile_id,
    (s.funnel_id)::text                            as funnel_id,
    (f.title)::text                                as funnel_title,
    (s.country)::text                              as country,
    (case when c.session_id is null then 0 else 1 end)::integer as converted,
    coalesce(c.conversions, 0)::integer            as conversions,
    (c.revenue_usd)::numeric                       as revenue_usd,
    (c.converted_at)::timestamptz                  as converted_at,
    round(
        extract(epoch from (c.converted_at - (s.created_at at time zone 'UTC'))) / 3600,
        2
    )::numeric                                     as time_to_conversion_hours,
    (p.profile_id is not null)::boolean            as had_purchase,
    (
        coalesce(u.last_event_time >= s.created_at, false)
        or coalesce(e.last_event_time >= s.created_at, false)
    )::boolean                                     as activated_in_app
from live_sessions as s
left join live_funnels as f
    on f.id = s.funnel_id
left join conversions as c
    on c.session_id = s.id
left join purchasers as p
    on p.profile_id = s.profile_id
left join app_activity_by_user as u
    on u.user_id = s.profile_id
left join app_activity_by_email as e
    on e.email_key = {{ email_key('s.email') }}
   and s.email <> ''
