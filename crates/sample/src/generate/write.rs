//! Writing the [`Dataset`] as COPY text, table by table, with the loader's
//! `_sdc_*` metadata; the app events and ad statistics are drawn here, row by row.

use std::fmt::Write as _;

use super::calendar::{floor_to, weekday};
use super::copy_text::{CopyWriter, JsonObject};
use super::reference::*;
use super::rng::*;
use super::world::{email_in_form, Dataset, EmailForm, StripeSub};
use super::{Micros, DAY, HOUR, MIN, MS, SEC};

/// State of the loading of one table (see [`Dataset::loader`]).
struct Loader {
    rng: Rng,
    lag: Micros,
    full_table: bool,
    sync_started: bool,
    reread_from: Micros,
    seq: i64,
}

impl Dataset {
    // -----------------------------------------------------------------------------
    // Loader metadata
    // -----------------------------------------------------------------------------

    /// The loading of one table: `id` picks its random stream; `lag` is how long
    /// after the hour its syncs start; a full-table tap rewrites every row at each
    /// sync; `newest` is the table's latest record change (see [`Dataset::write_sdc`]).
    fn loader(
        &self,
        id: u64,
        lag: Micros,
        full_table: bool,
        sync_started: bool,
        newest: Option<Micros>,
    ) -> Loader {
        Loader {
            rng: Rng::derive(self.seed, S_LOADER, id),
            lag,
            full_table,
            sync_started,
            reread_from: (self.last_sync - DAY).min(newest.unwrap_or(Micros::MAX)),
            // Singer-SDK style: milliseconds of the load, then a counter.
            seq: (self.last_sync / MS) * 1_000,
        }
    }

    /// Writes the seven `_sdc_*` fields of a row whose source record last changed at
    /// `t` (or was deleted at `deleted`) and ends the row. Incremental taps run
    /// hourly and extract a record at the first sync after it changed; the last sync
    /// (which started at `last_sync`) also re-reads a one-day lookback window and,
    /// its bookmark being inclusive, the table's newest record, so every table with
    /// rows has a fresh `_sdc_batched_at`. Full-table taps rewrite every row at each
    /// sync and carry a table version.
    fn write_sdc<F: FnMut(&str)>(
        &self,
        w: &mut CopyWriter<F>,
        l: &mut Loader,
        t: Micros,
        deleted: Option<Micros>,
    ) {
        let changed = deleted.unwrap_or(t);
        let natural = floor_to(changed, HOUR) + HOUR + l.lag;
        let sync = if l.full_table || natural > self.last_sync || changed >= l.reread_from {
            self.last_sync
        } else {
            natural
        };
        let extracted = sync + l.rng.range(20 * SEC, 6 * MIN);
        let received = extracted + l.rng.range(50 * MS, 2 * SEC);
        let batched = received + l.rng.range(SEC, 30 * SEC);
        w.ts(extracted);
        w.ts(received);
        w.ts(batched);
        w.opt_ts(deleted);
        w.int(l.seq);
        l.seq += 1;
        w.opt_int(l.full_table.then_some(self.last_sync / MS));
        w.opt_int(l.sync_started.then_some(sync / MS));
        w.end_row();
    }

    // -----------------------------------------------------------------------------
    // Writers
    // -----------------------------------------------------------------------------

