//! Time helpers shared by every crate: one `Timestamp` type (UTC), a duration parser for
//! configuration values such as `24h`, and the serde form of timestamps in facts ([`compact`]).

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

/// Serde for a fact's timestamp: RFC 3339 text in human-readable formats (JSON: the API,
/// checkpoints, facts written before 2026-11-27), seconds and nanoseconds since the epoch in
/// binary ones (the facts stored in ClickHouse), where formatting and parsing the text cost more
/// than everything else about a fact. Both forms are exact.
pub mod compact {
    use serde::de::Error as _;
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

    /// Deserializes what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        if deserializer.is_human_readable() {
            Timestamp::deserialize(deserializer)
        } else {
            let (seconds, nanoseconds) = <(i64, u32)>::deserialize(deserializer)?;
            Timestamp::from_timestamp(seconds, nanoseconds)
                .ok_or_else(|| D::Error::custom("timestamp out of range"))
        }
    }

    /// A timestamp in its compact form, for [`option`].
    struct Compact(Timestamp);

    impl Serialize for Compact {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize(&self.0, serializer)
        }
    }

    impl<'de> Deserialize<'de> for Compact {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserialize(deserializer).map(Compact)
        }
    }

    /// The same for an optional timestamp (use with `#[serde(default)]`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::{Compact, Timestamp};

        /// Serializes `time` as text or as `(seconds, nanoseconds)`, or none.
        pub fn serialize<S: Serializer>(
            time: &Option<Timestamp>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            time.map(Compact).serialize(serializer)
        }

        /// Deserializes what [`serialize`] wrote.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Timestamp>, D::Error> {
            Ok(Option::<Compact>::deserialize(deserializer)?.map(|c| c.0))
        }
    }
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
