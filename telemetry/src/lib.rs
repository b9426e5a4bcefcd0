//! doraflow's own health for Prometheus (`/metrics`, the Prometheus text exposition): one [`Telemetry`] per
//! process holding the registry, with every metric name defined in [`names`] (architecture.md:
//! `doraflow_<area>_<noun>_<unit>[_total]`, labels bounded: never a repository or service name).
//! Today it carries librdkafka's statistics ([`kafka::KafkaStatistics`]).

pub mod kafka;
pub mod names;

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;

/// The process's metrics.
pub struct Telemetry {
    registry: Registry,
    /// The latest librdkafka statistics of each Kafka client.
    pub kafka: Arc<kafka::KafkaStatistics>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A registry with every collector registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let kafka = Arc::new(kafka::KafkaStatistics::default());
        registry.register_collector(Box::new(kafka.clone()));
        Self { registry, kafka }
    }

    /// The Prometheus text exposition (format 0.0.4, which every scraper and `promtool` read).
    pub fn render(&self) -> String {
        let mut text = String::new();
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
