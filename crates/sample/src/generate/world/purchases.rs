//! Purchases: FunnelFox subscriptions, Stripe charges and subscriptions, renewals,
//! and the hand-placed edge cases around them (duplicates, ties).

use super::super::calendar::{add_months, floor_to};
use super::super::copy_text::JsonObject;
use super::super::reference::*;
use super::super::rng::*;
use super::super::{Micros, DAY, HOUR, MIN, MS, SEC};
use super::*;

/// What a new charge needs; `push_charge` draws the rest (ids, refunds).
#[derive(Clone)]
struct NewCharge {
    customer: String,
    amount: i64,
    currency: String,
    status: &'static str,
    failure: Option<usize>,
    livemode: bool,
    invoice: Option<String>,
    description: &'static str,
    metadata: String,
    created: Micros,
}

impl NewCharge {
    /// A paid live-mode USD charge of a first purchase (fields to override follow).
    fn first(amount: i64, metadata: String, created: Micros) -> NewCharge {
        NewCharge {
            customer: String::new(),
            amount,
            currency: "usd".to_string(),
            status: "succeeded",
            failure: None,
            livemode: true,
            invoice: None,
            description: "Subscription creation",
            metadata,
            created,
        }
    }

    /// Like [`NewCharge::first`], for a renewal invoice.
    fn renewal(amount: i64, metadata: String, created: Micros) -> NewCharge {
        NewCharge {
            description: "Subscription update",
            ..NewCharge::first(amount, metadata, created)
        }
    }
}

/// Facts about one purchase while it is being built.
struct Purchase {
    profile: usize,
    at: Micros,
    /// Session that led to it (for the charge's metadata), if any.
    session: Option<usize>,
    /// Currency imposed on it (so that small data sets have each kind).
    currency: Option<usize>,
}

impl Dataset {
    /// Price of a plan in a currency's minor unit, with "psychological" endings.
    fn price_in(plan: usize, currency: usize) -> i64 {
        let usd = PLANS[plan].usd_cents as f64 / 100.0;
        let cur = &CURRENCIES[currency];
        let major = usd * cur.per_usd;
        match cur.decimals {
            0 => ((major / 10.0).round() as i64 * 10 - 20).max(100),
            3 => (major * 20.0).round() as i64 * 50,
            _ => major.round() as i64 * 100 - 1,
        }
    }

    /// FunnelFox's conversion to US cents of a price in a currency's minor unit.
    fn to_usd_cents(price: i64, currency: usize) -> i64 {
        let cur = &CURRENCIES[currency];
        let major = price as f64 / 10f64.powi(cur.decimals as i32);
        (major / cur.per_usd * 100.0).round() as i64
    }

    fn charge_currency_text(rng: &mut Rng, currency: usize) -> String {
        let code = CURRENCIES[currency].code;
        // A few charges come from an integration that upper-cases the code.
        if rng.chance(0.04) {
            code.to_ascii_uppercase()
        } else {
            code.to_string()
        }
    }

    /// Adds a charge (drawing its ids and, for a few paid ones, a refund) and
    /// returns its index.
    fn push_charge(&mut self, rng: &mut Rng, c: NewCharge) -> usize {
        let NewCharge {
            customer,
            amount,
            currency,
            status,
            failure,
            livemode,
            invoice,
            description,
            metadata,
            created,
        } = c;
        // A few paid charges are refunded, most in full. (Refunds do not change any
        // mart: revenue is gross.)
        let amount_refunded = if status == "succeeded" && rng.chance(0.025) {
            if rng.chance(0.2) {
                amount / 2
            } else {
                amount
            }
        } else {
            0
        };
        self.charges.push(Charge {
            id: rng.id("ch_3", 23),
            amount,
            refunded: amount_refunded,
            currency,
            status,
            failure,
            livemode,
            customer,
            invoice,
            payment_intent: rng.id("pi_3", 23),
            description,
            metadata,
            created,
            deleted: None,
        });
        self.charges.len() - 1
    }

