//! The metric engine: a deterministic function of the event stream. [`Engine::apply`] folds a
//! delivery into the deduplicated [`Inputs`] and marks the services it touches; [`Engine::derive`]
//! recomputes a service's facts from scratch, so arrival order and duplicates cannot change them.
//! The engine does no I/O.

pub mod attempts;
pub mod branch;
mod cut;
pub mod derive;
pub mod horizon;
pub mod inputs;
pub mod order;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use doraflow_schemas::config::Definitions;
use doraflow_schemas::event::{AppKind, AppRef, HealthReport};
use doraflow_schemas::{Event, LogRecord, Outcome};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use attempts::AttemptSlot;
pub use derive::ServiceFacts;
use horizon::{Frozen, Horizon};
use inputs::{AttemptFields, Inputs};

/// The engine's hash maps and sets: foldhash rather than SipHash, because the engine hashes every
/// SHA and name of the working state at each horizon step (SipHash was a tenth of a step). The
/// seed is random per process; keys come from authenticated deliveries only.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// See [`HashMap`].
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// The key of the bucket holding deployments that map to no service.
pub const UNMAPPED: &str = "";

/// The service of a deployment attempt, or the unmapped bucket: an application's service,
/// else the repository's (metrics.md §1).
fn attempt_service<'a>(catalog: &'a Catalog, fields: &'a AttemptFields) -> &'a str {
    service_of_attempt(
        catalog,
        fields.app.as_ref(),
        fields.repo.as_deref(),
        fields.service_hint.as_deref(),
        &fields.environment,
    )
}

/// The same from an attempt's parts (an update's, without copying them).
fn service_of_attempt<'a>(
    catalog: &'a Catalog,
    app: Option<&'a AppRef>,
    repo: Option<&'a str>,
    hint: Option<&'a str>,
    environment: &'a str,
) -> &'a str {
    if let Some(app) = app {
        return catalog.app(app.kind, &app.name, None).0;
    }
    catalog
        .deployment_service(repo.unwrap_or_default(), hint, environment)
        .unwrap_or(UNMAPPED)
}

/// Ids (of incidents or applications) by service, in hash maps: derivation and the cut sort
/// what they read anyway.
type ByService = HashMap<String, HashSet<String>>;

/// Deployment attempts by service, as slots of [`attempts::Attempts`]: every deployment update
/// files its attempt (a B-tree of service names sharing a long prefix was a tenth of applying).
type AttemptsByService = HashMap<String, HashSet<AttemptSlot>>;

/// Files `item` (an id or an attempt's slot) under `service` in an index by service, copying
/// names and ids only when new; returns whether it was new there.
fn index_under<Q>(index: &mut HashMap<String, HashSet<Q::Owned>>, service: &str, item: &Q) -> bool
where
    Q: ?Sized + std::hash::Hash + Eq + ToOwned,
    Q::Owned: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
{
    match index.get_mut(service) {
        Some(items) => {
            if items.contains(item) {
                return false;
            }
            items.insert(item.to_owned());
        }
        None => {
            index.insert(service.to_string(), HashSet::from_iter([item.to_owned()]));
        }
    }
    true
}

/// The services one event concerns (none for a push to a repository of no service or an
/// incident of no service; the unmapped bucket for a deployment of no service).
pub fn services_of<'a>(catalog: &'a Catalog, event: &'a Event) -> Vec<&'a str> {
    match event {
        Event::Push(p) => catalog.repo_services(&p.repo),
        Event::PullRequestMerged(p) => catalog.repo_services(&p.repo),
        Event::Deployment(d) => vec![service_of_attempt(
            catalog,
            d.app.as_ref(),
            d.repo.as_deref(),
            d.service_hint.as_deref(),
            &d.environment,
        )],
        Event::Incident(i) => catalog
            .incident_service(i.service_id.as_deref(), i.service_name.as_deref())
            .into_iter()
            .collect(),
        Event::Health(h) => vec![health_service(catalog, h)],
    }
}

/// The service of an application's health report.
fn health_service<'a>(catalog: &'a Catalog, report: &'a HealthReport) -> &'a str {
    catalog
        .app(AppKind::Argocd, &report.app, report.environment.as_deref())
        .0
}

/// How a record's delivery was first looked at ([`Engine::sight`]).
enum Sighting {
    /// A dead letter or an ignored delivery: nothing for the engine.
    NoEvents,
    /// Its delivery key was seen before.
    Duplicate,
    /// First seen; `names_final`: one of its events is about a deployment or incident already
    /// final (then the record is too late).
    First { names_final: bool },
}

