//! Package versions as dbt compares them (its own semver dialect): a version
//! with an optional matcher (`>=1.0.0`, `<2.0.0`, `=1.2.3`, `1.2.3`), ranges
//! reduced from several of them, the highest available version in a range, and
//! which versions are installable (prereleases only when asked for).

use std::cmp::Ordering;

/// How a version bounds a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matcher {
    Gt,
    Ge,
    Lt,
    Le,
    Exact,
}

impl Matcher {
    fn text(self) -> &'static str {
        match self {
            Matcher::Gt => ">",
            Matcher::Ge => ">=",
            Matcher::Lt => "<",
            Matcher::Le => "<=",
            Matcher::Exact => "=",
        }
    }
    fn lower(self) -> bool {
        matches!(self, Matcher::Gt | Matcher::Ge)
    }
    fn upper(self) -> bool {
        matches!(self, Matcher::Lt | Matcher::Le)
    }
}

/// One version with its matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) matcher: Matcher,
    major: u64,
    minor: u64,
    patch: u64,
    pub(crate) prerelease: Option<String>,
    build: Option<String>,
}

/// One end of a range: `None` is unbounded.
type Bound = Option<Spec>;

/// Versions between two bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range {
    start: Bound,
    end: Bound,
}

/// Versions that cannot all hold.
#[derive(Debug)]
pub(crate) struct Incompatible;

impl Spec {
    /// Parses `[matcher]MAJOR.MINOR.PATCH[-prerelease][+build]`; `None` when it is
    /// not a version.
    pub(crate) fn parse(text: &str) -> Option<Spec> {
        let (matcher, rest) = [
            (">=", Matcher::Ge),
            ("<=", Matcher::Le),
            (">", Matcher::Gt),
            ("<", Matcher::Lt),
            ("=", Matcher::Exact),
        ]
        .iter()
        .find_map(|(p, m)| text.strip_prefix(p).map(|r| (*m, r)))
        .unwrap_or((Matcher::Exact, text));
        let (rest, build) = match rest.split_once('+') {
            Some((r, b)) => {
                let ok = b
                    .split('.')
                    .all(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
                if !ok {
                    return None;
                }
                (r, Some(b.to_string()))
            }
            None => (rest, None),
        };
        let num = |s: &str| -> Option<u64> {
            if s.is_empty()
                || !s.chars().all(|c| c.is_ascii_digit())
                || (s.len() > 1 && s.starts_with('0'))
            {
                return None;
            }
            s.parse().ok()
        };
        let mut parts = rest.splitn(3, '.');
        let major = num(parts.next()?)?;
        let minor = num(parts.next()?)?;
        let last = parts.next()?;
        let digits = last.chars().take_while(|c| c.is_ascii_digit()).count();
        let patch = num(&last[..digits])?;
        let tail = &last[digits..];
        let tail = tail.strip_prefix('-').unwrap_or(tail);
        let prerelease = if tail.is_empty() {
            None
        } else {
            let ok = tail.split('.').all(|p| {
                !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && (p == "0" || !p.starts_with('0') || p.chars().any(|c| !c.is_ascii_digit()))
            });
            if !ok {
                return None;
            }
            Some(tail.to_string())
        };
        Some(Spec {
            matcher,
            major,
            minor,
            patch,
            prerelease,
            build,
        })
    }

    /// The version as dbt prints it (`>=1.0.0`; `=1.2.3` for an exact one).
    pub(crate) fn text(&self, with_matcher: bool) -> String {
        let mut s = String::new();
        if with_matcher {
            s.push_str(self.matcher.text());
        }
        s.push_str(&format!("{}.{}.{}", self.major, self.minor, self.patch));
        if let Some(p) = &self.prerelease {
            s.push('-');
            s.push_str(p);
        }
        if let Some(b) = &self.build {
            s.push('+');
            s.push_str(b);
        }
        s
    }

    fn range(&self) -> Range {
        match self.matcher {
            Matcher::Exact => Range {
                start: Some(self.clone()),
                end: Some(self.clone()),
            },
            m if m.lower() => Range {
                start: Some(self.clone()),
                end: None,
            },
            _ => Range {
                start: None,
                end: Some(self.clone()),
            },
        }
    }
}

/// dbt's comparison of two bounds (matchers included): -1, 0 or 1; unbounded
/// compares equal to anything.
fn compare(a: &Bound, b: &Bound) -> i32 {
    let (Some(a), Some(b)) = (a, b) else { return 0 };
    for (x, y) in [(a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)] {
        match x.cmp(&y) {
            Ordering::Greater => return 1,
            Ordering::Less => return -1,
            Ordering::Equal => {}
        }
    }
    match (&a.prerelease, &b.prerelease) {
        (None, None) => {}
        // A release is above its prereleases, except as an exclusive upper
        // bound (`<2.0.0` keeps 2.0.0-rc1 out).
        (None, Some(_)) => return if a.matcher == Matcher::Lt { -1 } else { 1 },
        (Some(_), None) => return -1,
        (Some(x), Some(y)) => {
            let c = prerelease_cmp(x, y);
            if c != 0 {
                return c;
            }
        }
    }
    use Matcher::*;
    let (am, bm) = (a.matcher, b.matcher);
    if (am == Ge && bm == Le) || (am == Le && bm == Ge) {
        return 0;
    }
    if (am == Lt && bm == Le) || (bm == Gt && am == Ge) || (am.upper() && bm.lower()) {
        return -1;
    }
    if (bm == Lt && am == Le) || (am == Gt && bm == Ge) || (am.lower() && bm.upper()) {
        return 1;
    }
    0
}

/// Prerelease tags compared part by part (numbers below words); equal parts, the
/// longer tag is greater.
fn prerelease_cmp(a: &str, b: &str) -> i32 {
    let sign = |o: Ordering| match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    };
    for (x, y) in a.split('.').zip(b.split('.')) {
        let c = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(p), Ok(q)) => sign(p.cmp(&q)),
            (Ok(_), Err(_)) => -1,
            (Err(_), Ok(_)) => 1,
            (Err(_), Err(_)) => sign(x.cmp(y)),
        };
        if c != 0 {
            return c;
        }
    }
    sign(a.len().cmp(&b.len()))
}

