//! The aggregator of the distributed deployment: a member of the consumer group that runs one
//! [`Consumer`] per partition of the events topic assigned to it, each with its own checkpoint
//! (`<dir>/partition-<n>`), publishing only the services its partition owns and writing them to
//! ClickHouse. The group's committed offset of a partition moves only after ClickHouse has
//! confirmed the facts up to it. A revoked partition's consumer finishes its last write and
//! checkpoint before the partition is let go.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doraflow_eventlog::EventLog;
use doraflow_eventlog::LogError;
use doraflow_eventlog::kafka::group::Membership;
use doraflow_eventlog::kafka::{KafkaLog, KafkaSettings, Topic, single_partition};
use doraflow_schemas::config::Definitions;

use crate::catalog::Catalog;
use crate::clickhouse::ClickHouseSettings;
use crate::clickhouse::facts::FactWriter;
use crate::consumer::{self, Consumer};
use crate::partitioning::Ownership;

/// Where a group member reads, writes and checkpoints.
#[derive(Clone)]
pub struct GroupSettings {
    /// The brokers and topics.
    pub kafka: KafkaSettings,
    /// The consumer group.
    pub group: String,
    /// Where facts go.
    pub clickhouse: ClickHouseSettings,
    /// Checkpoints, one directory per partition.
    pub checkpoint_dir: PathBuf,
    /// Time between checkpoints.
    pub checkpoint_every: Duration,
}

struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

/// The partitions this member runs, and the offsets their writers confirmed.
struct Shares {
    settings: GroupSettings,
    catalog: Arc<Catalog>,
    definitions: Definitions,
    runtime: tokio::runtime::Handle,
    running: Mutex<BTreeMap<u32, Running>>,
    confirmed: Arc<Mutex<BTreeMap<u32, u64>>>,
}

impl Shares {
    fn start(&self, partitions: &[u32]) {
        if partitions.is_empty() {
            // Normal when the group has more members than partitions; on tansu 0.6 also what a
            // member gets that joined while a dead member was still the leader (operations.md).
            tracing::warn!(
                "the group assigned this member no partitions: it aggregates nothing until the next rebalance"
            );
        }
        let mut running = self.running.lock().expect("running lock");
        for &partition in partitions {
            if running.contains_key(&partition) {
                continue;
            }
            let (stop, stop_rx) = tokio::sync::watch::channel(false);
            let settings = self.settings.clone();
            let catalog = self.catalog.clone();
            let definitions = self.definitions.clone();
            let confirmed = self.confirmed.clone();
            let runtime = self.runtime.clone();
            let build = move || {
                let _enter = runtime.enter();
                let log = loop {
                    match KafkaLog::connect(
                        &settings.kafka,
                        single_partition(),
                        Topic::Events,
                        partition,
                    ) {
                        Ok(log) => break log,
                        Err(e) => {
                            tracing::warn!(partition, error = %e, "cannot read the partition: retrying");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                };
                let log: Arc<dyn EventLog> = Arc::new(log);
                let ownership =
                    Ownership::new(catalog.clone(), settings.kafka.partitions, partition);
                let (consumer, _store) = Consumer::restore(
                    &settings
                        .checkpoint_dir
                        .join(format!("partition-{partition}")),
                    log,
                    (*catalog).clone(),
                    definitions,
                    settings.checkpoint_every,
                );
                consumer
                    .with_ownership(ownership)
                    .on_written(move |offset| {
                        let mut confirmed = confirmed.lock().expect("confirmed lock");
                        let o = confirmed.entry(partition).or_default();
                        *o = (*o).max(offset);
                    })
                    .with_writer(FactWriter::new(&settings.clickhouse).for_partition(partition))
            };
            match consumer::spawn(
                format!("aggregate-p{partition}"),
                build,
                self.runtime.clone(),
                stop_rx,
            ) {
                Ok(thread) => {
                    tracing::info!(partition, "partition assigned: aggregating");
                    running.insert(partition, Running { stop, thread });
                }
                Err(e) => tracing::error!(partition, error = %e, "cannot start a thread"),
            }
        }
    }

    fn stop(&self, partitions: &[u32]) {
        let stopping: Vec<(u32, Running)> = {
            let mut running = self.running.lock().expect("running lock");
            partitions
                .iter()
                .filter_map(|p| running.remove(p).map(|r| (*p, r)))
                .collect()
        };
        for (_, r) in &stopping {
            let _ = r.stop.send(true);
        }
        for (partition, r) in stopping {
            let _ = r.thread.join();
            tracing::info!(partition, "partition let go: written and checkpointed");
        }
    }

    fn all(&self) -> Vec<u32> {
        self.running
            .lock()
            .expect("running lock")
            .keys()
            .copied()
            .collect()
    }
}

/// Runs a member of the group until `shutdown` turns true, then stops every partition (each
/// writes and checkpoints) and leaves the group.
pub fn run(
    settings: GroupSettings,
    catalog: Catalog,
    definitions: Definitions,
    runtime: tokio::runtime::Handle,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), LogError> {
    let shares = Arc::new(Shares {
        settings: settings.clone(),
        catalog: Arc::new(catalog),
        definitions,
        runtime,
        running: Mutex::new(BTreeMap::new()),
        confirmed: Arc::new(Mutex::new(BTreeMap::new())),
    });
    let (on_assign, on_revoke) = (shares.clone(), shares.clone());
    let membership = Membership::join(
        &settings.kafka,
        &settings.group,
        Box::new(move |partitions| on_assign.start(partitions)),
        Box::new(move |partitions| on_revoke.stop(partitions)),
    )?;
    tracing::info!(group = %settings.group, "joined the aggregators' group");
    let confirm = |membership: &Membership| {
        let confirmed = std::mem::take(&mut *shares.confirmed.lock().expect("confirmed lock"));
        for (partition, offset) in confirmed {
            membership.confirm(partition, offset);
        }
    };
    while !*shutdown.borrow() {
        confirm(&membership);
        membership.poll(Duration::from_millis(100));
    }
    shares.stop(&shares.all());
    confirm(&membership);
    membership.poll(Duration::from_millis(100));
    membership.flush_commits();
    Ok(())
}
