//! The bounded working state. The engine keeps the inputs of the last stretch of time; facts older
//! than the *cut* are final: they move to the service's frozen facts, with a small [`Context`]
//! (revisions deployed, positions reached, the last deployments) that lets the live rules go on
//! exactly where the frozen ones stopped, and their inputs leave the working state.
//!
//! The cut trails the newest event by the horizon (`definitions.horizon`, default 90 days), and
//! only moves over days whose deliveries all arrived more than a horizon before the newest
//! delivery: a backfill of old history, arriving at once, stays open and is computed exactly.
//! It moves in steps of a third of the horizon, so the state spans between one and 1⅓ horizons.
//! A step derives each service's final facts only (see `derive::final_only`): they depend on
//! nothing later than an attribution window past the cut but incidents naming a revision, so the
//! live rest is derived when asked for, not twice.
//! A delivery about a time before the cut, or about a deployment or incident already final, is
//! *too late*: it is counted and changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use doraflow_schemas::time::Timestamp;
use doraflow_schemas::{ChangeFact, DeploymentFact, Event, LogRecord};
use serde::{Deserialize, Serialize};

use super::attempts::AttemptSlot;
use super::cut::{
    Cut, Finality, KeptCommits, Release, change_positions, remember_kept, split_at_cut,
};
use super::derive::{Recovery, ServiceFacts};
use super::inputs::{Generations, RepoInputs, hash_of_parts};
use super::order::{CutShort, History, history_for_cut};
use super::{Engine, attempt_service};
use crate::catalog::Catalog;

/// What the live rules of a service need to know about its frozen past.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Per environment: hashes of the revisions frozen production deployments deployed.
    pub deployed: BTreeMap<String, BTreeSet<u64>>,
    /// Per environment: the repository and position of the last frozen production deployment's
    /// revision (`None`: not a known change).
    pub current: BTreeMap<String, Option<(String, u64)>>,
    /// Per repository (lower case): the highest position frozen deployments deployed.
    pub watermark: BTreeMap<String, u64>,
    /// Frozen production deployments live ones may still refer to: finished within the
    /// attribution window before the cut, or failed and not recovered before it.
    pub recent: Vec<DeploymentFact>,
    /// Frozen changes whose push is still in the working state, by the hash their commits are
    /// remembered by ([`commit_hash`](doraflow_schemas::sha::commit_hash): a SHA's first 16 hex
    /// digits).
    pub frozen_shas: HashSet<u64>,
    /// Failed deployments past the cut still waiting for a recovery (they stay in `recent` and
    /// in the live facts until they recover before a cut).
    pub unsettled: BTreeMap<String, Pending>,
}

/// Where a failed deployment's recovery stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The latest recovery among its signals that have recovered.
    pub settled: Option<Timestamp>,
    /// A degradation not recovered yet: the application and when it was reported degraded.
    pub degraded: Option<(String, Timestamp)>,
}

/// A service's final facts and the context they leave.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Frozen {
    /// Facts older than the cut, one chunk per step of the cut (each in time order): chunks are
    /// shared with the store and never copied.
    pub facts: Vec<Arc<ServiceFacts>>,
    /// What live rules need of them.
    pub context: Context,
}

impl Pending {
    /// What a cut settles of a failed deployment's recovery: signals that recovered before the
    /// cut are final (nothing not too late can change them); a degradation recovered at or after
    /// the cut, or not yet, is followed on. Incidents stay live until resolved before a cut, and
    /// a rollback after the cut is a live deployment: both are derived again.
    pub(super) fn of(recovery: Option<&Recovery>, cut: Timestamp) -> Self {
        let Some(recovery) = recovery else {
            return Self::default();
        };
        let mut settled = recovery.others.iter().copied().filter(|t| *t < cut).max();
        let mut degraded = None;
        if let Some((app, at, recovered)) = &recovery.degraded {
            match recovered {
                Some(r) if *r < cut => settled = settled.max(Some(*r)),
                _ => degraded = Some((app.clone(), *at)),
            }
        }
        Self { settled, degraded }
    }
}