/// The engine's persistent part: inputs and counters (what a checkpoint holds).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineState {
    /// Deduplicated inputs.
    pub inputs: Inputs,
    /// Duplicate deliveries per service they touched.
    pub duplicates: BTreeMap<String, u64>,
    /// Duplicate deliveries in all.
    pub duplicates_total: u64,
    /// The horizon's bookkeeping.
    #[serde(default)]
    pub horizon: Horizon,
    /// Final facts per service.
    #[serde(default)]
    pub frozen: BTreeMap<String, Frozen>,
    /// Commits pushes brought without listing them (GitLab lists 20), per service.
    #[serde(default)]
    pub commits_not_listed: BTreeMap<String, u64>,
}

/// The engine: state plus the catalog and definitions it interprets the state with.
pub struct Engine {
    state: EngineState,
    catalog: Catalog,
    definitions: Definitions,
    attempts_by_service: AttemptsByService,
    /// Attempts filed under more than one service (a later update mapped a known attempt to
    /// another service): a cut unfiles a leaving attempt from its own service, and these from
    /// every service; deriving a service checks these belong to it.
    attempts_refiled: HashSet<AttemptSlot>,
    incidents_by_service: ByService,
    apps_by_service: ByService,
    /// Services whose facts may have changed (a hash set: apply marks one per event).
    dirty: HashSet<String>,
    /// The facts last derived per service, while its inputs have not changed since.
    cache: HashMap<String, Arc<ServiceFacts>>,
}

impl Engine {
    /// An engine over a (possibly restored) state.
    pub fn new(state: EngineState, catalog: Catalog, definitions: Definitions) -> Self {
        let mut engine = Self {
            state,
            catalog,
            definitions,
            attempts_by_service: HashMap::default(),
            attempts_refiled: HashSet::default(),
            incidents_by_service: HashMap::default(),
            apps_by_service: HashMap::default(),
            dirty: HashSet::default(),
            cache: HashMap::default(),
        };
        engine.reindex();
        engine
    }

    /// Rebuilds the service indexes and marks every known service dirty.
    fn reindex(&mut self) {
        let attempts: Vec<(AttemptSlot, String)> = self
            .state
            .inputs
            .deployments
            .iter()
            .filter_map(|(slot, _, a)| {
                a.settle()
                    .map(|s| (slot, self.attempt_service(s.fields).to_string()))
            })
            .collect();
        for (slot, service) in attempts {
            self.attempts_by_service
                .entry(service)
                .or_default()
                .insert(slot);
        }
        let incidents: Vec<(String, Option<String>)> = self
            .state
            .inputs
            .incidents
            .iter()
            .filter_map(|(id, i)| {
                let settled = i.settle()?;
                Some((
                    id.clone(),
                    self.catalog
                        .incident_service(settled.service_id, settled.service_name)
                        .map(String::from),
                ))
            })
            .collect();
        for (id, service) in incidents {
            if let Some(service) = service {
                self.incidents_by_service
                    .entry(service)
                    .or_default()
                    .insert(id);
            }
        }
        let apps: Vec<(String, String)> = self
            .state
            .inputs
            .health
            .iter()
            .filter_map(|(app, reports)| {
                let label = reports.iter().next_back()?.environment.as_deref();
                let service = self.catalog.app(AppKind::Argocd, app, label).0;
                Some((service.to_string(), app.clone()))
            })
            .collect();
        for (service, app) in apps {
            self.apps_by_service.entry(service).or_default().insert(app);
        }
        let repos: Vec<String> = self
            .state
            .inputs
            .repos
            .values()
            .map(|r| r.name.clone())
            .collect();
        for repo in repos {
            let services = self.catalog.repo_services(&repo);
            self.dirty.extend(services.into_iter().map(String::from));
        }
        self.dirty.extend(self.attempts_by_service.keys().cloned());
        self.dirty.extend(self.incidents_by_service.keys().cloned());
        self.dirty.extend(self.apps_by_service.keys().cloned());
        self.dirty.extend(self.state.frozen.keys().cloned());
    }

    fn attempt_service<'a>(&'a self, fields: &'a AttemptFields) -> &'a str {
        attempt_service(&self.catalog, fields)
    }

    /// Folds one log record into the state. Duplicates (same delivery key) are counted and
    /// otherwise ignored; ignored deliveries and dead letters carry nothing for the engine.
    /// (Copies the record: [`Engine::apply_owned`] stores its parts without copying.)
    pub fn apply(&mut self, record: &LogRecord) {
        self.apply_owned(record.clone());
    }

