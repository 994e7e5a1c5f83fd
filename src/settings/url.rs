//! Connection URLs (`postgres://user:password@host:5432/dbname?sslmode=require`,
//! the `DATABASE_URL` style): parsing one into settings, and masking its password
//! for display.
//!
//! The grammar is libpq's URI form restricted to what the settings can hold: one
//! host (a name, an IPv4 address, a bracketed IPv6 address, or a percent-encoded
//! Unix socket directory), an optional port, database and the query parameters in
//! [`PARAMETERS`]. Anything else is refused by name rather than ignored, so a URL
//! never connects somewhere other than it says. Error messages show the URL masked
//! ([`mask`], whatever its shape), and text that is not a URL not at all.

use serde_json::Value;

/// Query parameters a URL may carry, each the name of a setting.
pub(crate) const PARAMETERS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
];

/// The settings a URL gives, as `(setting, value)` in the URL's order. Numbers stay
/// strings here; the caller coerces them to the settings' types.
pub(crate) fn parse(url: &str) -> Result<Vec<(String, Value)>, String> {
    let bad = |why: &str| format!("invalid connection URL {}: {why}", mask(url));
    // Not a URL at all (a missing colon or slash, a password pasted in the wrong
    // variable…): nothing of it can be shown safely.
    let rest = strip_scheme(url).ok_or_else(|| {
        "invalid connection URL: it must start with postgres:// or postgresql:// (the value is not shown: it may hold a password)".to_string()
    })?;
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    let mut out: Vec<(String, Value)> = Vec::new();
    let mut push = |k: &str, v: String| {
        out.retain(|(name, _)| name != k);
        out.push((k.to_string(), Value::String(v)));
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(ui) = userinfo {
        let (user, password) = match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        };
        if !user.is_empty() {
            push(
                "user",
                decode(user).ok_or_else(|| bad("bad percent-encoding in the user"))?,
            );
        }
        if let Some(p) = password {
            push(
                "password",
                decode(p).ok_or_else(|| bad("bad percent-encoding in the password"))?,
            );
        }
    }
    if hostport.contains(',') {
        return Err(bad("several hosts are not supported; give one host"));
    }
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let end = inner
            .find(']')
            .ok_or_else(|| bad("an IPv6 address needs its closing ']'"))?;
        let after = &inner[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':port' after the IPv6 address"))?,
            ),
        };
        (&inner[..end], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !host.is_empty() {
        push(
            "host",
            decode(host).ok_or_else(|| bad("bad percent-encoding in the host"))?,
        );
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the port must be a number"));
        }
        push("port", p.to_string());
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        push(
            "dbname",
            decode(db).ok_or_else(|| bad("bad percent-encoding in the database name"))?,
        );
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            // Not shown: it may be the end of a password holding a '&'.
            return Err(bad(
                "a query parameter has no '=' (parameters are key=value)",
            ));
        };
        let k = decode(k).ok_or_else(|| bad("bad percent-encoding in a parameter"))?;
        if !PARAMETERS.contains(&k.as_str()) {
            return Err(bad(&format!(
                "unsupported parameter '{k}' (supported: {})",
                PARAMETERS.join(", ")
            )));
        }
        let v = decode(v).ok_or_else(|| bad(&format!("bad percent-encoding in '{k}'")))?;
        push(&k, v);
    }
    Ok(out)
}

fn strip_scheme(url: &str) -> Option<&str> {
    for scheme in ["postgresql://", "postgres://"] {
        // `get`: the text may hold multi-byte characters anywhere.
        if url
            .get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
        {
            return Some(&url[scheme.len()..]);
        }
    }
    None
}

/// Percent-decoding; `None` for a malformed escape or bytes that are not UTF-8.
fn decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode(s, true)?).ok()
}

/// Percent-decoding that keeps what it cannot decode, for recognising names.
fn decode_lossy(s: &str) -> String {
    String::from_utf8_lossy(&percent_decode(s, false).unwrap_or_default()).into_owned()
}

/// The bytes `s` percent-encodes. A malformed escape is `None` when `strict`, else
/// kept as it is.
fn percent_decode(s: &str, strict: bool) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None if strict => return None,
            None => {
                out.push(b'%');
                i += 1;
            }
        }
    }
    Some(out)
}

/// Shown instead of a secret.
const HIDDEN: &str = "********";

