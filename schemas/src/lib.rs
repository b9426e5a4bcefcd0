//! Shared data definitions of doraflow: the configuration, the normalized events that ingest
//! writes to the event log, and the fact rows that the aggregator derives and the API reads.
//! No I/O lives here.

pub mod backstage;
pub mod config;
pub mod event;
pub mod fact;
pub mod pattern;
pub mod sha;
pub mod time;
pub mod topics;

pub use config::{Config, ConfigError};
pub use event::{Event, LogRecord, Outcome};
pub use fact::{ChangeFact, DeploymentFact, IncidentFact};
