//! The webhook receiver: verifies each delivery on its raw bytes, normalizes it into events, and
//! answers 202 only once the event log holds it durably.

pub mod receiver;
pub mod routes;
pub mod signature;
pub mod sources;

pub use receiver::{Ingest, IngestOutcome};
pub use routes::router;
