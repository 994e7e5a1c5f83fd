//! The generated world: profiles, sessions, purchases and everything else except
//! the rows of the two lazily generated tables, held in a [`Dataset`], and how it
//! is built.

use std::collections::{HashMap, HashSet};

use super::calendar::{day_number, floor_to, weekday};
use super::reference::*;
use super::rng::*;
use super::{GenOptions, Micros, DAY, HOUR, MIN, MS, SEC};

mod purchases;

/// How a session shows its profile's e-mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum EmailForm {
    Missing,
    Empty,
    AsIs,
    Lower,
    Upper,
}

pub(super) fn email_in_form(email: Option<&str>, form: EmailForm) -> Option<String> {
    let email = email?;
    match form {
        EmailForm::Missing => None,
        EmailForm::Empty => Some(String::new()),
        EmailForm::AsIs => Some(email.to_string()),
        EmailForm::Lower => Some(email.to_ascii_lowercase()),
        EmailForm::Upper => Some(email.to_ascii_uppercase()),
    }
}

pub(super) struct Profile {
    pub(super) id: String,
    pub(super) email: Option<String>,
    customer: String,
    pub(super) country: usize,
    pub(super) city: usize,
    /// Indices into `Dataset::sessions` (valid until they are sorted at the end).
    sessions: Vec<usize>,
}

pub(super) struct Session {
    pub(super) id: String,
    pub(super) created: Micros,
    pub(super) profile: usize,
    pub(super) email: EmailForm,
    /// Seed of the session's details (funnel, geo, origin, ...), drawn when written.
    pub(super) key: u64,
    pub(super) deleted: Option<Micros>,
}

pub(super) struct FfSub {
    pub(super) id: String,
    pub(super) profile_id: String,
    pub(super) psp_id: Option<String>,
    pub(super) provider: &'static str,
    pub(super) status: &'static str,
    pub(super) sandbox: Option<bool>,
    pub(super) price: i64,
    pub(super) currency: String,
    pub(super) price_usd: Option<i64>,
    pub(super) plan: usize,
    pub(super) renews: bool,
    pub(super) created: Option<Micros>,
    pub(super) updated: Option<Micros>,
    pub(super) period_start: Option<Micros>,
    pub(super) period_end: Option<Micros>,
    pub(super) cancelled: Option<Micros>,
    pub(super) deleted: Option<Micros>,
    /// When the charge its `psp_id` names was created (not written: it is the
    /// charge's `created`; kept to place edge cases around it).
    charged_at: Option<Micros>,
}

pub(super) struct Charge {
    pub(super) id: String,
    pub(super) amount: i64,
    pub(super) refunded: i64,
    pub(super) currency: String,
    pub(super) status: &'static str,
    pub(super) failure: Option<usize>,
    pub(super) livemode: bool,
    pub(super) customer: String,
    pub(super) invoice: Option<String>,
    pub(super) payment_intent: String,
    pub(super) description: &'static str,
    pub(super) metadata: String,
    pub(super) created: Micros,
    pub(super) deleted: Option<Micros>,
}

pub(super) struct StripeSub {
    pub(super) id: String,
    pub(super) customer: String,
    pub(super) status: &'static str,
    pub(super) created: Micros,
    pub(super) period_start: Micros,
    pub(super) period_end: Micros,
    pub(super) cancel_at_period_end: bool,
    pub(super) canceled_at: Option<Micros>,
    pub(super) ended_at: Option<Micros>,
    pub(super) latest_invoice: Option<String>,
    pub(super) livemode: bool,
    pub(super) plan: usize,
    pub(super) currency: usize,
    pub(super) amount: i64,
    pub(super) price_id: String,
    pub(super) product_id: String,
    pub(super) profile_id: String,
    pub(super) ff_sub_id: String,
    pub(super) deleted: Option<Micros>,
}

pub(super) struct Activation {
    pub(super) profile: usize,
    pub(super) start: Micros,
}

pub(super) struct Campaign {
    pub(super) id: String,
    pub(super) created: Micros,
    pub(super) updated: Micros,
    pub(super) deleted: Option<Micros>,
}

pub(super) struct Ad {
    pub(super) id: String,
    pub(super) adset_id: String,
    pub(super) from_day: i64,
    pub(super) to_day: i64,
}

