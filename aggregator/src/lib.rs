//! The aggregator: the one place where the metric rules of metrics.md live. The pure [`engine`]
//! turns events into facts; [`summary`] turns facts into the numbers the API answers with;
//! [`store`] holds the facts; [`consumer`] drives the engine from the event log and checkpoints.

pub mod catalog;
pub mod clickhouse;
pub mod consumer;
pub mod engine;
pub mod group;
pub mod partitioning;
pub mod store;
pub mod summary;

pub use catalog::Catalog;
pub use engine::{Engine, EngineState, ServiceFacts};
pub use store::FactStore;
