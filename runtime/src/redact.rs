//! Credentials out of everything printed: [`redact`] turns a store URL
//! into one safe for errors, logs and `Debug` output.
//!
//! It works on text, not on a parsed URL, because the URLs that need it
//! most are the ones that don't parse. It errs towards hiding: everything
//! between `://` and the last `@` before the next URL (or the end) is
//! credentials, so a password holding `/`, `@` or `,` is hidden whole.

/// What replaces a secret.
const HIDDEN: &str = "***";

/// `url` with the password of each URL in it replaced by `***`:
/// `redis://user:***@host:6379/0`. A user-info part without `:` is hidden
/// whole (it may be a password); `pass=`/`password=` query values (and
/// `…password=`, e.g. a Sentinel URL's `sentinel_password=`) are hidden too
/// (`redis+unix:///run/redis.sock?pass=***`). Takes one URL, or
/// several separated by commas (`redis://:***@a:7000,redis://:***@b:7001`).
pub(crate) fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    loop {
        let (one, next) = split_next_url(rest);
        redact_one(one, &mut out);
        match next {
            Some(next) => rest = next,
            None => return out,
        }
    }
}

/// The first URL of `text` (up to the scheme of the next one, if any), and
/// the text from that next URL on.
fn split_next_url(text: &str) -> (&str, Option<&str>) {
    let body = text.find("://").map_or(0, |at| at + 3);
    match text[body..].find("://") {
        Some(at) => {
            let scheme_end = body + at;
            // The next URL starts after the last separator before its scheme.
            let start = text[..scheme_end]
                .rfind([',', ' ', ';'])
                .filter(|&at| at >= body)
                .map_or(scheme_end, |at| at + 1);
            if start >= scheme_end {
                // No separator: treat the rest as one URL, hiding more.
                return (text, None);
            }
            (&text[..start], Some(&text[start..]))
        }
        None => (text, None),
    }
}

fn redact_one(url: &str, out: &mut String) {
    let body = url.find("://").map_or(0, |at| at + 3);
    out.push_str(&url[..body]);
    let rest = &url[body..];
    let rest = match rest.rfind('@') {
        Some(at) => {
            let info = &rest[..at];
            match info.find(':') {
                Some(colon) => {
                    out.push_str(&info[..=colon]);
                    out.push_str(HIDDEN);
                }
                None => out.push_str(HIDDEN),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    redact_query(rest, out);
}

/// Copies `rest`, hiding the values of `pass=` and `…password=` parameters.
fn redact_query(rest: &str, out: &mut String) {
    let Some(question) = rest.find('?') else {
        out.push_str(rest);
        return;
    };
    out.push_str(&rest[..=question]);
    for (i, pair) in rest[question + 1..].split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _))
                if name.eq_ignore_ascii_case("pass")
                    || name.to_ascii_lowercase().ends_with("password") =>
            {
                out.push_str(name);
                out.push('=');
                out.push_str(HIDDEN);
            }
            _ => out.push_str(pair),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn hides_passwords_and_keeps_the_rest() {
        let cases = [
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            (
                "redis://user:secret@host:6379/0",
                "redis://user:***@host:6379/0",
            ),
            ("redis://:secret@host", "redis://:***@host"),
            (
                "rediss://user:secret@host#insecure",
                "rediss://user:***@host#insecure",
            ),
            ("redis://secret@host", "redis://***@host"),
            ("redis://u:se/cr@et@host/1", "redis://u:***@host/1"),
            ("redis://u:a:b@host", "redis://u:***@host"),
            (
                "redis+unix:///run/redis.sock?db=1&user=app&pass=secret",
                "redis+unix:///run/redis.sock?db=1&user=app&pass=***",
            ),
            (
                "redis+sentinel://:secret@a,b:1/mymaster?sentinel_password=s2&x=1",
                "redis+sentinel://:***@a,b:1/mymaster?sentinel_password=***&x=1",
            ),
            ("mem://", "mem://"),
            ("not a url", "not a url"),
            ("user:secret@host:6379", "user:***@host:6379"),
            (
                "redis://user:secret@host:notaport",
                "redis://user:***@host:notaport",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(redact(url), expected, "{url}");
        }
    }

    #[test]
    fn hides_each_password_of_a_list() {
        assert_eq!(
            redact("redis://:s1@a:7000,redis://u:s2@b:7001,redis://c:7002"),
            "redis://:***@a:7000,redis://u:***@b:7001,redis://c:7002"
        );
        // A comma inside a password: hidden whole, not split.
        assert_eq!(
            redact("redis://u:s,e@cret@a:7000,redis://b:7001"),
            "redis://u:***@a:7000,redis://b:7001"
        );
    }
}