    fn failure_code(rng: &mut Rng, renewal: bool) -> Option<usize> {
        // A few failed charges carry no code at all.
        if rng.chance(0.04) {
            return None;
        }
        let weights: Vec<u32> = FAILURES
            .iter()
            .map(|f| if renewal { f.3 } else { f.2 })
            .collect();
        Some(rng.weighted(&weights))
    }

    pub(super) fn build_purchases(&mut self, rng: &mut Rng) {
        let mut purchases = Vec::new();
        for p in 0..self.profiles.len() {
            let sessions = self.profiles[p].sessions.clone();
            if sessions.is_empty() {
                continue;
            }
            // People who come back are more likely to buy.
            let prob = 0.064 * (1.0 + 0.35 * (sessions.len() as f64 - 1.0)).min(3.0);
            if !rng.chance(prob) {
                continue;
            }
            if rng.chance(0.012) {
                // Bought before ever visiting a funnel (e.g. in the app, or the
                // session was not tracked): no acquisition session.
                let first = self.sessions[sessions[0]].created;
                let at = floor_to(first - rng.range(30 * MIN, 3 * DAY), SEC);
                purchases.push(Purchase {
                    profile: p,
                    at,
                    session: None,
                    currency: None,
                });
                continue;
            }
            let anchor = if rng.chance(0.6) {
                *sessions.last().unwrap_or(&sessions[0])
            } else {
                *rng.pick(&sessions)
            };
            let delay = match rng.weighted(&[55, 25, 20]) {
                0 => rng.range(MIN, 30 * MIN),
                1 => rng.range(30 * MIN, 12 * HOUR),
                _ => rng.range(12 * HOUR, 6 * DAY),
            };
            let at = floor_to(self.sessions[anchor].created + delay, SEC);
            if at <= self.cutoff {
                purchases.push(Purchase {
                    profile: p,
                    at,
                    session: Some(anchor),
                    currency: None,
                });
            }
        }
        // Two buyers with no session at all in the data.
        for _ in 0..2 {
            if purchases.is_empty() {
                break;
            }
            let p = self.new_profile(rng);
            let at = floor_to(
                self.in_window_start()
                    + rng.range(0, (self.cutoff - self.in_window_start()).max(1)),
                SEC,
            );
            purchases.push(Purchase {
                profile: p,
                at,
                session: None,
                currency: None,
            });
        }
        // Small data sets still get a zero-decimal and a three-decimal currency.
        let n = purchases.len();
        for (k, currency) in [(1, JPY), (2, KWD), (3, JPY), (4, KWD)] {
            if let Some(p) = purchases.get_mut(n * k / 5) {
                p.currency = Some(currency);
            }
        }
        let mut new_subs = Vec::new();
        for purchase in &purchases {
            if let Some(ff) = self.purchase(rng, purchase) {
                new_subs.push(ff);
            }
        }
        self.add_duplicates(rng, &new_subs);
        self.add_session_edges(rng, &new_subs);
    }

