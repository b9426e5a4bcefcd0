//! The pieces of one step of the horizon's cut (see [`super::horizon`]): which changes are final
//! ([`Finality`]), which pushes leave the working state ([`Release`]), and how a service's facts
//! split into the final and the live part ([`split_at_cut`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use doraflow_schemas::time::Timestamp;
use doraflow_schemas::{ChangeFact, DeploymentFact};

use super::derive::{ServiceFacts, revision_hash};
use super::horizon::{Context, Pending, change_is_final};
use super::inputs::{Anchor, Inputs, PushEnds, RepoInputs};
use super::order::History;
use super::{HashMap, HashSet};
use crate::catalog::repo_key;

/// What a cut releases of one repository: the pushes of its tracked branch's history that are
/// all final and before the cut (a prefix of the history), whose commits are then remembered by
/// position, and old pushes to other branches.
pub(super) struct Release {
    /// The leaving pushes of the tracked branch, by address: the plan borrows them, and nothing
    /// is inserted into the repository's pushes (so nothing moves) until the release applies.
    /// (Their keys are two SHAs to copy for each push.)
    leaving: HashSet<usize>,
    located: Vec<(u64, u64)>,
    anchor: Option<Anchor>,
}

impl Release {
    pub(super) fn plan(
        repo: &RepoInputs,
        branch: &History,
        finals: &Finality,
        cut: Timestamp,
        span: Duration,
    ) -> Self {
        let base = repo.anchor.as_ref().map_or(0, |a| a.next_position);
        let mut leaving = HashSet::default();
        let mut leaving_changes = 0;
        let mut tip: Option<&PushEnds> = None;
        let finals = finals.repo(&repo.name);
        let old = cut - span;
        for &(ends, push, new_changes) in &branch.pushes {
            // The changes it brought first; its other commits came with pushes before it (all
            // final, or it would not be reached) or left the working state already.
            let brought = &branch.changes[leaving_changes..leaving_changes + new_changes];
            let all_final = push.pushed_at < cut
                && brought
                    .iter()
                    .all(|c| match finals.and_then(|f| f.get(c.position)) {
                        Some(done) => done,
                        // No service has it: final once pending longer than the horizon (its
                        // commit is read only then).
                        None => c.commit().timestamp < old,
                    });
            if !all_final {
                break;
            }
            leaving.insert(std::ptr::from_ref(push) as usize);
            leaving_changes += new_changes;
            tip = Some(ends);
        }
        // The leaving pushes brought the first changes of the history.
        let located = branch.changes[..leaving_changes]
            .iter()
            .map(|c| (c.hash, c.position))
            .collect();
        Self {
            leaving,
            located,
            anchor: tip.map(|tip| Anchor {
                tip: tip.after.to_string(),
                next_position: base + leaving_changes as u64,
            }),
        }
    }

    pub(super) fn apply(self, repo: &mut RepoInputs, cut: Timestamp) {
        repo.evicted.reserve(self.located.len());
        repo.evicted.extend(self.located);
        let RepoInputs {
            pushes,
            merged_labels,
            default_branch,
            ..
        } = repo;
        let tracked = default_branch.as_ref().map(|(_, b)| b);
        for (branch, pushes) in pushes.iter_mut() {
            if Some(branch) == tracked {
                pushes.retain(|push| {
                    let leaving = self.leaving.contains(&(std::ptr::from_ref(push) as usize));
                    if leaving && !merged_labels.is_empty() {
                        for commit in push.commits.iter() {
                            merged_labels.remove(&*commit.sha.text());
                        }
                    }
                    !leaving
                });
            } else {
                // Pushes to other branches carry no changes; old ones simply leave.
                pushes.retain(|push| push.pushed_at >= cut);
            }
        }
        pushes.retain(|branch, pushes| Some(branch) == tracked || !pushes.is_empty());
        if let Some(anchor) = self.anchor {
            repo.anchor = Some(anchor);
        }
    }
}

/// Which changes of the working state are final, over every service they touch: per repository
/// (display name), per position in its history from the first kept one. Noted service by
/// service ([`Finality::note`]), each as it is derived.
#[derive(Default)]
pub(super) struct Finality {
    repos: HashMap<Arc<str>, RepoFinality>,
}

/// [`Finality`] in one repository: the first kept position and, from it on, whether each change
/// is final for every service that has it (`None`: no service has it).
#[derive(Default)]
pub(super) struct RepoFinality {
    base: u64,
    states: Vec<Option<bool>>,
}

impl RepoFinality {
    /// Whether the change at `position` is final for every service that has it; `None` when no
    /// service has it.
    pub(super) fn get(&self, position: u64) -> Option<bool> {
        *self
            .states
            .get(usize::try_from(position.checked_sub(self.base)?).ok()?)?
    }

