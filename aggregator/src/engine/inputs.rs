//! The engine's working state: every normalized event it has seen, deduplicated and kept in a
//! form where arrival order does not matter (sets and maps keyed by what the event is about).
//! Facts are derived from this state, so the same events in any order give the same facts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{HashMap, HashSet};

use doraflow_schemas::event::{
    AppRef, Commit, DeploymentState, DeploymentUpdate, HealthReport, HealthStatus, IncidentChange,
    IncidentUpdate, PullRequestMerged, Push, Tier,
};
use doraflow_schemas::fact::{CommitRecord, CommitRef};
use doraflow_schemas::pattern::Pattern;
use doraflow_schemas::time::Timestamp;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use xxhash_rust::xxh3::Xxh3Default;

use super::attempts::{AttemptSlot, Attempts};
use super::branch::BranchPushes;
use crate::catalog::repo_key;
use doraflow_schemas::sha::{Sha, delivery_hash};

/// Everything the engine knows, deduplicated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inputs {
    /// Hashes of the delivery keys already applied.
    pub seen: Generations,
    /// Per repository (lower-case `owner/name`; a hash map: looked up per push, and nothing
    /// depends on its order).
    pub repos: HashMap<String, RepoInputs>,
    /// Deployment attempts by source-given id, each in a numbered slot (nothing depends on
    /// their order; see `attempts`).
    pub deployments: Attempts,
    /// Incidents by source-given id.
    pub incidents: HashMap<String, IncidentInputs>,
    /// Health reports by application name.
    #[serde(default)]
    pub health: BTreeMap<String, BTreeSet<HealthEntry>>,
}

/// One health report of an application, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HealthEntry {
    /// When it was reported.
    pub at: Timestamp,
    /// Healthy or degraded.
    pub status: HealthStatus,
    /// The revision the application ran.
    pub revision: String,
    /// The application's `environment` label.
    pub environment: Option<String>,
}

/// A push's key among its branch's pushes: its base and head (the payload's `before` and
/// `after`). Checkpoints write it, with its branch, as three strings, as before.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PushEnds {
    /// The head the push started from.
    pub before: Sha,
    /// The head it left.
    pub after: Sha,
}

impl PushEnds {
    /// The ends a push or checkpoint names (texts are kept only when they are not full SHAs).
    pub fn new(before: impl Into<Sha>, after: impl Into<Sha>) -> Self {
        Self {
            before: before.into(),
            after: after.into(),
        }
    }
}

/// Pushes and merged pull requests of one repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepoInputs {
    /// Display name as the payloads spell it.
    pub name: String,
    /// The default branch named by the latest push (by push time, then name).
    pub default_branch: Option<(Timestamp, String)>,
    /// Pushes by branch, then by their ends: push order reads only the tracked branch's, and a
    /// push keeps no copy of its branch's name. Looked up per push applied (a hash map of
    /// branches, each a [`BranchPushes`]); nothing depends on their order (push order sorts
    /// them, see `order`).
    #[serde(with = "pushes_as_pairs")]
    pub pushes: HashMap<String, BranchPushes>,
    /// Labels of merged pull requests, by merge commit SHA.
    pub merged_labels: BTreeMap<String, BTreeSet<String>>,
    /// Where the kept history continues after older pushes left the working state.
    #[serde(default)]
    pub anchor: Option<Anchor>,
    /// The commits that left with them: hash of the SHA → position. Kept for good (16 bytes a
    /// commit): a later push carrying one again does not make it a new change, and a deployment
    /// of one is still located, whenever it comes.
    #[serde(default)]
    pub evicted: HashMap<u64, u64>,
}

impl RepoInputs {
    /// The pushes of the tracked (default) branch.
    pub fn tracked_pushes(&self) -> Option<&BranchPushes> {
        let (_, branch) = self.default_branch.as_ref()?;
        self.pushes.get(branch)
    }

    /// Every push, of every branch.
    pub fn all_pushes(&self) -> impl Iterator<Item = &StoredPush> {
        self.pushes.values().flat_map(|pushes| pushes.values())
    }
}

/// The end of the part of a branch's history that left the working state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// The head after the last push that left.
    pub tip: String,
    /// The position the next change takes.
    pub next_position: u64,
}

