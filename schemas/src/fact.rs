//! Fact rows: what the aggregator derives for each deployment, change and incident, and what the
//! API and drill-downs read. Rollups are computed from these.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::{Timestamp, millis_between};

/// Why a deployment counts as a change failure. Stored facts name a variant by its place
/// (aggregator/src/clickhouse/encoding.rs): add new variants at the end.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// An incident was attributed to it.
    Incident,
    /// The next deployment rolled it back within the attribution window.
    Rollback,
    /// Argo CD reported its application degraded within the window.
    Degraded,
}

/// One deployment attempt with everything derived about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentFact {
    /// Source-given id (shared with the change facts it deployed).
    pub id: Arc<str>,
    /// Canonical service; `None` for an unmapped deployment.
    pub service: Option<Arc<str>>,
    /// Environment name (shared among a service's deployments to it).
    pub environment: Arc<str>,
    /// True when the environment is of the production tier.
    pub production: bool,
    /// Revision deployed.
    pub revision: Arc<str>,
    /// When it ended (latest terminal status).
    #[serde(with = "crate::time::wire")]
    pub finished_at: Timestamp,
    /// `true`: success; `false`: a failed attempt (never counted as a deployment).
    pub succeeded: bool,
    /// The revision is a known change of a mapped repository.
    pub linked: bool,
    /// Number of changes it deployed.
    pub changes: u32,
    /// Median lead time of its changes, seconds.
    pub lead_time_p50: Option<f64>,
    /// A rollback deployment (metrics.md §2.4).
    pub rollback: bool,
    /// Change-failure reasons; empty: not failed.
    pub failure_reasons: Vec<FailureReason>,
    /// Incidents attributed to it.
    pub incidents: Vec<String>,
    /// The rollback deployment that undid it.
    pub rolled_back_by: Option<Arc<str>>,
    /// Earliest failure signal.
    #[serde(default, with = "crate::time::wire::option")]
    pub detected_at: Option<Timestamp>,
    /// When every failure signal recovered; `None` while failed and unrecovered.
    #[serde(default, with = "crate::time::wire::option")]
    pub recovered_at: Option<Timestamp>,
    /// Rework (metrics.md §5).
    pub rework: bool,
    /// The repository (lower case) and push-order position of its revision, when it is a known
    /// change: what later deployments are compared with (rollbacks, metrics.md §2.4).
    #[serde(default)]
    pub located: Option<(Arc<str>, u64)>,
}

impl DeploymentFact {
    /// A successful production-tier deployment: what DORA counts.
    pub fn is_production_deployment(&self) -> bool {
        self.succeeded && self.production && self.service.is_some()
    }

    /// A change failure.
    pub fn failed(&self) -> bool {
        !self.failure_reasons.is_empty()
    }

    /// Failed deployment recovery time in seconds, once recovered.
    pub fn recovery_secs(&self) -> Option<f64> {
        if !self.failed() {
            return None;
        }
        self.recovered_at
            .map(|r| millis_between(self.finished_at, r) as f64 / 1000.0)
    }
}

/// One change (commit on a tracked branch). Strings are shared (`Arc<str>`) with the inputs and
/// between facts: there are many changes, and their strings repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeFact {
    /// Service it belongs to.
    pub service: Arc<str>,
    /// `owner/name`.
    pub repo: Arc<str>,
    /// Commit SHA.
    pub sha: Arc<str>,
    /// Commit timestamp.
    #[serde(with = "crate::time::wire")]
    pub timestamp: Timestamp,
    /// First line of the message.
    pub title: Arc<str>,
    /// Position in the branch's push order.
    pub position: u64,
    /// The production deployment that first deployed it.
    pub deployed_by: Option<Arc<str>>,
    /// Environment of that deployment.
    pub environment: Option<Arc<str>>,
    /// `finished_at` of that deployment.
    #[serde(default, with = "crate::time::wire::option")]
    pub deployed_at: Option<Timestamp>,
    /// Lead time in seconds (negative values clamped to 0).
    pub lead_time: Option<f64>,
    /// The raw lead time was negative.
    pub clock_skew: bool,
    /// When a forced push dropped it before any deployment deployed it (metrics.md §2.5).
    #[serde(default, with = "crate::time::wire::option")]
    pub dropped_at: Option<Timestamp>,
    /// A fix (hotfix pattern or hotfix-labelled pull request).
    pub fix: bool,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFact {
    /// Source-given id.
    pub id: String,
    /// Canonical service.
    pub service: String,
    /// Title.
    pub title: String,
    /// When it opened.
    #[serde(with = "crate::time::wire")]
    pub opened_at: Timestamp,
    /// When it was resolved (cleared by a reopen).
    #[serde(default, with = "crate::time::wire::option")]
    pub resolved_at: Option<Timestamp>,
    /// The deployment it is attributed to.
    pub attributed_to: Option<String>,
}

impl IncidentFact {
    /// Time to restore in seconds, once resolved.
    pub fn restore_secs(&self) -> Option<f64> {
        self.resolved_at
            .map(|r| millis_between(self.opened_at, r) as f64 / 1000.0)
    }
}
