//! Fact rows: what the aggregator derives for each deployment, change and incident, and what the
//! API and drill-downs read. Rollups are computed from these.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::Commit;
use crate::sha::Sha;
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

/// A commit as the engine keeps it and change facts share it: a [`Commit`] without its file list,
/// its SHA inline ([`Sha`]: 20 bytes, where the text took an allocation of 64 of its own). 56
/// bytes where a `Commit` is 72: the facts of a year keep one a change.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitRecord {
    /// Full SHA.
    pub sha: Sha,
    /// The commit timestamp, in UTC.
    pub timestamp: Timestamp,
    /// First line of the commit message.
    pub title: Arc<str>,
}

impl From<Commit> for CommitRecord {
    /// The commit's SHA and title move over; its file list is dropped.
    fn from(commit: Commit) -> Self {
        Self {
            sha: commit.sha,
            timestamp: commit.timestamp,
            title: commit.title,
        }
    }
}

/// A change's commit as its fact holds it: the commits of the push that brought it, shared with
/// the engine's working state and with the facts of the push's other changes, and its place among
/// them. A fact takes one reference for the whole push, on the cache line the engine reads the
/// commit's time from anyway, instead of one for the SHA and one for the title on two lines of
/// their own, both as the engine derives facts and as pushes leave its working state.
#[derive(Clone)]
pub struct CommitRef {
    commits: Arc<[CommitRecord]>,
    index: u32,
}

impl CommitRef {
    /// The commit at `index` of a push's commits.
    ///
    /// # Panics
    /// When `index` is not a place in `commits`.
    pub fn new(commits: Arc<[CommitRecord]>, index: usize) -> Self {
        assert!(index < commits.len(), "commit {index} of {}", commits.len());
        let index = u32::try_from(index).expect("fewer than 2^32 commits in a push");
        Self { commits, index }
    }

    /// A commit of its own (read back from storage, or built by hand).
    pub fn single(commit: CommitRecord) -> Self {
        Self::new(Arc::new([commit]), 0)
    }

    /// The commit.
    pub fn get(&self) -> &CommitRecord {
        &self.commits[self.index as usize]
    }
}

impl PartialEq for CommitRef {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for CommitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// One change (commit on a tracked branch). Strings are shared (`Arc<str>`) with the inputs and
/// between facts: there are many changes, and their strings repeat; the commit's SHA and title
/// are read through the push it came with ([`CommitRef`]). Its lead time and clock skew follow
/// from its two instants ([`ChangeFact::lead_time`]) and are worked out when read. So the fact
/// is 136 bytes, where it was 160 with both stored and the SHA and title held apart (the engine
/// writes one for every change it freezes; most of those writes miss the caches). Serialized as
/// before, with SHA, title, lead time and clock skew (`ChangeFactWire`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "ChangeFactWire<Arc<str>, Sha>")]
pub struct ChangeFact {
    /// Service it belongs to.
    pub service: Arc<str>,
    /// `owner/name`.
    pub repo: Arc<str>,
    /// The commit: its SHA ([`ChangeFact::sha`]) and the first line of its message
    /// ([`ChangeFact::title`]).
    pub commit: CommitRef,
    /// Commit timestamp (the commit's, kept with the fact: the engine sorts and cuts facts by
    /// it).
    pub timestamp: Timestamp,
    /// Position in the branch's push order.
    pub position: u64,
    /// The production deployment that first deployed it.
    pub deployed_by: Option<Arc<str>>,
    /// Environment of that deployment.
    pub environment: Option<Arc<str>>,
    /// `finished_at` of that deployment.
    pub deployed_at: Option<Timestamp>,
    /// When a forced push dropped it before any deployment deployed it (metrics.md §2.5).
    pub dropped_at: Option<Timestamp>,
    /// A fix (hotfix pattern or hotfix-labelled pull request).
    pub fix: bool,
}

// The size the doc comment above states, on 64-bit targets.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<ChangeFact>() == 136);
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<CommitRecord>() == 56);

impl ChangeFact {
    /// The commit SHA.
    pub fn sha(&self) -> &Sha {
        &self.commit.get().sha
    }

    /// The first line of the commit message.
    pub fn title(&self) -> &Arc<str> {
        &self.commit.get().title
    }

