//! The metric rules (metrics.md §2-§5) as one pure function: from a service's deduplicated
//! inputs to its facts. Deployments are linked to changes in push order, rollbacks and incidents
//! make change failures, recoveries and rework follow from them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::{HashMap, HashSet};
use std::sync::Arc;

use doraflow_schemas::config::Definitions;
use doraflow_schemas::fact::FailureReason;
use doraflow_schemas::time::{Timestamp, millis_between};
use doraflow_schemas::{ChangeFact, DeploymentFact, IncidentFact};
use regex::Regex;
use serde::{Deserialize, Serialize};

use doraflow_schemas::event::{AppKind, HealthStatus, Tier};
use doraflow_schemas::fact::CommitRecord;

use super::horizon::{Context, change_parts_are_final};
use super::inputs::{Attempt, AttemptFields, HealthEntry, Inputs, SettledIncident, StoredPush};
use super::order::{History, history};
use crate::catalog::Catalog;

/// Everything derived for one service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceFacts {
    /// Where the failed deployments' recoveries stand (what freezing one needs to carry on).
    #[serde(skip)]
    pub pending: BTreeMap<String, Recovery>,
    /// Every ended deployment attempt of the service (all environments, both outcomes).
    pub deployments: Vec<DeploymentFact>,
    /// Every change of the service's repositories (touching it), deployed or not.
    pub changes: Vec<ChangeFact>,
    /// Every incident of the service.
    pub incidents: Vec<IncidentFact>,
    /// Of a derivation of the final facts only ([`ServiceScope::final_before`]): the changes left
    /// out, not final (repository and position), which keep their pushes in the working state.
    #[serde(skip)]
    pub open_changes: Vec<(Arc<str>, u64)>,
}

impl ServiceFacts {
    /// Puts every list in time order (deployments by `finished_at`, changes by timestamp,
    /// incidents by `opened_at`), as derivation leaves them.
    pub fn sort_by_time(&mut self) {
        self.deployments
            .sort_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)));
        self.changes
            .sort_by(|a, b| (a.timestamp, &a.repo, a.sha()).cmp(&(b.timestamp, &b.repo, b.sha())));
        self.incidents
            .sort_by(|a, b| (a.opened_at, &a.id).cmp(&(b.opened_at, &b.id)));
    }
}

/// The recovery signals of a failed deployment, as derived: what freezing it needs to carry on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recovery {
    /// Recoveries of its incident and rollback signals (and what a frozen part had settled).
    pub others: Vec<Timestamp>,
    /// Its degradation: application, when reported degraded, recovery if any.
    pub degraded: Option<(String, Timestamp, Option<Timestamp>)>,
}

/// A change of one bound repository, with what the rules need. It borrows its commit: a
/// derivation builds one for every change of the working state, and sharing the commit's strings
/// (reference counts on as many cache lines) is left to the change facts it builds.
struct RepoChange<'a> {
    /// The push it came with and its place there (its commit; a fact shares the push's
    /// commits).
    push: &'a StoredPush,
    index: u32,
    position: u64,
    touches: bool,
    /// Final (deployed or expired before the horizon's cut): neither deployable nor reported.
    frozen: bool,
}

impl<'a> RepoChange<'a> {
    fn commit(&self) -> &'a CommitRecord {
        &self.push.commits[self.index as usize]
    }
}

struct BoundRepo<'a> {
    name: Arc<str>,
    /// The repository's key (lower case).
    key: Arc<str>,
    /// Commits whose push left the working state, with their positions.
    evicted: &'a HashMap<u64, u64>,
    /// Labels of merged pull requests, by merge commit SHA.
    labels: &'a BTreeMap<String, BTreeSet<String>>,
    changes: Vec<RepoChange<'a>>,
    /// Index of each change by its commit's hash (unique within a history): the history's own
    /// index ([`History::index`]).
    position_of: Cow<'a, HashMap<u64, usize>>,
    /// Forced pushes: when, and the changes before them they do not carry again.
    forced: Vec<(Timestamp, Vec<usize>)>,
}

