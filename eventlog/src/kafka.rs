//! The event log on Kafka: one topic partition holding the same frames as the embedded log
//! (`record::encode`), written by an idempotent producer with `acks=all`, so an append resolves
//! only once every in-sync replica has the record. Offsets are Kafka's; a reader is assigned the
//! partition directly (no consumer group), which is what the aggregator's checkpointed offset
//! needs. The log's end is the partition's high watermark, polled in the background so that a
//! reader in another process sees new records.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doraflow_schemas::LogRecord;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::record::{self, Body, Decoded};
use crate::{BoxFuture, EventLog, LogError, ReadRecord};

/// The partition the log lives in.
const PARTITION: i32 = 0;
/// How long an append may wait for the broker before it is refused (PagerDuty, the most
/// impatient sender, waits 5 s for an answer).
pub const APPEND_TIMEOUT: Duration = Duration::from_millis(4_000);
/// How often the high watermark is polled.
const WATERMARK_EVERY: Duration = Duration::from_millis(100);
/// How long a read waits for records that the watermark says are there (a fresh assignment
/// first connects and fetches).
const READ_WAIT: Duration = Duration::from_secs(10);
/// How long a read looks past the watermark for records the broker has not counted in it yet.
const TAIL_PROBE: Duration = Duration::from_millis(20);

/// Where the log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port,...`
    pub brokers: String,
    /// Topic names start with this (`<prefix>.deliveries`).
    pub topic_prefix: String,
}

impl KafkaSettings {
    /// The topic of authentic deliveries with their normalized events or dead-letter reasons.
    pub fn deliveries_topic(&self) -> String {
        format!("{}.deliveries", self.topic_prefix)
    }
}

/// Creates the log's topic if it does not exist (`doraflow migrate`). Returns true when it was
/// created now.
pub async fn create_topics(settings: &KafkaSettings, replication: i32) -> Result<bool, LogError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()
        .map_err(unavailable)?;
    let topic = settings.deliveries_topic();
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(replication));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &options)
        .await
        .map_err(unavailable)?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((name, code))) => Err(LogError::Unavailable(format!(
            "cannot create topic {name}: {code}"
        ))),
        None => Err(LogError::Unavailable("no answer to create_topics".into())),
    }
}

fn unavailable(e: KafkaError) -> LogError {
    LogError::Unavailable(e.to_string())
}

/// A reader's position, so that sequential reads do not seek.
struct Reader {
    consumer: BaseConsumer,
    next: Option<u64>,
}

/// The event log on a Kafka partition.
pub struct KafkaLog {
    producer: FutureProducer,
    reader: Mutex<Reader>,
    topic: String,
    end: Arc<tokio::sync::watch::Sender<u64>>,
    available: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl KafkaLog {
    /// Connects to the brokers; the topic must exist (`doraflow migrate`). Starts the thread that
    /// follows the high watermark.
    pub fn connect(settings: &KafkaSettings) -> Result<Self, LogError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", APPEND_TIMEOUT.as_millis().to_string())
            .create()
            .map_err(unavailable)?;
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", "doraflow-log-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(unavailable)?;
        let topic = settings.deliveries_topic();
        let (high, available) = match consumer.fetch_watermarks(
            &topic,
            PARTITION,
            Timeout::After(Duration::from_secs(3)),
        ) {
            Ok((_, high)) => (high.max(0) as u64, true),
            Err(e) => {
                tracing::warn!(error = %e, topic, "Kafka unreachable at start: retrying in the background");
                (0, false)
            }
        };
        let end = Arc::new(tokio::sync::watch::Sender::new(high));
        let available = Arc::new(AtomicBool::new(available));
        let stop = Arc::new(AtomicBool::new(false));
        Self::follow_watermark(settings, &topic, &end, &available, &stop)?;
        Ok(Self {
            producer,
            reader: Mutex::new(Reader {
                consumer,
                next: None,
            }),
            topic,
            end,
            available,
            stop,
        })
    }

