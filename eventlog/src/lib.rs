//! The event log: where ingest durably writes each authentic delivery before answering 202, and
//! where the aggregator reads them back in order. [`EventLog`] is the interface; [`embedded`] is
//! the default implementation, a checksummed append-only file with group commit; [`kafka`] puts
//! the same records on a Kafka partition.

pub mod embedded;
pub mod kafka;
pub mod record;

use std::future::Future;
use std::pin::Pin;

use doraflow_schemas::LogRecord;

pub use embedded::EmbeddedLog;
pub use record::Body;

/// Errors of an event log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot take writes now (disk, permissions, broker): the sender should retry.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// Reading failed.
    #[error("event log read failed: {0}")]
    Read(String),
}

/// A boxed future, so that the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An append, with its time until durable (or refused) recorded for Prometheus by backend.
async fn timed_append<T>(backend: &'static str, append: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let result = append.await;
    if let Some(t) = doraflow_telemetry::recording() {
        t.eventlog
            .append_duration
            .get_or_create(&doraflow_telemetry::BackendLabels { backend })
            .observe(started.elapsed().as_secs_f64());
    }
    result
}

/// A record read back, with the offset just past it (where the next read starts).
#[derive(Debug, Clone)]
pub struct ReadRecord {
    /// Offset of the next record.
    pub next_offset: u64,
    /// The record (shared: a log may serve it from memory).
    pub record: std::sync::Arc<LogRecord>,
}

/// An append-only, durable, ordered log of deliveries.
pub trait EventLog: Send + Sync {
    /// Appends one record and resolves once it is durable. Returns its offset.
    fn append(&self, record: &LogRecord) -> BoxFuture<'_, Result<u64, LogError>>;

    /// Reads up to `max` durable records starting at `offset`; with [`Body::Skip`] the records'
    /// raw bodies are left empty (cheaper when only the events are needed).
    fn read_from(&self, offset: u64, max: usize, body: Body) -> Result<Vec<ReadRecord>, LogError>;

    /// Offset just past the last durable record; changes whenever records become durable.
    fn durable_end(&self) -> tokio::sync::watch::Receiver<u64>;

    /// True when the log can take writes.
    fn is_available(&self) -> bool;
}