fn is_exact(b: &Bound) -> bool {
    matches!(b, Some(s) if s.matcher == Matcher::Exact)
}

fn lower_with_exact(lower: &Bound, exact: &Bound) -> Result<Bound, Incompatible> {
    let c = compare(lower, exact);
    let ge = matches!(lower, Some(s) if s.matcher == Matcher::Ge);
    if c < 0 || (c == 0 && ge) {
        Ok(exact.clone())
    } else {
        Err(Incompatible)
    }
}

fn upper_with_exact(upper: &Bound, exact: &Bound) -> Result<Bound, Incompatible> {
    let c = compare(upper, exact);
    let le = matches!(upper, Some(s) if s.matcher == Matcher::Le);
    if c > 0 || (c == 0 && le) {
        Ok(exact.clone())
    } else {
        Err(Incompatible)
    }
}

fn combine(a: &Bound, b: &Bound, lower: bool) -> Result<Bound, Incompatible> {
    if b.is_none() {
        return Ok(a.clone());
    }
    if a.is_none() {
        return Ok(b.clone());
    }
    let with_exact = if lower {
        lower_with_exact
    } else {
        upper_with_exact
    };
    if !(is_exact(a) || is_exact(b)) {
        let c = compare(a, b);
        let take_b = if lower { c < 0 } else { c > 0 };
        Ok(if take_b { b.clone() } else { a.clone() })
    } else if is_exact(a) {
        with_exact(b, a)
    } else {
        with_exact(a, b)
    }
}

impl Range {
    fn reduce(&self, other: &Range) -> Result<Range, Incompatible> {
        let (start, end) = if is_exact(&self.start) && is_exact(&other.start) {
            if compare(&self.start, &other.start) != 0 {
                return Err(Incompatible);
            }
            (self.start.clone(), self.start.clone())
        } else {
            (
                combine(&self.start, &other.start, true)?,
                combine(&self.end, &other.end, false)?,
            )
        };
        if compare(&start, &end) > 0 {
            return Err(Incompatible);
        }
        Ok(Range { start, end })
    }

