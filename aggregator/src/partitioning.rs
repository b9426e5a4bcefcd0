//! How the distributed aggregators share the work: every catalog service belongs to one
//! partition of the events topic ([`partition_of`]), ingest puts a delivery's events on the
//! partition of each service they concern ([`router`]), and the aggregator reading a partition
//! publishes only the services it owns ([`Ownership`]). A delivery on several partitions (a push
//! to a monorepo of services owned apart) counts in the organisation's totals on the lowest.

use std::sync::Arc;

use doraflow_eventlog::kafka::Router;
use doraflow_schemas::topics::partition_of;
use doraflow_schemas::{LogRecord, Outcome};

use crate::catalog::Catalog;
use crate::engine::{UNMAPPED, services_of};

/// The partitions a record's events go to, lowest first (none for a record without events).
pub fn partitions_of(catalog: &Catalog, record: &LogRecord, partitions: u32) -> Vec<u32> {
    let Outcome::Events { events } = &record.outcome else {
        return Vec::new();
    };
    let mut placed: Vec<u32> = events
        .iter()
        .flat_map(|e| {
            let services = services_of(catalog, e);
            if services.is_empty() {
                vec![UNMAPPED]
            } else {
                services
            }
        })
        .map(|service| partition_of(service, partitions))
        .collect();
    placed.sort_unstable();
    placed.dedup();
    placed
}

/// The router ingest places events with.
pub fn router(catalog: Arc<Catalog>, partitions: u32) -> Router {
    Arc::new(move |record| partitions_of(&catalog, record, partitions))
}

/// What the aggregator of one partition owns.
#[derive(Clone)]
pub struct Ownership {
    catalog: Arc<Catalog>,
    partitions: u32,
    partition: u32,
}

impl Ownership {
    /// The share of `partition` among `partitions`.
    pub fn new(catalog: Arc<Catalog>, partitions: u32, partition: u32) -> Self {
        Self {
            catalog,
            partitions,
            partition,
        }
    }

    /// The partition.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Whether this partition's aggregator publishes the service.
    pub fn owns(&self, service: &str) -> bool {
        partition_of(service, self.partitions) == self.partition
    }

    /// Whether the record counts in the organisation's totals here.
    pub fn is_home(&self, record: &LogRecord) -> bool {
        partitions_of(&self.catalog, record, self.partitions)
            .first()
            .is_none_or(|p| *p == self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::config::{RepoMapping, ServiceConfig};
    use doraflow_schemas::event::{Event, Push};

    fn catalog() -> Catalog {
        let service = |name: &str, paths: Vec<String>| ServiceConfig {
            name: name.into(),
            repos: vec![RepoMapping {
                repo: "acme/mono".into(),
                paths,
            }],
            ..Default::default()
        };
        Catalog::new(&[
            service("service-0", vec!["a/**".into()]),
            service("service-2", vec!["b/**".into()]),
        ])
        .unwrap()
    }

    fn push(repo: &str) -> LogRecord {
        LogRecord {
            delivery: "github:1".into(),
            source: "github".into(),
            received_at: chrono::Utc::now(),
            headers: vec![],
            body: Default::default(),
            outcome: Outcome::Events {
                events: vec![Event::Push(Push {
                    repo: repo.into(),
                    branch: "main".into(),
                    default_branch: "main".into(),
                    before: "0".repeat(40).into(),
                    after: "1".repeat(40).into(),
                    forced: false,
                    pushed_at: chrono::Utc::now(),
                    commits: vec![],
                    commits_not_listed: 0,
                })],
            },
        }
    }

    #[test]
    fn a_monorepo_push_goes_to_each_service_partition_and_counts_on_the_lowest() {
        let catalog = Arc::new(catalog());
        // service-0 hashes to 2 of 6, service-2 to 5 (schemas::topics tests).
        assert_eq!(partitions_of(&catalog, &push("acme/mono"), 6), vec![2, 5]);
        let two = Ownership::new(catalog.clone(), 6, 2);
        let five = Ownership::new(catalog.clone(), 6, 5);
        assert!(two.is_home(&push("acme/mono")));
        assert!(!five.is_home(&push("acme/mono")));
        assert!(two.owns("service-0") && !two.owns("service-2") && five.owns("service-2"));
        // A repository the catalog does not name is a service of its own name.
        assert_eq!(
            partitions_of(&catalog, &push("acme/unknown"), 6),
            vec![partition_of("acme/unknown", 6)]
        );
    }
}