/// Everything generated except the rows of the two big lazily generated tables (app
/// events and ad statistics), which [`generate_table`](super::generate_table)
/// derives on the fly from their own random streams. Build it once with
/// [`Dataset::new`] and stream each table.
///
/// Memory is proportional to the number of sessions (~200 bytes each) and purchases;
/// app events are never held.
pub struct Dataset {
    pub(super) seed: u64,
    pub(super) sessions_per_day: u32,
    pub(super) start_day: i64,
    pub(super) end_day: i64,
    /// No source record is later than this.
    pub(super) cutoff: Micros,
    /// When the last sync of every tap started.
    pub(super) last_sync: Micros,
    pub(super) funnels: Vec<(String, Micros, Option<Micros>)>,
    pub(super) profiles: Vec<Profile>,
    pub(super) sessions: Vec<Session>,
    pub(super) ff_subs: Vec<FfSub>,
    pub(super) charges: Vec<Charge>,
    pub(super) stripe_subs: Vec<StripeSub>,
    pub(super) activations: Vec<Activation>,
    pub(super) campaigns: Vec<Campaign>,
    pub(super) ads: Vec<Ad>,
    /// First day of ad statistics: a few days before the first session.
    pub(super) ads_first_day: i64,
    pub(super) account_id: String,
    /// Profiles carrying hand-placed edge cases (kept clear of soft deletions).
    edge_profiles: Vec<usize>,
}

/// Sessions per profile: 1 to 10, mean about 2.4 before the window cuts returns off.
const SESSIONS_PER_PROFILE_W: [u32; 10] = [40, 25, 15, 9, 5, 2, 1, 1, 1, 1];
const MEAN_SESSIONS_PER_PROFILE: f64 = 2.41;
/// Days of profiles started before the window whose later visits fall inside it, so
/// the first days have returning visitors too.
const WARM_UP_DAYS: i64 = 60;

impl Dataset {
    /// Generates everything but the app events and ad statistics rows for `opts`.
    pub fn new(opts: &GenOptions) -> Dataset {
        let end_day = day_number(opts.end);
        let days = i64::from(opts.days);
        let start_day = end_day - days + 1;
        let now = opts.now.and_utc().timestamp_micros();
        // The taps' last sync started 20 minutes ago and saw records up to 30 minutes
        // ago, so every `_sdc_*` time is before `now` and after its record.
        let last_sync = now - 20 * MIN;
        let cutoff = ((end_day + 1) * DAY - MS).min(now - 30 * MIN);
        let mut rng = Rng::derive(opts.seed, S_WORLD, 0);
        let account_id = rng.digits(16);
        let mut data = Dataset {
            seed: opts.seed,
            sessions_per_day: opts.sessions_per_day,
            start_day,
            end_day,
            cutoff,
            last_sync,
            funnels: Vec::new(),
            profiles: Vec::new(),
            sessions: Vec::new(),
            ff_subs: Vec::new(),
            charges: Vec::new(),
            stripe_subs: Vec::new(),
            activations: Vec::new(),
            campaigns: Vec::new(),
            ads: Vec::new(),
            ads_first_day: start_day - 3,
            account_id,
            edge_profiles: Vec::new(),
        };
        data.build_funnels();
        data.build_campaigns();
        if days > 0 {
            data.build_sessions(&mut rng);
            data.build_purchases(&mut rng);
            data.build_activations(&mut rng);
            data.mark_deletions(&mut rng);
            data.add_tie_days(&mut rng);
        }
        data.sessions
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        data.charges
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        // Subscriptions by creation time, nulls last, as FunnelFox's API pages them.
        data.ff_subs.sort_by(|a, b| {
            (a.created.is_none(), a.created, &a.id).cmp(&(b.created.is_none(), b.created, &b.id))
        });
        data.stripe_subs
            .sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        data
    }

    pub(super) fn in_window_start(&self) -> Micros {
        self.start_day * DAY
    }

    fn build_funnels(&mut self) {
        let mut rng = Rng::derive(self.seed, S_FUNNELS, 0);
        for spec in &FUNNELS {
            let id = rng.id("fnl_", 12);
            let created = floor_to(self.in_window_start() - rng.range(20 * DAY, 400 * DAY), MS);
            let deleted = spec
                .deleted
                .then(|| floor_to(self.in_window_start() + rng.range(DAY, 5 * DAY), MS));
            self.funnels.push((id, created, deleted));
        }
    }

