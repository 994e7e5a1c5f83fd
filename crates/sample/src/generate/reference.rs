//! Reference data: the fixed lists (countries, currencies, plans, funnels,
//! campaigns, ads, app events...) the generated world draws from.

/// Session starts per UTC hour (relative weights): the audience is mostly in Europe
/// and the Americas, so the peak is in the UTC evening.
pub(super) const HOURLY: [u32; 24] = [
    6, 5, 4, 3, 3, 3, 3, 4, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 14, 15, 16, 14, 10, 8,
];

/// Day-of-week factor (Monday first), in percent: consumer traffic peaks at weekends.
pub(super) const WEEKDAY_PCT: [i64; 7] = [96, 94, 93, 95, 102, 112, 118];

pub(super) struct Country {
    pub(super) code: &'static str,
    pub(super) weight: u32,
    pub(super) cities: &'static [&'static str],
    /// Postal code pattern: `9` a digit, `A` an upper-case letter.
    pub(super) postal: &'static str,
    /// The usual currency of a purchase from there.
    pub(super) currency: usize,
}

// Indices into CURRENCIES.
pub(super) const USD: usize = 0;
pub(super) const EUR: usize = 1;
pub(super) const GBP: usize = 2;
pub(super) const JPY: usize = 3;
pub(super) const KWD: usize = 4;
pub(super) const CAD: usize = 5;

#[rustfmt::skip]
pub(super) const COUNTRIES: [Country; 14] = [
    Country { code: "US", weight: 420, cities: &["New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Austin"], postal: "99999", currency: USD },
    Country { code: "GB", weight: 80, cities: &["London", "Manchester", "Birmingham"], postal: "AA9 9AA", currency: GBP },
    Country { code: "DE", weight: 60, cities: &["Berlin", "München", "Hamburg", "Köln"], postal: "99999", currency: EUR },
    Country { code: "CA", weight: 50, cities: &["Toronto", "Montréal", "Vancouver"], postal: "A9A 9A9", currency: CAD },
    Country { code: "AU", weight: 40, cities: &["Sydney", "Melbourne"], postal: "9999", currency: USD },
    Country { code: "FR", weight: 40, cities: &["Paris", "Lyon", "Marseille"], postal: "99999", currency: EUR },
    Country { code: "BR", weight: 30, cities: &["São Paulo", "Rio de Janeiro"], postal: "99999-999", currency: USD },
    Country { code: "IN", weight: 30, cities: &["Mumbai", "Bengaluru", "Delhi"], postal: "999999", currency: USD },
    Country { code: "JP", weight: 30, cities: &["Tokyo", "Osaka"], postal: "999-9999", currency: JPY },
    Country { code: "ES", weight: 25, cities: &["Madrid", "Barcelona"], postal: "99999", currency: EUR },
    Country { code: "NL", weight: 20, cities: &["Amsterdam", "Rotterdam"], postal: "9999 AA", currency: EUR },
    Country { code: "MX", weight: 20, cities: &["Ciudad de México", "Guadalajara"], postal: "99999", currency: USD },
    Country { code: "KW", weight: 12, cities: &["Kuwait City"], postal: "99999", currency: KWD },
    Country { code: "IT", weight: 20, cities: &["Roma", "Milano"], postal: "99999", currency: EUR },
];

pub(super) struct Currency {
    pub(super) code: &'static str,
    /// Units of the currency per US dollar.
    pub(super) per_usd: f64,
    /// Decimals of the minor unit (0 for JPY, 3 for KWD).
    pub(super) decimals: u32,
}

#[rustfmt::skip]
pub(super) const CURRENCIES: [Currency; 6] = [
    Currency { code: "usd", per_usd: 1.0, decimals: 2 },
    Currency { code: "eur", per_usd: 0.92, decimals: 2 },
    Currency { code: "gbp", per_usd: 0.79, decimals: 2 },
    Currency { code: "jpy", per_usd: 150.0, decimals: 0 },
    Currency { code: "kwd", per_usd: 0.307, decimals: 3 },
    Currency { code: "cad", per_usd: 1.36, decimals: 2 },
];

