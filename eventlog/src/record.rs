//! The on-disk framing of one record: `[length u32 LE][crc32 u32 LE][payload]`, where the payload
//! is `[meta length u32 LE][meta JSON][raw body]`: the JSON of a [`LogRecord`] without its body,
//! then the body bytes verbatim. Readers that only need the events (the aggregator) skip the body
//! without parsing or copying it. The checksum covers the whole payload. A frame whose length runs
//! past the end or whose checksum does not match marks a torn tail.

use doraflow_schemas::LogRecord;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 8;
/// Largest payload accepted when reading; anything larger is corruption.
pub const MAX_PAYLOAD: usize = 64 * 1024 * 1024;

/// Encodes a record into a frame.
pub fn encode(record: &LogRecord) -> Vec<u8> {
    let meta = serde_json::to_vec(record).expect("a log record always serializes");
    let body: &[u8] = &record.body;
    let payload_len = 4 + meta.len() + body.len();
    let mut frame = Vec::with_capacity(HEADER_LEN + payload_len);
    frame.extend_from_slice(&(payload_len as u32).to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    frame.extend_from_slice(&meta);
    frame.extend_from_slice(body);
    let crc = crc32fast::hash(&frame[HEADER_LEN..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// The part of a record the aggregator reads.
#[derive(serde::Deserialize)]
struct EventsOnly {
    delivery: String,
    source: String,
    #[serde(with = "doraflow_schemas::time::wire")]
    received_at: doraflow_schemas::time::Timestamp,
    outcome: doraflow_schemas::Outcome,
}

/// Whether decoding keeps the raw body (and the headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Keep it.
    Keep,
    /// Leave `body` and `headers` empty (the aggregator's reads).
    Skip,
}

/// What decoding the bytes at some offset found.
#[derive(Debug)]
pub enum Decoded {
    /// A whole, valid frame of this many bytes.
    Frame(usize, LogRecord),
    /// Not enough bytes for a whole frame (a torn tail, or a write still in flight).
    Incomplete,
    /// A frame that fails its checksum or does not parse.
    Corrupt(String),
}

/// Decodes the frame at the start of `bytes`.
pub fn decode(bytes: &[u8], body: Body) -> Decoded {
    if bytes.len() < HEADER_LEN {
        return Decoded::Incomplete;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_PAYLOAD {
        return Decoded::Corrupt(format!("impossible frame length {len}"));
    }
    if bytes.len() < HEADER_LEN + len {
        return Decoded::Incomplete;
    }
    let payload = &bytes[HEADER_LEN..HEADER_LEN + len];
    if crc32fast::hash(payload) != crc {
        return Decoded::Corrupt("checksum mismatch".into());
    }
    let meta_len = u32::from_le_bytes(payload[0..4].try_into().expect("4 bytes")) as usize;
    if 4 + meta_len > payload.len() {
        return Decoded::Corrupt(format!("impossible meta length {meta_len}"));
    }
    let meta = &payload[4..4 + meta_len];
    let record = match body {
        Body::Keep => serde_json::from_slice::<LogRecord>(meta).map(|mut record| {
            record.body = bytes::Bytes::copy_from_slice(&payload[4 + meta_len..]);
            record
        }),
        // The aggregator's reads: the headers are skipped by the parser, never allocated.
        Body::Skip => serde_json::from_slice::<EventsOnly>(meta).map(|e| LogRecord {
            delivery: e.delivery,
            source: e.source,
            received_at: e.received_at,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            outcome: e.outcome,
        }),
    };
    match record {
        Ok(record) => Decoded::Frame(HEADER_LEN + len, record),
        Err(e) => Decoded::Corrupt(format!("payload does not parse: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::Outcome;

    fn sample() -> LogRecord {
        LogRecord {
            delivery: "github:1:abc".into(),
            source: "github".into(),
            received_at: chrono_now(),
            headers: vec![("x-github-event".into(), "push".into())],
            body: bytes::Bytes::from_static(b"{\"a\":1}"),
            outcome: Outcome::Ignored {
                reason: "test".into(),
            },
        }
    }

    fn chrono_now() -> doraflow_schemas::time::Timestamp {
        doraflow_schemas::time::parse_rfc3339("2026-01-02T03:04:05Z").unwrap()
    }

    #[test]
    fn frames_round_trip() {
        let frame = encode(&sample());
        match decode(&frame, Body::Keep) {
            Decoded::Frame(n, record) => {
                assert_eq!(n, frame.len());
                assert_eq!(record, sample());
            }
            other => panic!("expected a frame, got {other:?}"),
        }
        match decode(&frame, Body::Skip) {
            Decoded::Frame(_, record) => {
                assert!(record.body.is_empty());
                assert!(record.headers.is_empty());
                assert_eq!(record.outcome, sample().outcome);
                assert_eq!(record.delivery, sample().delivery);
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_frame_is_incomplete_and_a_flipped_bit_is_corrupt() {
        let frame = encode(&sample());
        assert!(matches!(
            decode(&frame[..frame.len() - 1], Body::Keep),
            Decoded::Incomplete
        ));
        let mut bad = frame.clone();
        let last = bad.len() - 2;
        bad[last] ^= 1;
        assert!(matches!(decode(&bad, Body::Keep), Decoded::Corrupt(_)));
    }
}
