//! A service's facts reduced to what the summaries count, as time-stamped entries sorted by time
//! (metrics.md §6-§9). This is the one place that says at which instant each fact counts: a
//! deployment at `finished_at`, a lead time at its deployment's `finished_at`, a recovery at
//! `recovered_at`, a restore at `resolved_at`, an opened incident at `opened_at`, a dropped change
//! at `dropped_at`. Windows and rollups select entries by these instants and nothing else.

use std::sync::Arc;

use doraflow_schemas::time::Timestamp;

use crate::engine::ServiceFacts;

/// Milliseconds since the epoch.
pub type Millis = i64;

/// Milliseconds of an instant.
pub fn millis(t: Timestamp) -> Millis {
    t.timestamp_millis()
}

/// A production-tier deployment attempt, counted at `finished_at`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeploymentEntry {
    /// `finished_at`.
    pub at: Millis,
    /// Environment name.
    pub environment: Arc<str>,
    /// Flags: see the constants below.
    pub flags: u8,
}

impl DeploymentEntry {
    /// A successful attempt (a production deployment); else a failed attempt.
    pub const SUCCEEDED: u8 = 1;
    /// A change failure.
    pub const FAILED: u8 = 2;
    /// Failed and not recovered.
    pub const UNRECOVERED: u8 = 4;
    /// Rework.
    pub const REWORK: u8 = 8;
    /// Linked: deployed a change or its revision is a known change.
    pub const LINKED: u8 = 16;

    /// True when the flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A duration counted at an instant, in one environment (none for restores).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationEntry {
    /// The instant it counts at.
    pub at: Millis,
    /// Environment name, where the metric has one.
    pub environment: Option<Arc<str>>,
    /// The duration in milliseconds.
    pub value: Millis,
    /// Lead times: the raw value was negative (clock skew).
    pub skewed: bool,
}

/// An incident counted at `opened_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpenedEntry {
    /// `opened_at`.
    pub at: Millis,
    /// Attributed to a deployment.
    pub attributed: bool,
}

/// Everything one service (or the unmapped bucket) contributes to summaries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// Production-tier deployment attempts of a service.
    pub deployments: Vec<DeploymentEntry>,
    /// Successful production-tier deployments that map to no service (the unmapped bucket).
    pub unmapped: Vec<DeploymentEntry>,
    /// Lead times, at their deployment's `finished_at`.
    pub lead_times: Vec<DurationEntry>,
    /// Failed deployment recovery times, at `recovered_at`.
    pub recoveries: Vec<DurationEntry>,
    /// Times to restore, at `resolved_at`.
    pub restores: Vec<DurationEntry>,
    /// Incidents, at `opened_at`.
    pub opened: Vec<OpenedEntry>,
    /// Changes dropped by forced pushes, at `dropped_at`.
    pub dropped: Vec<Millis>,
}

fn secs_to_millis(secs: f64) -> Millis {
    (secs * 1000.0).round() as Millis
}