/// The horizon's bookkeeping (part of the checkpoint).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Horizon {
    /// Facts before this instant are final.
    pub cut: Option<Timestamp>,
    /// The newest event time seen (an event more than a day ahead of its delivery counts as
    /// received time plus a day, so one wrong clock cannot close everything).
    pub newest_event: Option<Timestamp>,
    /// The newest delivery's receive time.
    pub newest_received: Option<Timestamp>,
    /// Per UTC day of event time: the newest receive time of a delivery about that day.
    pub received_by_day: BTreeMap<NaiveDate, Timestamp>,
    /// Hashes of deployment and incident ids that became final.
    pub forgotten: Generations,
    /// When the generations of remembered hashes last rotated (a cut).
    pub rotated_at: Option<Timestamp>,
    /// Too-late deliveries per service.
    pub too_late: BTreeMap<String, u64>,
    /// Too-late deliveries in all.
    pub too_late_total: u64,
}

/// One service's facts split at a cut: what is left to do once the cut's release applied.
struct Split {
    service: String,
    /// Its leaving attempts: where they are in the cut's list.
    leaving: std::ops::Range<usize>,
    /// Its newly frozen facts, if any.
    newly: Option<Arc<ServiceFacts>>,
    /// Their changes' positions ([`change_positions`]).
    positions: Vec<u64>,
}

/// The attempts and incidents a cut step's splits let go of, in the order of the services split.
#[derive(Default)]
struct Leaving {
    attempts: Vec<Arc<str>>,
    incidents: Vec<String>,
}

/// The time an event is about.
pub fn event_time(event: &Event) -> Timestamp {
    match event {
        Event::Push(p) => p.pushed_at,
        Event::PullRequestMerged(p) => p.merged_at,
        Event::Deployment(d) => d.at,
        Event::Incident(i) => i.occurred_at,
        Event::Health(h) => h.at,
    }
}

/// The hash a final deployment attempt is remembered by: `id` is its attempt id
/// (`source:id`), or those parts.
fn deployment_key(id: &[&str]) -> u64 {
    hash_of_parts(std::iter::once("deployment:").chain(id.iter().copied()))
}

/// The hash a final incident is remembered by: `id` is its id (`source:id`), or those parts.
fn incident_key(id: &[&str]) -> u64 {
    hash_of_parts(std::iter::once("incident:").chain(id.iter().copied()))
}

/// A change is final before `cut` once deployed or dropped before it, or once pending since
/// before `cut - span`: then nothing not too late can deploy or drop it (metrics §2.7).
pub(super) fn change_is_final(c: &ChangeFact, cut: Timestamp, span: Duration) -> bool {
    change_parts_are_final(c.timestamp, c.deployed_at, c.dropped_at, cut, span)
}

/// [`change_is_final`] from a change's timestamp and when it was deployed and dropped.
pub(super) fn change_parts_are_final(
    timestamp: Timestamp,
    deployed_at: Option<Timestamp>,
    dropped_at: Option<Timestamp>,
    cut: Timestamp,
    span: Duration,
) -> bool {
    deployed_at.is_some_and(|t| t < cut)
        || dropped_at.is_some_and(|t| t < cut)
        || (deployed_at.is_none() && dropped_at.is_none() && timestamp < cut - span)
}

/// Notes a delivery received at `received` about `day`. Deliveries mostly arrive in time order,
/// about the newest day: that one is looked at first, without searching the map.
fn note_received(by_day: &mut BTreeMap<NaiveDate, Timestamp>, day: NaiveDate, received: Timestamp) {
    if let Some(mut last) = by_day.last_entry()
        && *last.key() == day
    {
        let newest = last.get_mut();
        *newest = (*newest).max(received);
        return;
    }
    let newest = by_day.entry(day).or_insert(received);
    *newest = (*newest).max(received);
}