    /// The range as dbt prints it: `>=1.0.0, <2.0.0`, `ANY`.
    pub(crate) fn text(&self) -> String {
        let parts: Vec<String> = [&self.start, &self.end]
            .into_iter()
            .flatten()
            .map(|s| s.text(true))
            .collect();
        if parts.is_empty() {
            "ANY".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The range every spec allows (reduced as dbt does: the last one first).
pub(crate) fn reduce(specs: &[Spec]) -> Result<Range, Incompatible> {
    let Some((last, rest)) = specs.split_last() else {
        return Ok(Range {
            start: None,
            end: None,
        });
    };
    let mut range = last.range();
    for s in rest {
        range = range.reduce(&s.range())?;
    }
    Ok(range)
}

fn in_range(v: &Spec, range: &Range) -> bool {
    let mut specs = vec![v.clone()];
    specs.extend(range.start.iter().cloned());
    specs.extend(range.end.iter().cloned());
    reduce(&specs).is_ok()
}

/// The highest of `available` in `range`.
pub(crate) fn highest_in<'a>(range: &Range, available: &'a [String]) -> Option<&'a str> {
    let mut best: Option<(Spec, &str)> = None;
    for text in available {
        let Some(v) = Spec::parse(text) else { continue };
        if !in_range(&v, range) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((b, _)) => compare(&Some(b.clone()), &Some(v.clone())) < 0,
        };
        if better {
            best = Some((v, text));
        }
    }
    best.map(|(_, t)| t)
}

/// The versions that may be installed, lowest first: prereleases only with
/// `prerelease`.
pub(crate) fn installable(versions: &[String], prerelease: bool) -> Vec<String> {
    let mut out: Vec<(Spec, String)> = versions
        .iter()
        .filter_map(|t| Spec::parse(t).map(|s| (s, t.clone())))
        .filter(|(s, _)| prerelease || s.prerelease.is_none())
        .collect();
    out.sort_by(
        |(a, _), (b, _)| match compare(&Some(a.clone()), &Some(b.clone())) {
            -1 => Ordering::Less,
            1 => Ordering::Greater,
            _ => Ordering::Equal,
        },
    );
    out.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(v: &[&str]) -> Vec<Spec> {
        v.iter().map(|s| Spec::parse(s).unwrap()).collect()
    }
    fn avail(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_dbt_versions() {
        assert_eq!(Spec::parse(">=1.0.0").unwrap().text(true), ">=1.0.0");
        assert_eq!(
            Spec::parse("1.2.3-rc1").unwrap().prerelease.as_deref(),
            Some("rc1")
        );
        assert_eq!(
            Spec::parse("1.2.3b1").unwrap().prerelease.as_deref(),
            Some("b1")
        );
        assert!(Spec::parse("1.2").is_none());
        assert!(Spec::parse("01.2.3").is_none());
        assert!(Spec::parse("latest").is_none());
    }

    #[test]
    fn highest_matching_version() {
        let a = avail(&["0.9.0", "1.0.0", "1.1.0", "1.2.0-rc1", "2.0.0"]);
        let r = reduce(&specs(&[">=1.0.0", "<2.0.0"])).unwrap();
        assert_eq!(r.text(), ">=1.0.0, <2.0.0");
        assert_eq!(highest_in(&r, &installable(&a, false)), Some("1.1.0"));
        assert_eq!(highest_in(&r, &installable(&a, true)), Some("1.2.0-rc1"));
        let exact = reduce(&specs(&["1.0.0"])).unwrap();
        assert_eq!(highest_in(&exact, &a), Some("1.0.0"));
        assert_eq!(highest_in(&reduce(&specs(&[">=3.0.0"])).unwrap(), &a), None);
    }

    #[test]
    fn ranges_intersect_or_conflict() {
        let r = reduce(&specs(&[">=1.0.0", "<2.0.0", ">=1.1.0", "<1.5.0"])).unwrap();
        assert_eq!(r.text(), ">=1.1.0, <1.5.0");
        let r = reduce(&specs(&[">=1.0.0", "<2.0.0", "1.2.0"])).unwrap();
        assert_eq!(r.text(), "=1.2.0, =1.2.0");
        assert!(reduce(&specs(&[">=2.0.0", "<1.5.0"])).is_err());
        assert!(reduce(&specs(&["1.0.0", "1.1.0"])).is_err());
        assert!(reduce(&specs(&["<2.0.0", "2.0.0"])).is_err());
    }

    #[test]
    fn installable_sorts_and_drops_prereleases() {
        let a = avail(&["1.10.0", "1.2.0", "1.2.0-b1", "0.1.0"]);
        assert_eq!(installable(&a, false), avail(&["0.1.0", "1.2.0", "1.10.0"]));
        assert_eq!(
            installable(&a, true),
            avail(&["0.1.0", "1.2.0-b1", "1.2.0", "1.10.0"])
        );
    }
}