/// A fix (§5): its title matches the hotfix pattern (as matched when its push arrived, if it
/// was), or a pull request merged as it carries a hotfix label.
fn is_fix(definitions: &Definitions, repo: &BoundRepo, change: &RepoChange) -> bool {
    let commit = change.commit();
    change
        .push
        .title_is_fix(change.index as usize)
        .unwrap_or_else(|| definitions.hotfix.is_match(&commit.title))
        || !repo.labels.is_empty()
            && repo
                .labels
                .get(&*commit.sha.text())
                .is_some_and(|labels| definitions.hotfix_labels.iter().any(|l| labels.contains(l)))
}

/// The latest commit time of a change that has expired when deployed or dropped at `at`: one
/// pending longer than the horizon (`horizon` seconds, the time between counted in whole
/// seconds) has (§2.7). Worked out once a deployment instead of a subtraction per change.
fn last_expired(at: Timestamp, horizon: i64) -> Timestamp {
    at - chrono::Duration::seconds(horizon + 1)
}

/// Seconds between two instants, as a float.
fn secs(from: Timestamp, to: Timestamp) -> f64 {
    millis_between(from, to) as f64 / 1000.0
}

fn hex_tokens() -> &'static Regex {
    static TOKENS: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| Regex::new(r"(?i)\b[0-9a-f]{7,40}\b").expect("valid regex"))
}

/// The revision prefixes an incident's title names (§3): its 7 to 40 character hex tokens.
fn named_prefixes(title: &str) -> impl Iterator<Item = &str> {
    hex_tokens().find_iter(title).map(|token| token.as_str())
}

/// True when `revision` starts with the named `prefix`, in any case.
fn names(prefix: &str, revision: &str) -> bool {
    revision
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// What one service's derivation reads: the ids of its inputs and its frozen context.
pub struct ServiceScope<'a> {
    /// The service.
    pub service: &'a str,
    /// Its deployment attempts, settled.
    pub attempts: Vec<(&'a Arc<str>, Attempt<'a>)>,
    /// Its incidents.
    pub incident_ids: &'a [&'a str],
    /// Its Argo CD applications (health reports).
    pub apps: &'a [String],
    /// What its frozen facts leave to the live rules.
    pub context: Option<&'a Context>,
    /// Branch histories already built, by repository key (built here when absent).
    pub histories: Option<&'a HashMap<&'a str, History<'a>>>,
    /// Derive only the facts a cut at this instant makes final, not the others: see
    /// `final_only` in this module.
    pub final_before: Option<Timestamp>,
}

/// A cut freezes the facts before it, and they depend on nothing later than an attribution
/// window after it, but for incidents naming a revision (§3), which may come at any time. So a
/// derivation for a cut leaves out the deployments finished more than a window after it, unless
/// they deployed a revision an incident names, and the health reports after then; it reads
/// branch histories up to about then (`order::history_for_cut`: a prefix, positions unchanged,
/// the whole history where a revision it deploys was left out), and only final changes become
/// facts. The facts before the cut are exactly those of a full derivation; the
/// others are incomplete and are not kept. Facts are built for about a window past the cut, not a
/// horizon.
fn final_only(
    attempts: &mut Vec<(&Arc<str>, Attempt, Timestamp, bool)>,
    incidents: &[(&str, SettledIncident)],
    reports: &mut Vec<Report>,
    until: Timestamp,
) {
    let named: Vec<&str> = incidents
        .iter()
        .flat_map(|(_, i)| named_prefixes(i.title))
        .collect();
    attempts.retain(|(_, attempt, finished_at, _)| {
        *finished_at <= until
            || named
                .iter()
                .any(|prefix| names(prefix, &attempt.fields.revision))
    });
    reports.retain(|r| r.entry.at <= until);
}

