//! The embedded fact store: the latest facts of every service, swapped in whole per service by the
//! consumer and read by the API. A fact that changes after it was first written counts as a late
//! correction of its service (metrics.md §9).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use doraflow_schemas::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::{ServiceFacts, UNMAPPED};
use crate::summary::ledger::{Ledger, millis};
use crate::summary::rollup::{Rollups, ScopeKey};
use crate::summary::tally::Tally;
use crate::summary::{Counters, Query, selection};

/// Counters kept beside the facts (and in checkpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StoreCounters {
    /// Late corrections per service.
    pub late_corrections: BTreeMap<String, u64>,
    /// Duplicate deliveries per service.
    pub duplicates: BTreeMap<String, u64>,
    /// Duplicate deliveries in all.
    pub duplicates_total: u64,
    /// Too-late deliveries per service (about facts already final).
    #[serde(default)]
    pub too_late: BTreeMap<String, u64>,
    /// Too-late deliveries in all.
    #[serde(default)]
    pub too_late_total: u64,
    /// Commits pushes brought without listing them, per service.
    #[serde(default)]
    pub commits_not_listed: BTreeMap<String, u64>,
}

impl StoreCounters {
    /// Adds another aggregator's counters (of other services) to these.
    pub fn merge(&mut self, other: &StoreCounters) {
        let add = |into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>| {
            for (service, n) in from {
                *into.entry(service.clone()).or_default() += n;
            }
        };
        add(&mut self.late_corrections, &other.late_corrections);
        add(&mut self.duplicates, &other.duplicates);
        add(&mut self.too_late, &other.too_late);
        add(&mut self.commits_not_listed, &other.commits_not_listed);
        self.duplicates_total += other.duplicates_total;
        self.too_late_total += other.too_late_total;
    }
}

/// The facts of every service.
#[derive(Debug, Default)]
pub struct FactStore {
    services: BTreeMap<String, Arc<ServiceFacts>>,
    frozen: HashMap<String, Vec<Arc<ServiceFacts>>>,
    ledgers: HashMap<String, Ledger>,
    rollups: Mutex<Rollups>,
    counters: StoreCounters,
    last_event: HashMap<String, Timestamp>,
    caught_up: bool,
    applied_offset: u64,
}

fn corrections(old: &ServiceFacts, new: &ServiceFacts) -> u64 {
    fn changed<T: PartialEq, K: Eq + std::hash::Hash + ?Sized>(
        old: &[T],
        new: &[T],
        key: impl Fn(&T) -> &K,
    ) -> u64 {
        let by_key: HashMap<&K, &T> = new.iter().map(|f| (key(f), f)).collect();
        old.iter()
            .filter(|f| by_key.get(key(f)).is_some_and(|n| *n != *f))
            .count() as u64
    }
    changed(&old.deployments, &new.deployments, |d| &*d.id)
        + changed(&old.changes, &new.changes, |c| c.sha())
        + changed(&old.incidents, &new.incidents, |i| i.id.as_str())
}

impl FactStore {
    /// A store restored with counters from a checkpoint.
    pub fn with_counters(counters: StoreCounters) -> Self {
        Self {
            counters,
            ..Self::default()
        }
    }

    /// Replaces a service's facts (its live facts and its final ones, older than the horizon's
    /// cut), counting the live facts that changed as late corrections.
    pub fn publish(
        &mut self,
        service: String,
        facts: Arc<ServiceFacts>,
        frozen: Vec<Arc<ServiceFacts>>,
    ) {
        if let Some(old) = self.services.get(&service) {
            let n = corrections(old, &facts);
            if n > 0 {
                if let Some(t) = doraflow_telemetry::recording() {
                    t.aggregator.late_corrections.inc_by(n);
                }
                *self
                    .counters
                    .late_corrections
                    .entry(service.clone())
                    .or_default() += n;
            }
        }
        let parts: Vec<&ServiceFacts> = frozen.iter().map(|f| &**f).chain([&*facts]).collect();
        let latest = parts
            .iter()
            .flat_map(|f| {
                f.deployments
                    .iter()
                    .map(|d| d.finished_at)
                    .chain(f.changes.iter().map(|c| c.timestamp))
                    .chain(
                        f.incidents
                            .iter()
                            .map(|i| i.resolved_at.unwrap_or(i.opened_at)),
                    )
            })
            .max();
        if let Some(latest) = latest {
            self.last_event.insert(service.clone(), latest);
        }
        let ledger = Ledger::of(parts, service == UNMAPPED);
        let changed = match self.ledgers.get(&service) {
            Some(old) => old.changed_instants(&ledger),
            None => Ledger::default().changed_instants(&ledger),
        };
        self.rollups
            .get_mut()
            .expect("rollups lock")
            .invalidate(&service, None, &changed);
        self.ledgers.insert(service.clone(), ledger);
        if frozen.is_empty() {
            self.frozen.remove(&service);
        } else {
            self.frozen.insert(service.clone(), frozen);
        }
        self.services.insert(service, facts);
    }