    /// Creates the FunnelFox subscription, Stripe charge(s), Stripe subscription and
    /// renewals of one purchase. Returns the subscription's index when it is a real,
    /// paid Stripe subscription (a "new subscription" of the marts).
    fn purchase(&mut self, rng: &mut Rng, purchase: &Purchase) -> Option<usize> {
        let profile = &self.profiles[purchase.profile];
        let profile_id = profile.id.clone();
        let customer = profile.customer.clone();
        let home_currency = COUNTRIES[profile.country].currency;
        let plan = rng.weighted(&PLANS.iter().map(|p| p.weight).collect::<Vec<_>>());
        // Most pay in USD whatever the country; the rest in their local currency.
        let currency = if let Some(c) = purchase.currency {
            c
        } else if home_currency != USD && rng.chance(0.45) {
            home_currency
        } else if rng.chance(0.015) {
            *rng.pick(&[EUR, GBP, JPY, KWD])
        } else {
            USD
        };
        let price = Self::price_in(plan, currency);
        let price_usd = if currency == USD {
            Some(price)
        } else if rng.chance(0.12) {
            None // FunnelFox had no rate for that day
        } else {
            Some(Self::to_usd_cents(price, currency))
        };
        let ff_currency = if rng.chance(0.7) {
            CURRENCIES[currency].code.to_ascii_uppercase()
        } else {
            CURRENCIES[currency].code.to_string()
        };
        let ff_id = rng.id("fsub_", 16);
        let at = purchase.at;
        let ff_created = floor_to(at - rng.range(2 * SEC, 40 * SEC), MS);
        let mut ff = FfSub {
            id: ff_id.clone(),
            profile_id: profile_id.clone(),
            psp_id: None,
            provider: "stripe",
            status: "active",
            sandbox: if rng.chance(0.3) { None } else { Some(false) },
            price,
            currency: ff_currency,
            price_usd,
            plan,
            // A fifth of yearly plans are bought without auto-renewal.
            renews: plan != 3 || rng.chance(0.8),
            created: Some(ff_created),
            updated: Some(floor_to(at + rng.range(SEC, 20 * SEC), MS)),
            period_start: Some(at),
            charged_at: None,
            period_end: Some(self.add_interval(at, plan, 1)),
            cancelled: None,
            deleted: None,
        };
        let mut metadata = String::new();
        {
            let mut o = JsonObject::new(&mut metadata);
            o.str("profile_id", &profile_id)
                .str("funnelfox_subscription_id", &ff_id);
            if let Some(s) = purchase.session {
                o.str("session_id", &self.sessions[s].id);
            }
            o.close();
        }

        if rng.chance(0.03) {
            // Paid with PayPal: no Stripe charge.
            ff.provider = "paypal";
            let mut id = String::from("PAYID-");
            rng.push_chars(&mut id, UPPER_ALNUM, 24);
            ff.psp_id = Some(id);
            ff.charged_at = Some(at);
            self.ff_subs.push(ff);
            return None;
        }
        if rng.chance(0.02) {
            // A test purchase in Stripe's test mode.
            ff.sandbox = Some(true);
            let test_customer = rng.id("cus_", 14);
            let cur = Self::charge_currency_text(rng, currency);
            let invoice = rng.id("in_1", 23);
            let c = self.push_charge(
                rng,
                NewCharge {
                    customer: test_customer,
                    currency: cur,
                    livemode: false,
                    invoice: Some(invoice),
                    ..NewCharge::first(price, metadata, at)
                },
            );
            ff.psp_id = Some(self.charges[c].id.clone());
            ff.renews = false;
            self.ff_subs.push(ff);
            return None;
        }

        let cur_text = Self::charge_currency_text(rng, currency);
        let invoice = rng.id("in_1", 23);
        let base = NewCharge {
            customer: customer.clone(),
            currency: cur_text.clone(),
            invoice: Some(invoice.clone()),
            ..NewCharge::first(price, metadata, at)
        };
        let outcome = rng.weighted(&[948, 40, 12]);
        let mut paid_at = at;
        let charge = match outcome {
            0 => self.push_charge(rng, base),
            1 => {
                let failure = Self::failure_code(rng, false);
                let failed = NewCharge {
                    status: "failed",
                    failure,
                    ..base.clone()
                };
                let failed = self.push_charge(rng, failed);
                if rng.chance(0.5) {
                    // Retried with another card a few minutes later: the subscription
                    // points at the successful charge; the failed one stays orphan.
                    paid_at = floor_to(at + rng.range(2 * MIN, 25 * MIN), SEC);
                    if paid_at > self.cutoff {
                        paid_at = at;
                        failed
                    } else {
                        self.push_charge(
                            rng,
                            NewCharge {
                                created: paid_at,
                                ..base
                            },
                        )
                    }
                } else {
                    failed
                }
            }
            _ => self.push_charge(
                rng,
                NewCharge {
                    status: "pending",
                    ..base
                },
            ),
        };
        let status = self.charges[charge].status;
        ff.psp_id = Some(self.charges[charge].id.clone());
        ff.period_start = Some(paid_at);
        ff.charged_at = Some(paid_at);
        ff.period_end = Some(self.add_interval(paid_at, plan, 1));
        let mut stripe = StripeSub {
            id: rng.id("sub_1", 23),
            customer: customer.clone(),
            status: "active",
            created: floor_to(at - rng.range(SEC, 4 * SEC), SEC),
            period_start: paid_at,
            period_end: self.add_interval(paid_at, plan, 1),
            cancel_at_period_end: false,
            canceled_at: None,
            ended_at: None,
            latest_invoice: Some(invoice),
            livemode: true,
            plan,
            currency,
            amount: price,
            price_id: Rng::derive(self.seed, S_WORLD, 1_000 + (plan * 10 + currency) as u64)
                .id("price_1", 23),
            product_id: Rng::derive(self.seed, S_WORLD, 2_000 + plan as u64).id("prod_", 14),
            profile_id: profile_id.clone(),
            ff_sub_id: ff_id.clone(),
            deleted: None,
        };
        match status {
            "failed" => {
                ff.status = "unpaid";
                stripe.status = "incomplete_expired";
                stripe.ended_at = Some(floor_to(at + DAY, SEC).min(self.cutoff));
            }
            "pending" => {
                ff.status = "created";
                stripe.status = "incomplete";
            }
            _ => self.renew(rng, &mut ff, &mut stripe, &cur_text),
        }
        let paid = status == "succeeded";
        let idx = self.ff_subs.len();
        self.ff_subs.push(ff);
        self.stripe_subs.push(stripe);
        paid.then_some(idx)
    }