    /// The same for a record the caller is done with: its events' strings and commits move into
    /// the working state.
    pub fn apply_owned(&mut self, record: LogRecord) {
        self.apply_counting_totals(record, |_| true);
    }

    /// The same, counting a duplicate or too-late record in the organisation-wide totals only
    /// if `counts_totals` says so (an engine that shares a record with others counts it in one
    /// place only; the per-service counters are each service's owner's). It is asked only for
    /// such records.
    pub fn apply_counting_totals(
        &mut self,
        record: LogRecord,
        counts_totals: impl FnOnce(&LogRecord) -> bool,
    ) {
        let sighting = self.sight(&record);
        self.apply_sighted(record, sighting, counts_totals);
    }

    /// Folds records in order, exactly as [`Engine::apply_counting_totals`] one at a time would.
    /// Their delivery keys and final ids are looked up first, together: each lookup is a miss on
    /// a table of megabytes, and a loop of lookups that do not depend on each other waits for
    /// several misses at once, where a lookup between two records' work waited for each alone.
    /// Nothing but these lookups reads those tables, and only a cut changes the final ids.
    pub fn apply_batch(
        &mut self,
        records: Vec<LogRecord>,
        mut counts_totals: impl FnMut(&LogRecord) -> bool,
    ) {
        let sightings: Vec<Sighting> = records.iter().map(|r| self.sight(r)).collect();
        for (record, sighting) in records.into_iter().zip(sightings) {
            self.apply_sighted(record, sighting, &mut counts_totals);
        }
    }

    /// What applying a record starts with: whether it carries events, is a duplicate, and, first
    /// seen, whether it names a deployment or incident already final. Records its delivery key.
    fn sight(&mut self, record: &LogRecord) -> Sighting {
        let Outcome::Events { events } = &record.outcome else {
            return Sighting::NoEvents;
        };
        if !self.state.inputs.first_sighting(&record.delivery) {
            return Sighting::Duplicate;
        }
        Sighting::First {
            names_final: self.names_final(&record.source, events),
        }
    }

    /// Applies a record as its [`Sighting`] says.
    fn apply_sighted(
        &mut self,
        record: LogRecord,
        sighting: Sighting,
        counts_totals: impl FnOnce(&LogRecord) -> bool,
    ) {
        let Outcome::Events { events } = &record.outcome else {
            return;
        };
        let names_final = match sighting {
            Sighting::NoEvents => return,
            Sighting::Duplicate => {
                self.state.duplicates_total += u64::from(counts_totals(&record));
                let services: BTreeSet<&str> = events
                    .iter()
                    .flat_map(|e| services_of(&self.catalog, e))
                    .collect();
                for service in services {
                    *self
                        .state
                        .duplicates
                        .entry(service.to_string())
                        .or_default() += 1;
                }
                return;
            }
            Sighting::First { names_final } => names_final,
        };
        if self.observe(&record, events) || names_final {
            let services = events
                .iter()
                .flat_map(|e| services_of(&self.catalog, e))
                .map(String::from)
                .collect();
            self.count_too_late(services, counts_totals(&record));
            return;
        }
        let LogRecord {
            source,
            outcome: Outcome::Events { events },
            ..
        } = record
        else {
            return;
        };
        for event in events {
            self.apply_event(&source, event);
        }
    }