/// Hashes kept for two horizons: [`Generations::rotate`] drops the older generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generations {
    current: HashSet<u64>,
    previous: HashSet<u64>,
}

impl Generations {
    /// True when the hash is in either generation.
    pub fn contains(&self, hash: u64) -> bool {
        self.current.contains(&hash) || self.previous.contains(&hash)
    }

    /// Adds a hash to the current generation.
    pub fn insert(&mut self, hash: u64) {
        self.current.insert(hash);
    }

    /// Adds a hash to the current generation unless either generation has it; true when it was
    /// new (two lookups, where asking first and adding then took three).
    pub fn insert_new(&mut self, hash: u64) -> bool {
        !self.previous.contains(&hash) && self.current.insert(hash)
    }

    /// Starts a new generation, dropping the oldest. The new one is sized like the last (a
    /// generation spans a horizon, so it is about as large): it is not rehashed as it grows.
    pub fn rotate(&mut self) {
        let expected = self.current.len();
        self.previous = std::mem::replace(
            &mut self.current,
            HashSet::with_capacity_and_hasher(expected, Default::default()),
        );
    }
}

/// One push, as much as the engine needs.
#[derive(Debug, Clone)]
pub struct StoredPush {
    /// Forced push.
    pub forced: bool,
    /// Push time.
    pub pushed_at: Timestamp,
    /// Commits oldest first, without their file lists: shared with the change facts derived
    /// from them ([`CommitRef`]), which outlive the push.
    pub commits: Arc<[CommitRecord]>,
    /// The commits' changed files, in the same order, when they are kept (a repository with
    /// path globs); empty otherwise. Kept apart so that the facts sharing the commits do not
    /// keep them too.
    pub files: Vec<Vec<String>>,
    /// The commits' hashes ([`commit_hash`](doraflow_schemas::sha::commit_hash)), in the same
    /// order: computed once as the push arrives (push order and every cut read them, and the
    /// SHAs lie elsewhere in memory). Those of a push of up to four commits (most pushes) are
    /// kept in the push itself, where push order reads it anyway, rather than on a cache line of
    /// their own. Checkpoints leave them out; they are computed again as one is read.
    pub hashes: SmallVec<[u64; 4]>,
    /// Which commits' titles match the hotfix pattern (metrics.md §5), worked out as the push
    /// arrives, while its titles are in the caches (a derivation would read each title again,
    /// on a cache line of its own): one flag a commit, or none when no title matches. `None`
    /// when not worked out (a push read back from a checkpoint): derivation matches the titles.
    pub fix_titles: Option<Vec<bool>>,
}

/// Pushes are equal when what they hold is: the hashes and title flags follow from it.
impl PartialEq for StoredPush {
    fn eq(&self, other: &Self) -> bool {
        (self.forced, self.pushed_at, &self.commits, &self.files)
            == (other.forced, other.pushed_at, &other.commits, &other.files)
    }
}

/// A stored push as checkpoints hold it (without the hashes).
#[derive(Deserialize)]
struct PushRecord {
    forced: bool,
    pushed_at: Timestamp,
    commits: Vec<Commit>,
}

impl StoredPush {
    /// The push bringing `commits`, with their hashes (their file lists are kept apart).
    pub fn new(forced: bool, pushed_at: Timestamp, mut commits: Vec<Commit>) -> Self {
        let files = if commits.iter().any(|c| !c.files.is_empty()) {
            commits
                .iter_mut()
                .map(|c| std::mem::take(&mut c.files))
                .collect()
        } else {
            Vec::new()
        };
        let commits: Arc<[CommitRecord]> = commits.into_iter().map(CommitRecord::from).collect();
        // From the SHAs' bytes, read once as the commits were stored.
        let hashes = commits.iter().map(|c| c.sha.hash()).collect();
        Self {
            forced,
            pushed_at,
            commits,
            files,
            hashes,
            fix_titles: None,
        }
    }

    /// The same with its titles matched against the hotfix pattern (see
    /// [`StoredPush::fix_titles`]).
    pub fn with_fix_titles(mut self, hotfix: &Pattern) -> Self {
        let any = self.commits.iter().any(|c| hotfix.is_match(&c.title));
        self.fix_titles = Some(if any {
            self.commits
                .iter()
                .map(|c| hotfix.is_match(&c.title))
                .collect()
        } else {
            Vec::new()
        });
        self
    }