    /// Replaces every counter (an API replica takes the aggregator's).
    pub fn set_counters(&mut self, counters: StoreCounters) {
        self.counters = counters;
    }

    /// Sets the duplicate counters (the engine counts them).
    pub fn set_duplicates(&mut self, per_service: BTreeMap<String, u64>, total: u64) {
        self.counters.duplicates = per_service;
        self.counters.duplicates_total = total;
    }

    /// Sets the too-late counters (the engine counts them).
    pub fn set_too_late(&mut self, per_service: BTreeMap<String, u64>, total: u64) {
        self.counters.too_late = per_service;
        self.counters.too_late_total = total;
    }

    /// Sets the counts of commits pushes did not list (the engine counts them).
    pub fn set_commits_not_listed(&mut self, per_service: BTreeMap<String, u64>) {
        self.counters.commits_not_listed = per_service;
    }

    /// Marks the start-up replay as done.
    pub fn set_caught_up(&mut self) {
        self.caught_up = true;
    }

    /// Records the log offset up to which facts are published.
    pub fn set_applied_offset(&mut self, offset: u64) {
        self.applied_offset = offset;
    }

    /// The log offset up to which facts are published.
    pub fn applied_offset(&self) -> u64 {
        self.applied_offset
    }

    /// True once the start-up replay is done.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// The facts of one service.
    pub fn service(&self, name: &str) -> Option<Arc<ServiceFacts>> {
        self.services.get(name).cloned()
    }

    /// All facts of a service: its final part (when it has one), then its live part.
    pub fn parts(&self, name: &str) -> Vec<Arc<ServiceFacts>> {
        self.frozen
            .get(name)
            .into_iter()
            .flatten()
            .cloned()
            .chain(self.services.get(name).cloned())
            .collect()
    }

    /// Every service with facts (the unmapped bucket excluded).
    pub fn service_names(&self) -> impl Iterator<Item = &String> {
        self.services.keys().filter(|k| k.as_str() != UNMAPPED)
    }

    /// The unmapped bucket.
    pub fn unmapped(&self) -> Option<Arc<ServiceFacts>> {
        self.services.get(UNMAPPED).cloned()
    }

    /// Latest event time seen for a service.
    pub fn last_event(&self, service: &str) -> Option<Timestamp> {
        self.last_event.get(service).copied()
    }

    /// Counters summed over some services; `None` means the whole organisation.
    pub fn counters_for(&self, services: Option<&[String]>) -> Counters {
        match services {
            None => Counters {
                duplicates_ignored: self.counters.duplicates_total,
                too_late_ignored: self.counters.too_late_total,
                late_corrections: self.counters.late_corrections.values().sum(),
                commits_not_listed: self.counters.commits_not_listed.values().sum(),
            },
            Some(list) => Counters {
                duplicates_ignored: list
                    .iter()
                    .filter_map(|s| self.counters.duplicates.get(s))
                    .sum(),
                too_late_ignored: list
                    .iter()
                    .filter_map(|s| self.counters.too_late.get(s))
                    .sum(),
                late_corrections: list
                    .iter()
                    .filter_map(|s| self.counters.late_corrections.get(s))
                    .sum(),
                commits_not_listed: list
                    .iter()
                    .filter_map(|s| self.counters.commits_not_listed.get(s))
                    .sum(),
            },
        }
    }

    /// The tally of a scope over the query's `[from, to)`, from rollups: `services` are the
    /// scope's (`None`: the organisation, with the unmapped bucket).
    pub fn tally(&self, services: Option<&[String]>, scope: ScopeKey, query: &Query) -> Tally {
        self.tally_range(services, scope, query, query.from, query.to)
    }

    /// The same over another range (a series bucket).
    pub fn tally_range(
        &self,
        services: Option<&[String]>,
        scope: ScopeKey,
        query: &Query,
        from: Timestamp,
        to: Timestamp,
    ) -> Tally {
        let ledgers: Vec<&Ledger> = match services {
            Some(list) => list.iter().filter_map(|s| self.ledgers.get(s)).collect(),
            None => self.ledgers.values().collect(),
        };
        let sel = selection(query);
        self.rollups.lock().expect("rollups lock").tally(
            scope,
            sel.environment,
            sel.tz,
            &ledgers,
            millis(from),
            millis(to),
        )
    }

    /// Builds the organisation's rollups (UTC, every production environment) for the last 13
    /// months, so that the first dashboard request does not pay for them.
    pub fn warm_up(&self) {
        let to = chrono::Utc::now();
        let query = Query {
            from: to - chrono::Duration::days(400),
            to,
            environment: None,
            tz: chrono_tz::Tz::UTC,
            edition: crate::summary::Edition::Dora2025,
        };
        self.tally(None, ScopeKey::Organisation, &query);
    }

    /// The counters, for checkpoints.
    pub fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}