pub(super) struct Plan {
    pub(super) nickname: &'static str,
    pub(super) usd_cents: i64,
    pub(super) interval: &'static str,
    pub(super) count: i64,
    pub(super) weight: u32,
}

#[rustfmt::skip]
pub(super) const PLANS: [Plan; 4] = [
    Plan { nickname: "Weekly", usd_cents: 699, interval: "week", count: 1, weight: 22 },
    Plan { nickname: "Monthly", usd_cents: 1999, interval: "month", count: 1, weight: 43 },
    Plan { nickname: "3 months", usd_cents: 3999, interval: "month", count: 3, weight: 15 },
    Plan { nickname: "Yearly", usd_cents: 5999, interval: "year", count: 1, weight: 20 },
];

/// Failure codes with Stripe's messages and their weights for a first purchase and
/// for a renewal (renewals fail on funds more often).
#[rustfmt::skip]
pub(super) const FAILURES: [(&str, &str, u32, u32); 5] = [
    ("card_declined", "Your card was declined.", 52, 50),
    ("insufficient_funds", "Your card has insufficient funds.", 20, 24),
    ("expired_card", "Your card has expired.", 12, 16),
    ("incorrect_cvc", "Your card's security code is incorrect.", 10, 3),
    ("processing_error", "An error occurred while processing your card. Try again in a little bit.", 8, 8),
];

pub(super) const FIRST_NAMES: [&str; 16] = [
    "anna", "james", "maria", "david", "olga", "li", "sofia", "lucas", "emma", "noah", "mia",
    "oliver", "yuki", "omar", "chloe", "mateo",
];
pub(super) const LAST_NAMES: [&str; 16] = [
    "smith", "johnson", "garcia", "mueller", "ivanova", "chen", "rossi", "silva", "brown",
    "tanaka", "kim", "martin", "novak", "haddad", "lopez", "wilson",
];
pub(super) const EMAIL_DOMAINS: [&str; 8] = [
    "gmail.com",
    "yahoo.com",
    "icloud.com",
    "outlook.com",
    "hotmail.de",
    "gmx.net",
    "proton.me",
    "mail.example.org",
];

pub(super) const USER_AGENTS: [&str; 7] = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/471.0.0.40.94;FBBV/622161000]",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 Instagram 334.0.0.42.95 Android",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    // A broken in-app browser that leaks a Windows path: exercises COPY escaping.
    "LegacyWebView/2.1 (C:\\Program Files\\Shell\\app.exe)",
];
pub(super) const USER_AGENT_WEIGHTS: [u32; 7] = [34, 20, 24, 12, 5, 4, 1];

pub(super) struct FunnelSpec {
    pub(super) title: Option<&'static str>,
    pub(super) alias: &'static str,
    pub(super) kind: &'static str,
    pub(super) weight: u32,
    pub(super) deleted: bool,
}

/// Six live funnels (one without a title) and an old one deleted at the source.
#[rustfmt::skip]
pub(super) const FUNNELS: [FunnelSpec; 7] = [
    FunnelSpec { title: Some("Yoga for Beginners — Quiz"), alias: "yoga-quiz", kind: "quiz", weight: 34, deleted: false },
    FunnelSpec { title: Some("Wall Pilates 28-Day Challenge"), alias: "wall-pilates", kind: "quiz", weight: 26, deleted: false },
    FunnelSpec { title: Some("Meditation & Sleep"), alias: "sleep", kind: "landing", weight: 14, deleted: false },
    FunnelSpec { title: None, alias: "checkout-direct", kind: "checkout", weight: 9, deleted: false },
    FunnelSpec { title: Some("Calisthenics at Home"), alias: "calisthenics", kind: "quiz", weight: 10, deleted: false },
    FunnelSpec { title: Some("Spring Sale 50% off"), alias: "spring-sale", kind: "landing", weight: 6, deleted: false },
    FunnelSpec { title: Some("Old Yoga Quiz (v1)"), alias: "yoga-quiz-v1", kind: "quiz", weight: 0, deleted: true },
];