    /// Whether the title of the commit at `index` matches the hotfix pattern, when worked out
    /// as the push arrived.
    pub fn title_is_fix(&self, index: usize) -> Option<bool> {
        let fixes = self.fix_titles.as_ref()?;
        Some(fixes.get(index).copied().unwrap_or(false))
    }

    /// The commits with their hashes.
    pub fn hashed_commits(&self) -> impl Iterator<Item = (&CommitRecord, u64)> {
        self.commits.iter().zip(self.hashes.iter().copied())
    }

    /// The files the commit at `index` changed (none when they are not kept).
    pub fn files_of(&self, index: usize) -> &[String] {
        self.files.get(index).map_or(&[], Vec::as_slice)
    }

    /// The commit at `index`, as a change fact shares it.
    pub fn commit_ref(&self, index: usize) -> CommitRef {
        CommitRef::new(Arc::clone(&self.commits), index)
    }
}

/// Checkpoints hold a push as it was written before its file lists were kept apart: each commit
/// (as [`Commit`] is written) with its files.
impl Serialize for StoredPush {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;

        let commits: Vec<Commit> = self
            .commits
            .iter()
            .enumerate()
            .map(|(i, c)| Commit {
                sha: c.sha.clone(),
                timestamp: c.timestamp,
                title: c.title.clone(),
                files: self.files_of(i).to_vec(),
            })
            .collect();
        let mut push = serializer.serialize_struct("StoredPush", 3)?;
        push.serialize_field("forced", &self.forced)?;
        push.serialize_field("pushed_at", &self.pushed_at)?;
        push.serialize_field("commits", &commits)?;
        push.end()
    }
}

/// Every update of one deployment attempt.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AttemptInputs {
    /// Updates keyed by (time, state), each with its environment, revision, repo and hint.
    pub updates: SmallMap<(Timestamp, DeploymentState), AttemptFields>,
}

/// The descriptive fields of a deployment update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptFields {
    /// Repository.
    pub repo: Option<String>,
    /// Service named in the payload.
    pub service_hint: Option<String>,
    /// Environment name (for an application: its label, or empty).
    pub environment: String,
    /// Revision.
    pub revision: String,
    /// The tier the source stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The deployed application (Argo CD, Flux, CDEvents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
}

impl From<DeploymentUpdate> for AttemptFields {
    /// The descriptive fields of an update, moved out of it.
    fn from(update: DeploymentUpdate) -> Self {
        Self {
            repo: update.repo,
            service_hint: update.service_hint,
            environment: update.environment,
            revision: update.revision,
            tier: update.tier,
            app: update.app,
        }
    }
}

/// Every update of one incident.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IncidentInputs {
    /// Updates keyed by (time, change), each with the descriptive fields it carried.
    pub updates: SmallMap<(Timestamp, IncidentChange), IncidentFields>,
}

/// The descriptive fields of an incident update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFields {
    /// Source service id.
    pub service_id: Option<String>,
    /// Source service name.
    pub service_name: Option<String>,
    /// Title.
    pub title: String,
    /// Creation time, when given.
    pub created_at: Option<Timestamp>,
}

/// A map for a handful of entries, kept as a sorted vector: a deployment or an incident has a
/// few status updates, and a `BTreeMap` node per attempt cost ten times the memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SmallMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> SmallMap<K, V> {
    /// Inserts, or replaces a different value; returns whether anything changed, and the value
    /// now there (equal to `value`).
    pub fn replace_if_different(&mut self, key: K, value: V) -> (bool, &V)
    where
        V: PartialEq,
    {
        match self.0.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) if self.0[i].1 == value => (false, &self.0[i].1),
            Ok(i) => {
                self.0[i].1 = value;
                (true, &self.0[i].1)
            }
            Err(i) => {
                // Most attempts and incidents get one or two updates: the first takes one slot,
                // not the four a vector starts with (an attempt's update is some 150 bytes).
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (key, value));
                (true, &self.0[i].1)
            }
        }
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }
}

