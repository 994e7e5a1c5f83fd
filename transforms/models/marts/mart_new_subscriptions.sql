{{ config(materialized='table', indexes=[{'columns': ['subscription_id collate "C"'], 'unique': True}]) }}
{#-
  One row per new subscription (docs/marts.md, mart_new_subscriptions); columns and
  interpretation choices are documented in schema.yml.

  Time zones: raw timestamps are `timestamp without time zone` holding UTC
  wall-clock time. Dates are taken from the raw timestamp (`created::date`), instants
  are `created at time zone 'UTC'` (a timestamptz); comparisons are made between raw
  timestamps. Nothing depends on the session's TimeZone or on now().

  The key's unique index (`indexes`) refuses a build with a duplicate key and
  answers the key's `unique` test from the catalog; in byte order (`collate "C"`),
  the cheapest to build, as the column's deterministic collation has the same
  equal values.
  The window functions partition in byte order for the same reason: the same
  partitions, sorted without ICU's comparisons.
-#}

with

paid_charges as (
    -- A paid charge: a live charge with status 'succeeded'.
    select
        id,
        amount,
        currency,
        created
    from {{ source('raw_stripe', 'charges') }}
    where _sdc_deleted_at is null
      and status = 'succeeded'
),

real_subscriptions as (
    -- A real subscription: live and not sandbox (null sandbox counts as false).
    select
        id,
        profile_id,
        psp_id,
        payment_provider,
        sandbox,
        price_usd,
        created_at
    from {{ source('raw_funnelfox', 'subscriptions') }}
    where _sdc_deleted_at is null
      and sandbox is not true
),

paid_subscriptions as (
    -- Real subscriptions paid by a paid charge, ranked per charge: the earliest
    -- (least created_at, null after every value, then least id in byte order) is the
    -- new subscription, the others are duplicates.
    select
        s.id,
        s.profile_id,
        s.payment_provider,
        s.sandbox,
        s.price_usd,
        c.id       as charge_id,
        c.amount   as charge_amount,
        c.currency as charge_currency,
        c.created  as charge_created,
        row_number() over (
            partition by c.id collate "C"
            order by s.created_at asc nulls last, s.id collate "C" asc
        ) as duplicate_rank
    from real_subscriptions as s
    inner join paid_charges as c
        on c.id = s.psp_id
),

new_subscriptions as (
    select
        *,
        round({{ stripe_amount_to_major('charge_amount', 'charge_currency') }}, 2) as revenue
    from paid_subscriptions
    where duplicate_rank = 1
),

live_sessions as (
    select
        id,
        created_at,
        profile_id,
        funnel_id,
        country,
        city,
        origin
    from {{ source('raw_funnelfox', 'sessions') }}
    where _sdc_deleted_at is null
      -- Only the profiles that have a subscription can acquire one: this semi-join
      -- runs in the parallel scan of sessions, so a tenth of them reach the join
      -- with new_subscriptions (a CTE read twice, outside the workers).
      and profile_id in (
          select profile_id
          from {{ source('raw_funnelfox', 'subscriptions') }}
      )
),

acquisition_candidates as (
    -- The profile's live sessions created at or before subscribed_at, latest first
    -- (greatest created_at, then greatest id in byte order). sessions.created_at is
    -- not null, and a null could not pass the `<=` anyway.
    select
        n.id as subscription_id,
        s.id as session_id,
        s.funnel_id,
        s.country,
        s.city,
        s.origin,
        row_number() over (
            partition by n.id collate "C"
            order by s.created_at desc, s.id collate "C" desc
        ) as session_rank
    from new_subscriptions as n
    inner join live_sessions as s
        on s.profile_id = n.profile_id
       and s.created_at <= n.charge_created
),

acquisition_sessions as (
    select *
    from acquisition_candidates
    where session_rank = 1
),

live_funnels as (
    select
        id,
        title
    from {{ source('raw_funnelfox', 'funnels') }}
    where _sdc_deleted_at is null
)

select
    (n.charge_created)::date                           as subscription_date,
    (n.id)::text                                       as subscription_id,
    (n.profile_id)::text                               as user_profile_id,
    (n.charge_id)::text                                as stripe_charge_id,
    (n.charge_created at time zone 'UTC')::timestamptz as subscribed_at,
    (n.revenue)::numeric                               as revenue,
    (case
        when lower(n.charge_currency) = 'usd' then n.revenue
        else round(n.price_usd::numeric / 100, 2)
    end)::numeric                                      as revenue_usd,
    upper(n.charge_currency)::text                     as currency,
    (a.session_id)::text                               as session_id,
    (a.funnel_id)::text                                as funnel_id,
    (f.title)::text                                    as funnel_title,
    (a.country)::text                                  as country,
    (a.city)::text                                     as city,
    (a.origin)::text                                   as origin,
    (n.payment_provider)::text                         as payment_provider,
    coalesce(n.sandbox, false)::boolean                as is_sandbox
from new_subscriptions as n
left join acquisition_sessions as a
    on a.subscription_id = n.id
left join live_funnels as f
    on f.id = a.funnel_id