    /// `t` plus `n` billing periods of `plan`.
    fn add_interval(&self, t: Micros, plan: usize, n: i64) -> Micros {
        let p = &PLANS[plan];
        match p.interval {
            "week" => t + 7 * DAY * p.count * n,
            "year" => add_months(t, 12 * p.count * n),
            _ => add_months(t, p.count * n),
        }
    }

    /// Renewal charges (which no FunnelFox subscription points at) until the
    /// subscription churns, fails to renew, or the data ends.
    fn renew(&mut self, rng: &mut Rng, ff: &mut FfSub, stripe: &mut StripeSub, currency: &str) {
        let plan = ff.plan;
        let customer = stripe.customer.clone();
        let mut start = stripe.period_start;
        let mut end = stripe.period_end;
        loop {
            // Decides during each period whether the user cancels before it renews.
            if !ff.renews || rng.chance(0.16) {
                let at = floor_to(start + rng.range(HOUR, (end - start).max(HOUR + 1)), MS);
                if at <= self.cutoff {
                    ff.status = if end <= self.cutoff {
                        "expired"
                    } else {
                        "cancelled"
                    };
                    ff.cancelled = Some(at);
                    ff.updated = Some(at.max(ff.updated.unwrap_or(at)));
                    stripe.cancel_at_period_end = end > self.cutoff;
                    stripe.canceled_at = Some(floor_to(at, SEC));
                    if end <= self.cutoff {
                        stripe.status = "canceled";
                        stripe.ended_at = Some(floor_to(end, SEC));
                    }
                }
                break;
            }
            let at = floor_to(end + rng.range(0, 3 * HOUR), SEC);
            if at > self.cutoff {
                break;
            }
            let invoice = rng.id("in_1", 23);
            let mut meta = String::new();
            JsonObject::new(&mut meta)
                .str("subscription", &stripe.id)
                .close();
            let outcome = rng.weighted(&[947, 45, 8]);
            let (status, failure) = match outcome {
                0 => ("succeeded", None),
                1 => ("failed", Self::failure_code(rng, true)),
                _ => ("pending", None),
            };
            let renewal = NewCharge {
                customer: customer.clone(),
                currency: currency.to_string(),
                status,
                failure,
                invoice: Some(invoice.clone()),
                ..NewCharge::renewal(ff.price, meta, at)
            };
            self.push_charge(rng, renewal);
            stripe.latest_invoice = Some(invoice);
            if status != "succeeded" {
                ff.status = "unpaid";
                ff.updated = Some(floor_to(at + rng.range(SEC, MIN), MS));
                stripe.status = "past_due";
                break;
            }
            start = end;
            end = self.add_interval(end, plan, 1);
            ff.period_start = Some(start);
            ff.period_end = Some(end);
            ff.updated = Some(floor_to(at + rng.range(SEC, MIN), MS));
            stripe.period_start = start;
            stripe.period_end = end;
        }
    }