/// Serializes pushes as a list of ((branch, before, after), push) pairs, as they were written
/// when a push was keyed by those three strings (JSON keys must be strings); a push read back
/// gets its hashes from its commits again.
mod pushes_as_pairs {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{BranchPushes, HashMap, PushEnds, PushRecord, StoredPush};

    pub fn serialize<S: Serializer>(
        map: &HashMap<String, BranchPushes>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter().flat_map(|(branch, pushes)| {
            pushes
                .iter()
                .map(move |(ends, push)| ((branch, ends.before.text(), ends.after.text()), push))
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<HashMap<String, BranchPushes>, D::Error> {
        let mut map: HashMap<String, BranchPushes> = HashMap::default();
        for ((branch, before, after), push) in
            Vec::<((String, String, String), PushRecord)>::deserialize(deserializer)?
        {
            let ends = PushEnds::new(before, after);
            let stored = StoredPush::new(push.forced, push.pushed_at, push.commits);
            map.entry(branch).or_default().upsert(ends, stored);
        }
        Ok(map)
    }
}

/// The [`delivery_hash`] of the parts joined, joined on the stack: xxh3's one-shot hash of a short
/// text costs two thirds of its streaming state (the engine hashes an id's parts for every
/// deployment and incident update). Longer texts are streamed.
pub fn hash_of_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut joined = [0u8; 240];
    let mut len = 0;
    let mut parts = parts.into_iter();
    while let Some(part) = parts.next() {
        let Some(slot) = joined.get_mut(len..len + part.len()) else {
            let mut hasher = Xxh3Default::new();
            hasher.update(&joined[..len]);
            hasher.update(part.as_bytes());
            for part in parts {
                hasher.update(part.as_bytes());
            }
            return hasher.digest();
        };
        slot.copy_from_slice(part.as_bytes());
        len += part.len();
    }
    xxhash_rust::xxh3::xxh3_64(&joined[..len])
}

/// The id of a deployment attempt or incident: its source and its id in the source,
/// `source:id`.
fn source_id(source: &str, id: &str) -> String {
    [source, ":", id].concat()
}

/// Runs `f` on [`source_id`], joined on the stack when short (as ids are): an update of a known
/// attempt then allocates nothing.
fn with_source_id<R>(source: &str, id: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut joined = [0u8; 128];
    let (head, len) = (source.len(), source.len() + 1 + id.len());
    if let Some(out) = joined.get_mut(..len) {
        out[..head].copy_from_slice(source.as_bytes());
        out[head] = b':';
        out[head + 1..].copy_from_slice(id.as_bytes());
        if let Ok(text) = std::str::from_utf8(out) {
            return f(text);
        }
    }
    f(&source_id(source, id))
}

impl Inputs {
    /// Records a delivery key; false when it was seen before (a duplicate).
    pub fn first_sighting(&mut self, key: &str) -> bool {
        self.seen.insert_new(delivery_hash(key))
    }

    /// Adds a push to the repository named `repo` (the push's own `repo` is not read: the caller
    /// keeps the name, the engine stores the rest without copying it); false when it was already
    /// known exactly (nothing changed). Changed file lists are kept only with `keep_files` (a
    /// repository with path globs in the catalog); with `hotfix`, the commits' titles are matched
    /// against it now ([`StoredPush::fix_titles`]).
    pub fn add_push(
        &mut self,
        repo: &str,
        push: Push,
        keep_files: bool,
        hotfix: Option<&Pattern>,
    ) -> bool {
        let repo = self.repo_mut(repo);
        let mut changed = false;
        let newer = repo.default_branch.as_ref().is_none_or(|(at, name)| {
            (push.pushed_at, push.default_branch.as_str()) > (*at, name.as_str())
        });
        if newer {
            repo.default_branch = Some((push.pushed_at, push.default_branch));
            changed = true;
        }
        let ends = PushEnds::new(push.before, push.after);
        let mut commits = push.commits;
        if !keep_files {
            for commit in commits.iter_mut().filter(|c| !c.files.is_empty()) {
                commit.files = Vec::new();
            }
        }
        let mut stored = StoredPush::new(push.forced, push.pushed_at, commits);
        if let Some(hotfix) = hotfix {
            stored = stored.with_fix_titles(hotfix);
        }
        let push_changed = repo
            .pushes
            .entry(push.branch)
            .or_default()
            .upsert(ends, stored);
        changed || push_changed
    }

    /// The inputs of a repository by its name in any case, created on first sight.
    fn repo_mut(&mut self, name: &str) -> &mut RepoInputs {
        let key = repo_key(name);
        if !self.repos.contains_key(&*key) {
            let repo = RepoInputs {
                name: name.to_string(),
                ..Default::default()
            };
            self.repos.insert(key.to_string(), repo);
        }
        self.repos.get_mut(&*key).expect("inserted above")
    }

    /// Adds a merged pull request; false when nothing changed.
    pub fn add_pull_request(&mut self, pr: &PullRequestMerged) -> bool {
        let repo = self.repo_mut(&pr.repo);
        let known = repo.merged_labels.contains_key(&pr.merge_commit_sha);
        let labels = repo
            .merged_labels
            .entry(pr.merge_commit_sha.clone())
            .or_default();
        let before = labels.len();
        labels.extend(pr.labels.iter().map(|l| l.to_lowercase()));
        !known || labels.len() != before
    }

    /// Adds a deployment update (its fields are stored, not copied); returns the attempt's slot,
    /// whether anything changed, whether the attempt was known before, and the update's
    /// descriptive fields as stored.
    pub fn add_deployment(
        &mut self,
        source: &str,
        update: DeploymentUpdate,
    ) -> (AttemptSlot, bool, bool, &AttemptFields) {
        let key = (update.at, update.state);
        let deployments = &mut self.deployments;
        let (slot, attempt, known) =
            with_source_id(source, &update.id, |id| deployments.upsert(id));
        let (changed, fields) = attempt
            .updates
            .replace_if_different(key, AttemptFields::from(update));
        (slot, changed, known, fields)
    }

    /// Adds a health report; returns whether it was new.
    pub fn add_health(&mut self, report: &HealthReport) -> bool {
        self.health
            .entry(report.app.clone())
            .or_default()
            .insert(HealthEntry {
                at: report.at,
                status: report.status,
                revision: report.revision.to_lowercase(),
                environment: report.environment.clone(),
            })
    }

    /// Adds an incident update (its fields are stored, not copied); returns the incident id,
    /// whether anything changed, and the update's descriptive fields as stored.
    pub fn add_incident(
        &mut self,
        source: &str,
        update: IncidentUpdate,
    ) -> (String, bool, &IncidentFields) {
        let id = source_id(source, &update.id);
        let key = (update.occurred_at, update.change);
        let fields = IncidentFields {
            service_id: update.service_id,
            service_name: update.service_name,
            title: update.title,
            created_at: update.created_at,
        };
        let (changed, fields) = self
            .incidents
            .entry(id.clone())
            .or_default()
            .updates
            .replace_if_different(key, fields);
        (id, changed, fields)
    }
}

/// A deployment attempt's settled view: its descriptive fields and its end, if it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt<'a> {
    /// Descriptive fields (from the latest update).
    pub fields: &'a AttemptFields,
    /// The terminal status with the latest time: (finished_at, succeeded).
    pub end: Option<(Timestamp, bool)>,
}

impl AttemptInputs {
    /// Settles the attempt (metrics.md §1): the outcome is the terminal status with the latest
    /// event time; non-terminal states do not end it.
    pub fn settle(&self) -> Option<Attempt<'_>> {
        let (_, fields) = self.updates.iter().next_back()?;
        let end = self
            .updates
            .keys()
            .rev()
            .find(|(_, state)| *state != DeploymentState::Pending)
            .map(|(at, state)| (*at, *state == DeploymentState::Success));
        Some(Attempt { fields, end })
    }
}