fn midnight(day: NaiveDate) -> Timestamp {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

impl Engine {
    /// Notes a record's times; true when it is about a time before the cut (too late: then it
    /// must not be applied). Whether it is about a final deployment or incident is asked apart
    /// ([`Engine::names_final`]).
    pub(super) fn observe(&mut self, record: &LogRecord, events: &[Event]) -> bool {
        let horizon = &mut self.state.horizon;
        let received = record.received_at;
        horizon.newest_received = horizon.newest_received.max(Some(received));
        let cut = horizon.cut;
        let mut late = false;
        for event in events {
            let at = event_time(event);
            // Received time plus a day is worked out only for an event about a later time.
            let believed = if at > received {
                at.min(received + Duration::days(1))
            } else {
                at
            };
            horizon.newest_event = horizon.newest_event.max(Some(believed));
            if cut.is_none_or(|c| at >= c) {
                note_received(&mut horizon.received_by_day, at.date_naive(), received);
            }
            late |= cut.is_some_and(|c| at < c);
        }
        late
    }

    /// True when one of a record's events (from `source`) is about a deployment or incident
    /// already final: then the record is too late.
    pub(super) fn names_final(&self, source: &str, events: &[Event]) -> bool {
        let forgotten = &self.state.horizon.forgotten;
        events.iter().any(|event| match event {
            Event::Deployment(d) => forgotten.contains(deployment_key(&[source, ":", &d.id])),
            Event::Incident(i) => forgotten.contains(incident_key(&[source, ":", &i.id])),
            _ => false,
        })
    }

    /// Counts a too-late delivery against the services it concerns.
    pub(super) fn count_too_late(&mut self, services: BTreeSet<String>, totals: bool) {
        self.state.horizon.too_late_total += u64::from(totals);
        for service in services {
            *self.state.horizon.too_late.entry(service).or_default() += 1;
        }
    }

    /// The cut the horizon allows now, if it is at least a step past the current one.
    fn next_cut(&self, step: Duration) -> Option<Timestamp> {
        let horizon = &self.state.horizon;
        let span = Duration::seconds(self.definitions.horizon_secs);
        let by_event = (horizon.newest_event? - span).date_naive();
        let received_limit = horizon.newest_received? - span;
        // The cut may pass a day only if everything about it arrived long enough ago.
        let mut day = by_event;
        for (d, received) in &horizon.received_by_day {
            if *d >= day {
                break;
            }
            if *received > received_limit {
                day = *d;
                break;
            }
        }
        let cut = midnight(day);
        let reference = horizon
            .cut
            .or_else(|| horizon.received_by_day.keys().next().map(|d| midnight(*d)))?;
        (cut >= reference + step).then_some(cut)
    }

    /// Moves the cut forward when the horizon allows, in steps of a third of the horizon:
    /// freezes the facts before it and drops their inputs. Returns the services whose facts were
    /// split anew (to publish again).
    pub fn advance_horizon(&mut self) -> BTreeSet<String> {
        self.advance_horizon_in_steps(Duration::seconds(self.definitions.horizon_secs) / 3)
    }

    /// The same in steps of a whole horizon: for replaying a long log, where every step derives
    /// every service (the working state may then span two horizons).
    pub fn advance_horizon_replaying(&mut self) -> BTreeSet<String> {
        self.advance_horizon_in_steps(Duration::seconds(self.definitions.horizon_secs))
    }

    fn advance_horizon_in_steps(&mut self, step: Duration) -> BTreeSet<String> {
        let Some(cut) = self.next_cut(step) else {
            return BTreeSet::new();
        };
        let window = Duration::seconds(self.definitions.attribution_window_secs);
        // A change pending since before `cut - span` can no longer be deployed or dropped by
        // anything not too late (metrics rule: pending at most a horizon).
        let span = Duration::seconds(self.definitions.horizon_secs);

        // Every service with live inputs, derived as of now.
        let mut services: BTreeSet<String> = self
            .attempts_by_service
            .keys()
            .chain(self.incidents_by_service.keys())
            .chain(self.apps_by_service.keys())
            .cloned()
            .collect();
        for repo in self.state.inputs.repos.values() {
            services.extend(
                self.catalog
                    .repo_services(&repo.name)
                    .into_iter()
                    .map(String::from),
            );
        }
        // Each branch history is built once, for the derivations and for the release, and only
        // up to where the final facts need it (see `order::history_for_cut`). Each service is
        // derived, its changes' finality noted and its facts split at the cut in turn, while
        // they are in the caches (the live facts are derived again when asked for: a derivation
        // for the cut has only the final ones complete). A service whose repositories are bound
        // to no other service of the step (most) is done in one go: its repositories are
        // released and its kept commits remembered right after its split, all of it still in
        // the caches. The others wait for every service they share a repository with.
        let short = CutShort::at(cut, &self.definitions);
        let cut_at = Cut {
            at: cut,
            span,
            window,
        };
        let mut leaving = Leaving::default();
        let mut touched = BTreeSet::new();
        let mut bound: HashMap<String, usize> = HashMap::default();
        for service in &services {
            for (key, _) in self.catalog.repos_of(service).iter() {
                *bound.entry(key.clone()).or_default() += 1;
            }
        }
        let mut released: HashSet<String> = HashSet::default();
        let (alone, sharing): (Vec<String>, Vec<String>) = services.into_iter().partition(|s| {
            self.catalog
                .repos_of(s)
                .iter()
                .all(|(key, _)| bound[key.as_str()] == 1)
        });
        for service in alone {
            let (split, releases) = {
                let repos = &self.state.inputs.repos;
                let mut histories: HashMap<&str, History> = HashMap::default();
                let cached = self.cache.remove(&service);
                let facts = facts_for_cut(self, repos, cached, &mut histories, &service, short);
                let mut finals = Finality::default();
                finals.note(&facts, &self.state.inputs, cut, span);
                let split =
                    split_service(service, facts, &mut self.state.frozen, cut_at, &mut leaving);
                // Facts taken from the cache built no histories; the release needs them.
                add_histories(&mut histories, repos, &self.catalog, &split.service, short);
                (split, plan_releases(repos, &histories, &finals, cut, span))
            };
            released.extend(releases.iter().map(|(key, _)| key.clone()));
            self.apply_releases(releases, cut);
            self.settle_split(&split, &leaving.attempts, &mut HashMap::default());
            touched.insert(split.service);
        }
        let mut splits: Vec<Split> = Vec::with_capacity(sharing.len());
        let releases = {
            let repos = &self.state.inputs.repos;
            let mut histories: HashMap<&str, History> =
                HashMap::with_capacity_and_hasher(repos.len(), Default::default());
            let mut finals = Finality::default();
            for service in sharing {
                let cached = self.cache.remove(&service);
                let facts = facts_for_cut(self, repos, cached, &mut histories, &service, short);
                finals.note(&facts, &self.state.inputs, cut, span);
                let split =
                    split_service(service, facts, &mut self.state.frozen, cut_at, &mut leaving);
                splits.push(split);
            }
            // Every other repository is released here (of no service derived here, or of one
            // whose facts came from the cache).
            for (key, repo) in repos {
                if !released.contains(key) {
                    histories
                        .entry(key.as_str())
                        .or_insert_with(|| history_for_cut(repo, short));
                }
            }
            plan_releases(repos, &histories, &finals, cut, span)
        };
        self.apply_releases(releases, cut);
        // The commits still in the working state, by repository key and hash (a collision only
        // keeps a frozen SHA a step longer): sets a service's frozen changes are checked against,
        // built for a repository only when a service needs one (see `KeptCommits`).
        let mut kept_sets: HashMap<String, HashSet<u64>> = HashMap::default();
        for split in splits {
            self.settle_split(&split, &leaving.attempts, &mut kept_sets);
            touched.insert(split.service);
        }

        // They are remembered as final.
        for id in leaving.attempts {
            self.state.horizon.forgotten.insert(deployment_key(&[&id]));
        }
        let inputs = &mut self.state.inputs;
        let catalog = &self.catalog;
        let never_ended: Vec<(AttemptSlot, String, String)> = inputs
            .deployments
            .iter()
            .filter_map(|(slot, id, a)| {
                let settled = a.settle()?;
                let idle = settled.end.is_none()
                    && a.updates
                        .keys()
                        .next_back()
                        .is_some_and(|(at, _)| *at < cut);
                idle.then(|| {
                    (
                        slot,
                        id.to_string(),
                        attempt_service(catalog, settled.fields).to_string(),
                    )
                })
            })
            .collect();
        for (slot, id, service) in never_ended {
            inputs.deployments.remove(&id);
            self.state.horizon.forgotten.insert(deployment_key(&[&id]));
            if let Some(slots) = self.attempts_by_service.get_mut(&service) {
                slots.remove(&slot);
            }
        }
        for id in leaving.incidents {
            inputs.incidents.remove(&id);
            self.state.horizon.forgotten.insert(incident_key(&[&id]));
        }
        for reports in inputs.health.values_mut() {
            reports.retain(|r| r.at >= cut);
        }
        inputs.health.retain(|_, reports| !reports.is_empty());
        // Slots freed here are reused only by attempts applied after the cut.
        let refiled_gone: Vec<AttemptSlot> = self
            .attempts_refiled
            .iter()
            .copied()
            .filter(|slot| inputs.deployments.at(*slot).is_none())
            .collect();
        for slot in refiled_gone {
            for slots in self.attempts_by_service.values_mut() {
                slots.remove(&slot);
            }
            self.attempts_refiled.remove(&slot);
        }
        for ids in self.incidents_by_service.values_mut() {
            ids.retain(|id| inputs.incidents.contains_key(id));
        }
        let health = &inputs.health;
        for apps in self.apps_by_service.values_mut() {
            apps.retain(|app| health.contains_key(app));
        }
        self.attempts_by_service.retain(|_, ids| !ids.is_empty());
        self.incidents_by_service.retain(|_, ids| !ids.is_empty());
        self.apps_by_service.retain(|_, apps| !apps.is_empty());

        // Remembered hashes live two horizons.
        let horizon = &mut self.state.horizon;
        match horizon.rotated_at {
            Some(at) if cut - at < span => {}
            Some(_) => {
                horizon.forgotten.rotate();
                inputs.seen.rotate();
                horizon.rotated_at = Some(cut);
            }
            None => horizon.rotated_at = Some(cut),
        }
        horizon.received_by_day = horizon.received_by_day.split_off(&cut.date_naive());
        horizon.cut = Some(cut);
        tracing::info!(cut = %cut, services = touched.len(), "facts before the cut are final");

        self.dirty.extend(touched.iter().cloned());
        touched
    }
}

impl Engine {
    /// Applies a step's releases, each to its repository (by key).
    fn apply_releases(&mut self, releases: Vec<(String, Release)>, cut: Timestamp) {
        for (key, release) in releases {
            if let Some(repo) = self.state.inputs.repos.get_mut(&key) {
                release.apply(repo, cut);
            }
        }
    }

    /// What is left of a service's split once its repositories are released: which of its
    /// frozen commits stay in the working state, and its leaving attempts' inputs and slots.
    /// `kept_sets` holds the repositories' sets of pushed commits built so far ([`KeptCommits`]).
    fn settle_split(
        &mut self,
        split: &Split,
        leaving_attempts: &[Arc<str>],
        kept_sets: &mut HashMap<String, HashSet<u64>>,
    ) {
        let Split {
            service,
            leaving,
            newly,
            positions,
        } = split;
        let frozen = self.state.frozen.get_mut(service).expect("split before");
        let repos = self.catalog.repos_of(service);
        let repos: Vec<(&str, &RepoInputs)> = repos
            .iter()
            .filter_map(|(key, _)| {
                let (key, repo) = self.state.inputs.repos.get_key_value(key.as_str())?;
                Some((key.as_str(), repo))
            })
            .collect();
        let kept = KeptCommits::of(&repos, &frozen.context.frozen_shas, kept_sets);
        remember_kept(&mut frozen.context, newly.as_deref(), positions, &kept);
        // The leaving attempts are this service's (filed under it, see `attempts_refiled`):
        // their inputs leave the working state, their slots the service's index.
        let mut filed = self.attempts_by_service.get_mut(service);
        for id in &leaving_attempts[leaving.clone()] {
            let freed = self.state.inputs.deployments.remove(id);
            if let (Some(slots), Some(slot)) = (filed.as_deref_mut(), freed) {
                slots.remove(&slot);
            }
        }
    }
}

/// The facts of `service` for the cut: the cache's copy (`cached`, usually its only other owner)
/// if any, else derived for the cut by `engine`, its repositories' histories (from `repos`, the
/// engine's) built just before and added to `histories`.
fn facts_for_cut<'a>(
    engine: &Engine,
    repos: &'a HashMap<String, RepoInputs>,
    cached: Option<Arc<ServiceFacts>>,
    histories: &mut HashMap<&'a str, History<'a>>,
    service: &str,
    short: CutShort,
) -> ServiceFacts {
    match cached {
        Some(facts) => Arc::unwrap_or_clone(facts),
        None => {
            add_histories(histories, repos, &engine.catalog, service, short);
            engine.derive_with(service, Some(histories), Some(short.cut))
        }
    }
}

