//! librdkafka's statistics: when a sink is registered (once per process, before the Kafka
//! clients are created), every client emits its statistics to it every few seconds, named by
//! its role (`producer`, `reader`, `group`). The binary turns them into Prometheus metrics.

use std::sync::{Arc, OnceLock};

use rdkafka::ClientContext;
use rdkafka::Statistics;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;

/// Receives a client's statistics: its role and the snapshot.
pub type StatisticsSink = Arc<dyn Fn(&'static str, Statistics) + Send + Sync>;

/// How often clients report.
pub const INTERVAL_MS: &str = "5000";

static SINK: OnceLock<StatisticsSink> = OnceLock::new();

/// Registers the process's sink; false when one was registered already.
pub fn report_to(sink: StatisticsSink) -> bool {
    SINK.set(sink).is_ok()
}

/// Asks a client for statistics when a sink is registered.
pub(crate) fn enable(config: &mut ClientConfig) -> &mut ClientConfig {
    if SINK.get().is_some() {
        config.set("statistics.interval.ms", INTERVAL_MS);
    }
    config
}

/// Hands a snapshot to the sink.
pub(crate) fn report(role: &'static str, statistics: Statistics) {
    if let Some(sink) = SINK.get() {
        sink(role, statistics);
    }
}

/// The context of the log's clients: statistics to the sink, librdkafka's logs to `tracing`.
pub(crate) struct Reporting(pub &'static str);

impl ClientContext for Reporting {
    fn stats(&self, statistics: Statistics) {
        report(self.0, statistics);
    }
}

impl ConsumerContext for Reporting {}
