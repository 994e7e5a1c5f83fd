-- Raw data contract (docs: /work/shared/spec/raw-contract.md).
--
-- The tables the Singer taps land through target-postgres, one schema per source.
-- The transformer only reads them; this DDL exists for the demo and the test
-- fixtures. Timestamps are `timestamp without time zone` holding UTC wall-clock
-- time. Every table ends with the loader's seven `_sdc_*` metadata columns; a row
-- whose `_sdc_deleted_at` is not null was deleted at the source.
-- Idempotent: safe to run on a database that already has (some of) the tables.

CREATE SCHEMA IF NOT EXISTS raw_funnelfox;
CREATE SCHEMA IF NOT EXISTS raw_stripe;
CREATE SCHEMA IF NOT EXISTS raw_amplitude;
CREATE SCHEMA IF NOT EXISTS raw_facebook;

-- ---------------------------------------------------------------- raw_funnelfox

CREATE TABLE IF NOT EXISTS raw_funnelfox.funnels (
    id                    text      NOT NULL,
    title                 text,
    alias                 text,
    type                  text,
    created_at            timestamp,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT funnels_pkey PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS raw_funnelfox.sessions (
    id                    text      NOT NULL,
    created_at            timestamp NOT NULL,
    funnel_id             text,
    funnel_version        bigint,
    profile_id            text      NOT NULL,
    email                 text,
    country               text,
    city                  text,
    postal                text,
    ip                    text,
    origin                text,
    user_agent            text,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS raw_funnelfox.subscriptions (
    id                      text      NOT NULL,
    profile_id              text      NOT NULL,
    psp_id                  text,
    payment_provider        text,
    status                  text,
    sandbox                 boolean,
    price                   bigint,
    currency                text,
    price_usd               bigint,
    billing_interval        text,
    billing_interval_count  bigint,
    renews                  boolean,
    created_at              timestamp,
    updated_at              timestamp,
    period_starts_at        timestamp,
    period_ends_at          timestamp,
    cancelled_at            timestamp,
    _sdc_extracted_at       timestamp NOT NULL,
    _sdc_received_at        timestamp NOT NULL,
    _sdc_batched_at         timestamp NOT NULL,
    _sdc_deleted_at         timestamp,
    _sdc_sequence           bigint    NOT NULL,
    _sdc_table_version      bigint,
    _sdc_sync_started_at    bigint,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (id)
);

-- ------------------------------------------------------------------- raw_stripe

CREATE TABLE IF NOT EXISTS raw_stripe.charges (
    id                    text      NOT NULL,
    amount                bigint,
    amount_refunded       bigint,
    currency              text,
    status                text,
    failure_code          text,
    failure_message       text,
    paid                  boolean,
    refunded              boolean,
    captured              boolean,
    livemode              boolean,
    customer              text,
    invoice               text,
    payment_intent        text,
    balance_transaction   text,
    description           text,
    metadata              jsonb,
    created               timestamp NOT NULL,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT charges_pkey PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS raw_stripe.subscriptions (
    id                    text      NOT NULL,
    customer              text,
    status                text,
    created               timestamp,
    start_date            timestamp,
    current_period_start  timestamp,
    current_period_end    timestamp,
    cancel_at_period_end  boolean,
    canceled_at           timestamp,
    ended_at              timestamp,
    trial_start           timestamp,
    trial_end             timestamp,
    latest_invoice        text,
    livemode              boolean,
    plan                  jsonb,
    metadata              jsonb,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (id)
);

-- ---------------------------------------------------------------- raw_amplitude

CREATE TABLE IF NOT EXISTS raw_amplitude.events (
    uuid                  text      NOT NULL,
    event_id              bigint,
    event_type            text,
    event_time            timestamp NOT NULL,
    user_id               text,
    device_id             text,
    email                 text,
    amplitude_id          bigint,
    session_id            bigint,
    platform              text,
    os_name               text,
    country               text,
    city                  text,
    event_properties      jsonb,
    user_properties       jsonb,
    server_upload_time    timestamp,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT events_pkey PRIMARY KEY (uuid)
);

-- ----------------------------------------------------------------- raw_facebook

CREATE TABLE IF NOT EXISTS raw_facebook.campaigns (
    id                    text      NOT NULL,
    account_id            text,
    name                  text,
    objective             text,
    status                text,
    effective_status      text,
    daily_budget          numeric,
    created_time          timestamp,
    start_time            timestamp,
    stop_time             timestamp,
    updated_time          timestamp,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT campaigns_pkey PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS raw_facebook.ad_statistics (
    date_start            date      NOT NULL,
    date_stop             date,
    account_id            text,
    campaign_id           text,
    adset_id              text,
    ad_id                 text      NOT NULL,
    campaign_name         text,
    adset_name            text,
    ad_name               text,
    spend                 numeric,
    impressions           bigint,
    clicks                bigint,
    reach                 bigint,
    account_currency      text,
    _sdc_extracted_at     timestamp NOT NULL,
    _sdc_received_at      timestamp NOT NULL,
    _sdc_batched_at       timestamp NOT NULL,
    _sdc_deleted_at       timestamp,
    _sdc_sequence         bigint    NOT NULL,
    _sdc_table_version    bigint,
    _sdc_sync_started_at  bigint,
    CONSTRAINT ad_statistics_pkey PRIMARY KEY (date_start, ad_id)
);
