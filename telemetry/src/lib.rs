//! doraflow's own health for Prometheus (`/metrics`, the Prometheus text exposition): one
//! registry per process ([`global`]), with every metric name defined in [`names`]
//! (architecture.md: `doraflow_<area>_<noun>_<unit>[_total]`, labels bounded: never a repository
//! or service name). Each component records into its part of [`Telemetry`]; librdkafka's
//! statistics ([`kafka::KafkaStatistics`]) and the process ([`process::ProcessCollector`]) are
//! read on each scrape.

pub mod kafka;
pub mod names;
pub mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Latency buckets: 100 µs to about 13 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Group sizes: 1 to 4,096 records, doubling.
fn group_sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 13))
}

/// Registers a metric and hands it back (metrics are shared handles: the registry reads the same
/// values the components write).
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// A family of latency histograms.
pub type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

/// Labels of a delivery answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The source (`github`, ...).
    pub source: &'static str,
    /// The outcome (`accepted`, `ignored`, `dead_letter`, `pong`) or the error code.
    pub status: &'static str,
}

/// Labels naming a source.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The source.
    pub source: &'static str,
}

/// Labels naming an implementation (`embedded`, `kafka`, `clickhouse`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// The implementation.
    pub backend: &'static str,
}

/// Labels of an HTTP request answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's pattern (`/api/v1/dora`), or `unmatched`.
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// What the webhook receiver records.
pub struct IngestMetrics {
    /// Deliveries answered.
    pub deliveries: Family<DeliveryLabels, Counter>,
    /// Signature or token failures.
    pub signature_failures: Family<SourceLabels, Counter>,
    /// Body bytes received.
    pub received_bytes: Family<SourceLabels, Counter>,
    /// Arrival to answer.
    pub receive_duration: Latencies<SourceLabels>,
}

/// What the event logs record.
pub struct EventLogMetrics {
    /// Append until durable.
    pub append_duration: Latencies<BackendLabels>,
    /// One fsync of the embedded log.
    pub fsync_duration: Histogram,
    /// Records per fsync.
    pub group_records: Histogram,
}

/// What the aggregator records.
pub struct AggregatorMetrics {
    /// Records applied.
    pub records: Counter,
    /// Embedded log bytes not applied yet.
    pub lag_bytes: Gauge,
    /// Late corrections.
    pub late_corrections: Counter,
    /// Duplicates ignored.
    pub duplicates: Counter,
}

/// What the stores record.
pub struct StoreMetrics {
    /// One publish of facts.
    pub write_duration: Latencies<BackendLabels>,
}

/// The process's metrics.
pub struct Telemetry {
    registry: Registry,
    /// The latest librdkafka statistics of each Kafka client.
    pub kafka: Arc<kafka::KafkaStatistics>,
    /// The webhook receiver.
    pub ingest: IngestMetrics,
    /// The event logs.
    pub eventlog: EventLogMetrics,
    /// The aggregator.
    pub aggregator: AggregatorMetrics,
    /// The stores.
    pub store: StoreMetrics,
    /// HTTP requests by route.
    pub http_duration: Latencies<RouteLabels>,
}

static GLOBAL: LazyLock<Telemetry> = LazyLock::new(Telemetry::new);

/// Whether components record (`server.instrumentation`).
static RECORDING: AtomicBool = AtomicBool::new(true);

/// The process's one registry, which every component records into.
pub fn global() -> &'static Telemetry {
    &GLOBAL
}

/// The registry to record into, or `None` when recording is off (`server.instrumentation =
/// false`, which exists to measure what recording costs): every recording site goes through
/// this.
pub fn recording() -> Option<&'static Telemetry> {
    RECORDING.load(Ordering::Relaxed).then(global)
}

/// Turns recording on or off for the process.
pub fn set_recording(on: bool) {
    RECORDING.store(on, Ordering::Relaxed);
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A registry with every metric and collector registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let kafka = Arc::new(kafka::KafkaStatistics::default());
        registry.register_collector(Box::new(kafka.clone()));
        registry.register_collector(Box::new(process::ProcessCollector));

        let r = &mut registry;
        let ingest = IngestMetrics {
            deliveries: registered(
                r,
                names::INGEST_DELIVERIES,
                "Webhook deliveries answered, by source and status",
                Family::default(),
            ),
            signature_failures: registered(
                r,
                names::INGEST_SIGNATURE_FAILURES,
                "Deliveries refused for a missing or wrong signature or token",
                Family::default(),
            ),
            received_bytes: registered(
                r,
                names::INGEST_RECEIVED,
                "Webhook body bytes received",
                Family::default(),
            ),
            receive_duration: registered(
                r,
                names::INGEST_RECEIVE_DURATION,
                "Time from a delivery's arrival to its answer",
                Family::new_with_constructor(latency),
            ),
        };
        let eventlog = EventLogMetrics {
            append_duration: registered(
                r,
                names::EVENTLOG_APPEND_DURATION,
                "Time to append a delivery until it is durable",
                Family::new_with_constructor(latency),
            ),
            fsync_duration: registered(
                r,
                names::EVENTLOG_FSYNC_DURATION,
                "Time of one fsync of the embedded log",
                latency(),
            ),
            group_records: registered(
                r,
                names::EVENTLOG_GROUP_RECORDS,
                "Records made durable by one fsync of the embedded log",
                group_sizes(),
            ),
        };
        let aggregator = AggregatorMetrics {
            records: registered(
                r,
                names::AGGREGATOR_RECORDS,
                "Event log records the aggregator applied",
                Counter::default(),
            ),
            lag_bytes: registered(
                r,
                names::AGGREGATOR_LAG,
                "Bytes of the embedded event log not yet applied",
                Gauge::default(),
            ),
            late_corrections: registered(
                r,
                names::AGGREGATOR_LATE_CORRECTIONS,
                "Facts rewritten after first being written",
                Counter::default(),
            ),
            duplicates: registered(
                r,
                names::AGGREGATOR_DUPLICATES,
                "Duplicate deliveries the aggregator ignored",
                Counter::default(),
            ),
        };
        let store = StoreMetrics {
            write_duration: registered(
                r,
                names::STORE_WRITE_DURATION,
                "Time to publish a batch of facts to the store",
                Family::new_with_constructor(latency),
            ),
        };
        let http_duration: Latencies<RouteLabels> = registered(
            r,
            names::HTTP_REQUEST_DURATION,
            "Time to answer an HTTP request, by route and status",
            Family::new_with_constructor(latency),
        );

        Self {
            registry,
            kafka,
            ingest,
            eventlog,
            aggregator,
            store,
            http_duration,
        }
    }

    /// The Prometheus text exposition (format 0.0.4, which every scraper and `promtool` read).
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The `/metrics` answer.
    pub fn response(&self) -> Response {
        (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            self.render(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_under_their_names() {
        let t = Telemetry::new();
        t.ingest
            .deliveries
            .get_or_create(&DeliveryLabels {
                source: "github",
                status: "accepted",
            })
            .inc_by(3);
        t.http_duration
            .get_or_create(&RouteLabels {
                route: "/api/v1/dora".into(),
                status: 200,
            })
            .observe(0.002);
        let text = t.render();
        assert!(
            text.contains(
                "doraflow_ingest_deliveries_total{source=\"github\",status=\"accepted\"} 3"
            ),
            "{text}"
        );
        assert!(text.contains(
            "doraflow_http_request_duration_seconds_count{route=\"/api/v1/dora\",status=\"200\"} 1"
        ));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
