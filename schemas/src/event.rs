//! Normalized events and the records of the event log. Ingest turns each authentic delivery into
//! one [`LogRecord`]: the verbatim delivery plus what it normalized to. The aggregator reads only
//! the normalized [`Event`]s; the raw part is kept so a later version can re-derive them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::sha::Sha;
use crate::time::Timestamp;

/// One record of the event log: an authentic delivery, verbatim, and its normalized outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Delivery key (source-prefixed), the unit of deduplication (metrics.md §10).
    pub delivery: String,
    /// Source name: `github`, `pagerduty`, ...
    pub source: String,
    /// When doraflow received it.
    #[serde(with = "crate::time::wire")]
    pub received_at: Timestamp,
    /// Request headers that matter for re-derivation (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as received. Stored outside the record's JSON (see the event log's
    /// framing), so readers that do not need it never parse it.
    #[serde(skip)]
    pub body: bytes::Bytes,
    /// What normalization made of it.
    pub outcome: Outcome,
}

/// What a delivery normalized to. Externally tagged (not `#[serde(tag)]`): internally tagged
/// enums deserialize through a buffer, which measured as the aggregator's largest cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Events for the aggregator.
    Events {
        /// The normalized events, in payload order.
        events: Vec<Event>,
    },
    /// Authentic but carrying no metric (kept in the raw log).
    Ignored {
        /// Why it carries no metric.
        reason: String,
    },
    /// Authentic, well-formed, but not usable (an unparseable time, say): the dead letters.
    DeadLetter {
        /// Why it could not be normalized.
        reason: String,
    },
}

/// A normalized event: the narrow facts the metric engine needs, whatever the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Commits pushed to a branch.
    Push(Push),
    /// A merged pull (merge) request.
    PullRequestMerged(PullRequestMerged),
    /// A deployment was created or changed status.
    Deployment(DeploymentUpdate),
    /// An incident changed status.
    Incident(IncidentUpdate),
    /// A health report of a deployed application (Argo CD): the degradation signal.
    Health(HealthReport),
}

/// A push to a branch of a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    /// `owner/name`.
    pub repo: String,
    /// Branch name (without `refs/heads/`).
    pub branch: String,
    /// The repository's default branch as the payload names it.
    pub default_branch: String,
    /// Head of the branch before the push.
    pub before: Sha,
    /// Head of the branch after the push.
    pub after: Sha,
    /// A forced push (history rewritten).
    pub forced: bool,
    /// When the push happened (head commit time, else receive time).
    #[serde(with = "crate::time::wire")]
    pub pushed_at: Timestamp,
    /// Commits, oldest first, as the payload lists them.
    pub commits: Vec<Commit>,
    /// Commits the push brought but the payload does not list (GitLab lists only the newest
    /// 20 of `total_commits_count`): counted in data quality, their lead times are unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub commits_not_listed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One commit of a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// Full SHA (read into its bytes as the record is decoded: the engine keeps it so).
    pub sha: Sha,
    /// The commit timestamp from the payload, in UTC.
    #[serde(with = "crate::time::wire")]
    pub timestamp: Timestamp,
    /// First line of the commit message (shared with the facts derived from it).
    pub title: Arc<str>,
    /// Added, modified and removed files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// A merged pull request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequestMerged {
    /// `owner/name`.
    pub repo: String,
    /// Pull request number.
    pub number: u64,
    /// The commit that landed on the base branch.
    pub merge_commit_sha: String,
    /// When it was merged.
    #[serde(with = "crate::time::wire")]
    pub merged_at: Timestamp,
    /// Label names.
    pub labels: Vec<String>,
}

/// The status of a deployment attempt as a source reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Created, queued, in progress: not an end.
    Pending,
    /// Terminal success.
    Success,
    /// Terminal failure (`failure`, `error`).
    Failure,
}

/// A deployment created or a status of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentUpdate {
    /// Source-given deployment id (unique within the source).
    pub id: String,
    /// Repository, when the source is an SCM.
    pub repo: Option<String>,
    /// A service named in the payload (GitHub `payload.service`), for monorepos.
    pub service_hint: Option<String>,
    /// Environment name.
    pub environment: String,
    /// The revision (commit SHA) deployed.
    pub revision: String,
    /// This update's state.
    pub state: DeploymentState,
    /// When this update happened.
    #[serde(with = "crate::time::wire")]
    pub at: Timestamp,
    /// The environment's tier when the source states it (GitLab `environment_tier`); otherwise
    /// the tier follows from the name (metrics.md §1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The deployed application, for sources that name one instead of a repository (Argo CD,
    /// Flux, CDEvents): the catalog maps it to a service. `environment` is then the
    /// application's `environment` label, or empty when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
}

/// An environment tier (GitLab's tiers; metrics.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Production: counts for DORA.
    Production,
    /// Staging.
    Staging,
    /// Testing.
    Testing,
    /// Development.
    Development,
    /// Anything else.
    Other,
}

impl Tier {
    /// GitLab's tier names; anything unknown is `Other`.
    pub fn parse(name: &str) -> Tier {
        match name.to_ascii_lowercase().as_str() {
            "production" => Tier::Production,
            "staging" => Tier::Staging,
            "testing" => Tier::Testing,
            "development" => Tier::Development,
            _ => Tier::Other,
        }
    }
}

/// The kind of deployed application a deployment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// An Argo CD Application (`metadata.name`).
    Argocd,
    /// A Flux Kustomization or HelmRelease (`namespace/name`).
    Flux,
    /// A CDEvents service (the subject id).
    Cdevents,
}

/// A deployed application: which tool names it, and its name there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AppRef {
    /// The tool.
    pub kind: AppKind,
    /// The application's name in that tool.
    pub name: String,
}

/// The kind of incident update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChange {
    /// Opened.
    Triggered,
    /// Acknowledged (no metric effect).
    Acknowledged,
    /// Resolved.
    Resolved,
    /// Reopened: clears the resolution until the next resolve.
    Reopened,
}

/// An incident status update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    /// Source-given incident id.
    pub id: String,
    /// The source's service id.
    pub service_id: Option<String>,
    /// The source's service name.
    pub service_name: Option<String>,
    /// Title (and description) of the incident.
    pub title: String,
    /// What happened.
    pub change: IncidentChange,
    /// When it happened.
    #[serde(with = "crate::time::wire")]
    pub occurred_at: Timestamp,
    /// When the incident was created, when the payload says.
    #[serde(default, with = "crate::time::wire::option")]
    pub created_at: Option<Timestamp>,
}

/// The health an application reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Running as intended.
    Healthy,
    /// Running, but failing (Argo CD `Degraded`).
    Degraded,
}

/// A health report of one application at one revision (metrics.md §3 degradation, §4 recovery).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The application's name (Argo CD `metadata.name`); a catalog alias or the service name.
    pub app: String,
    /// The application's `environment` label, when it has one.
    pub environment: Option<String>,
    /// The revision the application runs (commit SHA).
    pub revision: String,
    /// The reported health.
    pub status: HealthStatus,
    /// When it was reported.
    #[serde(with = "crate::time::wire")]
    pub at: Timestamp,
}
