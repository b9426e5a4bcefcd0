//! Fills the Kafka topics with a year of activity, as `doraflow ingest` would have written it
//! (normalized by the real ingest code, each record on the raw topic and on the events-topic
//! partition of its service), so that `doraflow aggregate` can be timed alone on a full log.

use std::sync::Arc;
use std::time::Instant;

use doraflow_aggregator::Catalog;
use doraflow_aggregator::partitioning::router;
use doraflow_eventlog::EventLog;
use doraflow_eventlog::kafka::{KafkaLog, KafkaSettings, Topic};

use crate::activity::Request;

/// Where the topics are (command-line flags).
#[derive(clap::Args)]
pub struct Topics {
    #[arg(long)]
    brokers: String,
    #[arg(long)]
    prefix: String,
    #[arg(long, default_value_t = 6)]
    partitions: u32,
}

impl Topics {
    /// As the event log takes them.
    pub fn settings(self) -> KafkaSettings {
        KafkaSettings {
            brokers: self.brokers,
            topic_prefix: self.prefix,
            partitions: self.partitions,
        }
    }
}

/// Appends the requests' records to the topics, `in_flight` at a time, and prints the totals.
pub fn run(
    settings: &KafkaSettings,
    requests: Vec<Request>,
    in_flight: usize,
) -> anyhow::Result<()> {
    let (records, events) = crate::engine::normalize(&requests)?;
    // The aggregator's catalog in the benchmark is empty: every repository is its own service.
    let route = router(Arc::new(Catalog::default()), settings.partitions);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _enter = runtime.enter();
    let log = KafkaLog::connect(settings, route, Topic::Raw, 0)?;
    let started = Instant::now();
    runtime.block_on(async {
        for chunk in records.chunks(in_flight) {
            let appends = chunk.iter().map(|r| log.append(r));
            for result in futures_util::future::join_all(appends).await {
                result?;
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "produced {} records ({events} normalized events) in {seconds:.1} s ({:.0} records/s)",
        records.len(),
        records.len() as f64 / seconds
    );
    Ok(())
}

/// Reads a whole events-topic partition (records decoded, bodies skipped) and prints the rate:
/// the baseline of the aggregator benchmark.
pub fn read(settings: &KafkaSettings, partition: u32) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let _enter = runtime.enter();
    let log = KafkaLog::connect(
        settings,
        doraflow_eventlog::kafka::single_partition(),
        Topic::Events,
        partition,
    )?;
    let end = *log.durable_end().borrow();
    let started = Instant::now();
    let (mut offset, mut records) = (0, 0usize);
    while offset < end {
        let batch = log.read_from(offset, 5_000, doraflow_eventlog::Body::Skip)?;
        let Some(last) = batch.last() else { break };
        offset = last.next_offset;
        records += batch.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "read {records} records of partition {partition} in {seconds:.1} s ({:.0} records/s)",
        records as f64 / seconds
    );
    Ok(())
}