pub(super) struct CampaignSpec {
    pub(super) name: &'static str,
    pub(super) objective: &'static str,
    pub(super) budget_cents: Option<i64>,
    pub(super) deleted: bool,
}

/// Five campaigns, plus an old one deleted at the source. Names carry a newline, a
/// backslash and non-ASCII text on purpose.
#[rustfmt::skip]
pub(super) const CAMPAIGNS: [CampaignSpec; 6] = [
    CampaignSpec { name: "US | Web2App | Broad", objective: "OUTCOME_SALES", budget_cents: Some(15_000), deleted: false },
    CampaignSpec { name: "UK+EU | LAL 1% purchasers", objective: "OUTCOME_SALES", budget_cents: Some(9_000), deleted: false },
    CampaignSpec { name: "Retargeting\n30d visitors", objective: "OUTCOME_SALES", budget_cents: None, deleted: false },
    CampaignSpec { name: "Brand — Awareness", objective: "OUTCOME_AWARENESS", budget_cents: Some(2_500), deleted: false },
    CampaignSpec { name: "Tier-2 | Yoga \\ Pilates", objective: "OUTCOME_TRAFFIC", budget_cents: None, deleted: false },
    CampaignSpec { name: "TEST do not use", objective: "OUTCOME_SALES", budget_cents: Some(500), deleted: true },
];

pub(super) struct AdSpec {
    pub(super) campaign: usize,
    pub(super) adset: &'static str,
    pub(super) name: &'static str,
    pub(super) share: i64,
    /// Active window as fractions (in percent) of the data range.
    pub(super) from_pct: i64,
    pub(super) to_pct: i64,
}

#[rustfmt::skip]
pub(super) const ADS: [AdSpec; 8] = [
    AdSpec { campaign: 0, adset: "Broad 18-45", name: "UGC video v1", share: 30, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 0, adset: "Broad 18-45", name: "UGC video v2", share: 20, from_pct: 30, to_pct: 100 },
    AdSpec { campaign: 0, adset: "Broad 25-54 F", name: "Static carousel", share: 12, from_pct: 0, to_pct: 70 },
    AdSpec { campaign: 1, adset: "LAL 1%", name: "Testimonial\tcut B", share: 14, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 1, adset: "LAL 1%", name: "Before/after", share: 8, from_pct: 60, to_pct: 100 },
    AdSpec { campaign: 2, adset: "Visitors 30d", name: "Reminder 20% off", share: 7, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 3, adset: "Awareness", name: "Brand film 15s", share: 5, from_pct: 0, to_pct: 100 },
    AdSpec { campaign: 4, adset: "Yoga \\ Pilates", name: "Yoga promo", share: 4, from_pct: 0, to_pct: 100 },
];

pub(super) const EVENT_TYPES: [(&str, u32); 12] = [
    ("screen_view", 30),
    ("button_tapped", 18),
    ("lesson_started", 10),
    ("lesson_progress", 12),
    ("lesson_completed", 7),
    ("video_played", 8),
    ("paywall_viewed", 3),
    ("search", 2),
    ("streak_extended", 3),
    ("notification_opened", 3),
    ("settings_changed", 2),
    ("app_backgrounded", 2),
];

pub(super) const SCREENS: [&str; 8] = [
    "home", "library", "plan", "lesson", "profile", "paywall", "settings", "progress",
];

/// Search queries typed in the app; some carry characters that JSON and COPY must
/// escape.
pub(super) const SEARCHES: [&str; 6] = [
    "yoga for back pain",
    "wall pilates",
    "10 min \"morning\" stretch",
    "sleep\tmeditation",
    "C:\\ reset\nplan",
    "Übungen für Anfänger",
];
