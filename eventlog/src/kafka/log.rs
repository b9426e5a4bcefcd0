//! One Kafka-backed [`EventLog`]: appends go to the raw topic, and to the events topic (on the
//! partitions the router names) or the dead-letter topic, each by an idempotent producer with
//! `acks=all`, so an append resolves only once every in-sync replica has every copy. Reads follow
//! one topic partition, assigned directly (no consumer group: the aggregator's checkpointed
//! offset says where to start); its end is the partition's high watermark, polled in the
//! background so that a reader in another process sees new records.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doraflow_schemas::topics::partition_of;
use doraflow_schemas::{LogRecord, Outcome};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::statistics::{self, Reporting};
use super::{KafkaSettings, Router, Topic, unavailable};
use crate::record::{self, Body, Decoded};
use crate::{BoxFuture, EventLog, LogError, ReadRecord};

/// How long an append may wait for the broker before it is refused (PagerDuty, the most
/// impatient sender, waits 5 s for an answer).
pub const APPEND_TIMEOUT: Duration = Duration::from_millis(4_000);
/// How long the producer waits for more records to batch with one (`linger.ms`). Each delivery
/// writes two records (raw and events topics) and waits for both; under load 10 ms batches them
/// with the deliveries around it, which cut the CPU of `ingest` and of the broker per delivery by
/// about 40 % against 2 ms (docs/benchmarks.md, session 10) for up to 10 ms more on each 202.
/// 5 ms batched well only in some runs.
const LINGER_MS: &str = "10";
/// The longest a fetch waits at the broker. Some brokers (tansu) hold every fetch this long even
/// when records are there: at librdkafka's default (500 ms) a replay read 30,000 records/s
/// from tansu, at 10 ms 160,000 (docs/benchmarks.md). It also bounds the reader's delay.
const FETCH_WAIT_MS: &str = "10";
/// How often the high watermark is polled.
const WATERMARK_EVERY: Duration = Duration::from_millis(100);
/// How long a read waits for records that the watermark says are there (a fresh assignment
/// first connects and fetches).
const READ_WAIT: Duration = Duration::from_secs(10);
/// How long a read looks past the watermark for records the broker has not counted in it yet
/// (in all: records that keep arriving do not keep a read from returning).
const TAIL_PROBE: Duration = Duration::from_millis(20);

/// A reader's position, so that sequential reads do not seek.
struct Reader {
    consumer: BaseConsumer<Reporting>,
    next: Option<u64>,
}

