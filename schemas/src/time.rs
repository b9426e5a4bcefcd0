//! Time helpers shared by every crate: one `Timestamp` type (UTC), a duration parser for
//! configuration values such as `24h`, and the serde form of timestamps in events and facts
//! ([`wire`]).

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

/// The time from `from` to `to` as whole seconds and the rest in nanoseconds, both truncated
/// toward zero (the same sign): what `(to - from)` gives, read from the two instants' epoch
/// seconds instead of chrono's calendar arithmetic (132 instructions against about 185 a
/// subtraction by Valgrind; the engine subtracts for every change in every derivation). A leap
/// second (nanoseconds of a second past 10⁹) takes chrono's own path.
fn elapsed(from: Timestamp, to: Timestamp) -> (i64, i64) {
    let (from_nanos, to_nanos) = (from.timestamp_subsec_nanos(), to.timestamp_subsec_nanos());
    if from_nanos >= 1_000_000_000 || to_nanos >= 1_000_000_000 {
        let delta = to - from;
        return (delta.num_seconds(), i64::from(delta.subsec_nanos()));
    }
    let mut secs = to.timestamp() - from.timestamp();
    let mut nanos = i64::from(to_nanos) - i64::from(from_nanos);
    if secs > 0 && nanos < 0 {
        secs -= 1;
        nanos += 1_000_000_000;
    } else if secs < 0 && nanos > 0 {
        secs += 1;
        nanos -= 1_000_000_000;
    }
    (secs, nanos)
}

/// Milliseconds from `from` to `to`, truncated toward zero: `(to - from).num_milliseconds()`.
pub fn millis_between(from: Timestamp, to: Timestamp) -> i64 {
    let (secs, nanos) = elapsed(from, to);
    secs * 1000 + nanos / 1_000_000
}

/// Parses an RFC 3339 timestamp with any offset into UTC.
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde for the timestamps of events and facts (`#[serde(with = "time::wire")]`): RFC 3339 text
/// in human-readable formats (JSON: the event log, the API, checkpoints), read on a fast path for
/// the form chrono writes; seconds and nanoseconds since the epoch in binary ones (the facts
/// stored in ClickHouse). Formatting and parsing the text cost more than everything else about a
/// fact, and parsing it was the largest single cost of decoding an event. Both forms are exact.
pub mod wire {
    use std::fmt;

    use chrono::{DateTime, FixedOffset, NaiveDate};
    use serde::de::{Error as _, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Timestamp;

    /// Serializes `time` as text or as `(seconds, nanoseconds)`.
    pub fn serialize<S: Serializer>(time: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            time.serialize(serializer)
        } else {
            (time.timestamp(), time.timestamp_subsec_nanos()).serialize(serializer)
        }
    }