    /// Folds one event of a first-seen, not too late delivery from `source` into the inputs,
    /// files it under its services and marks them dirty when it changed anything. The event's
    /// parts move into the inputs; the services are read from what was stored.
    fn apply_event(&mut self, source: &str, event: Event) {
        let Self {
            state,
            catalog,
            attempts_by_service,
            attempts_refiled,
            incidents_by_service,
            apps_by_service,
            dirty,
            cache,
            definitions,
            ..
        } = self;
        let inputs = &mut state.inputs;
        // An event that repeats known facts under another delivery id changes nothing.
        // Both sets are asked before they are changed: replaying a log, the cache is empty
        // and most events concern a service already marked (no name is copied then).
        let mut mark_changed = |services: &[&str]| {
            for service in services {
                if !cache.is_empty() {
                    cache.remove(*service);
                }
                if !dirty.contains(*service) {
                    dirty.insert(service.to_string());
                }
            }
        };
        match event {
            Event::Push(mut push) => {
                let repo = std::mem::take(&mut push.repo);
                let services = catalog.repo_services(&repo);
                if push.commits_not_listed > 0 {
                    for service in &services {
                        *state
                            .commits_not_listed
                            .entry(service.to_string())
                            .or_default() += push.commits_not_listed;
                    }
                }
                let keep_files = catalog.repo_has_paths(&repo);
                if inputs.add_push(&repo, push, keep_files, Some(&definitions.hotfix)) {
                    mark_changed(&services);
                }
            }
            Event::PullRequestMerged(pr) => {
                if inputs.add_pull_request(&pr) {
                    mark_changed(&catalog.repo_services(&pr.repo));
                }
            }
            Event::Deployment(update) => {
                let (slot, changed, known, fields) = inputs.add_deployment(source, update);
                let service = attempt_service(catalog, fields);
                let filed = index_under(attempts_by_service, service, &slot);
                if filed && known {
                    attempts_refiled.insert(slot);
                }
                if changed {
                    mark_changed(&[service]);
                }
            }
            Event::Incident(update) => {
                let (id, changed, fields) = inputs.add_incident(source, update);
                let service = catalog
                    .incident_service(fields.service_id.as_deref(), fields.service_name.as_deref());
                if let Some(service) = service {
                    index_under(incidents_by_service, service, &id);
                    if changed {
                        mark_changed(&[service]);
                    }
                }
            }
            Event::Health(report) => {
                let service = health_service(catalog, &report);
                index_under(apps_by_service, service, &report.app);
                if inputs.add_health(&report) {
                    mark_changed(&[service]);
                }
            }
        }
    }

    /// Takes the services whose facts may have changed since the last call, in name order.
    pub fn take_dirty(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// The live facts of one service: derived again only if its inputs changed since.
    pub fn facts(&mut self, service: &str) -> Arc<ServiceFacts> {
        if let Some(facts) = self.cache.get(service) {
            return facts.clone();
        }
        let facts = Arc::new(self.derive(service));
        self.cache.insert(service.to_string(), facts.clone());
        facts
    }

    /// Derives the facts of one service (or of the unmapped bucket).
    pub fn derive(&self, service: &str) -> ServiceFacts {
        self.derive_with(service, None, None)
    }

    /// The same, reading branch histories already built (by repository key) where given, and
    /// only the facts a cut at `final_before` makes final where given.
    fn derive_with(
        &self,
        service: &str,
        histories: Option<&HashMap<&str, order::History>>,
        final_before: Option<doraflow_schemas::time::Timestamp>,
    ) -> ServiceFacts {
        let attempts: Vec<(&Arc<str>, inputs::Attempt)> = self
            .attempts_by_service
            .get(service)
            .map(|slots| {
                slots
                    .iter()
                    .filter_map(|slot| {
                        let (id, inputs) = self.state.inputs.deployments.at(*slot)?;
                        let settled = inputs.settle()?;
                        // An attempt whose later updates moved it to another service is theirs
                        // (only one filed under more than one service can be).
                        let theirs = self.attempts_refiled.contains(slot)
                            && self.attempt_service(settled.fields) != service;
                        (!theirs).then_some((id, settled))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let incidents: Vec<&str> = self
            .incidents_by_service
            .get(service)
            .map(|ids| ids.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let apps: Vec<String> = self
            .apps_by_service
            .get(service)
            .map(|apps| apps.iter().cloned().collect())
            .unwrap_or_default();
        let mut facts = derive::derive_service(
            &self.state.inputs,
            &self.catalog,
            &self.definitions,
            derive::ServiceScope {
                service,
                attempts,
                incident_ids: &incidents,
                apps: &apps,
                context: self.state.frozen.get(service).map(|f| &f.context),
                histories,
                final_before,
            },
        );
        if service == UNMAPPED {
            // Deployments of no service carry no service-level rules.
            for fact in &mut facts.deployments {
                fact.service = None;
                fact.rollback = false;
                fact.failure_reasons.clear();
                fact.incidents.clear();
                fact.rolled_back_by = None;
                fact.detected_at = None;
                fact.recovered_at = None;
                fact.rework = false;
            }
            facts.changes.clear();
            facts.incidents.clear();
        }
        facts
    }

    /// The final facts of a service (older than the horizon's cut), if any.
    pub fn frozen_facts(&self, service: &str) -> Vec<Arc<ServiceFacts>> {
        self.state
            .frozen
            .get(service)
            .map(|f| f.facts.clone())
            .unwrap_or_default()
    }

    /// The persistent state, for checkpoints.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