    /// Lead time in seconds, once deployed: from the commit to the deployment, a negative one
    /// (clock skew) clamped to 0 (metrics.md §2).
    pub fn lead_time(&self) -> Option<f64> {
        self.raw_lead_time().map(|secs| secs.max(0.0))
    }

    /// The raw lead time was negative: the commit's clock was ahead of the deployment's.
    pub fn clock_skew(&self) -> bool {
        self.raw_lead_time().is_some_and(|secs| secs < 0.0)
    }

    fn raw_lead_time(&self) -> Option<f64> {
        self.deployed_at
            .map(|at| millis_between(self.timestamp, at) as f64 / 1000.0)
    }
}

/// A [`ChangeFact`] as stored and sent: every field in this order, with the lead time and the
/// clock skew (stored facts and checkpoints written before they were worked out hold them too;
/// reading one takes them from the instants again). Its strings are shared when read and
/// borrowed from the fact when written; its SHA is read into a [`Sha`] and written as its text.
#[derive(Serialize, Deserialize)]
#[serde(rename = "ChangeFact")]
struct ChangeFactWire<S, H> {
    service: S,
    repo: S,
    sha: H,
    #[serde(with = "crate::time::wire")]
    timestamp: Timestamp,
    title: S,
    position: u64,
    deployed_by: Option<S>,
    environment: Option<S>,
    #[serde(default, with = "crate::time::wire::option")]
    deployed_at: Option<Timestamp>,
    lead_time: Option<f64>,
    clock_skew: bool,
    #[serde(default, with = "crate::time::wire::option")]
    dropped_at: Option<Timestamp>,
    fix: bool,
}

impl Serialize for ChangeFact {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ChangeFactWire::<&str, _> {
            service: &self.service,
            repo: &self.repo,
            sha: self.sha().text(),
            timestamp: self.timestamp,
            title: self.title(),
            position: self.position,
            deployed_by: self.deployed_by.as_deref(),
            environment: self.environment.as_deref(),
            deployed_at: self.deployed_at,
            lead_time: self.lead_time(),
            clock_skew: self.clock_skew(),
            dropped_at: self.dropped_at,
            fix: self.fix,
        }
        .serialize(serializer)
    }
}

impl From<ChangeFactWire<Arc<str>, Sha>> for ChangeFact {
    fn from(wire: ChangeFactWire<Arc<str>, Sha>) -> Self {
        Self {
            service: wire.service,
            repo: wire.repo,
            commit: CommitRef::single(CommitRecord {
                sha: wire.sha,
                timestamp: wire.timestamp,
                title: wire.title,
            }),
            timestamp: wire.timestamp,
            position: wire.position,
            deployed_by: wire.deployed_by,
            environment: wire.environment,
            deployed_at: wire.deployed_at,
            dropped_at: wire.dropped_at,
            fix: wire.fix,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A change fact is written with its lead time and clock skew, as facts always were, and
    /// read back from that form (what is stored holds them) with both worked out again.
    #[test]
    fn change_facts_keep_their_stored_form() {
        let text = r#"{"service":"app","repo":"acme/app","sha":"abc","timestamp":"2026-03-01T10:00:05Z","title":"fix: x","position":3,"deployed_by":"github:7","environment":"production","deployed_at":"2026-03-01T10:00:00Z","lead_time":0.0,"clock_skew":true,"dropped_at":null,"fix":true}"#;
        let fact: ChangeFact = serde_json::from_str(text).unwrap();
        assert_eq!((fact.lead_time(), fact.clock_skew()), (Some(0.0), true));
        assert_eq!(serde_json::to_string(&fact).unwrap(), text);

        let later = ChangeFact {
            deployed_at: Some(fact.timestamp + chrono::Duration::milliseconds(90_500)),
            ..fact.clone()
        };
        assert_eq!((later.lead_time(), later.clock_skew()), (Some(90.5), false));
        let json = serde_json::to_value(&later).unwrap();
        assert_eq!(
            (json["lead_time"].as_f64(), json["clock_skew"].as_bool()),
            (Some(90.5), Some(false))
        );
        let pending = ChangeFact {
            deployed_at: None,
            ..fact
        };
        assert_eq!((pending.lead_time(), pending.clock_skew()), (None, false));
    }
}
