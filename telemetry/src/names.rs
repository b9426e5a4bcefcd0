//! Every metric name, in one place (architecture.md: `doraflow_<area>_<noun>_<unit>[_total]`).
//! Counters are registered without `_total`: the client library appends it on exposition, so
//! `INGEST_DELIVERIES` is scraped as `doraflow_ingest_deliveries_total`.

/// Deliveries answered, by `source` and `status` (the outcome, or the error code).
pub const INGEST_DELIVERIES: &str = "doraflow_ingest_deliveries";
/// Deliveries refused for a missing or wrong signature or token, by `source`.
pub const INGEST_SIGNATURE_FAILURES: &str = "doraflow_ingest_signature_failures";
/// Body bytes received, by `source`.
pub const INGEST_RECEIVED: &str = "doraflow_ingest_received_bytes";
/// Time from a delivery's arrival to its answer (verify, normalize, durable write), by `source`.
pub const INGEST_RECEIVE_DURATION: &str = "doraflow_ingest_receive_duration_seconds";

/// Time to append a delivery to the event log until it is durable, by `log` (`embedded`, `kafka`).
pub const EVENTLOG_APPEND_DURATION: &str = "doraflow_eventlog_append_duration_seconds";
/// Time of one fsync of the embedded log (one per group of appends).
pub const EVENTLOG_FSYNC_DURATION: &str = "doraflow_eventlog_fsync_duration_seconds";
/// Records made durable by one fsync of the embedded log (the group commit's size).
pub const EVENTLOG_GROUP_RECORDS: &str = "doraflow_eventlog_group_records";

/// Records the aggregator applied (each a delivery's events or a dead letter).
pub const AGGREGATOR_RECORDS: &str = "doraflow_aggregator_records";
/// Bytes of the embedded log not yet applied by the aggregator (Kafka: see
/// `doraflow_kafka_consumer_lag_records`).
pub const AGGREGATOR_LAG: &str = "doraflow_aggregator_lag_bytes";
/// Facts rewritten after first being written (late data).
pub const AGGREGATOR_LATE_CORRECTIONS: &str = "doraflow_aggregator_late_corrections";
/// Duplicate deliveries the aggregator ignored.
pub const AGGREGATOR_DUPLICATES: &str = "doraflow_aggregator_duplicates_ignored";

/// Time to publish a batch of facts to the store (embedded, or a ClickHouse insert), by `store`.
pub const STORE_WRITE_DURATION: &str = "doraflow_store_write_duration_seconds";

/// Time to answer an HTTP request, by `route` (the route's pattern) and `status` (the code).
pub const HTTP_REQUEST_DURATION: &str = "doraflow_http_request_duration_seconds";

/// Messages waiting in a Kafka client's queues.
pub const KAFKA_MESSAGES_QUEUED: &str = "doraflow_kafka_messages_queued";
/// Messages a Kafka client sent to brokers.
pub const KAFKA_MESSAGES_SENT: &str = "doraflow_kafka_messages_sent";
/// Messages a Kafka client received from brokers.
pub const KAFKA_MESSAGES_RECEIVED: &str = "doraflow_kafka_messages_received";
/// Bytes a Kafka client sent to brokers.
pub const KAFKA_SENT: &str = "doraflow_kafka_sent_bytes";
/// Bytes a Kafka client received from brokers.
pub const KAFKA_RECEIVED: &str = "doraflow_kafka_received_bytes";
/// Whether a broker connection is up.
pub const KAFKA_BROKER_UP: &str = "doraflow_kafka_broker_up";
/// Average round-trip time to a broker over the last statistics window.
pub const KAFKA_BROKER_RTT: &str = "doraflow_kafka_broker_rtt_seconds";
/// Send and receive errors on a broker connection.
pub const KAFKA_BROKER_ERRORS: &str = "doraflow_kafka_broker_errors";
/// Requests to a broker that timed out.
pub const KAFKA_BROKER_TIMEOUTS: &str = "doraflow_kafka_broker_request_timeouts";
/// Records between a reader's position and a partition's high watermark.
pub const KAFKA_CONSUMER_LAG: &str = "doraflow_kafka_consumer_lag_records";

/// Process metrics, under the names every Prometheus client library uses for them.
pub const PROCESS_CPU: &str = "process_cpu_seconds";
/// Resident memory.
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// Virtual memory.
pub const PROCESS_VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
/// Open file descriptors.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// The limit of open file descriptors.
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Start time since the Unix epoch.
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";
/// Operating-system threads.
pub const PROCESS_THREADS: &str = "process_threads";