    fn note(&mut self, position: u64, done: bool) {
        let Some(index) = position.checked_sub(self.base) else {
            return;
        };
        let index = index as usize;
        if index >= self.states.len() {
            self.states.resize(index + 1, None);
        }
        self.states[index] = Some(self.states[index].unwrap_or(true) && done);
    }
}

impl Finality {
    /// Notes the changes of one service's facts (derived for the cut at `cut`).
    pub(super) fn note(
        &mut self,
        facts: &ServiceFacts,
        inputs: &Inputs,
        cut: Timestamp,
        span: Duration,
    ) {
        // A derivation of final facts only names the changes it left out (not final).
        let changes = facts
            .changes
            .iter()
            .map(|c| (&c.repo, c.position, change_is_final(c, cut, span)))
            .chain(facts.open_changes.iter().map(|(repo, p)| (repo, *p, false)));
        // Changes come in runs of one repository (one shared name): looked up once a run.
        let mut run: Option<(&Arc<str>, &mut RepoFinality)> = None;
        for (repo, position, done) in changes {
            let same = run
                .as_ref()
                .is_some_and(|(name, _)| Arc::ptr_eq(name, repo) || ***name == **repo);
            if !same {
                let states = self
                    .repos
                    .entry(repo.clone())
                    .or_insert_with(|| RepoFinality {
                        base: inputs
                            .repos
                            .get(&*repo_key(repo))
                            .and_then(|r| r.anchor.as_ref())
                            .map_or(0, |a| a.next_position),
                        states: Vec::new(),
                    });
                run = Some((repo, states));
            }
            if let Some((_, states)) = run.as_mut() {
                states.note(position, done);
            }
        }
    }

    /// The finality of one repository's changes (by display name), if any service has one.
    pub(super) fn repo(&self, repo: &str) -> Option<&RepoFinality> {
        self.repos.get(repo)
    }
}

/// Which of a service's frozen changes are still in the working state after a cut's release:
/// those are remembered ([`Context::frozen_shas`], by hash) so the live rules do not count them
/// again.
///
/// A service's frozen commits are looked up only in the branch histories of its repositories,
/// and histories skip evicted commits (`RepoInputs::evicted`, kept for good), so whether an
/// evicted one is remembered changes no fact. A change newly frozen from this cut's history of
/// a service's single repository is still there exactly when its push did not leave, that is
/// when its position is at or past the repository's anchor (a release takes a push of the
/// tracked branch only with eviction, and its changes are the history's first). So with one
/// repository, and every commit remembered from earlier cuts evicted (the default branch may
/// have changed since the others were remembered, and their pushes aged out uncounted),
/// positions answer what the set of the repository's pushed commits would. Otherwise the sets
/// are built, once per repository and cut: that was a twentieth of a cut, for every repository,
/// and reading every change's SHA again.
pub(super) enum KeptCommits<'s> {
    /// One repository, nothing remembered that is still there: changes from this position on.
    FromPosition(u64),
    /// The commits of the pushes still in the working state, per repository of the service.
    Sets(Vec<&'s HashSet<u64>>),
}

impl<'s> KeptCommits<'s> {
    /// The answer for a service of these repositories (after the release) that remembers these
    /// frozen commits: `sets` holds the repositories' sets built so far, and gets the ones
    /// needed.
    pub(super) fn of(
        repos: &[(&str, &RepoInputs)],
        remembered: &HashSet<u64>,
        sets: &'s mut HashMap<String, HashSet<u64>>,
    ) -> Self {
        if let [(_, repo)] = repos
            && remembered
                .iter()
                .all(|hash| repo.evicted.contains_key(hash))
        {
            return Self::FromPosition(repo.anchor.as_ref().map_or(0, |a| a.next_position));
        }
        for (key, repo) in repos {
            if !sets.contains_key(*key) {
                let hashes = repo.all_pushes().flat_map(|p| p.hashes.iter().copied());
                sets.insert(key.to_string(), hashes.collect());
            }
        }
        let sets: &'s HashMap<String, HashSet<u64>> = sets;
        Self::Sets(repos.iter().map(|(key, _)| &sets[*key]).collect())
    }

    /// Whether a commit remembered from an earlier cut is still there.
    fn keeps_remembered(&self, hash: u64) -> bool {
        match self {
            Self::FromPosition(_) => false,
            Self::Sets(sets) => sets.iter().any(|set| set.contains(&hash)),
        }
    }