    fn build_campaigns(&mut self) {
        let mut rng = Rng::derive(self.seed, S_CAMPAIGNS, 0);
        for spec in &CAMPAIGNS {
            let id = format!("1202{}", rng.digits(14));
            let created = self.ads_first_day * DAY - rng.range(2 * DAY, 60 * DAY);
            let updated = (created + rng.range(HOUR, 30 * DAY)).min(self.cutoff);
            let deleted = spec
                .deleted
                .then(|| (created + rng.range(DAY, 10 * DAY)).min(self.cutoff));
            self.campaigns.push(Campaign {
                id,
                created: floor_to(created, SEC),
                updated: floor_to(updated, SEC),
                deleted,
            });
        }
        let span = (self.end_day - self.ads_first_day + 1).max(1);
        let mut adsets: Vec<(usize, &str, String)> = Vec::new();
        for spec in &ADS {
            // Ads of the same ad set share its id.
            let adset_id = match adsets
                .iter()
                .find(|(c, n, _)| *c == spec.campaign && *n == spec.adset)
            {
                Some((_, _, id)) => id.clone(),
                None => {
                    let id = format!("1202{}", rng.digits(14));
                    adsets.push((spec.campaign, spec.adset, id.clone()));
                    id
                }
            };
            self.ads.push(Ad {
                id: format!("1202{}", rng.digits(14)),
                adset_id,
                from_day: self.ads_first_day + span * spec.from_pct / 100,
                to_day: self.ads_first_day + span * spec.to_pct / 100
                    - i64::from(spec.to_pct == 100),
            });
        }
    }

    /// A time of day drawn from the hourly rhythm, millisecond precision.
    fn time_of_day(rng: &mut Rng) -> Micros {
        let hour = rng.weighted(&HOURLY) as i64;
        floor_to(hour * HOUR + rng.range(0, HOUR), MS)
    }

    fn new_profile(&mut self, rng: &mut Rng) -> usize {
        let id = rng.id("pro_", 16);
        let email = rng.chance(0.80).then(|| {
            let (first, last, n, domain) = (
                *rng.pick(&FIRST_NAMES),
                *rng.pick(&LAST_NAMES),
                rng.range(1, 999),
                *rng.pick(&EMAIL_DOMAINS),
            );
            // A quarter of people type their address capitalised ("Anna.Smith7@Gmail.com").
            if rng.chance(0.25) {
                format!(
                    "{}.{}{n}@{}",
                    capitalise(first),
                    capitalise(last),
                    capitalise(domain)
                )
            } else {
                format!("{first}.{last}{n}@{domain}")
            }
        });
        let weights: Vec<u32> = COUNTRIES.iter().map(|c| c.weight).collect();
        let country = rng.weighted(&weights);
        let city = rng.below(COUNTRIES[country].cities.len() as u64) as usize;
        let customer = rng.id("cus_", 14);
        self.profiles.push(Profile {
            id,
            email,
            customer,
            country,
            city,
            sessions: Vec::new(),
        });
        self.profiles.len() - 1
    }

    fn push_session(&mut self, rng: &mut Rng, profile: usize, created: Micros) -> usize {
        let form = if self.profiles[profile].email.is_none() {
            EmailForm::Missing
        } else {
            match rng.weighted(&[145, 5, 600, 200, 50]) {
                0 => EmailForm::Missing,
                1 => EmailForm::Empty,
                2 => EmailForm::AsIs,
                3 => EmailForm::Lower,
                _ => EmailForm::Upper,
            }
        };
        let session = Session {
            id: rng.id("ses_", 16),
            created,
            profile,
            email: form,
            key: rng.next_u64(),
            deleted: None,
        };
        self.sessions.push(session);
        let idx = self.sessions.len() - 1;
        self.profiles[profile].sessions.push(idx);
        idx
    }