    /// Deserializes what [`serialize`] wrote, and any text chrono's own `Deserialize` accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(TextVisitor)
        } else {
            let (seconds, nanoseconds) = <(i64, u32)>::deserialize(deserializer)?;
            Timestamp::from_timestamp(seconds, nanoseconds)
                .ok_or_else(|| D::Error::custom("timestamp out of range"))
        }
    }

    struct TextVisitor;

    impl Visitor<'_> for TextVisitor {
        type Value = Timestamp;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 date and time")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
            match parse_fast(text) {
                Some(time) => Ok(time),
                // What chrono's `Deserialize` does, with its errors.
                None => text
                    .parse::<DateTime<FixedOffset>>()
                    .map(|t| t.to_utc())
                    .map_err(E::custom),
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fraction]` then `Z` or `±HH:MM`, the form chrono writes; `None` for
    /// anything else (a leap second, more than nine digits of fraction, another separator...),
    /// which chrono then parses.
    pub(super) fn parse_fast(text: &str) -> Option<Timestamp> {
        let bytes = text.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            bytes.get(range)?.iter().try_fold(0u32, |n, &b| {
                b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
            })
        };
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if separators.iter().any(|&(i, c)| bytes.get(i) != Some(&c)) {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let mut at = 19;
        let mut nanos = 0;
        if bytes.get(at) == Some(&b'.') {
            let end = bytes[at + 1..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(bytes.len(), |p| at + 1 + p);
            let len = end - at - 1;
            if !(1..=9).contains(&len) {
                return None;
            }
            nanos = digits(at + 1..end)? * 10u32.pow(9 - len as u32);
            at = end;
        }
        let offset_secs = match &bytes[at..] {
            [b'Z'] => 0,
            [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
                let secs = (digits(at + 1..at + 3)? * 3600 + digits(at + 4..at + 6)? * 60) as i64;
                if *sign == b'-' { -secs } else { secs }
            }
            _ => return None,
        };
        let local = date.and_hms_nano_opt(hour, minute, second, nanos)?;
        let utc = local.checked_sub_signed(chrono::TimeDelta::seconds(offset_secs))?;
        Some(utc.and_utc())
    }

    /// A timestamp in its wire form, for [`option`].
    struct Wire(Timestamp);

    impl Serialize for Wire {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(&self.0, serializer)
        }
    }

    impl<'de> Deserialize<'de> for Wire {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize(deserializer).map(Wire)
        }
    }

    /// The same for an optional timestamp (use with `#[serde(default)]`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::{Timestamp, Wire};

        /// Serializes `time` as text or as `(seconds, nanoseconds)`, or none.
        pub fn serialize<S: Serializer>(
            time: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            time.map(Wire).serialize(serializer)
        }

        /// Deserializes what [`serialize`] wrote.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            Ok(Option::<Wire>::deserialize(deserializer)?.map(|w| w.0))
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn elapsed_time_is_what_chrono_subtracts() {
        use chrono::TimeZone;
        let instants: Vec<Timestamp> = [
            (0, 0),
            (0, 500_000),
            (1, 999_999_999),
            (1_700_000_000, 0),
            (1_700_000_000, 1),
            (1_700_000_000, 999_500_000),
            (1_700_000_001, 400_000_000),
            (1_700_000_039, 1_500_000_000), // a leap second
            (-86_401, 250_000_000),
            (253_402_300_799, 0),
            // One year (2024, a leap year), its first and last instants and around 29 February.
            (1_704_067_200, 0),
            (1_704_067_199, 999_000_000),
            (1_709_164_800, 1_000_000),
            (1_709_251_199, 999_999_999),
            (1_735_689_599, 500_000_000),
            (1_735_689_600, 0),
        ]
        .iter()
        .map(|&(secs, nanos)| Utc.timestamp_opt(secs, nanos).unwrap())
        .chain(
            // Instants a little less than a day apart through four years, across years.
            (0..1_500i64).map(|k| {
                let nanos = u32::try_from(k * 7_919_993 % 1_000_000_000).unwrap();
                Utc.timestamp_opt(1_700_000_000 + k * 84_103, nanos)
                    .unwrap()
            }),
        )
        .collect();
        for &from in &instants {
            for &to in &instants {
                assert_eq!(
                    millis_between(from, to),
                    (to - from).num_milliseconds(),
                    "{from} to {to}"
                );
            }
        }
    }

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

    /// The fast path gives what chrono gives, and leaves to chrono what it does not parse.
    #[test]
    fn the_fast_path_agrees_with_chrono() {
        use chrono::{DateTime, FixedOffset};
        let chrono = |t: &str| t.parse::<DateTime<FixedOffset>>().ok().map(|t| t.to_utc());
        for text in [
            "2026-03-01T10:00:00Z",
            "2026-03-01T10:00:00.5Z",
            "2026-03-01T10:00:00.123456789Z",
            "2026-03-01T10:00:00.000001+00:00",
            "2026-03-01T00:30:00+02:00",
            "2026-03-01T23:30:00-05:30",
            "1969-12-31T23:59:59.999Z",
            "2024-02-29T12:00:00Z",
        ] {
            assert_eq!(wire::parse_fast(text), chrono(text), "{text}");
            assert!(chrono(text).is_some(), "{text}");
        }
        for text in [
            "2023-02-29T12:00:00Z",
            "2026-13-01T10:00:00Z",
            "2026-03-01T24:00:00Z",
            "2016-12-31T23:59:60Z",
            "2026-03-01T10:00:00.1234567891Z",
            "2026-03-01T10:00:00",
            "2026-03-01 10:00:00Z",
            "2026-03-01T10:00:00+0200",
            "2026-03-01T10:00:00.Z",
            "2026-3-01T10:00:00Z",
            "",
        ] {
            assert_eq!(wire::parse_fast(text), None, "{text}");
        }
        // Left to chrono: a leap second and a space separator are still read.
        #[derive(serde::Deserialize)]
        struct At(#[serde(with = "wire")] Timestamp);
        for text in ["2016-12-31T23:59:60Z", "2026-03-01 10:00:00Z"] {
            let at: At = serde_json::from_str(&format!("\"{text}\"")).unwrap();
            assert_eq!(Some(at.0), chrono(text), "{text}");
        }
        assert!(serde_json::from_str::<At>("\"yesterday\"").is_err());
    }

    #[test]
    fn offsets_convert_to_utc() {
        let t = parse_rfc3339("2019-05-15T15:20:30+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2019-05-15T13:20:30+00:00");
    }
}
