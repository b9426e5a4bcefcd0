//! One module per webhook source. Each turns a verified raw body into a [`Normalized`] outcome
//! through narrow typed structs: only the fields the metrics need are read.

pub mod github;
pub mod pagerduty;

use doraflow_schemas::Event;

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
