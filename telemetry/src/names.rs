//! Every metric name, in one place.

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
