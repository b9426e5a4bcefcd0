//! Time helpers shared by every crate: one `Timestamp` type (UTC) and a duration parser for
//! configuration values such as `24h`.

use chrono::{DateTime, Utc};

/// Every instant in doraflow is a UTC timestamp.
pub type Timestamp = DateTime<Utc>;

/// Parses a duration written as a number followed by `s`, `m`, `h`, `d` or `w` (e.g. `24h`).
/// Returns the number of seconds.
pub fn parse_duration_secs(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let number: i64 = number.parse().ok()?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Parses an RFC 3339 timestamp with any offset into UTC.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_secs("24h"), Some(86_400));
        assert_eq!(parse_duration_secs("90d"), Some(90 * 86_400));
        assert_eq!(parse_duration_secs("15m"), Some(900));
        assert_eq!(parse_duration_secs("h"), None);
        assert_eq!(parse_duration_secs("12"), None);
        assert_eq!(parse_duration_secs("3y"), None);
    }

    #[test]
    fn offsets_convert_to_utc() {
        let t = parse_rfc3339("2019-05-15T15:20:30+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2019-05-15T13:20:30+00:00");
    }
}
