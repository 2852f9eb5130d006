//! Durations as the attribute accepts them: whole seconds (`60`) or a string
//! of one or more `<number><unit>` parts (`"90s"`, `"5m"`, `"1h30m"`, `"250ms"`).

/// Milliseconds in a duration string, or a message saying what is wrong.
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return seconds.checked_mul(1000).ok_or_else(too_long);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{number}` needs a unit: ms, s, m, h or d")),
            other => return Err(format!("unknown unit `{other}`: use ms, s, m, h or d")),
        };
        rest = &rest[unit_len..];
        let part = number.checked_mul(unit).ok_or_else(too_long)?;
        total = total.checked_add(part).ok_or_else(too_long)?;
    }
    Ok(total)
}

fn too_long() -> String {
    "duration too long".into()
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn accepts_seconds_and_units() {
        assert_eq!(parse_millis("60"), Ok(60_000));
        assert_eq!(parse_millis("90s"), Ok(90_000));
        assert_eq!(parse_millis("5m"), Ok(300_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
        assert_eq!(parse_millis("1d"), Ok(86_400_000));
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("1h30m"), Ok(5_400_000));
        assert_eq!(parse_millis(" 2m "), Ok(120_000));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(parse_millis(""), Err("empty duration".into()));
        assert_eq!(parse_millis("5"), Ok(5000));
        assert_eq!(
            parse_millis("5 minutes"),
            Err("unknown unit ` minutes`: use ms, s, m, h or d".into())
        );
        assert_eq!(parse_millis("m"), Err("expected a number at `m`".into()));
        assert_eq!(
            parse_millis("-5s"),
            Err("expected a number at `-5s`".into())
        );
        assert_eq!(
            parse_millis("1.5h"),
            Err("unknown unit `.`: use ms, s, m, h or d".into())
        );
        assert_eq!(
            parse_millis("99999999999999999999s"),
            Err("duration too long".into())
        );
    }
}