/// An incident's settled view (borrowing its latest update's text).
#[derive(Debug, Clone, PartialEq)]
pub struct SettledIncident<'a> {
    /// Source service id and name.
    pub service_id: Option<&'a str>,
    /// Source service name.
    pub service_name: Option<&'a str>,
    /// Latest title.
    pub title: &'a str,
    /// `data.created_at`, else the first trigger's time, else the first update's time.
    pub opened_at: Timestamp,
    /// The last resolve, unless a reopen came after it.
    pub resolved_at: Option<Timestamp>,
}

impl IncidentInputs {
    /// Settles the incident (metrics.md §1).
    pub fn settle(&self) -> Option<SettledIncident<'_>> {
        let (_, latest) = self.updates.iter().next_back()?;
        let created = self.updates.values().filter_map(|f| f.created_at).min();
        let first_trigger = self
            .updates
            .keys()
            .find(|(_, change)| *change == IncidentChange::Triggered)
            .map(|(at, _)| *at);
        let first_any = self.updates.keys().next().map(|(at, _)| *at)?;
        let mut resolved_at = None;
        for (at, change) in self.updates.keys() {
            match change {
                IncidentChange::Resolved => resolved_at = Some(*at),
                IncidentChange::Reopened => resolved_at = None,
                IncidentChange::Triggered | IncidentChange::Acknowledged => {}
            }
        }
        Some(SettledIncident {
            service_id: latest.service_id.as_deref(),
            service_name: latest.service_name.as_deref(),
            title: &latest.title,
            opened_at: created.or(first_trigger).unwrap_or(first_any),
            resolved_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn keys_hash_as_the_published_xxh3_64() {
        // Checkpoints hold these hashes: the algorithm's reference values, not this build's.
        assert_eq!(delivery_hash(""), 0x2D06_8005_38D3_94C2);
        assert_eq!(
            hash_of_parts(["github", ":", "42"]),
            delivery_hash("github:42")
        );
        assert_ne!(delivery_hash("github:42"), delivery_hash("github:43"));
        // Parts longer than the stack's room are streamed, to the same hash.
        let long = "x".repeat(300);
        for parts in [
            ["a", ":", &long],
            [&long, ":", "b"],
            [&long[..239], ":", "b"],
            [&long[..238], ":", "b"],
        ] {
            assert_eq!(hash_of_parts(parts), delivery_hash(&parts.concat()));
        }
    }

    /// A push keeps its commits' file lists apart from the commits change facts share, and a
    /// checkpoint holds each commit with its files, as before: read back, it is the same push.
    #[test]
    fn pushes_keep_files_apart_and_checkpoints_hold_them_with_their_commits() {
        let at = doraflow_schemas::time::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let commit = |sha: &str, files: &[&str]| Commit {
            sha: sha.into(),
            timestamp: at,
            title: "feat: x".into(),
            files: files.iter().map(|f| f.to_string()).collect(),
        };
        let ends = PushEnds {
            before: Sha::of(&"0".repeat(40)),
            after: Sha::of(SHA),
        };
        let push = StoredPush::new(
            false,
            at,
            vec![commit("c1", &["svc/a.rs", "b.rs"]), commit(SHA, &[])],
        );
        assert_eq!(push.files_of(0), ["svc/a.rs", "b.rs"]);
        assert!(push.files_of(1).is_empty());
        assert!(push.commit_ref(1).get().sha == *SHA);

        let mut pushes: HashMap<String, BranchPushes> = HashMap::default();
        pushes
            .entry("main".into())
            .or_default()
            .upsert(ends, push.clone());
        let repo = RepoInputs {
            name: "acme/app".into(),
            pushes,
            ..Default::default()
        };
        let json = serde_json::to_value(&repo).unwrap();
        // As a push was written when keyed by its branch, base and head.
        assert_eq!(
            json["pushes"][0][0],
            serde_json::json!(["main", "0".repeat(40), SHA])
        );
        let commits = &json["pushes"][0][1]["commits"];
        assert_eq!(commits[0]["files"], serde_json::json!(["svc/a.rs", "b.rs"]));
        assert_eq!(commits[0]["sha"], "c1");
        assert!(commits[1].get("files").is_none());
        let back: RepoInputs = serde_json::from_value(json).unwrap();
        assert_eq!(back.all_pushes().next(), Some(&push));
        assert_eq!(
            back.pushes["main"].iter().next().map(|(ends, _)| ends),
            repo.pushes["main"].iter().next().map(|(ends, _)| ends)
        );

        // Without files, none are kept.
        let bare = StoredPush::new(false, at, vec![commit("c", &[])]);
        assert!(bare.files.is_empty() && bare.files_of(0).is_empty());
    }
}