    /// Polls the high watermark on a thread of its own, publishing it as the durable end and
    /// the broker's reachability as availability.
    fn follow_watermark(
        settings: &KafkaSettings,
        topic: &str,
        end: &Arc<tokio::sync::watch::Sender<u64>>,
        available: &Arc<AtomicBool>,
        stop: &Arc<AtomicBool>,
    ) -> Result<(), LogError> {
        let watcher: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", "doraflow-log-watermark")
            .create()
            .map_err(unavailable)?;
        let (topic, end, available, stop) = (
            topic.to_string(),
            end.clone(),
            available.clone(),
            stop.clone(),
        );
        std::thread::Builder::new()
            .name("kafka-watermark".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match watcher.fetch_watermarks(
                        &topic,
                        PARTITION,
                        Timeout::After(Duration::from_secs(2)),
                    ) {
                        Ok((_, high)) => {
                            available.store(true, Ordering::Relaxed);
                            end.send_if_modified(|e| {
                                let grown = (high.max(0) as u64) > *e;
                                if grown {
                                    *e = high as u64;
                                }
                                grown
                            });
                        }
                        Err(e) => {
                            if available.swap(false, Ordering::Relaxed) {
                                tracing::warn!(error = %e, "Kafka unreachable");
                            }
                        }
                    }
                    std::thread::sleep(WATERMARK_EVERY);
                }
            })
            .map_err(|e| LogError::Unavailable(format!("cannot start a thread: {e}")))?;
        Ok(())
    }

    /// The key that keeps one delivery source's records together.
    fn key(record: &LogRecord) -> &str {
        &record.source
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl EventLog for KafkaLog {
    fn append(&self, record: &LogRecord) -> BoxFuture<'_, Result<u64, LogError>> {
        let frame = record::encode(record);
        let key = Self::key(record).to_string();
        Box::pin(async move {
            // librdkafka's own timeout does not bound every path (a broker that dies with the
            // message in flight waits for the reconnect backoff), so the wait is bounded here too.
            // A record refused this way may still land later: the sender retries and the
            // aggregator drops the duplicate by its delivery key.
            let send = self.producer.send(
                FutureRecord::to(&self.topic)
                    .partition(PARTITION)
                    .key(&key)
                    .payload(&frame),
                Timeout::After(APPEND_TIMEOUT),
            );
            let sent = match tokio::time::timeout(APPEND_TIMEOUT, send).await {
                Ok(sent) => sent,
                Err(_) => {
                    self.available.store(false, Ordering::Relaxed);
                    return Err(LogError::Unavailable(format!(
                        "the broker did not acknowledge within {} ms",
                        APPEND_TIMEOUT.as_millis()
                    )));
                }
            };
            match sent {
                Ok(delivery) => {
                    self.available.store(true, Ordering::Relaxed);
                    let offset = delivery.offset.max(0) as u64;
                    self.end.send_if_modified(|e| {
                        let grown = offset + 1 > *e;
                        if grown {
                            *e = offset + 1;
                        }
                        grown
                    });
                    Ok(offset)
                }
                Err((e, _)) => {
                    self.available.store(false, Ordering::Relaxed);
                    Err(unavailable(e))
                }
            }
        })
    }

    fn read_from(&self, offset: u64, max: usize, body: Body) -> Result<Vec<ReadRecord>, LogError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        // The high watermark says how many records surely exist; a broker may report it late
        // (tansu was seen acknowledging offsets past the watermark it then reported), so the
        // tail past it is probed briefly too, and what is read moves the end forward.
        let known = self.end.borrow().saturating_sub(offset) as usize;
        let mut reader = self.reader.lock().expect("reader lock");
        if reader.next != Some(offset) {
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&self.topic, PARTITION, Offset::Offset(offset as i64))
                .map_err(|e| LogError::Read(e.to_string()))?;
            reader
                .consumer
                .assign(&assignment)
                .map_err(|e| LogError::Read(e.to_string()))?;
            reader.next = Some(offset);
        }
        let mut records = Vec::new();
        let deadline = std::time::Instant::now() + READ_WAIT;
        while records.len() < max {
            let waiting_for_known = records.len() < known;
            let wait = if waiting_for_known {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                left.min(Duration::from_millis(100))
            } else {
                TAIL_PROBE
            };
            let Some(message) = reader.consumer.poll(wait) else {
                if waiting_for_known {
                    continue;
                }
                break;
            };
            let message = message.map_err(|e| LogError::Read(e.to_string()))?;
            let at = message.offset().max(0) as u64;
            let payload = message.payload().unwrap_or_default();
            let record = match record::decode(payload, body) {
                Decoded::Frame(_, record) => record,
                Decoded::Incomplete => {
                    return Err(LogError::Read(format!("offset {at}: a truncated record")));
                }
                Decoded::Corrupt(why) => {
                    return Err(LogError::Read(format!("offset {at}: {why}")));
                }
            };
            reader.next = Some(at + 1);
            records.push(ReadRecord {
                next_offset: at + 1,
                record: Arc::new(record),
            });
        }
        if let Some(last) = records.last() {
            let next = last.next_offset;
            self.end.send_if_modified(|e| {
                let grown = next > *e;
                if grown {
                    *e = next;
                }
                grown
            });
        }
        Ok(records)
    }

    fn durable_end(&self) -> tokio::sync::watch::Receiver<u64> {
        self.end.subscribe()
    }

    fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }
}