/// Derives the facts of a service from the inputs its scope names.
pub fn derive_service(
    inputs: &Inputs,
    catalog: &Catalog,
    definitions: &Definitions,
    scope: ServiceScope,
) -> ServiceFacts {
    let ServiceScope {
        service,
        attempts,
        incident_ids,
        apps,
        context,
        histories,
        final_before,
    } = scope;
    let window = definitions.attribution_window_secs;
    let horizon = definitions.horizon_secs;
    let final_before = final_before.map(|cut| (cut, chrono::Duration::seconds(horizon)));
    let empty = Context::default();
    let context = context.unwrap_or(&empty);

    // Ended attempts, in finishing order.
    let mut attempts: Vec<(&Arc<str>, Attempt, Timestamp, bool)> = attempts
        .into_iter()
        .filter_map(|(id, attempt)| {
            let (finished_at, succeeded) = attempt.end?;
            Some((id, attempt, finished_at, succeeded))
        })
        .collect();
    // Incidents, in opening order.
    let mut incidents: Vec<(&str, SettledIncident)> = incident_ids
        .iter()
        .filter_map(|id| Some((*id, inputs.incidents.get(*id)?.settle()?)))
        .collect();
    incidents.sort_by(|a, b| (a.1.opened_at, &a.0).cmp(&(b.1.opened_at, &b.0)));

    // Health reports of the service's applications, in time order, with their environments.
    let mut reports: Vec<Report> = apps
        .iter()
        .filter_map(|app| Some((app, inputs.health.get(app)?)))
        .flat_map(|(app, entries)| {
            entries.iter().map(move |e| Report {
                app,
                environment: catalog
                    .app(AppKind::Argocd, app, e.environment.as_deref())
                    .1,
                entry: e,
            })
        })
        .collect();
    reports.sort_by(|a, b| (a.entry, a.app).cmp(&(b.entry, b.app)));
    if let Some((cut, _)) = final_before {
        let until = cut + chrono::Duration::seconds(window);
        final_only(&mut attempts, &incidents, &mut reports, until);
    }
    attempts.sort_by(|a, b| (a.2, &a.0).cmp(&(b.2, &b.0)));

    // The revisions the attempts deployed (by hash), for histories built for a cut.
    let revisions: Vec<u64> = match histories {
        Some(_) => attempts
            .iter()
            .map(|(_, attempt, _, _)| revision_hash(&attempt.fields.revision))
            .collect(),
        None => Vec::new(),
    };

    // Changes of every bound repository, in push order (§2.1).
    let mut repos: Vec<BoundRepo> = Vec::new();
    for (key, binding) in catalog.repos_of(service).iter() {
        let Some(repo) = inputs.repos.get(key) else {
            continue;
        };
        let mut built;
        let (branch, position_of) = match histories.and_then(|h| h.get(key.as_str())) {
            // A history for a cut that left out a revision deployed here is not enough.
            Some(branch) if !branch.leaves_out(&revisions) => {
                (branch, Cow::Borrowed(&branch.index))
            }
            _ => {
                built = history(repo);
                let index = std::mem::take(&mut built.index);
                (&built, Cow::Owned(index))
            }
        };
        let mut changes = Vec::with_capacity(branch.changes.len());
        let forced = branch
            .forced
            .iter()
            .map(|f| {
                let dropped = (0..f.index)
                    .filter(|&c| !f.carried.contains(&branch.changes[c].commit().sha))
                    .collect();
                (f.pushed_at, dropped)
            })
            .collect();
        for change in &branch.changes {
            changes.push(RepoChange {
                push: change.push,
                index: change.index,
                position: change.position,
                touches: binding.touches(change.push.files_of(change.index as usize)),
                frozen: context.frozen_shas.contains(&change.hash),
            });
        }
        repos.push(BoundRepo {
            name: repo.name.as_str().into(),
            key: key.as_str().into(),
            evicted: &repo.evicted,
            labels: &repo.merged_labels,
            changes,
            position_of,
            forced,
        });
    }

    // Frozen production deployments that live ones may still refer to (attribution, rollbacks,
    // fix forwards) come first: they finished before every live one.
    let recent = context.recent.len();
    let mut production = Production::new(definitions);
    let mut facts: Vec<DeploymentFact> = Vec::with_capacity(recent + attempts.len());
    facts.extend_from_slice(&context.recent);
    // One name for the service, and one an environment for consecutive deployments to it (a
    // service deploys to a few), shared by every fact.
    let service_name: Arc<str> = service.into();
    let mut last_environment: Option<Arc<str>> = None;
    facts.extend(
        attempts
            .iter()
            .map(|(id, attempt, finished_at, succeeded)| DeploymentFact {
                id: Arc::clone(id),
                service: Some(service_name.clone()),
                environment: {
                    let name = environment_of(catalog, attempt.fields);
                    match &last_environment {
                        Some(shared) if **shared == *name => shared.clone(),
                        _ => last_environment.insert(name.into()).clone(),
                    }
                },
                production: production.of(catalog, attempt.fields),
                revision: attempt.fields.revision.as_str().into(),
                finished_at: *finished_at,
                succeeded: *succeeded,
                linked: false,
                changes: 0,
                lead_time_p50: None,
                rollback: false,
                failure_reasons: Vec::new(),
                incidents: Vec::new(),
                rolled_back_by: None,
                detected_at: None,
                recovered_at: None,
                rework: false,
                located: None,
            }),
    );
    let is_frozen = |d: usize| d < recent;
    let attempt = |d: usize| &attempts[d - recent].1;
    let production: Vec<usize> = (0..facts.len())
        .filter(|i| facts[*i].succeeded && facts[*i].production)
        .collect();

    // Linking (§2.2-§2.4, §2.6): who deploys which change, and which deployments are rollbacks.
    let mut deployed_by: Vec<Vec<Option<usize>>> =
        repos.iter().map(|r| vec![None; r.changes.len()]).collect();
    // Where the frozen deployments left off: the last deployed position per repository, the
    // revisions deployed per environment, the position deployed last per environment.
    let mut watermark: Vec<Option<usize>> = repos
        .iter()
        .map(|repo| {
            let deployed = context.watermark.get(&*repo.key)?;
            repo.changes
                .partition_point(|c| c.position <= *deployed)
                .checked_sub(1)
        })
        .collect();
    let mut revisions_in_env: HashMap<&str, HashSet<&str>> = HashMap::default();
    let mut current_in_env: HashMap<&str, Option<(usize, u64)>> = context
        .current
        .iter()
        .map(|(env, located)| {
            let located = located.as_ref().and_then(|(repo, position)| {
                let r = repos.iter().position(|b| *b.key == **repo)?;
                Some((r, *position))
            });
            (env.as_str(), located)
        })
        .collect();
    // The changes each deployment deployed (repository, index), one run a deployment: a list
    // each cost an allocation a deployment and derivation.
    let mut deployed: Vec<(usize, usize)> = Vec::new();
    let mut deployed_run: Vec<std::ops::Range<usize>> = vec![0..0; facts.len()];
    // Forced pushes (§2.5), in time order, interleaved with the deployments: a push drops the
    // changes it does not carry again that no deployment finished by then had deployed.
    let mut dropped_at: Vec<Vec<Option<Timestamp>>> =
        repos.iter().map(|r| vec![None; r.changes.len()]).collect();
    let mut forced: Vec<(Timestamp, usize, usize)> = repos
        .iter()
        .enumerate()
        .flat_map(|(r, repo)| {
            repo.forced
                .iter()
                .enumerate()
                .map(move |(k, f)| (f.0, r, k))
        })
        .collect();
    forced.sort();
    let mut next_forced = 0;
    // Where each live deployment's revision is in push order: a change of the working state
    // (repository, index among its changes, position), or one whose push left (no index).
    let locate = |revision: &str| -> Option<(usize, Option<usize>, u64)> {
        let hash = revision_hash(revision);
        repos
            .iter()
            .enumerate()
            .find_map(|(r, repo)| {
                let &i = repo.position_of.get(&hash)?;
                let change = &repo.changes[i];
                (change.commit().sha == *revision).then_some((r, Some(i), change.position))
            })
            .or_else(|| {
                repos
                    .iter()
                    .enumerate()
                    .find_map(|(r, repo)| Some((r, None, *repo.evicted.get(&hash)?)))
            })
    };
    let mut located: Vec<Option<(usize, Option<usize>, u64)>> = vec![None; facts.len()];
    for (d, fact) in facts.iter_mut().enumerate().skip(recent) {
        located[d] = locate(attempts[d - recent].1.fields.revision.as_str());
        fact.located = located[d].map(|(r, _, p)| (repos[r].key.clone(), p));
    }
    for &d in &production {
        if is_frozen(d) {
            continue;
        }
        drop_forced(
            &repos,
            &forced,
            &mut next_forced,
            Some(facts[d].finished_at),
            horizon,
            &deployed_by,
            &mut dropped_at,
        );
        let env = environment_of(catalog, attempt(d).fields);
        let revision = attempt(d).fields.revision.as_str();
        let seen_before = revisions_in_env
            .get(env)
            .is_some_and(|s| s.contains(revision))
            || context
                .deployed
                .get(env)
                .is_some_and(|s| s.contains(&revision_hash(revision)));
        let position = located[d].map(|(r, _, p)| (r, p));
        let below_current = match (position, current_in_env.get(env).copied().flatten()) {
            (Some((r, p)), Some((cr, cp))) => r == cr && p < cp,
            _ => false,
        };
        let rollback = seen_before || below_current;
        facts[d].rollback = rollback;
        facts[d].linked = position.is_some();
        if let Some((r, Some(i), _)) = located[d]
            && !rollback
        {
            let from = watermark[r].map_or(0, |w| w + 1);
            let last_expired = last_expired(facts[d].finished_at, horizon);
            let start = deployed.len();
            for (c, owner) in deployed_by[r].iter_mut().enumerate().take(i + 1).skip(from) {
                let change = &repos[r].changes[c];
                // A change pending longer than the horizon has expired (no lead time).
                let expired = change.commit().timestamp <= last_expired;
                if change.touches
                    && !change.frozen
                    && !expired
                    && owner.is_none()
                    && dropped_at[r][c].is_none()
                {
                    *owner = Some(d);
                    deployed.push((r, c));
                }
            }
            deployed_run[d] = start..deployed.len();
            watermark[r] = Some(watermark[r].map_or(i, |w| w.max(i)));
        }
        revisions_in_env.entry(env).or_default().insert(revision);
        current_in_env.insert(env, position);
    }
    drop_forced(
        &repos,
        &forced,
        &mut next_forced,
        None,
        horizon,
        &deployed_by,
        &mut dropped_at,
    );

    // Change facts and per-deployment lead times.
    let mut changes = Vec::with_capacity(repos.iter().map(|r| r.changes.len()).sum());
    let mut open_changes = Vec::new();
    for (r, repo) in repos.iter().enumerate() {
        for (c, change) in repo.changes.iter().enumerate() {
            if !change.touches || change.frozen {
                continue;
            }
            let by = deployed_by[r][c];
            if let Some((cut, span)) = final_before {
                let deployed_at = by.map(|d| facts[d].finished_at);
                if !change_parts_are_final(
                    change.commit().timestamp,
                    deployed_at,
                    dropped_at[r][c],
                    cut,
                    span,
                ) {
                    open_changes.push((repo.name.clone(), change.position));
                    continue;
                }
            }
            let commit = change.commit();
            changes.push(ChangeFact {
                service: service_name.clone(),
                repo: repo.name.clone(),
                commit: change.push.commit_ref(change.index as usize),
                timestamp: commit.timestamp,
                position: change.position,
                deployed_by: by.map(|d| facts[d].id.clone()),
                environment: by.map(|d| facts[d].environment.clone()),
                deployed_at: by.map(|d| facts[d].finished_at),
                dropped_at: dropped_at[r][c],
                fix: is_fix(definitions, repo, change),
            });
        }
    }
    let mut leads: Vec<f64> = Vec::new();
    for (d, run) in deployed_run.iter().enumerate().skip(recent) {
        let list = &deployed[run.clone()];
        facts[d].changes = list.len() as u32;
        leads.clear();
        leads.extend(list.iter().map(|&(r, c)| {
            secs(repos[r].changes[c].commit().timestamp, facts[d].finished_at).max(0.0)
        }));
        leads.sort_by(f64::total_cmp);
        facts[d].lead_time_p50 = crate::summary::nearest_rank(&leads, 0.5);
    }

    // Incidents and their attribution (§3).
    let mut incident_facts = Vec::with_capacity(incidents.len());
    let mut attributed: Vec<Vec<usize>> = vec![Vec::new(); facts.len()];
    for (k, (id, incident)) in incidents.iter().enumerate() {
        let target = attribute(&facts, &production, incident, window);
        if let Some(d) = target {
            attributed[d].push(k);
        }
        incident_facts.push(IncidentFact {
            id: id.to_string(),
            service: service.to_string(),
            title: incident.title.to_string(),
            opened_at: incident.opened_at,
            resolved_at: incident.resolved_at,
            attributed_to: target.map(|d| facts[d].id.to_string()),
        });
    }

    // Change failures, detection and recovery (§3, §4).
    let mut next_in_env: Vec<Option<usize>> = vec![None; facts.len()];
    let mut last_in_env: HashMap<&str, usize> = HashMap::default();
    for &d in &production {
        if let Some(prev) = last_in_env.insert(&*facts[d].environment, d) {
            next_in_env[prev] = Some(d);
        }
    }
    let mut pending: BTreeMap<String, Recovery> = BTreeMap::new();
    for &d in &production {
        // A frozen deployment is final, unless it failed and still waits for a recovery: then
        // its signals are followed on from where they stood when it froze.
        let carried = if is_frozen(d) {
            match context.unsettled.get(&*facts[d].id) {
                Some(p) => Some(p),
                None => continue,
            }
        } else {
            None
        };
        let mut reasons = Vec::new();
        let mut detected: Option<Timestamp> = None;
        let mut others: Vec<Timestamp> = Vec::new();
        let mut unrecovered = false;
        let mut recover = |at: Option<Timestamp>| match at {
            Some(at) => others.push(at),
            None => unrecovered = true,
        };
        if let Some(p) = carried {
            reasons = facts[d].failure_reasons.clone();
            detected = facts[d].detected_at;
            if let Some(at) = p.settled {
                recover(Some(at));
            }
        }
        if !attributed[d].is_empty() {
            if !reasons.contains(&FailureReason::Incident) {
                reasons.push(FailureReason::Incident);
            }
            for &k in &attributed[d] {
                let incident = &incidents[k].1;
                detected = Some(detected.map_or(incident.opened_at, |t| t.min(incident.opened_at)));
                recover(incident.resolved_at);
                let id = incidents[k].0;
                if !facts[d].incidents.iter().any(|known| known == id) {
                    facts[d].incidents.push(id.to_string());
                }
            }
        }
        if let Some(next) = next_in_env[d]
            && !is_frozen(next)
            && facts[next].rollback
            && secs(facts[d].finished_at, facts[next].finished_at) <= window as f64
        {
            if !reasons.contains(&FailureReason::Rollback) {
                reasons.push(FailureReason::Rollback);
            }
            let at = facts[next].finished_at;
            detected = Some(detected.map_or(at, |t| t.min(at)));
            recover(Some(at));
            facts[d].rolled_back_by = Some(facts[next].id.clone());
        }
        // A carried deployment's degradation is followed on if it was pending, settled if it had
        // recovered; only one that had none yet is looked for.
        let degraded = match carried {
            Some(p) => match &p.degraded {
                Some((app, at)) => Some((
                    *at,
                    app.as_str(),
                    degradation_recovery(&facts, &production, app, *at, &reports),
                )),
                None if reasons.contains(&FailureReason::Degraded) => None,
                None => degradation(&facts, &production, d, &reports, window),
            },
            None => degradation(&facts, &production, d, &reports, window),
        };
        let mut degraded_signal = None;
        if let Some((at, app, recovery)) = degraded {
            if !reasons.contains(&FailureReason::Degraded) {
                reasons.push(FailureReason::Degraded);
            }
            detected = Some(detected.map_or(at, |t| t.min(at)));
            if recovery.is_none() {
                unrecovered = true;
            }
            degraded_signal = Some((app.to_string(), at, recovery));
        }
        let failed = !reasons.is_empty();
        let latest = others
            .iter()
            .copied()
            .chain(degraded_signal.as_ref().and_then(|d| d.2))
            .max();
        facts[d].failure_reasons = reasons;
        facts[d].detected_at = detected;
        facts[d].recovered_at = if unrecovered { None } else { latest };
        if failed {
            pending.insert(
                facts[d].id.to_string(),
                Recovery {
                    others,
                    degraded: degraded_signal,
                },
            );
        }
    }

    // Rework (§5). Only failed deployments before it can make one a fix forward (few).
    let failed: Vec<(usize, usize)> = production
        .iter()
        .enumerate()
        .filter(|(_, f)| facts[**f].failed())
        .map(|(pos, &f)| (pos, f))
        .collect();
    for (pos, &d) in production.iter().enumerate() {
        if is_frozen(d) {
            continue;
        }
        let finished = facts[d].finished_at;
        let before = failed.partition_point(|(p, _)| *p < pos);
        let fix_forward = failed[..before].iter().any(|&(_, f)| {
            facts[f].environment == facts[d].environment
                && facts[f].detected_at.is_some_and(|t| t <= finished)
                && facts[f].recovered_at.is_none_or(|t| t > finished)
        });
        let list = &deployed[deployed_run[d].clone()];
        let all_fixes = !list.is_empty()
            && list
                .iter()
                .all(|&(r, c)| is_fix(definitions, &repos[r], &repos[r].changes[c]));
        facts[d].rework = facts[d].rollback || fix_forward || all_fixes;
    }

    // Frozen deployments leave the output, but for those still waiting for a recovery.
    let mut index = 0;
    facts.retain(|f| {
        index += 1;
        index > recent || context.unsettled.contains_key(&*f.id)
    });
    pending.retain(|id, _| facts.iter().any(|f| *f.id == **id));
    // Facts in time order (readers page through them newest first by binary search).
    changes.sort_by(|a, b| (a.timestamp, &a.repo, a.sha()).cmp(&(b.timestamp, &b.repo, b.sha())));
    ServiceFacts {
        pending,
        deployments: facts,
        changes,
        incidents: incident_facts,
        open_changes,
    }
}