    /// The hash to remember a newly frozen change (at `position`) by, if its commit is still
    /// there: the change is read only then, or when only the hash can tell.
    fn keeps_new(&self, position: u64, change: &ChangeFact) -> Option<u64> {
        match self {
            Self::FromPosition(first) => (position >= *first).then(|| change.sha().hash()),
            Self::Sets(_) => {
                let hash = change.sha().hash();
                self.keeps_remembered(hash).then_some(hash)
            }
        }
    }
}

/// One step of the cut: the instant, the horizon, the attribution window.
#[derive(Clone, Copy)]
pub(super) struct Cut {
    pub(super) at: Timestamp,
    pub(super) span: Duration,
    pub(super) window: Duration,
}

/// The value of `key` in a context's map, created as the default when absent: the key is copied
/// only then (each production deployment crossing a cut updates three such maps).
fn value_for<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// Splits a service's facts at the cut: returns the facts that became final (if any; the others,
/// possibly incomplete, are dropped), extends the context with the new final ones (but for the
/// frozen changes still in the working state: see [`remember_kept`], once the release has
/// applied), and collects the ids of the deployments and incidents whose inputs may leave.
pub(super) fn split_at_cut(
    facts: ServiceFacts,
    context: &mut Context,
    cut: Cut,
    leaving_attempts: &mut Vec<Arc<str>>,
    leaving_incidents: &mut Vec<String>,
) -> Option<ServiceFacts> {
    let Cut { at, span, window } = cut;
    let ServiceFacts {
        pending,
        deployments,
        mut changes,
        incidents,
        open_changes: _,
    } = facts;
    // The final changes and deployments stay where they are (a derivation for the cut has
    // mostly final ones: few move); the incidents' list is sized up front.
    changes.retain(|c| change_is_final(c, at, span));
    let mut newly = ServiceFacts {
        changes,
        incidents: Vec::with_capacity(incidents.len()),
        ..Default::default()
    };
    let waits = |d: &DeploymentFact| {
        d.succeeded && d.production && d.failed() && d.recovered_at.is_none_or(|t| t >= at)
    };
    // Deployments that stay live: an incident attributed to one stays live with it, or the
    // deployment would lose it.
    let staying: HashSet<&str> = deployments
        .iter()
        .filter(|d| d.finished_at >= at || waits(d))
        .map(|d| &*d.id)
        .collect();
    for i in incidents {
        let deployment_final = i
            .attributed_to
            .as_deref()
            .is_none_or(|d| !staying.contains(d));
        if i.opened_at < at && i.resolved_at.is_some_and(|t| t < at) && deployment_final {
            leaving_incidents.push(i.id.clone());
            newly.incidents.push(i);
        }
    }
    drop(staying);
    let mut unsettled: BTreeMap<String, Pending> = BTreeMap::new();
    let mut waiting: Vec<DeploymentFact> = Vec::new();
    let mut deployments = deployments;
    deployments.retain(|d| {
        if d.finished_at >= at {
            return false;
        }
        // Crossing the cut for the first time (not already waiting for a recovery).
        if !context.unsettled.contains_key(&*d.id) {
            leaving_attempts.push(d.id.clone());
            if d.succeeded && d.production {
                value_for(&mut context.deployed, &d.environment).insert(revision_hash(&d.revision));
                let current = value_for(&mut context.current, &d.environment);
                match (current.as_mut(), &d.located) {
                    (Some((repo, position)), Some((r, p))) if **repo == **r => *position = *p,
                    (_, located) => *current = located.as_ref().map(|(r, p)| (r.to_string(), *p)),
                }
                if let (Some((repo, position)), false) = (&d.located, d.rollback) {
                    let mark = value_for(&mut context.watermark, repo);
                    *mark = (*mark).max(*position);
                }
            }
        }
        // One waiting for a recovery moves to the recent list (few do).
        let recovering = waits(d);
        if recovering {
            unsettled.insert(d.id.to_string(), Pending::of(pending.get(&*d.id), at));
            waiting.push(d.clone());
        }
        !recovering
    });
    newly.deployments = deployments;

    // The recent list: frozen production deployments within a window of the cut, and those
    // waiting for a recovery, as they stand now.
    let mut recent: Vec<DeploymentFact> = std::mem::take(&mut context.recent);
    recent.retain(|d| !context.unsettled.contains_key(&*d.id));
    recent.retain(|d| d.finished_at >= at - window);
    // Only the newly final ones within the window are copied (the others would be dropped).
    recent.extend(
        newly
            .deployments
            .iter()
            .filter(|d| d.succeeded && d.production && d.finished_at >= at - window)
            .cloned(),
    );
    recent.extend(waiting);
    recent.sort_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)));
    context.recent = recent;
    context.unsettled = unsettled;
    let nothing_new =
        newly.deployments.is_empty() && newly.changes.is_empty() && newly.incidents.is_empty();
    if nothing_new {
        return None;
    }
    newly.sort_by_time();
    Some(newly)
}

