//! Membership of the aggregators' consumer group. The broker's group coordinator shares the
//! events topic's partitions among the members; a member is told of each change (on the thread
//! that polls, so a revoked partition is let go before anyone else gets it), reads each of its
//! partitions as a [`super::KafkaLog`] of its own, and commits per partition the offset up to
//! which the store has confirmed the facts. The group consumer itself fetches nothing: its
//! partitions are paused as soon as they are assigned.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaSettings, Topic, unavailable};
use crate::LogError;

/// How long the group waits for a silent member before sharing its partitions out again.
pub const SESSION_TIMEOUT_MS: &str = "10000";

/// The longest a member may go without polling (and how long a rebalance waits for members).
pub const MAX_POLL_INTERVAL_MS: &str = "20000";

/// What the member is told when its share changes.
pub type OnChange = Box<dyn Fn(&[u32]) + Send + Sync>;

struct GroupContext {
    on_assign: OnChange,
    on_revoke: OnChange,
}

fn partitions(list: &TopicPartitionList) -> Vec<u32> {
    list.elements()
        .iter()
        .map(|e| e.partition().max(0) as u32)
        .collect()
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        super::statistics::report("group", statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            (self.on_revoke)(&partitions(list));
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            // The partitions are read by logs of their own.
            if let Err(e) = consumer.pause(list) {
                tracing::warn!(error = %e, "cannot pause the group's partitions");
            }
            (self.on_assign)(&partitions(list));
        }
    }
}

/// A member of the aggregators' group.
pub struct Membership {
    consumer: BaseConsumer<GroupContext>,
    topic: String,
    /// Offsets confirmed since the last commit, per partition.
    confirmed: Mutex<BTreeMap<u32, u64>>,
}

impl Membership {
    /// Joins `group` on the events topic. `on_assign` and `on_revoke` run inside [`Self::poll`].
    pub fn join(
        settings: &KafkaSettings,
        group: &str,
        on_assign: OnChange,
        on_revoke: OnChange,
    ) -> Result<Self, LogError> {
        let topic = Topic::Events.name(settings);
        let consumer: BaseConsumer<GroupContext> =
            super::statistics::enable(&mut ClientConfig::new())
                .set("bootstrap.servers", &settings.brokers)
                .set("group.id", group)
                .set("enable.auto.commit", "false")
                .set("enable.partition.eof", "false")
                .set("auto.offset.reset", "earliest")
                // A member that dies without leaving (kill -9, a lost host) gives its partitions
                // back after this long.
                .set("session.timeout.ms", SESSION_TIMEOUT_MS)
                .set("heartbeat.interval.ms", "1000")
                // Also the rebalance timeout: how long a rebalance waits for members to rejoin
                // (some brokers drop a dead member only then). This member polls every 100 ms.
                .set("max.poll.interval.ms", MAX_POLL_INTERVAL_MS)
                .create_with_context(GroupContext {
                    on_assign,
                    on_revoke,
                })
                .map_err(unavailable)?;
        consumer.subscribe(&[&topic]).map_err(unavailable)?;
        Ok(Self {
            consumer,
            topic,
            confirmed: Mutex::new(BTreeMap::new()),
        })
    }

    /// Serves the group (heartbeats, rebalances) for up to `timeout`, and commits the offsets
    /// confirmed since the last call.
    pub fn poll(&self, timeout: Duration) {
        // Paused partitions deliver nothing; a message fetched before the pause is dropped
        // here (its partition's log reads it).
        if let Some(Err(e)) = self.consumer.poll(timeout) {
            tracing::warn!(error = %e, "consumer group");
        }
        self.commit_confirmed(CommitMode::Async);
    }

    /// Commits what is confirmed now and waits for the broker's answer (before leaving).
    pub fn flush_commits(&self) {
        self.commit_confirmed(CommitMode::Sync);
    }

    fn commit_confirmed(&self, mode: CommitMode) {
        let confirmed = std::mem::take(&mut *self.confirmed.lock().expect("commit lock"));
        if confirmed.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in &confirmed {
            if let Err(e) = list.add_partition_offset(
                &self.topic,
                *partition as i32,
                Offset::Offset(*offset as i64),
            ) {
                tracing::warn!(error = %e, "cannot commit");
            }
        }
        if let Err(e) = self.consumer.commit(&list, mode) {
            tracing::warn!(error = %e, "commit failed: retried with the next confirmation");
            let mut pending = self.confirmed.lock().expect("commit lock");
            for (partition, offset) in confirmed {
                let o = pending.entry(partition).or_insert(offset);
                *o = (*o).max(offset);
            }
        }
    }

    /// Records that the facts of `partition` up to `offset` (exclusive) are in the store: the
    /// next poll commits it.
    pub fn confirm(&self, partition: u32, offset: u64) {
        let mut pending = self.confirmed.lock().expect("commit lock");
        let o = pending.entry(partition).or_insert(offset);
        *o = (*o).max(offset);
    }

    /// The offsets the group has committed for `partitions` (`None`: nothing committed yet).
    pub fn committed(&self, partitions: &[u32]) -> Result<Vec<Option<u64>>, LogError> {
        let mut list = TopicPartitionList::new();
        for p in partitions {
            list.add_partition(&self.topic, *p as i32);
        }
        let committed = self
            .consumer
            .committed_offsets(list, Duration::from_secs(5))
            .map_err(unavailable)?;
        Ok(partitions
            .iter()
            .map(|p| {
                committed
                    .find_partition(&self.topic, *p as i32)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o.max(0) as u64),
                        _ => None,
                    })
            })
            .collect())
    }
}
