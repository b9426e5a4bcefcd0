//! The Kafka topics of the distributed deployment and the one rule that places a record on a
//! partition. Ingest and the aggregator both use [`partition_of`], so the aggregator that owns a
//! partition owns exactly the services that hash to it.

use sha2::{Digest, Sha256};

/// Every authentic delivery, verbatim (headers, raw body) with its outcome: the system of
/// record that a later version re-derives events from.
pub fn raw(prefix: &str) -> String {
    format!("{prefix}.raw")
}

/// Deliveries that carry normalized events (their raw bodies left out), keyed by the catalog
/// service they concern: what the aggregators read.
pub fn events(prefix: &str) -> String {
    format!("{prefix}.events")
}

/// Authentic deliveries that could not be normalized, verbatim, with the reason.
pub fn dead_letters(prefix: &str) -> String {
    format!("{prefix}.dead-letters")
}

/// The consumer group of the aggregators, unless configured otherwise.
pub fn default_group(prefix: &str) -> String {
    format!("{prefix}.aggregate")
}

/// The partition of a service's events among `partitions` (stable across versions and
/// processes: the first eight bytes of the name's SHA-256). The key of events of no catalog
/// service is the empty name.
pub fn partition_of(service: &str, partitions: u32) -> u32 {
    let digest = Sha256::digest(service.as_bytes());
    let hash = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    (hash % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: changing the rule would move services between aggregators.
        assert_eq!(partition_of("checkout", 1), 0);
        assert_eq!(partition_of("checkout", 6), 5);
        assert_eq!(partition_of("", 6), 1);
        let placed: Vec<u32> = (0..600)
            .map(|i| partition_of(&format!("service-{i}"), 6))
            .collect();
        for p in 0..6 {
            let n = placed.iter().filter(|&&q| q == p).count();
            assert!((60..=140).contains(&n), "partition {p} holds {n} of 600");
        }
        assert_eq!(placed[..6], [2, 2, 5, 5, 0, 2]);
    }
}