/// The hash a revision is remembered by once its deployment is frozen.
pub fn revision_hash(revision: &str) -> u64 {
    doraflow_schemas::sha::commit_hash(revision)
}

/// The environment of an attempt: the one its source named, or for an application the
/// catalog's pin, its label, else `production` (metrics.md §1).
pub fn environment_of<'a>(catalog: &'a Catalog, fields: &'a AttemptFields) -> &'a str {
    match &fields.app {
        Some(app) => {
            catalog
                .app(app.kind, &app.name, Some(&fields.environment))
                .1
        }
        None => &fields.environment,
    }
}

/// Which attempts are in a production-tier environment: the tier the source states (GitLab),
/// else the environment's name matched by the production pattern. The pattern is a regular
/// expression and a service deploys to a handful of environments: each name is matched once.
pub struct Production<'a> {
    definitions: &'a Definitions,
    matched: Vec<(&'a str, bool)>,
}

impl<'a> Production<'a> {
    /// Nothing matched yet.
    pub fn new(definitions: &'a Definitions) -> Self {
        Self {
            definitions,
            matched: Vec::new(),
        }
    }

    /// True for an attempt in a production-tier environment.
    pub fn of(&mut self, catalog: &'a Catalog, fields: &'a AttemptFields) -> bool {
        if let Some(tier) = fields.tier {
            return tier == Tier::Production;
        }
        let environment = environment_of(catalog, fields);
        if let Some(&(_, production)) = self.matched.iter().find(|(e, _)| *e == environment) {
            return production;
        }
        let production = self.definitions.production.is_match(environment);
        self.matched.push((environment, production));
        production
    }
}