/// The URL with everything that may be a password replaced by `********`, for
/// display and error messages, whatever the URL's shape: the user part after its
/// first `:` (or a second `@`), a `password=` parameter (its name percent-decoded,
/// any case) and what follows it up to the next `key=value`, and a "port" that is
/// not a number (`postgres://alice:S3cr3t/db` has lost its `@`). Text that does not
/// start with `postgres://` or `postgresql://` is hidden whole: it is not a URL, so
/// nothing tells where a password would be.
pub(crate) fn mask(url: &str) -> String {
    let Some(rest) = strip_scheme(url) else {
        return HIDDEN.to_string();
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..url.len() - rest.len()]);
    // The user part ends at the last '@', wherever it is: a password may hold '/',
    // '?' or '@' unencoded.
    let after_user = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find([':', '@']) {
                Some(i) => {
                    out.push_str(&userinfo[..i]);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let (head, query) = match after_user.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (after_user, None),
    };
    let host_end = head.find('/').unwrap_or(head.len());
    let (hostport, path) = head.split_at(host_end);
    // A port that is not a number may be a password whose '@' is missing.
    let port_at = match hostport.rfind(']') {
        Some(b) => hostport[b..].find(':').map(|i| b + i),
        None => hostport.rfind(':'),
    };
    match port_at {
        Some(i) if !hostport[i + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            out.push_str(&hostport[..=i]);
            out.push_str(HIDDEN);
        }
        _ => out.push_str(hostport),
    }
    out.push_str(path);
    if let Some(q) = query {
        out.push('?');
        let mut hiding = false;
        let parts: Vec<String> = q
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) => {
                    let name = decode_lossy(k).trim().to_ascii_lowercase();
                    hiding = name.contains("pass");
                    if hiding {
                        format!("{k}={HIDDEN}")
                    } else {
                        p.to_string()
                    }
                }
                // No '=': the rest of a password that held a '&'.
                None if hiding => HIDDEN.to_string(),
                None => p.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(v: &[(String, Value)], k: &str) -> Option<String> {
        v.iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.as_str().map(str::to_string))
    }

    #[test]
    fn parses_every_part() {
        let v = parse("postgres://al%40ice:p%3Ass@db.example.com:6543/an%20db?sslmode=verify-full&application_name=x").unwrap();
        assert_eq!(get(&v, "user").as_deref(), Some("al@ice"));
        assert_eq!(get(&v, "password").as_deref(), Some("p:ss"));
        assert_eq!(get(&v, "host").as_deref(), Some("db.example.com"));
        assert_eq!(get(&v, "port").as_deref(), Some("6543"));
        assert_eq!(get(&v, "dbname").as_deref(), Some("an db"));
        assert_eq!(get(&v, "sslmode").as_deref(), Some("verify-full"));
        assert_eq!(get(&v, "application_name").as_deref(), Some("x"));
    }

    #[test]
    fn ipv6_socket_and_partial_urls() {
        let v = parse("postgresql://[::1]:5433/d").unwrap();
        assert_eq!(get(&v, "host").as_deref(), Some("::1"));
        assert_eq!(get(&v, "port").as_deref(), Some("5433"));
        let v = parse("postgresql://%2Fvar%2Frun%2Fpostgresql/d").unwrap();
        assert_eq!(get(&v, "host").as_deref(), Some("/var/run/postgresql"));
        let v = parse("postgres:///d?host=/tmp&user=u").unwrap();
        assert_eq!(get(&v, "host").as_deref(), Some("/tmp"));
        assert_eq!(get(&v, "user").as_deref(), Some("u"));
        assert_eq!(get(&v, "dbname").as_deref(), Some("d"));
        assert!(parse("postgres://h")
            .unwrap()
            .iter()
            .all(|(k, _)| k == "host"));
    }

    #[test]
    fn refuses_what_it_cannot_honour_without_showing_the_password() {
        for (url, why) in [
            ("mysql://u:pw@h/d", "must start with"),
            ("postgres://u:pw@h1,h2/d", "several hosts"),
            ("postgres://u:pw@h:x/d", "port must be a number"),
            (
                "postgres://u:pw@h/d?target_session_attrs=any",
                "unsupported parameter 'target_session_attrs'",
            ),
            (
                "postgres://u:pw@h/d?password=pw&sslmode=%zz",
                "percent-encoding",
            ),
        ] {
            let e = parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("pw"), "{url}: {e}");
        }
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask("postgres://u:secret@h:1/d?sslmode=require"),
            "postgres://u:********@h:1/d?sslmode=require"
        );
        assert_eq!(
            mask("postgres://h/d?user=u&password=secret"),
            "postgres://h/d?user=u&password=********"
        );
        assert_eq!(mask("postgres://u@h/d"), "postgres://u@h/d");
    }

    #[test]
    fn masks_passwords_whatever_the_shape() {
        for (url, secret) in [
            ("postgres//alice:S3cr3t@db/x", "S3cr3t"),
            ("postgres:alice:S3cr3t@db/x", "S3cr3t"),
            ("S3cr3t", "S3cr3t"),
            ("host=db password=S3cr3t", "S3cr3t"),
            ("postgres://alice:S3/cr3t@db/x", "cr3t"),
            ("postgres://alice:S3?cr3t@db/x", "cr3t"),
            ("postgres://alice:S3@cr3t@db/x", "cr3t"),
            ("postgres://alice@S3cr3t@db/x", "S3cr3t"),
            ("postgres://alice:S3cr3t/db", "S3cr3t"),
            ("postgres://alice:S3cr3t", "S3cr3t"),
            ("postgres://[::1]:S3cr3t/db", "S3cr3t"),
            ("postgres://h/d?PassWord=S3cr3t", "S3cr3t"),
            ("postgres://h/d?%70assword=S3cr3t", "S3cr3t"),
            ("postgres://h/d?password=S3&cr3t&sslmode=x", "cr3t"),
            ("postgres://h/d?password=S3cr3t&sslmode=require", "S3cr3t"),
            ("POSTGRESQL://alice:S3cr%33t@db/x", "S3cr%33t"),
            ("postgres:/éS3cr3t", "S3cr3t"),
            ("postgres://ü:S3cr3té@h/d?x", "S3cr3t"),
        ] {
            let m = mask(url);
            assert!(!m.contains(secret), "{url} → {m}");
            if let Err(e) = parse(url) {
                assert!(!e.contains(secret), "{url}: {e}");
            }
        }
        assert_eq!(
            mask("postgres://h/d?password=p&w&sslmode=require"),
            "postgres://h/d?password=********&********&sslmode=require"
        );
        assert_eq!(mask("postgres://[::1]:5432/d"), "postgres://[::1]:5432/d");
        assert_eq!(mask("postgres//u:pw@h/d"), "********");
    }
}