    fn build_sessions(&mut self, rng: &mut Rng) {
        let days = self.end_day - self.start_day + 1;
        let new_per_day = f64::from(self.sessions_per_day) / MEAN_SESSIONS_PER_PROFILE;
        let mean_weekday = WEEKDAY_PCT.iter().sum::<i64>() as f64 / 7.0;
        for d in -WARM_UP_DAYS..days {
            let day = self.start_day + d;
            // Weekly rhythm, a mild growth trend over the window, day-to-day noise.
            let weekday = WEEKDAY_PCT[weekday(day)] as f64 / mean_weekday;
            let trend = 0.85 + 0.3 * (d.max(0) as f64 + 0.5) / days as f64;
            let noise = 0.9 + 0.2 * rng.unit();
            let expected = new_per_day * weekday * trend * noise;
            let mut count = expected as i64;
            if rng.unit() < expected - count as f64 {
                count += 1;
            }
            for _ in 0..count {
                let first = day * DAY + Self::time_of_day(rng);
                let visits = rng.weighted(&SESSIONS_PER_PROFILE_W) + 1;
                let mut times = vec![first];
                let mut t = first;
                for _ in 1..visits {
                    t = if rng.chance(0.4) {
                        // Back within the same sitting or the same evening.
                        floor_to(t + rng.range(5 * MIN, 6 * HOUR), MS)
                    } else {
                        let later = t.div_euclid(DAY) + rng.range(1, 22);
                        later * DAY + Self::time_of_day(rng)
                    };
                    times.push(t);
                }
                let in_window: Vec<Micros> = times
                    .into_iter()
                    .filter(|&t| t >= self.in_window_start() && t <= self.cutoff)
                    .collect();
                if in_window.is_empty() {
                    continue;
                }
                let p = self.new_profile(rng);
                for t in in_window {
                    self.push_session(rng, p, t);
                }
            }
        }
        // A few profiles whose ids differ from another profile's only in letter case:
        // different people, so joins must compare ids exactly.
        let n = self.profiles.len();
        for k in 0..n.min(4) {
            let (a, b) = (k * n / 4, k * n / 4 + 1);
            if b < n {
                if let Some(flipped) = flip_first_letter(&self.profiles[a].id) {
                    self.profiles[b].id = flipped;
                }
            }
        }
    }

    /// The latest session of `profile` at or before `t` (by created, then id bytes).
    fn acquisition_session(&self, profile: usize, t: Micros) -> Option<usize> {
        self.profiles[profile]
            .sessions
            .iter()
            .copied()
            .filter(|&s| self.sessions[s].created <= t)
            .max_by(|&a, &b| {
                (self.sessions[a].created, &self.sessions[a].id)
                    .cmp(&(self.sessions[b].created, &self.sessions[b].id))
            })
    }

    fn profile_of_sub(&self, ff: usize) -> Option<usize> {
        // Profile ids are unique (the case-flipped ones differ by bytes).
        let id = &self.ff_subs[ff].profile_id;
        self.profiles.iter().position(|p| &p.id == id)
    }

    fn build_activations(&mut self, rng: &mut Rng) {
        let mut bought_at: Vec<Option<Micros>> = vec![None; self.profiles.len()];
        let ids: HashMap<&str, usize> = self
            .profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();
        for ff in &self.ff_subs {
            if ff.sandbox != Some(true) {
                if let (Some(&p), Some(t)) = (ids.get(ff.profile_id.as_str()), ff.charged_at) {
                    bought_at[p] = Some(bought_at[p].map_or(t, |b: Micros| b.min(t)));
                }
            }
        }
        for (p, bought) in bought_at.iter().enumerate() {
            let sessions = &self.profiles[p].sessions;
            let start = match bought {
                Some(t) if rng.chance(0.42) => {
                    if rng.chance(0.1) && !sessions.is_empty() {
                        // Used the app before the funnel visit.
                        self.sessions[sessions[0]].created - rng.range(HOUR, 5 * DAY)
                    } else {
                        t + rng.range(2 * MIN, 2 * DAY)
                    }
                }
                None if !sessions.is_empty() && rng.chance(0.05) => {
                    let s = self.sessions[*rng.pick(sessions)].created;
                    match rng.weighted(&[8, 1, 1]) {
                        0 => s + rng.range(5 * MIN, 3 * DAY),
                        1 => s - rng.range(HOUR, 5 * DAY), // before the session
                        _ => s,                            // exactly at the session
                    }
                }
                _ => continue,
            };
            let start = floor_to(start, MS);
            if start <= self.cutoff {
                self.activations.push(Activation { profile: p, start });
            }
        }
    }

