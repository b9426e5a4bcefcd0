//! How a frozen chunk or a live window of a service's facts is stored in `service_facts.facts`:
//! two marker bytes, `00 01`, then the facts in postcard (fields in declaration order, integers
//! as varints, timestamps as seconds and nanoseconds since the epoch: `time::wire`). Encoding
//! the facts as JSON was the largest cost of an aggregator's replay, ahead of the engine, and
//! ClickHouse's share grew with the bytes; this form is a fraction of both.
//!
//! Parts written before 2026-11-27 hold the facts as JSON and are still read: JSON never starts
//! with a zero byte. A change to the fact types' fields (added, removed, reordered) or to the
//! order of an enum's variants among them (`FailureReason`) must take a new marker and keep
//! decoding the old one, since postcard names neither fields nor variants. The index
//! (part 0) stays JSON: it is small and read by nothing else.

use serde::Serialize;

use crate::engine::ServiceFacts;

/// The bytes that open a part in this encoding (a zero byte, then the format's version).
const MARKER: [u8; 2] = [0, 1];

/// Appends the encoding of `facts` (a [`ServiceFacts`] or anything serialized the same way) to
/// `out`.
pub fn append(facts: &impl Serialize, out: &mut Vec<u8>) {
    out.extend_from_slice(&MARKER);
    postcard::to_extend(facts, Appender(out)).expect("facts encode to a vector");
}

/// A borrowed vector that postcard can append to.
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

/// Decodes a part written by [`append`], or as JSON before it.
pub fn decode(bytes: &[u8]) -> Result<ServiceFacts, String> {
    match bytes {
        [0, version, rest @ ..] if [0, *version] == MARKER => {
            postcard::from_bytes(rest).map_err(|e| e.to_string())
        }
        [0, version, ..] => Err(format!("unknown facts encoding {version}")),
        json => serde_json::from_slice(json).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::fact::{
        ChangeFact, CommitRecord, CommitRef, DeploymentFact, FailureReason, IncidentFact,
    };
    use doraflow_schemas::time::parse_rfc3339;

    fn facts() -> ServiceFacts {
        let at = |t: &str| parse_rfc3339(t).unwrap();
        ServiceFacts {
            deployments: vec![DeploymentFact {
                id: "d1".into(),
                service: Some("checkout".into()),
                environment: "production".into(),
                production: true,
                revision: "a".repeat(40).into(),
                finished_at: at("2026-03-01T10:00:00.123456789Z"),
                succeeded: true,
                linked: true,
                changes: 2,
                lead_time_p50: Some(3600.5),
                rollback: false,
                failure_reasons: vec![FailureReason::Incident, FailureReason::Degraded],
                incidents: vec!["P1".into()],
                rolled_back_by: None,
                detected_at: Some(at("2026-03-01T11:00:00Z")),
                recovered_at: None,
                rework: true,
                located: Some(("acme/checkout".into(), 7)),
            }],
            changes: vec![ChangeFact {
                service: "checkout".into(),
                repo: "acme/checkout".into(),
                commit: CommitRef::single(CommitRecord {
                    sha: "b".repeat(40).into(),
                    timestamp: at("1969-12-31T23:59:59.5Z"),
                    title: "Fix \"quotes\" and \u{e9}".into(),
                }),
                timestamp: at("1969-12-31T23:59:59.5Z"),
                position: u64::MAX,
                deployed_by: Some("d1".into()),
                environment: Some("production".into()),
                deployed_at: Some(at("2026-03-01T10:00:00.123456789Z")),
                dropped_at: None,
                fix: false,
            }],
            incidents: vec![IncidentFact {
                id: "P1".into(),
                service: "checkout".into(),
                title: "down".into(),
                opened_at: at("2026-03-01T10:30:00Z"),
                resolved_at: Some(at("2026-03-01T12:30:00Z")),
                attributed_to: Some("d1".into()),
            }],
            ..ServiceFacts::default()
        }
    }

    #[test]
    fn facts_come_back_exactly_and_smaller_than_json() {
        let facts = facts();
        let mut bytes = vec![9];
        append(&facts, &mut bytes);
        assert_eq!(
            bytes[..3],
            [9, 0, 1],
            "appended after what was there, marker first"
        );
        let back = decode(&bytes[1..]).unwrap();
        assert_eq!(back.deployments, facts.deployments);
        assert_eq!(back.changes, facts.changes);
        assert_eq!(back.incidents, facts.incidents);
        let json = serde_json::to_vec(&facts).unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} against {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn parts_written_as_json_are_still_read() {
        let facts = facts();
        let back = decode(&serde_json::to_vec(&facts).unwrap()).unwrap();
        assert_eq!(back.deployments, facts.deployments);
        assert_eq!(back.changes, facts.changes);
        assert_eq!(back.incidents, facts.incidents);
        // As JSON, timestamps stay text (the API and checkpoints are unchanged).
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["changes"][0]["timestamp"], "1969-12-31T23:59:59.500Z",);
    }

    #[test]
    fn an_unknown_encoding_or_garbage_is_an_error() {
        assert_eq!(decode(&[0, 2, 1]).unwrap_err(), "unknown facts encoding 2");
        assert!(decode(&[0, 1, 0xff]).is_err());
        assert!(decode(b"{not json").is_err());
    }
}