/// Adds to `histories` those of `service`'s repositories not there yet, built for the cut.
fn add_histories<'a>(
    histories: &mut HashMap<&'a str, History<'a>>,
    repos: &'a HashMap<String, RepoInputs>,
    catalog: &Catalog,
    service: &str,
    short: CutShort,
) {
    for (key, _) in catalog.repos_of(service).iter() {
        if let Some((key, repo)) = repos.get_key_value(key.as_str()) {
            histories
                .entry(key.as_str())
                .or_insert_with(|| history_for_cut(repo, short));
        }
    }
}

/// Splits a service's facts derived for the cut: the final ones join its frozen facts (and
/// context), its leaving attempts and incidents are listed; what waits for the release is
/// returned.
fn split_service(
    service: String,
    facts: ServiceFacts,
    frozen: &mut BTreeMap<String, Frozen>,
    cut: Cut,
    leaving: &mut Leaving,
) -> Split {
    let frozen = frozen.entry(service.clone()).or_default();
    let first_leaving = leaving.attempts.len();
    let newly = split_at_cut(
        facts,
        &mut frozen.context,
        cut,
        &mut leaving.attempts,
        &mut leaving.incidents,
    )
    .map(Arc::new);
    let positions = change_positions(newly.as_deref());
    if let Some(newly) = &newly {
        frozen.facts.push(newly.clone());
    }
    Split {
        service,
        leaving: first_leaving..leaving.attempts.len(),
        newly,
        positions,
    }
}

/// The releases of the repositories whose histories these are.
fn plan_releases(
    repos: &HashMap<String, RepoInputs>,
    histories: &HashMap<&str, History>,
    finals: &Finality,
    cut: Timestamp,
    span: Duration,
) -> Vec<(String, Release)> {
    histories
        .iter()
        .map(|(key, branch)| {
            let release = Release::plan(&repos[*key], branch, finals, cut, span);
            (key.to_string(), release)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::sha::delivery_hash;

    #[test]
    fn final_ids_hash_as_checkpoints_remember_them() {
        // Checkpoints hold these hashes: from parts or whole, they are the XXH3-64 of the text.
        assert_eq!(
            deployment_key(&["github", ":", "42"]),
            delivery_hash("deployment:github:42")
        );
        assert_eq!(
            deployment_key(&["github:42"]),
            delivery_hash("deployment:github:42")
        );
        assert_eq!(
            incident_key(&["pagerduty", ":", "P1"]),
            delivery_hash("incident:pagerduty:P1")
        );
    }
}