    /// About 1% of paid subscriptions get a second FunnelFox row pointing at the same
    /// charge, in every flavour the marts' duplicate rule must handle.
    fn add_duplicates(&mut self, rng: &mut Rng, new_subs: &[usize]) {
        let want = (new_subs.len() / 100).max(5).min(new_subs.len());
        for k in 0..want {
            let src = new_subs[k * new_subs.len() / want.max(1)];
            if let Some(p) = self.profile_of_sub(src) {
                self.edge_profiles.push(p);
            }
            let orig = &self.ff_subs[src];
            let created = orig.created.unwrap_or(0);
            let (id, dup_created, sandbox) = match k % 5 {
                // Later by seconds: the original is the new subscription.
                0 => (
                    rng.id("fsub_", 16),
                    Some(created + rng.range(SEC, 90 * SEC)),
                    Some(false),
                ),
                // Same instant, id differing only in letter case: bytes decide.
                1 => (
                    flip_first_letter(&orig.id).unwrap_or_else(|| rng.id("fsub_", 16)),
                    Some(created),
                    None,
                ),
                // Null created_at sorts after every value.
                2 => (rng.id("fsub_", 16), None, Some(false)),
                // A sandbox row earlier than the real one: not a candidate at all.
                3 => (
                    rng.id("fsub_", 16),
                    Some(created - rng.range(SEC, 30 * SEC)),
                    Some(true),
                ),
                // Same instant, id differing only in punctuation ('-' vs '_').
                _ => (orig.id.replacen('_', "-", 1), Some(created), Some(false)),
            };
            let dup = FfSub {
                id,
                profile_id: orig.profile_id.clone(),
                psp_id: orig.psp_id.clone(),
                provider: orig.provider,
                status: orig.status,
                sandbox,
                price: orig.price,
                currency: orig.currency.clone(),
                price_usd: orig.price_usd,
                plan: orig.plan,
                renews: orig.renews,
                created: dup_created,
                updated: orig.updated,
                period_start: orig.period_start,
                charged_at: orig.charged_at,
                period_end: orig.period_end,
                cancelled: orig.cancelled,
                deleted: None,
            };
            self.ff_subs.push(dup);
        }
    }

    /// Ties that only the marts' exact rules resolve: twin sessions at the same
    /// instant whose ids differ only in case or punctuation, and sessions at exactly
    /// the charge's instant (included: "at or before") or one microsecond later
    /// (excluded).
    fn add_session_edges(&mut self, rng: &mut Rng, new_subs: &[usize]) {
        let n = new_subs.len();
        // Visit the paid subscriptions in a shuffled order and give each edge case a
        // profile of its own (also not one that got a duplicate subscription).
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut order = order.into_iter();
        let twins = (n / 50).max(3);
        let mut made = 0;
        while made < twins {
            let Some(ff) = order.next().map(|i| new_subs[i]) else {
                break;
            };
            let (Some(p), Some(t)) = (self.profile_of_sub(ff), self.ff_subs[ff].charged_at) else {
                continue;
            };
            if self.edge_profiles.contains(&p) {
                continue;
            }
            let Some(acq) = self.acquisition_session(p, t) else {
                continue;
            };
            let base = self.sessions[acq].id.clone();
            let twin_id = if made % 2 == 0 {
                flip_first_letter(&base)
            } else {
                Some(base.replacen('_', "-", 1))
            };
            if let Some(id) = twin_id {
                let created = self.sessions[acq].created;
                let s = self.push_session(rng, p, created);
                self.sessions[s].id = id;
                self.edge_profiles.push(p);
                made += 1;
            }
        }
        let mut made = 0;
        while made < 3 {
            let Some(ff) = order.next().map(|i| new_subs[i]) else {
                break;
            };
            let (Some(p), Some(t)) = (self.profile_of_sub(ff), self.ff_subs[ff].charged_at) else {
                continue;
            };
            if self.edge_profiles.contains(&p) {
                continue;
            }
            let s = self.push_session(rng, p, t);
            if made == 2 {
                // One microsecond after the charge: not the acquisition session.
                self.sessions[s].created = t + 1;
            }
            self.edge_profiles.push(p);
            made += 1;
        }
    }