    pub(super) fn write_funnels<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let mut loader = self.loader(1, 5 * MIN, true, true, None);
        for ((id, created, deleted), spec) in self.funnels.iter().zip(&FUNNELS) {
            w.text(id);
            w.opt_text(spec.title);
            w.text(spec.alias);
            w.text(spec.kind);
            w.ts(*created);
            self.write_sdc(w, &mut loader, *created, *deleted);
        }
    }

    pub(super) fn write_sessions<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .sessions
            .iter()
            .map(|s| s.deleted.unwrap_or(s.created))
            .max();
        let mut loader = self.loader(2, 3 * MIN, false, true, newest);
        let live_funnel_w: Vec<u32> = FUNNELS.iter().map(|f| f.weight).collect();
        let country_w: Vec<u32> = COUNTRIES.iter().map(|c| c.weight).collect();
        let deleted_funnel = FUNNELS.iter().position(|f| f.deleted);
        let mut buf = String::new();
        for s in &self.sessions {
            let mut rng = Rng::derive(self.seed, S_SESSION, s.key);
            let profile = &self.profiles[s.profile];
            w.text(&s.id);
            w.ts(s.created);
            // Funnel: a few sessions without one; the old (deleted) funnel still
            // gets traffic during the first days.
            let funnel = if rng.chance(0.005) {
                None
            } else if deleted_funnel.is_some()
                && s.created < (self.start_day + 5) * DAY
                && rng.chance(0.15)
            {
                deleted_funnel
            } else {
                Some(rng.weighted(&live_funnel_w))
            };
            w.opt_text(funnel.map(|f| self.funnels[f].0.as_str()));
            w.opt_int(funnel.map(|_| rng.range(1, 6)));
            w.text(&profile.id);
            let email = email_in_form(profile.email.as_deref(), s.email);
            w.opt_text(email.as_deref());
            // Geo: usually the profile's home, sometimes elsewhere (travel, VPN).
            let (country, city) = if rng.chance(0.93) {
                (profile.country, profile.city)
            } else {
                let c = rng.weighted(&country_w);
                (c, rng.below(COUNTRIES[c].cities.len() as u64) as usize)
            };
            let c = &COUNTRIES[country];
            if rng.chance(0.01) {
                w.null();
                w.null();
                w.null();
            } else {
                w.text(c.code);
                w.opt_text((!rng.chance(0.05)).then_some(c.cities[city]));
                if rng.chance(0.1) {
                    w.null();
                } else {
                    buf.clear();
                    for ch in c.postal.chars() {
                        match ch {
                            '9' => rng.push_chars(&mut buf, DIGITS, 1),
                            'A' => rng.push_chars(&mut buf, &UPPER_ALNUM[10..], 1),
                            other => buf.push(other),
                        }
                    }
                    w.text(&buf);
                }
            }
            buf.clear();
            if rng.chance(0.04) {
                let _ = write!(
                    buf,
                    "2a02:{:x}:{:x}::{:x}",
                    rng.below(0xFFFF),
                    rng.below(0xFFFF),
                    rng.below(0xFFFF)
                );
            } else {
                let first = rng.range(11, 224);
                let first = if first == 127 { 128 } else { first };
                let _ = write!(
                    buf,
                    "{first}.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.range(1, 255)
                );
            }
            w.text(&buf);
            // Origin: a landing URL, mostly from the Facebook ads with utm tags.
            let alias = funnel.map_or("start", |f| FUNNELS[f].alias);
            buf.clear();
            let _ = write!(buf, "https://get.reluvia.app/{alias}");
            match rng.weighted(&[60, 12, 8, 15, 5]) {
                0 => {
                    let ad = rng.below(ADS.len() as u64) as usize;
                    let _ = write!(
                        buf,
                        "?utm_source=facebook&utm_medium=paid&utm_campaign={}&utm_content={}&fbclid=IwAR{}",
                        self.campaigns[ADS[ad].campaign].id,
                        self.ads[ad].id,
                        rng.id("", 20)
                    );
                }
                1 => buf.push_str("?utm_source=google&utm_medium=cpc&utm_campaign=brand"),
                2 => buf.push_str("?utm_source=tiktok&utm_medium=paid&utm_campaign=Spring%20Sale"),
                3 => {}
                _ => buf.clear(),
            }
            w.opt_text((!buf.is_empty()).then_some(buf.as_str()));
            w.opt_text((!rng.chance(0.02)).then(|| USER_AGENTS[rng.weighted(&USER_AGENT_WEIGHTS)]));
            self.write_sdc(w, &mut loader, s.created, s.deleted);
        }
    }

    pub(super) fn write_ff_subscriptions<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .ff_subs
            .iter()
            .filter_map(|s| s.deleted.or(s.updated).or(s.created))
            .max();
        let mut loader = self.loader(3, 4 * MIN, false, true, newest);
        for s in &self.ff_subs {
            let plan = &PLANS[s.plan];
            w.text(&s.id);
            w.text(&s.profile_id);
            w.opt_text(s.psp_id.as_deref());
            w.text(s.provider);
            w.text(s.status);
            w.opt_bool(s.sandbox);
            w.int(s.price);
            w.text(&s.currency);
            w.opt_int(s.price_usd);
            w.text(plan.interval);
            w.int(plan.count);
            w.boolean(s.renews);
            w.opt_ts(s.created);
            w.opt_ts(s.updated);
            w.opt_ts(s.period_start);
            w.opt_ts(s.period_end);
            w.opt_ts(s.cancelled);
            let t = s.updated.or(s.created).unwrap_or(self.in_window_start());
            self.write_sdc(w, &mut loader, t, s.deleted);
        }
    }

    pub(super) fn write_charges<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .charges
            .iter()
            .map(|c| c.deleted.unwrap_or(c.created))
            .max();
        let mut loader = self.loader(4, 7 * MIN, false, true, newest);
        for c in &self.charges {
            let ok = c.status == "succeeded";
            w.text(&c.id);
            w.int(c.amount);
            w.int(c.refunded);
            w.text(&c.currency);
            w.text(c.status);
            w.opt_text(c.failure.map(|f| FAILURES[f].0));
            w.opt_text(
                c.failure
                    .map(|f| FAILURES[f].1)
                    .or((c.status == "failed").then_some("Your card was declined.")),
            );
            w.boolean(ok);
            w.boolean(c.refunded > 0 && c.refunded == c.amount);
            w.boolean(c.status != "failed");
            w.boolean(c.livemode);
            w.text(&c.customer);
            w.opt_text(c.invoice.as_deref());
            w.text(&c.payment_intent);
            if ok {
                // The balance transaction id is derived from the charge id: stable
                // without another random draw.
                w.text(&format!("txn_{}", &c.id[3..]));
            } else {
                w.null();
            }
            w.text(c.description);
            w.text(&c.metadata);
            w.ts(c.created);
            self.write_sdc(w, &mut loader, c.created, c.deleted);
        }
    }

    pub(super) fn write_stripe_subscriptions<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let newest = self
            .stripe_subs
            .iter()
            .map(|s| s.deleted.unwrap_or(self.stripe_changed(s)))
            .max();
        let mut loader = self.loader(5, 8 * MIN, false, true, newest);
        let mut json = String::new();
        for s in &self.stripe_subs {
            let plan = &PLANS[s.plan];
            w.text(&s.id);
            w.text(&s.customer);
            w.text(s.status);
            w.ts(s.created);
            w.ts(s.created);
            w.ts(s.period_start);
            w.ts(s.period_end);
            w.boolean(s.cancel_at_period_end);
            w.opt_ts(s.canceled_at);
            w.opt_ts(s.ended_at);
            w.null();
            w.null();
            w.opt_text(s.latest_invoice.as_deref());
            w.boolean(s.livemode);
            json.clear();
            JsonObject::new(&mut json)
                .str("id", &s.price_id)
                .str("object", "plan")
                .boolean("active", true)
                .int("amount", s.amount)
                .str("currency", CURRENCIES[s.currency].code)
                .str("interval", plan.interval)
                .int("interval_count", plan.count)
                .str("nickname", plan.nickname)
                .str("product", &s.product_id)
                .null("trial_period_days")
                .close();
            w.text(&json);
            json.clear();
            JsonObject::new(&mut json)
                .str("profile_id", &s.profile_id)
                .str("funnelfox_subscription_id", &s.ff_sub_id)
                .close();
            w.text(&json);
            let t = self.stripe_changed(s);
            self.write_sdc(w, &mut loader, t, s.deleted);
        }
    }

    /// When a Stripe subscription last changed: its last renewal, cancellation or end.
    fn stripe_changed(&self, s: &StripeSub) -> Micros {
        [Some(s.period_start), s.canceled_at, s.ended_at]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(s.created)
            .min(self.cutoff)
    }

    pub(super) fn write_campaigns<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let mut loader = self.loader(7, 12 * MIN, true, true, None);
        for (c, spec) in self.campaigns.iter().zip(&CAMPAIGNS) {
            w.text(&c.id);
            w.text(&self.account_id);
            w.text(spec.name);
            w.text(spec.objective);
            let status = if c.deleted.is_some() {
                "DELETED"
            } else {
                "ACTIVE"
            };
            w.text(status);
            w.text(status);
            match spec.budget_cents {
                Some(b) => w.hundredths(b),
                None => w.null(),
            }
            w.ts(c.created);
            w.ts(c.created + HOUR);
            w.null();
            w.ts(c.updated);
            self.write_sdc(w, &mut loader, c.updated, c.deleted);
        }
    }

    pub(super) fn write_ad_statistics<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let mut loader = self.loader(8, 10 * MIN, false, false, None);
        if self.end_day < self.start_day {
            return;
        }
        let mean_weekday = WEEKDAY_PCT.iter().sum::<i64>() as f64 / 7.0;
        // About $1.6 of spend per session: a CAC of roughly $40 at a 4% conversion.
        let daily_cents = f64::from(self.sessions_per_day) * 160.0;
        let mut row = 0u64;
        for day in self.ads_first_day..=self.end_day {
            let active_share: i64 = ADS
                .iter()
                .zip(&self.ads)
                .filter(|(_, a)| day >= a.from_day && day <= a.to_day)
                .map(|(s, _)| s.share)
                .sum();
            for (k, (spec, ad)) in ADS.iter().zip(&self.ads).enumerate() {
                // A paused ad keeps reporting zero rows for three days.
                if day < ad.from_day || day > ad.to_day + 3 {
                    continue;
                }
                let mut rng = Rng::derive(
                    self.seed,
                    S_ADSTATS,
                    (day - self.ads_first_day) as u64 * 64 + k as u64,
                );
                let paused = day > ad.to_day || rng.chance(0.03);
                let weekday = WEEKDAY_PCT[weekday(day)] as f64 / mean_weekday;
                let spend = if paused || active_share == 0 {
                    0
                } else {
                    let share = spec.share as f64 / active_share as f64;
                    (daily_cents * share * weekday * (0.8 + 0.4 * rng.unit())).round() as i64
                };
                let cpm_cents = rng.range(800, 1_500);
                let impressions = spend * 1_000 / cpm_cents;
                let clicks = impressions * rng.range(8, 23) / 1_000;
                let reach = impressions * rng.range(60, 92) / 100;
                let campaign = &self.campaigns[spec.campaign];
                w.date(day);
                w.date(day);
                w.text(&self.account_id);
                w.text(&campaign.id);
                w.text(&ad.adset_id);
                w.text(&ad.id);
                w.text(CAMPAIGNS[spec.campaign].name);
                w.text(spec.adset);
                w.text(spec.name);
                if rng.chance(0.004) {
                    w.null(); // the API sometimes omits spend
                } else {
                    w.hundredths(spend);
                }
                w.int(impressions);
                w.int(clicks);
                w.int(reach);
                w.text("USD");
                // Insights for a day keep changing until the day is over.
                let t = ((day + 1) * DAY - MS).min(self.cutoff);
                let deleted = (rng.chance(0.005) || row == 5)
                    .then(|| floor_to((t + rng.range(HOUR, 3 * DAY)).min(self.cutoff), MS));
                self.write_sdc(w, &mut loader, t, deleted);
                row += 1;
            }
        }
    }

    pub(super) fn write_events<F: FnMut(&str)>(&self, w: &mut CopyWriter<F>) {
        let event_w: Vec<u32> = EVENT_TYPES.iter().map(|e| e.1).collect();
        let mut loader = self.loader(6, 2 * HOUR, false, false, None);
        let mut row = 0u64;
        let mut text = String::new();
        let mut json = String::new();
        for (a, act) in self.activations.iter().enumerate() {
            let mut rng = Rng::derive(self.seed, S_EVENTS, a as u64);
            let profile = &self.profiles[act.profile];
            let country = &COUNTRIES[profile.country];
            let (platform, os_name) = *rng.pick(&[
                ("iOS", "ios"),
                ("iOS", "ios"),
                ("Android", "android"),
                ("Android", "android"),
                ("iOS", "ios"),
                ("Web", "Chrome Mobile"),
            ]);
            let mut device_id = String::new();
            match platform {
                "iOS" => rng.uuid(&mut device_id, true),
                "Android" => rng.push_chars(&mut device_id, HEX, 16),
                _ => {
                    rng.uuid(&mut device_id, false);
                    device_id.push('R');
                }
            }
            let amplitude_id = 100_000_000_000 + rng.below(900_000_000_000) as i64;
            let app_version = *rng.pick(&["3.12.0", "3.12.1", "3.13.0", "4.0.2"]);
            // App sessions: mean ~13 per user, ~31 events each, hours to days apart.
            let mut app_sessions = 1;
            while app_sessions < 90 && rng.chance(0.925) {
                app_sessions += 1;
            }
            let mut t = act.start;
            let mut event_id = 0i64;
            for n in 0..app_sessions {
                if t > self.cutoff {
                    break;
                }
                let session_id = t / MS;
                // Who the app knows the user as during this app session: identified
                // (user_id = profile id), anonymous but with the e-mail typed in
                // (user_id null), or fully anonymous.
                let mode = if n == 0 && rng.chance(0.5) {
                    rng.weighted(&[0, 80, 20])
                } else {
                    rng.weighted(&[74, 22, 4])
                };
                let email_form = *rng.pick(&[
                    EmailForm::AsIs,
                    EmailForm::Lower,
                    EmailForm::Lower,
                    EmailForm::Upper,
                ]);
                let email = match mode {
                    0 if rng.chance(0.6) => email_in_form(profile.email.as_deref(), email_form),
                    1 if rng.chance(0.02) => Some(String::new()),
                    1 => email_in_form(profile.email.as_deref(), email_form),
                    _ => None,
                };
                let events = rng.range(8, 56);
                let mut et = t;
                for e in 0..events {
                    if et > self.cutoff {
                        break;
                    }
                    let kind = if e == 0 {
                        "session_start"
                    } else if e + 1 == events {
                        "session_end"
                    } else {
                        EVENT_TYPES[rng.weighted(&event_w)].0
                    };
                    event_id += 1;
                    text.clear();
                    rng.uuid(&mut text, false);
                    w.text(&text);
                    w.int(event_id);
                    w.text(kind);
                    w.ts(et);
                    w.opt_text((mode == 0).then_some(profile.id.as_str()));
                    w.text(&device_id);
                    w.opt_text(email.as_deref());
                    w.int(amplitude_id);
                    w.int(session_id);
                    w.text(platform);
                    w.text(os_name);
                    w.text(country.code);
                    w.text(country.cities[profile.city]);
                    json.clear();
                    {
                        let mut o = JsonObject::new(&mut json);
                        match kind {
                            "screen_view" | "button_tapped" => {
                                let screen = *rng.pick(&SCREENS);
                                o.str("screen", screen);
                            }
                            "lesson_started" | "lesson_progress" | "lesson_completed"
                            | "video_played" => {
                                o.raw_str("lesson_id", "l_", rng.range(1, 400))
                                    .int("duration_s", rng.range(30, 1_800));
                            }
                            "paywall_viewed" => {
                                o.str("paywall", "v3").str("source", "onboarding");
                            }
                            "search" => {
                                let query = *rng.pick(&SEARCHES);
                                o.str("query", query);
                            }
                            _ => {}
                        }
                        o.close();
                    }
                    w.text(&json);
                    json.clear();
                    {
                        let mut o = JsonObject::new(&mut json);
                        o.str("app_version", app_version);
                        if let Some(e) = email.as_deref() {
                            o.str("email", e);
                        }
                        if mode == 0 {
                            o.str("funnelfox_profile_id", &profile.id);
                        }
                        o.close();
                    }
                    w.text(&json);
                    w.ts(floor_to(et + rng.range(200 * MS, 90 * SEC), MS));
                    let deleted = (rng.chance(0.001) || row == 3)
                        .then(|| floor_to((et + rng.range(HOUR, 3 * DAY)).min(self.cutoff), MS));
                    self.write_sdc(w, &mut loader, et, deleted);
                    row += 1;
                    et = floor_to(et + rng.range(SEC, 75 * SEC), MS);
                }
                t = floor_to(et + rng.range(3 * HOUR, 60 * HOUR), MS);
            }
        }
    }
}