/// The positions of a service's newly frozen changes, in their order there: what [`remember_kept`]
/// reads of them (a change fact lies on cache lines of its own, long out of the caches by then).
pub(super) fn change_positions(newly: Option<&ServiceFacts>) -> Vec<u64> {
    newly.map_or_else(Vec::new, |facts| {
        facts.changes.iter().map(|c| c.position).collect()
    })
}

/// Remembers which of a service's frozen changes are still in the working state after the
/// release (`kept`): those remembered from earlier cuts that still are, and those newly frozen
/// (`newly`, whose changes' positions are `positions`: [`change_positions`]) that are.
pub(super) fn remember_kept(
    context: &mut Context,
    newly: Option<&ServiceFacts>,
    positions: &[u64],
    kept: &KeptCommits,
) {
    context
        .frozen_shas
        .retain(|hash| kept.keeps_remembered(*hash));
    let Some(newly) = newly else {
        return;
    };
    context.frozen_shas.extend(
        positions
            .iter()
            .zip(&newly.changes)
            .filter_map(|(position, c)| kept.keeps_new(*position, c)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::event::{Commit, Push};
    use doraflow_schemas::fact::{CommitRecord, CommitRef};
    use doraflow_schemas::sha::commit_hash;
    use doraflow_schemas::time::parse_rfc3339;

    #[test]
    fn kept_commits_read_positions_only_where_they_answer_exactly() {
        let at = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let change = |position: u64, sha: &str| ChangeFact {
            service: "one".into(),
            repo: "acme/one".into(),
            commit: CommitRef::single(CommitRecord {
                sha: sha.into(),
                timestamp: at,
                title: "feat".into(),
            }),
            timestamp: at,
            position,
            deployed_by: None,
            environment: None,
            deployed_at: None,
            dropped_at: None,
            fix: false,
        };
        let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
        let mut inputs = Inputs::default();
        for repo in ["acme/one", "acme/two"] {
            let commits = [&a, &b].map(|sha| Commit {
                sha: sha.as_str().into(),
                timestamp: at,
                title: "feat".into(),
                files: vec![],
            });
            let push = Push {
                repo: repo.into(),
                branch: "main".into(),
                default_branch: "main".into(),
                before: "0".repeat(40).into(),
                after: b.clone().into(),
                forced: false,
                pushed_at: at,
                commits: commits.to_vec(),
                commits_not_listed: 0,
            };
            inputs.add_push(repo, push, false, None);
        }
        // `a` left the working state with an earlier push: position 7 comes next.
        let one = inputs.repos.get_mut("acme/one").unwrap();
        one.evicted.insert(commit_hash(&a), 6);
        one.anchor = Some(Anchor {
            tip: a.clone(),
            next_position: 7,
        });
        let one = [("acme/one", &inputs.repos["acme/one"])];
        let mut sets = HashMap::default();

        // One repository, nothing remembered that is still there: positions answer, no set is
        // built, and what was remembered is forgotten.
        let remembered = HashSet::from_iter([commit_hash(&a)]);
        let kept = KeptCommits::of(&one, &remembered, &mut sets);
        assert!(matches!(kept, KeptCommits::FromPosition(7)));
        assert_eq!(kept.keeps_new(7, &change(7, &b)), Some(commit_hash(&b)));
        assert_eq!(kept.keeps_new(6, &change(6, &a)), None);
        assert!(!kept.keeps_remembered(commit_hash(&a)));
        assert!(sets.is_empty());

        // A remembered commit not evicted (its push may have aged out on another branch): the
        // pushes' commits answer.
        let remembered = HashSet::from_iter([commit_hash(&b)]);
        let kept = KeptCommits::of(&one, &remembered, &mut sets);
        assert!(matches!(kept, KeptCommits::Sets(_)));
        assert!(kept.keeps_remembered(commit_hash(&b)) && !kept.keeps_remembered(commit_hash(&c)));
        assert_eq!(kept.keeps_new(6, &change(6, &a)), Some(commit_hash(&a)));
        assert_eq!(kept.keeps_new(8, &change(8, &c)), None);

        // Two repositories: their pushes' commits answer, whatever is remembered.
        let two = [one[0], ("acme/two", &inputs.repos["acme/two"])];
        let kept = KeptCommits::of(&two, &HashSet::default(), &mut sets);
        assert!(matches!(kept, KeptCommits::Sets(_)));
        assert!(kept.keeps_remembered(commit_hash(&a)) && !kept.keeps_remembered(commit_hash(&c)));
    }
}
