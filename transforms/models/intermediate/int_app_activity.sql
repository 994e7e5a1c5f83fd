{{ config(
    materialized='table',
    session_settings={
        'jit': False,
        'work_mem': '64MB',
        'enable_sort': False,
        'parallel_tuple_cost': 0.01,
        'enable_nestloop': False,
    },
) }}
{#-
  The latest live Amplitude event per app identity (docs/marts.md, "Identity in the
  app"), for mart_funnel_conversions' activated_in_app: per user_id, and per
  lower(email) of the events without user_id whose email is not empty. One row per
  (by_email, identity_key). lower(email) is the email_key macro's: the same text,
  cheaper for ASCII emails.

  A table rebuilt by every run, in one parallel scan of the events: exact by
  construction, late-arriving, soft-deleted and upserted events included. The
  events are aggregated in two steps (below): the key of each raw identity is
  computed once instead of per event, which took the model from 3.8-4.0 s to
  3.5-3.6 s in a run at 1M sessions (6.5 to 5.8-6.0 s of CPU for the query alone).
  It was incremental before, and measured against this (bench/scale.sh, 1M sessions
  and 14M events, README "Performance at scale"): without an index on the raw
  events, which the transformer may not create (raw-contract.md: it never writes
  to a raw schema), a daily run has to scan every event to find what the loader
  changed, and a deleted, moved or retimed latest event costs a second scan to
  recompute its identity; telling which event was an identity's latest needed the
  hash of the latest event's uuid, a per-event array max that made the first
  build 1.7 s dearer (5.1 s against 3.4 s). Rebuilt, the model costs one scan
  every day (3.1–3.4 s at 1M), against 4.0 s for the incremental run on a day
  with such deletes (every day of the benchmark, and every day at a year's size,
  where hash collisions alone touch some identity daily).

  Scale: PostgreSQL cannot estimate the number of groups of a key that mixes two
  columns (it multiplies their distinct counts: 2.8M expected, 57k real at 14M
  events), so by default it sorts every event to disk; these session_settings
  (README, "Session settings") let it hash in parallel instead, and rule out
  nested loops. Its parallel_tuple_cost is the marts' times 100: at the marts'
  0.0001 the planner sends every event through the Gather and aggregates them in
  the leader alone at 100k sessions (657 ms against 443 ms with each process
  aggregating its share, EXPLAIN ANALYZE); at the default 0.1 it plans no
  parallel scan at 1M sessions; 0.01 gives the partial aggregate at 100k, 1M and
  the year's 3.9M.
-#}

select
    user_id is null                             as by_email,
    coalesce(user_id, {{ email_key('email') }}) as identity_key,
    max(last_event_time)                        as last_event_time
from (
    -- The latest event per raw user_id, and per raw email of the events without
    -- one: hashing the columns as they are is cheaper than computing the key of
    -- every event, and the emails that differ only in case (a few) are folded by
    -- the outer aggregate, over ~70k rows at 14M events.
    select
        user_id,
        case when user_id is null then email end as email,
        max(event_time)                          as last_event_time
    from {{ source('raw_amplitude', 'events') }}
    where _sdc_deleted_at is null
      and (user_id is not null or email <> '')
    group by 1, 2
) as per_raw_identity
group by 1, 2