/// The event log on Kafka: appends to the topics, reads from one partition of one of them.
pub struct KafkaLog {
    /// Replaced when librdkafka declares it fatally failed (an idempotent producer whose
    /// sequence the broker no longer accepts, e.g. fenced after a broker restart).
    producer: std::sync::RwLock<Arc<FutureProducer<Reporting>>>,
    brokers: String,
    reader: Mutex<Reader>,
    raw_topic: String,
    events_topic: String,
    dead_letters_topic: String,
    partitions: u32,
    router: Router,
    /// The topic and partition reads follow.
    topic: String,
    partition: i32,
    end: Arc<tokio::sync::watch::Sender<u64>>,
    available: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl KafkaLog {
    /// Connects to the brokers; the topics must exist (`doraflow migrate`). Appends place events
    /// by `router`; reads follow `partition` of `reads`, whose high watermark a thread of its own
    /// follows.
    pub fn connect(
        settings: &KafkaSettings,
        router: Router,
        reads: Topic,
        partition: u32,
    ) -> Result<Self, LogError> {
        let producer = Self::producer(&settings.brokers)?;
        let consumer: BaseConsumer<Reporting> = statistics::enable(&mut ClientConfig::new())
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", "doraflow-log-reader")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", FETCH_WAIT_MS)
            .create_with_context(Reporting("reader"))
            .map_err(unavailable)?;
        let topic = reads.name(settings);
        let partition = partition as i32;
        let (high, available) = match consumer.fetch_watermarks(
            &topic,
            partition,
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
        Self::follow_watermark(settings, (&topic, partition), &end, &available, &stop)?;
        Ok(Self {
            producer: std::sync::RwLock::new(Arc::new(producer)),
            brokers: settings.brokers.clone(),
            reader: Mutex::new(Reader {
                consumer,
                next: None,
            }),
            raw_topic: Topic::Raw.name(settings),
            events_topic: Topic::Events.name(settings),
            dead_letters_topic: Topic::DeadLetters.name(settings),
            partitions: settings.partitions.max(1),
            router,
            topic,
            partition,
            end,
            available,
            stop,
        })
    }

    /// An idempotent producer with `acks=all`. It waits up to [`LINGER_MS`] to batch records.
    fn producer(brokers: &str) -> Result<FutureProducer<Reporting>, LogError> {
        statistics::enable(&mut ClientConfig::new())
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", LINGER_MS)
            .set("message.timeout.ms", APPEND_TIMEOUT.as_millis().to_string())
            .create_with_context(Reporting("producer"))
            .map_err(unavailable)
    }

    /// Replaces the producer when it can never send again: librdkafka declared it fatally
    /// failed, or the broker refuses its producer identity (fenced, or a sequence it does not
    /// know, as after a broker restart lost the producer's state while a send was in flight).
    /// Records it had acknowledged stay acknowledged; those it had not were refused to their
    /// senders, who retry.
    fn renew_failed_producer(&self, failed: &Arc<FutureProducer<Reporting>>, error: &KafkaError) {
        let refused_identity = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::ProducerFenced
                    | RDKafkaErrorCode::InvalidProducerEpoch
                    | RDKafkaErrorCode::InvalidProducerIdMapping
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
            )
        );
        let fatal = failed.client().fatal_error();
        if !refused_identity && fatal.is_none() {
            return;
        }
        let mut current = self.producer.write().expect("producer lock");
        if !Arc::ptr_eq(&current, failed) {
            return;
        }
        match Self::producer(&self.brokers) {
            Ok(fresh) => {
                tracing::warn!(%error, ?fatal, "the Kafka producer can no longer send: replaced by a new one");
                *current = Arc::new(fresh);
            }
            Err(e) => tracing::error!(error = %e, "cannot replace the failed Kafka producer"),
        }
    }

    /// Polls the high watermark on a thread of its own, publishing it as the durable end and
    /// the broker's reachability as availability.
    fn follow_watermark(
        settings: &KafkaSettings,
        (topic, partition): (&str, i32),
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
                        partition,
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

    /// The copies of a record to produce: (topic, partition, key, frame).
    fn copies(&self, record: &LogRecord) -> Vec<(&str, i32, String, Vec<u8>)> {
        let key = &record.delivery;
        let spread = partition_of(key, self.partitions) as i32;
        let mut copies = vec![(
            self.raw_topic.as_str(),
            spread,
            key.clone(),
            record::encode(record),
        )];
        match &record.outcome {
            Outcome::Events { .. } => {
                // The aggregators need the events, not the body they came from.
                let events = LogRecord {
                    headers: Vec::new(),
                    body: bytes::Bytes::new(),
                    ..record.clone()
                };
                let frame = record::encode(&events);
                let mut partitions = (self.router)(record);
                partitions.sort_unstable();
                partitions.dedup();
                for p in partitions {
                    let p = (p % self.partitions) as i32;
                    copies.push((self.events_topic.as_str(), p, key.clone(), frame.clone()));
                }
            }
            Outcome::DeadLetter { .. } => copies.push((
                self.dead_letters_topic.as_str(),
                spread,
                key.clone(),
                copies[0].3.clone(),
            )),
            Outcome::Ignored { .. } => {}
        }
        copies
    }

    /// Notes that the read partition holds `offset`.
    fn extend_end(&self, offset: u64) {
        self.end.send_if_modified(|e| {
            let grown = offset + 1 > *e;
            if grown {
                *e = offset + 1;
            }
            grown
        });
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl EventLog for KafkaLog {
    fn append(&self, record: &LogRecord) -> BoxFuture<'_, Result<u64, LogError>> {
        let copies = self.copies(record);
        let producer = self.producer.read().expect("producer lock").clone();
        Box::pin(crate::timed_append("kafka", async move {
            // Every copy is sent at once; the delivery is durable once all are acknowledged.
            // librdkafka's own timeout does not bound every path (a broker that dies with the
            // message in flight waits for the reconnect backoff), so the wait is bounded here too.
            // A record refused this way may still land later: the sender retries and the
            // aggregator drops the duplicate by its delivery key.
            let sends = copies.iter().map(|(topic, partition, key, frame)| {
                let send = producer.send(
                    FutureRecord::to(topic)
                        .partition(*partition)
                        .key(key)
                        .payload(frame),
                    Timeout::After(APPEND_TIMEOUT),
                );
                async move { (*topic, *partition, send.await) }
            });
            let sent =
                match tokio::time::timeout(APPEND_TIMEOUT, futures_util::future::join_all(sends))
                    .await
                {
                    Ok(sent) => sent,
                    Err(_) => {
                        self.available.store(false, Ordering::Relaxed);
                        return Err(LogError::Unavailable(format!(
                            "the broker did not acknowledge within {} ms",
                            APPEND_TIMEOUT.as_millis()
                        )));
                    }
                };
            let mut raw_offset = 0;
            for (topic, partition, result) in sent {
                match result {
                    Ok(delivery) => {
                        let offset = delivery.offset.max(0) as u64;
                        if topic == self.raw_topic {
                            raw_offset = offset;
                        }
                        if topic == self.topic && partition == self.partition {
                            self.extend_end(offset);
                        }
                    }
                    Err((e, _)) => {
                        self.available.store(false, Ordering::Relaxed);
                        self.renew_failed_producer(&producer, &e);
                        return Err(unavailable(e));
                    }
                }
            }
            self.available.store(true, Ordering::Relaxed);
            Ok(raw_offset)
        }))
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
                .add_partition_offset(&self.topic, self.partition, Offset::Offset(offset as i64))
                .map_err(|e| LogError::Read(e.to_string()))?;
            reader
                .consumer
                .assign(&assignment)
                .map_err(|e| LogError::Read(e.to_string()))?;
            reader.next = Some(offset);
        }
        let mut records = Vec::new();
        let deadline = std::time::Instant::now() + READ_WAIT;
        let mut tail_deadline = None;
        while records.len() < max {
            let waiting_for_known = records.len() < known;
            let wait = if waiting_for_known {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                left.min(Duration::from_millis(100))
            } else {
                // Past the known records the tail is probed for TAIL_PROBE in all: under a
                // steady trickle a read would otherwise only return once `max` records came,
                // holding back the facts of those it has (minutes at a low rate).
                let tail_deadline =
                    *tail_deadline.get_or_insert_with(|| std::time::Instant::now() + TAIL_PROBE);
                let left = tail_deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                left
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
            self.extend_end(last.next_offset - 1);
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
