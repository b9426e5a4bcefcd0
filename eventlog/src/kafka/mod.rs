//! The event log on Kafka. Ingest writes every delivery to three topics (`doraflow migrate`
//! creates them): the raw topic keeps it verbatim, the events topic carries its normalized
//! events on the partition of each catalog service they concern, and the dead-letter topic keeps
//! what could not be normalized. Aggregators share the events topic's partitions through a
//! consumer group ([`group`]); each partition is read as a log of its own ([`KafkaLog`]).

pub mod group;
mod log;
pub mod statistics;

use std::sync::Arc;
use std::time::Duration;

use doraflow_schemas::{LogRecord, topics};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

pub use log::{APPEND_TIMEOUT, KafkaLog};

use crate::LogError;

/// Where the log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port,...`
    pub brokers: String,
    /// Topic names start with this.
    pub topic_prefix: String,
    /// Partitions of each topic (as created by `doraflow migrate`).
    pub partitions: u32,
}

/// The topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Every authentic delivery, verbatim.
    Raw,
    /// Normalized events, keyed by service.
    Events,
    /// Deliveries that could not be normalized.
    DeadLetters,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 3] = [Topic::Raw, Topic::Events, Topic::DeadLetters];

    /// Its name under the settings' prefix.
    pub fn name(self, settings: &KafkaSettings) -> String {
        match self {
            Topic::Raw => topics::raw(&settings.topic_prefix),
            Topic::Events => topics::events(&settings.topic_prefix),
            Topic::DeadLetters => topics::dead_letters(&settings.topic_prefix),
        }
    }
}

/// Which partitions of the events topic a record with events goes to (one per catalog service it
/// concerns, deduplicated): the aggregator that owns a service must see all of its events.
pub type Router = Arc<dyn Fn(&LogRecord) -> Vec<u32> + Send + Sync>;

/// A router that puts everything on partition 0 (one partition, or tests).
pub fn single_partition() -> Router {
    Arc::new(|_| vec![0])
}

/// Creates the topics that do not exist (`doraflow migrate`), keeping every record
/// (`retention.ms=-1`: the log is the source of truth a replay starts from). Returns per topic
/// whether it was created now.
pub async fn create_topics(
    settings: &KafkaSettings,
    replication: i32,
) -> Result<Vec<(String, bool)>, LogError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()
        .map_err(unavailable)?;
    let names: Vec<String> = Topic::ALL.iter().map(|t| t.name(settings)).collect();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                settings.partitions as i32,
                TopicReplication::Fixed(replication),
            )
            .set("retention.ms", "-1")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(unavailable)?;
    let mut created = Vec::new();
    for (name, result) in names.into_iter().zip(results) {
        match result {
            Ok(_) => created.push((name, true)),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => created.push((name, false)),
            Err((name, code)) => {
                return Err(LogError::Unavailable(format!(
                    "cannot create topic {name}: {code}"
                )));
            }
        }
    }
    Ok(created)
}

fn unavailable(e: KafkaError) -> LogError {
    LogError::Unavailable(e.to_string())
}