    /// Soft deletions: about 0.5% of the rows of each table, at least two where the
    /// table has rows, plus one acquisition session, one paid charge and one paid
    /// subscription so that every "live rows only" rule changes a mart.
    fn mark_deletions(&mut self, rng: &mut Rng) {
        let cutoff = self.cutoff;
        let when = |rng: &mut Rng, t: Micros| -> Micros {
            floor_to((t + rng.range(HOUR, 10 * DAY)).min(cutoff), MS)
        };
        // The rows of the profiles that carry hand-placed edge cases stay live:
        // deleting one would quietly remove the case.
        let protected: HashSet<String> = self
            .edge_profiles
            .iter()
            .map(|&p| self.profiles[p].id.clone())
            .collect();
        let protected_charges: HashSet<String> = self
            .ff_subs
            .iter()
            .filter(|f| protected.contains(&f.profile_id))
            .filter_map(|f| f.psp_id.clone())
            .collect();
        let n = self.sessions.len();
        for i in 0..n {
            let keep = protected.contains(&self.profiles[self.sessions[i].profile].id);
            if (rng.chance(0.005) || i == n / 3 || i == 2 * n / 3) && !keep {
                self.sessions[i].deleted = Some(when(rng, self.sessions[i].created));
            }
        }
        let n = self.charges.len();
        for i in 0..n {
            let keep = protected_charges.contains(&self.charges[i].id);
            if (rng.chance(0.005) || i == n / 5 || i == 4 * n / 5) && !keep {
                self.charges[i].deleted = Some(when(rng, self.charges[i].created));
            }
        }
        let n = self.ff_subs.len();
        for i in 0..n {
            let keep = protected.contains(&self.ff_subs[i].profile_id);
            if (rng.chance(0.005) || i == n / 4 || i == 3 * n / 4) && !keep {
                let t = self.ff_subs[i].created.unwrap_or(self.in_window_start());
                self.ff_subs[i].deleted = Some(when(rng, t));
            }
        }
        let n = self.stripe_subs.len();
        for i in 0..n {
            if rng.chance(0.005) || i == n / 2 || i + 1 == n {
                self.stripe_subs[i].deleted = Some(when(rng, self.stripe_subs[i].created));
            }
        }
        let paid: Vec<usize> = (0..self.ff_subs.len())
            .filter(|&i| {
                let f = &self.ff_subs[i];
                f.provider == "stripe"
                    && f.sandbox != Some(true)
                    && f.status != "unpaid"
                    && f.status != "created"
                    && f.deleted.is_none()
                    && !protected.contains(&f.profile_id)
            })
            .collect();
        // The acquisition session of a paid subscription (the mart must fall back to
        // the previous live session, or to none).
        if let Some(&ff) = paid.get(paid.len() / 7) {
            if let (Some(p), Some(t)) = (self.profile_of_sub(ff), self.ff_subs[ff].charged_at) {
                if let Some(s) = self.acquisition_session(p, t) {
                    self.sessions[s].deleted = Some(when(rng, self.sessions[s].created));
                }
            }
        }
        // The first charge of a paid subscription.
        if let Some(&ff) = paid.get(paid.len() / 3) {
            if let Some(psp) = self.ff_subs[ff].psp_id.clone() {
                if let Some(c) = self.charges.iter().position(|c| c.id == psp) {
                    self.charges[c].deleted = Some(when(rng, self.charges[c].created));
                }
            }
        }
        // A paid subscription itself.
        if let Some(&ff) = paid.get(paid.len() / 2) {
            let t = self.ff_subs[ff].created.unwrap_or(self.in_window_start());
            self.ff_subs[ff].deleted = Some(when(rng, t));
        }
    }
}

/// `id` with the case of its first letter after the prefix (the first `_` or `-`)
/// flipped, e.g. `ses_aB3` -> `ses_AB3`; `None` when it has no such letter.
fn flip_first_letter(id: &str) -> Option<String> {
    let start = id.find(['_', '-']).map_or(0, |i| i + 1);
    let pos = id[start..].find(|c: char| c.is_ascii_alphabetic())? + start;
    let mut out = String::with_capacity(id.len());
    out.push_str(&id[..pos]);
    let c = id[pos..].chars().next()?;
    out.push(if c.is_ascii_lowercase() {
        c.to_ascii_uppercase()
    } else {
        c.to_ascii_lowercase()
    });
    out.push_str(&id[pos + 1..]);
    Some(out)
}

fn capitalise(part: &str) -> String {
    let mut chars = part.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}