/// A health report with the environment it belongs to.
struct Report<'a> {
    app: &'a str,
    environment: &'a str,
    entry: &'a HealthEntry,
}

/// True when two revisions name the same commit (equal, or one a 7+ character prefix of the
/// other: some tools send short SHAs).
fn same_revision(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 7
        && long
            .get(..short.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(short))
}

/// The degradation signal of deployment `d` (§3): the first `Degraded` report of an application
/// of the service running `d`'s revision in `d`'s environment within the window after `d`
/// finished, with the application and its recovery.
fn degradation<'a>(
    facts: &[DeploymentFact],
    production: &[usize],
    d: usize,
    reports: &'a [Report],
    window: i64,
) -> Option<(Timestamp, &'a str, Option<Timestamp>)> {
    let deployment = &facts[d];
    let until = deployment.finished_at + chrono::Duration::seconds(window);
    let degraded = reports.iter().find(|r| {
        r.entry.status == HealthStatus::Degraded
            && r.entry.at >= deployment.finished_at
            && r.entry.at <= until
            && r.environment == &*deployment.environment
            && same_revision(&r.entry.revision, &deployment.revision)
    })?;
    let at = degraded.entry.at;
    let recovered = degradation_recovery(facts, production, degraded.app, at, reports);
    Some((at, degraded.app, recovered))
}