    /// Days where two failure codes share the top count (the marts break the tie
    /// alphabetically), at least two pending charges, and one day whose only failed
    /// charge has no code. Runs
    /// after the soft deletions and counts live charges only, so the ties hold
    /// among the rows the marts see.
    pub(super) fn add_tie_days(&mut self, rng: &mut Rng) {
        let days = self.end_day - self.start_day + 1;
        if days < 8 || self.charges.is_empty() {
            return;
        }
        let customers: Vec<String> = self.charges.iter().map(|c| c.customer.clone()).collect();
        let counts_on = |charges: &[Charge], day: i64| {
            let mut counts = [0i64; FAILURES.len()];
            for c in charges {
                if c.status == "failed" && c.deleted.is_none() && c.created.div_euclid(DAY) == day {
                    if let Some(f) = c.failure {
                        counts[f] += 1;
                    }
                }
            }
            counts
        };
        let mut used = Vec::new();
        for k in 1..=3 {
            // The first day from a quarter, a half and three quarters of the window
            // on that has coded failures, else that day itself.
            let target = self.start_day + days * k / 4;
            let day = (target..self.end_day)
                .find(|&d| !used.contains(&d) && counts_on(&self.charges, d).iter().any(|&n| n > 0))
                .unwrap_or(target);
            used.push(day);
            let counts = counts_on(&self.charges, day);
            let top = counts.iter().copied().max().unwrap_or(0);
            let mut add: Vec<(usize, i64)> = Vec::new();
            if top == 0 {
                // Nothing yet: one failure each of two codes that are not first in
                // the alphabet, so the tie-break is visible.
                add.push((1, 1));
                add.push((4, 1));
            } else {
                let leader = counts.iter().position(|&n| n == top).unwrap_or(0);
                // Prefer a partner that sorts before the leader: the tie then changes
                // the answer compared to "the first code seen with the top count".
                let partner = (0..FAILURES.len())
                    .filter(|&f| f != leader)
                    .max_by_key(|&f| (FAILURES[f].0 < FAILURES[leader].0, counts[f]))
                    .unwrap_or(0);
                add.push((partner, top - counts[partner]));
            }
            for (code, n) in add {
                for _ in 0..n {
                    let customer = rng.pick(&customers).clone();
                    let at = floor_to(day * DAY + rng.range(0, DAY), SEC).min(self.cutoff);
                    let invoice = rng.id("in_1", 23);
                    let charge = NewCharge {
                        customer,
                        status: "failed",
                        failure: Some(code),
                        invoice: Some(invoice),
                        ..NewCharge::renewal(1999, "{}".to_string(), at)
                    };
                    self.push_charge(rng, charge);
                }
            }
        }
        // Pending charges are rare (~1%): make sure a small data set has a couple, as
        // renewals still being processed (no subscription points at them).
        let pending = self
            .charges
            .iter()
            .filter(|c| c.status == "pending")
            .count();
        for k in pending..2 {
            let day = self.end_day - 1 - k as i64;
            let customer = rng.pick(&customers).clone();
            let at = floor_to(day * DAY + rng.range(0, DAY), SEC).min(self.cutoff);
            let charge = NewCharge {
                customer,
                status: "pending",
                ..NewCharge::renewal(1999, "{}".to_string(), at)
            };
            self.push_charge(rng, charge);
        }
        // A day with failed charges but no known code: find one without failures.
        for d in (0..days).rev().skip(2) {
            let day = self.start_day + d;
            if !self
                .charges
                .iter()
                .any(|c| c.status == "failed" && c.created.div_euclid(DAY) == day)
            {
                let customer = rng.pick(&customers).clone();
                let at = floor_to(day * DAY + rng.range(0, DAY), SEC).min(self.cutoff);
                let charge = NewCharge {
                    customer,
                    status: "failed",
                    ..NewCharge::renewal(699, "{}".to_string(), at)
                };
                self.push_charge(rng, charge);
                break;
            }
        }
    }
}
