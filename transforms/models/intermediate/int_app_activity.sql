{{ config(
    materialized='incremental',
    unique_key=['by_email', 'identity_key'],
    incremental_strategy='delete+insert',
    post_hook="delete from {{ this }} where last_event_time is null",
    session_settings={
        'jit': False,
        'work_mem': '64MB',
        'enable_sort': False,
        'parallel_tuple_cost': 0.0001,
        'enable_nestloop': False,
    },
) }}
{#-
  The latest live Amplitude event per app identity (docs/marts.md, "Identity in the
  app"), for mart_funnel_conversions' activated_in_app: per user_id, and per
  lower(email) of the events without user_id whose email is not empty. One row per
  (by_email, identity_key). lower(email) is the email_key macro's: the same text,
  cheaper for ASCII emails.

  Incremental (docs/raw-contract.md allows it when every mart equals a full
  rebuild): the first build and `--full-refresh` aggregate every event; a daily
  run reads only the events the loader wrote or deleted since the last build and
  rewrites the identities they touch. Each row keeps what that needs:
  - last_event_hash: hashtext(uuid) of its latest event (the greatest hash among
    events at that time). When a changed event has that hash and is now
    deleted, moved to another identity or retimed, the identity is *stale*: its
    latest event may be gone, so it is recomputed from all its live events (one
    parallel scan of events, only on a run that has a stale identity; a hash
    collision only recomputes more than needed).
  - loaded_through: the newest loader time (_sdc_batched_at) read for the row. The
    next run reads the events with _sdc_batched_at or _sdc_deleted_at after the
    newest of them (target-postgres' soft delete sets only _sdc_deleted_at, to the
    time of the load). This assumes that the loader commits its batches in the
    order of their times, one loader at a time, as `meltano run` does.
  An identity left without live events is written with a null last_event_time and
  deleted by the post-hook, in the same transaction.

  Scale: one scan of the events for both branches (they were two). PostgreSQL
  cannot estimate the number of groups of a key that mixes two columns (it
  multiplies their distinct counts: 2.8M expected, 57k real at 14M events), so by
  default it sorts every event to disk; this model's session_settings (README,
  "Session settings") let it hash in parallel instead, and rule out nested loops.
-#}

{%- set identity_of_live_events -%}
    _sdc_deleted_at is null
    and (user_id is not null or email <> '')
{%- endset %}

{%- set latest -%}
    max(event_time) as last_event_time,
    -- The hash of the latest event: the greatest (epoch, hash) pair. Epoch seconds
    -- in float8 keep distinct microseconds distinct and in order (their spacing is
    -- under a microsecond until 2106), and an int4 hash is exact in float8: half
    -- the cost of a numeric epoch and int8 hash (1.6 s against 3.0 s over 14M events).
    (max(array[
        date_part('epoch', event_time),
        hashtext(uuid)
    ]))[2]::integer as last_event_hash
{%- endset %}

{% if not is_incremental() %}

select
    user_id is null                 as by_email,
    coalesce(user_id, {{ email_key('email') }}) as identity_key,
    {{ latest }},
    max(_sdc_batched_at)            as loaded_through
from {{ source('raw_amplitude', 'events') }}
where {{ identity_of_live_events }}
group by 1, 2

{% else %}

{%- if execute -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- if 'loaded_through' not in columns or 'last_event_hash' not in columns -%}
        {{ exceptions.raise_compiler_error(
            this ~ " was built before int_app_activity became incremental: rebuild it once with"
            ~ " `run --full-refresh --select int_app_activity+`"
        ) }}
    {%- endif -%}
{%- endif %}

with

watermark as (
    -- -infinity when the table is empty: then every event is read.
    select coalesce(max(loaded_through), '-infinity') as loaded_through
    from {{ this }}
),

changed as (
    -- Written or deleted by the loader since the last build (one scan).
    select
        uuid,
        user_id,
        email,
        event_time,
        _sdc_deleted_at,
        _sdc_batched_at
    from {{ source('raw_amplitude', 'events') }}
    where _sdc_batched_at > (select loaded_through from watermark)
       or _sdc_deleted_at > (select loaded_through from watermark)
),

stale as (
    -- Identities whose latest event changed: deleted, without identity now, of
    -- another identity, or at another time.
    select distinct t.by_email, t.identity_key
    from {{ this }} as t
    inner join changed as c
        on hashtext(c.uuid) = t.last_event_hash
    where c._sdc_deleted_at is not null
       or not (c.user_id is not null or c.email <> '')
       or (c.user_id is null) <> t.by_email
       or coalesce(c.user_id, {{ email_key('c.email') }}) <> t.identity_key
       or c.event_time <> t.last_event_time
),

changed_live as (
    select
        user_id is null                 as by_email,
        coalesce(user_id, {{ email_key('email') }}) as identity_key,
        uuid,
        event_time,
        _sdc_batched_at
    from changed
    where {{ identity_of_live_events }}
),

stale_keys as (
    select
        array_agg(by_email)     as by_emails,
        array_agg(identity_key) as identity_keys
    from stale
),

recomputed as (
    -- Every live event of the stale identities, in one parallel scan: the
    -- identities are passed as arrays (a join with the stale CTE would keep the
    -- scan out of the parallel workers) and hashed; when none is stale, the hash
    -- is empty and the events are not read.
    select
        e.user_id is null                   as by_email,
        coalesce(e.user_id, {{ email_key('e.email') }}) as identity_key,
        e.uuid,
        e.event_time,
        e._sdc_batched_at
    from {{ source('raw_amplitude', 'events') }} as e
    inner join unnest(
        (select by_emails from stale_keys)::boolean[],
        (select identity_keys from stale_keys)::text[]
    ) as s (by_email, identity_key)
        on s.by_email = (e.user_id is null)
       and s.identity_key = coalesce(e.user_id, {{ email_key('e.email') }})
    where e._sdc_deleted_at is null
      and (e.user_id is not null or e.email <> '')
),

touched as (
    select by_email, identity_key from stale
    union
    select by_email, identity_key from changed_live
),

candidates as (
    select by_email, identity_key, uuid, event_time, _sdc_batched_at from changed_live
    union all
    select by_email, identity_key, uuid, event_time, _sdc_batched_at from recomputed
),

aggregated as (
    select
        by_email,
        identity_key,
        {{ latest }},
        max(_sdc_batched_at) as loaded_through
    from candidates
    group by 1, 2
),

previous as (
    -- The current row of a touched identity that is not stale: still valid.
    select t.*
    from {{ this }} as t
    inner join touched as k
        on k.by_email = t.by_email
       and k.identity_key = t.identity_key
    where not exists (
        select 1 from stale as s
        where s.by_email = t.by_email
          and s.identity_key = t.identity_key
    )
)

select
    k.by_email,
    k.identity_key,
    -- greatest() skips nulls: either side may be missing.
    greatest(a.last_event_time, p.last_event_time) as last_event_time,
    case
        when p.last_event_time is null then a.last_event_hash
        when a.last_event_time is null then p.last_event_hash
        when a.last_event_time > p.last_event_time then a.last_event_hash
        when a.last_event_time < p.last_event_time then p.last_event_hash
        else greatest(a.last_event_hash, p.last_event_hash)
    end as last_event_hash,
    greatest(
        a.loaded_through,
        p.loaded_through,
        (select max(_sdc_batched_at) from changed)
    ) as loaded_through
from touched as k
left join aggregated as a
    on a.by_email = k.by_email
   and a.identity_key = k.identity_key
left join previous as p
    on p.by_email = k.by_email
   and p.identity_key = k.identity_key

{% endif %}