impl Ledger {
    /// The ledger of a service's facts (`unmapped`: the facts of the unmapped bucket, which only
    /// count as `unmapped_deployments`).
    pub fn of<'a>(facts: impl IntoIterator<Item = &'a ServiceFacts>, unmapped: bool) -> Self {
        let mut ledger = Ledger::default();
        let mut environments: Vec<Arc<str>> = Vec::new();
        let mut intern = |name: &str| -> Arc<str> {
            match environments.iter().find(|e| &***e == name) {
                Some(e) => e.clone(),
                None => {
                    let e: Arc<str> = name.into();
                    environments.push(e.clone());
                    e
                }
            }
        };
        for facts in facts {
            for d in &facts.deployments {
                if !d.production {
                    continue;
                }
                let environment = intern(&d.environment);
                if unmapped {
                    if d.succeeded {
                        ledger.unmapped.push(DeploymentEntry {
                            at: millis(d.finished_at),
                            environment,
                            flags: DeploymentEntry::SUCCEEDED,
                        });
                    }
                    continue;
                }
                let mut flags = 0;
                if d.succeeded {
                    flags |= DeploymentEntry::SUCCEEDED;
                    if d.failed() {
                        flags |= DeploymentEntry::FAILED;
                        if d.recovered_at.is_none() {
                            flags |= DeploymentEntry::UNRECOVERED;
                        }
                    }
                    if d.rework {
                        flags |= DeploymentEntry::REWORK;
                    }
                    if d.linked || d.changes > 0 {
                        flags |= DeploymentEntry::LINKED;
                    }
                    if let (Some(recovered), Some(secs)) = (d.recovered_at, d.recovery_secs()) {
                        ledger.recoveries.push(DurationEntry {
                            at: millis(recovered),
                            environment: Some(environment.clone()),
                            value: secs_to_millis(secs),
                            skewed: false,
                        });
                    }
                }
                ledger.deployments.push(DeploymentEntry {
                    at: millis(d.finished_at),
                    environment,
                    flags,
                });
            }
            if unmapped {
                continue;
            }
            for c in &facts.changes {
                if let Some(at) = c.dropped_at {
                    ledger.dropped.push(millis(at));
                }
                if let (Some(at), Some(lead), Some(env)) =
                    (c.deployed_at, c.lead_time(), &c.environment)
                {
                    ledger.lead_times.push(DurationEntry {
                        at: millis(at),
                        environment: Some(intern(env)),
                        value: secs_to_millis(lead),
                        skewed: c.clock_skew(),
                    });
                }
            }
            for i in &facts.incidents {
                if let (Some(resolved), Some(secs)) = (i.resolved_at, i.restore_secs()) {
                    ledger.restores.push(DurationEntry {
                        at: millis(resolved),
                        environment: None,
                        value: secs_to_millis(secs),
                        skewed: false,
                    });
                }
                ledger.opened.push(OpenedEntry {
                    at: millis(i.opened_at),
                    attributed: i.attributed_to.is_some(),
                });
            }
        }
        ledger.deployments.sort_unstable();
        ledger.unmapped.sort_unstable();
        ledger.lead_times.sort_unstable();
        ledger.recoveries.sort_unstable();
        ledger.restores.sort_unstable();
        ledger.opened.sort_unstable();
        ledger.dropped.sort_unstable();
        ledger
    }

    /// The instants at which `self` and `other` differ: where a rollup over either must be
    /// recomputed. Both ledgers are sorted, so this is a merge walk.
    pub fn changed_instants(&self, other: &Ledger) -> Vec<Millis> {
        fn diff<T: Ord>(a: &[T], b: &[T], at: impl Fn(&T) -> Millis, out: &mut Vec<Millis>) {
            let (mut i, mut j) = (0, 0);
            while i < a.len() || j < b.len() {
                match (a.get(i), b.get(j)) {
                    (Some(x), Some(y)) if x == y => {
                        i += 1;
                        j += 1;
                    }
                    (Some(x), Some(y)) if x < y => {
                        out.push(at(x));
                        i += 1;
                    }
                    (Some(_), Some(y)) => {
                        out.push(at(y));
                        j += 1;
                    }
                    (Some(x), None) => {
                        out.push(at(x));
                        i += 1;
                    }
                    (None, Some(y)) => {
                        out.push(at(y));
                        j += 1;
                    }
                    (None, None) => break,
                }
            }
        }
        let mut out = Vec::new();
        diff(&self.deployments, &other.deployments, |e| e.at, &mut out);
        diff(&self.unmapped, &other.unmapped, |e| e.at, &mut out);
        diff(&self.lead_times, &other.lead_times, |e| e.at, &mut out);
        diff(&self.recoveries, &other.recoveries, |e| e.at, &mut out);
        diff(&self.restores, &other.restores, |e| e.at, &mut out);
        diff(&self.opened, &other.opened, |e| e.at, &mut out);
        diff(&self.dropped, &other.dropped, |e| *e, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The entries of a time-sorted slice with `at` in `[from, to)`.
pub fn in_range<T>(entries: &[T], at: impl Fn(&T) -> Millis, from: Millis, to: Millis) -> &[T] {
    let start = entries.partition_point(|e| at(e) < from);
    let end = start + entries[start..].partition_point(|e| at(e) < to);
    &entries[start..end]
}