/// The recovery of a degradation reported at `at` (§4): the next `Healthy` report of that
/// application or the next production deployment of the service after the report, whichever
/// comes first.
fn degradation_recovery(
    facts: &[DeploymentFact],
    production: &[usize],
    app: &str,
    at: Timestamp,
    reports: &[Report],
) -> Option<Timestamp> {
    let healthy = reports
        .iter()
        .find(|r| r.app == app && r.entry.at > at && r.entry.status == HealthStatus::Healthy)
        .map(|r| r.entry.at);
    let next_deployment = production
        .iter()
        .map(|&p| facts[p].finished_at)
        .find(|&t| t > at);
    match (healthy, next_deployment) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Applies the forced pushes from `next` on that happened before `until` (all of them without it):
/// each drops the changes before it that it does not carry again and that nothing deployed yet.
fn drop_forced(
    repos: &[BoundRepo],
    forced: &[(Timestamp, usize, usize)],
    next: &mut usize,
    until: Option<Timestamp>,
    horizon: i64,
    deployed_by: &[Vec<Option<usize>>],
    dropped_at: &mut [Vec<Option<Timestamp>>],
) {
    while let Some(&(at, r, k)) = forced.get(*next) {
        if until.is_some_and(|u| at >= u) {
            break;
        }
        let last_expired = last_expired(at, horizon);
        for &c in &repos[r].forced[k].1 {
            let change = &repos[r].changes[c];
            if change.touches
                && change.commit().timestamp > last_expired
                && deployed_by[r][c].is_none()
                && dropped_at[r][c].is_none()
            {
                dropped_at[r][c] = Some(at);
            }
        }
        *next += 1;
    }
}

/// The deployment an incident is attributed to (§3): one named by revision prefix in its title,
/// else the latest production deployment finished at or before it opened, within the window.
fn attribute(
    facts: &[DeploymentFact],
    production: &[usize],
    incident: &SettledIncident,
    window: i64,
) -> Option<usize> {
    for prefix in named_prefixes(incident.title) {
        let named: Vec<usize> = production
            .iter()
            .copied()
            .filter(|&d| names(prefix, &facts[d].revision))
            .collect();
        if let Some(&first) = named.first() {
            let before = named
                .iter()
                .copied()
                .rfind(|&d| facts[d].finished_at <= incident.opened_at);
            return Some(before.unwrap_or(first));
        }
    }
    production
        .iter()
        .copied()
        .rfind(|&d| facts[d].finished_at <= incident.opened_at)
        .filter(|&d| millis_between(facts[d].finished_at, incident.opened_at) <= window * 1000)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use doraflow_schemas::time::Timestamp;

    use super::*;

    #[test]
    fn a_change_expires_as_whole_seconds_past_the_horizon_count() {
        let at = chrono::Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let horizon = 90 * 86_400;
        for nanos in [0, 1, 500_000_000, 999_999_999] {
            for offset in [
                -3,
                -1,
                0,
                1,
                2,
                horizon - 1,
                horizon,
                horizon + 1,
                horizon + 2,
            ] {
                let commit: Timestamp = chrono::Utc
                    .timestamp_opt(1_700_000_000 - offset, nanos)
                    .unwrap();
                assert_eq!(
                    commit <= last_expired(at, horizon),
                    (at - commit).num_seconds() > horizon,
                    "{offset} s {nanos} ns before"
                );
            }
        }
    }
}
