//! One module per webhook source. Each turns a verified raw body into a [`Normalized`] outcome
//! through narrow typed structs: only the fields the metrics need are read.

pub mod argocd;
pub mod cdevents;
pub mod flux;
pub mod github;
pub mod gitlab;
pub mod pagerduty;

use doraflow_schemas::Event;

/// A commit as GitHub and GitLab list it in a push.
#[derive(serde::Deserialize)]
pub(crate) struct PushCommit {
    id: String,
    timestamp: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    modified: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

impl PushCommit {
    /// The commit with its first message line as title and every file it touched.
    pub(crate) fn into_commit(self) -> Result<doraflow_schemas::event::Commit, NormalizeError> {
        if self.id.is_empty() {
            return Err(NormalizeError::Unusable("a commit has an empty id".into()));
        }
        let timestamp = parse_loose_time("commits[].timestamp", &self.timestamp)?;
        let title = self.message.lines().next().unwrap_or_default().to_string();
        let mut files = self.added;
        files.extend(self.modified);
        files.extend(self.removed);
        Ok(doraflow_schemas::event::Commit {
            sha: self.id.into(),
            timestamp,
            title: title.into(),
            files,
        })
    }
}

/// What a source made of a delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalized {
    /// Events for the aggregator.
    Events(Vec<Event>),
    /// Authentic but carrying no metric; the reason is returned to the sender.
    Ignored(String),
    /// A GitHub `ping`.
    Pong,
}

/// Why a body could not be normalized.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// Not JSON, or a required field is missing or of the wrong type: the sender's fault (400).
    #[error("{0}")]
    Malformed(String),
    /// Well-formed, but a value cannot be used (an unparseable time, say): kept as a dead letter.
    #[error("{0}")]
    Unusable(String),
}

impl From<serde_json::Error> for NormalizeError {
    fn from(e: serde_json::Error) -> Self {
        NormalizeError::Malformed(e.to_string())
    }
}

/// Parses a source timestamp (RFC 3339 with any offset) into UTC.
pub(crate) fn parse_time(
    field: &str,
    text: &str,
) -> Result<doraflow_schemas::time::Timestamp, NormalizeError> {
    doraflow_schemas::time::parse_rfc3339(text).ok_or_else(|| {
        NormalizeError::Unusable(format!("{field}: `{text}` is not an RFC 3339 time"))
    })
}

/// Parses the timestamp formats GitLab mixes in one payload: RFC 3339
/// (`2013-12-03T17:23:34Z`, `2011-12-12T14:27:31+02:00`), `2016-08-12 15:23:28 UTC` and
/// `2021-04-28 21:50:00 +0200`.
pub(crate) fn parse_loose_time(
    field: &str,
    text: &str,
) -> Result<doraflow_schemas::time::Timestamp, NormalizeError> {
    use chrono::{DateTime, NaiveDateTime, Utc};
    let text = text.trim();
    if let Some(t) = doraflow_schemas::time::parse_rfc3339(text) {
        return Ok(t);
    }
    if let Some(naive) = text.strip_suffix(" UTC")
        && let Ok(t) = NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f")
    {
        return Ok(t.and_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Ok(t.with_timezone(&Utc));
        }
    }
    Err(NormalizeError::Unusable(format!(
        "{field}: `{text}` is not a time"
    )))
}

/// True for a full 40-hex-digit commit SHA.
pub(crate) fn is_full_sha(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the sources' tests share: their fixtures and times.
#[cfg(test)]
pub(crate) mod test_support {
    /// A fixture of `ingest/tests/fixtures/`, by its path there.
    pub(crate) fn fixture_at(path: &str) -> Vec<u8> {
        let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    /// An RFC 3339 time.
    pub(crate) fn t(text: &str) -> doraflow_schemas::time::Timestamp {
        doraflow_schemas::time::parse_rfc3339(text).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::time::parse_rfc3339;

    #[test]
    fn gitlab_time_formats_all_parse_to_the_same_instant() {
        let expected = parse_rfc3339("2021-04-28T19:50:00Z").unwrap();
        for text in [
            "2021-04-28T19:50:00Z",
            "2021-04-28T21:50:00+02:00",
            "2021-04-28 19:50:00 UTC",
            "2021-04-28 21:50:00 +0200",
            "2021-04-28T21:50:00+0200",
        ] {
            assert_eq!(parse_loose_time("t", text).unwrap(), expected, "{text}");
        }
        assert!(matches!(
            parse_loose_time("t", "yesterday"),
            Err(NormalizeError::Unusable(_))
        ));
    }
}
