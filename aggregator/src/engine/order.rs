//! Push order (metrics.md §2.1): the changes of a repository's tracked branch in history order.
//! A push whose `before` is another push's `after` comes after it, whatever order the deliveries
//! arrived in; within a push, commits keep their array order (oldest first).

use std::collections::hash_map::Entry;

use super::{HashMap, HashSet};

use chrono::Duration;
use doraflow_schemas::config::Definitions;
use doraflow_schemas::fact::CommitRecord;
use doraflow_schemas::time::Timestamp;

use super::inputs::{PushEnds, RepoInputs, StoredPush};
use doraflow_schemas::sha::Sha;

/// A change with its position in push order.
#[derive(Debug, Clone)]
pub struct OrderedChange<'a> {
    /// The push it came with (its commit, files, and the commit as a fact shares it).
    pub push: &'a StoredPush,
    /// Its place among the push's commits.
    pub index: u32,
    /// Position (0-based) in the branch's history order.
    pub position: u64,
    /// The hash the commit is remembered by once its push leaves
    /// ([`commit_hash`](doraflow_schemas::sha::commit_hash)).
    pub hash: u64,
}

impl<'a> OrderedChange<'a> {
    /// The commit.
    pub fn commit(&self) -> &'a CommitRecord {
        &self.push.commits[self.index as usize]
    }
}

/// A forced push in push order: the changes before `index` that no deployment had deployed by
/// `pushed_at` and that it does not carry again are dropped (metrics.md §2.5).
#[derive(Debug, Clone)]
pub struct ForcedPush<'a> {
    /// Index into the ordered changes where this push's own changes begin.
    pub index: usize,
    /// When the push happened.
    pub pushed_at: doraflow_schemas::time::Timestamp,
    /// The commits the push carries.
    pub carried: HashSet<&'a Sha>,
}

/// A branch's history: its changes in push order and its forced pushes.
#[derive(Debug, Clone, Default)]
pub struct History<'a> {
    /// Changes in push order.
    pub changes: Vec<OrderedChange<'a>>,
    /// Forced pushes, in push order.
    pub forced: Vec<ForcedPush<'a>>,
    /// The pushes in push order, each with the number of changes it brought first.
    pub pushes: Vec<(&'a PushEnds, &'a StoredPush, usize)>,
    /// Where each change is in `changes`, by its hash (the commit hash it is remembered by).
    pub index: HashMap<u64, usize>,
    /// Of a history built for a cut ([`history_for_cut`]) that left its last pushes out: the
    /// hashes of their commits, sorted. `None`: the history is whole.
    pub left_out: Option<Vec<u64>>,
}

impl History<'_> {
    /// Whether this history left out one of these commits (by hash): then a derivation that
    /// deploys one needs the whole history.
    pub fn leaves_out(&self, hashes: &[u64]) -> bool {
        self.left_out
            .as_ref()
            .is_some_and(|out| hashes.iter().any(|h| out.binary_search(h).is_ok()))
    }
}

/// Where a history built for a cut may stop (see [`history_for_cut`]).
#[derive(Debug, Clone, Copy)]
pub struct CutShort {
    /// The cut.
    pub cut: Timestamp,
    /// The last instant a derivation for the cut reads deployments up to (the cut plus the
    /// attribution window).
    pub until: Timestamp,
    /// The horizon: a change pending since before `cut - span` is final.
    pub span: Duration,
}

impl CutShort {
    /// Where a derivation for a cut at `cut` under these definitions may stop reading.
    pub fn at(cut: Timestamp, definitions: &Definitions) -> Self {
        Self {
            cut,
            until: cut + Duration::seconds(definitions.attribution_window_secs),
            span: Duration::seconds(definitions.horizon_secs),
        }
    }
}

/// The changes of the repository's tracked (default) branch, in push order. A commit carried by
/// several pushes keeps its first position.
pub fn ordered_changes(repo: &RepoInputs) -> Vec<OrderedChange<'_>> {
    history(repo).changes
}

/// The tracked branch's history: changes in push order plus the forced pushes among them.
pub fn history(repo: &RepoInputs) -> History<'_> {
    history_with(repo, None)
}

/// The same for a derivation of the facts a cut makes final (`derive::final_only`): it stops
/// before the first push (in push order) later than `until`, when nothing from there on can
/// change a final fact. The changes kept are a prefix of the whole history's, with the same
/// positions. The pushes left out bring only changes that are not final, and change no final
/// fact: a derivation that deploys one of their commits (by `until`; see [`History::leaves_out`])
/// builds the whole history; none of their forced pushes happened before the cut (so what they
/// drop is dropped after it); none of their commits is older than `cut - span` (final by age).
/// Otherwise the history is whole.
pub fn history_for_cut(repo: &RepoInputs, short: CutShort) -> History<'_> {
    history_with(repo, Some(short))
}

fn history_with(repo: &RepoInputs, short: Option<CutShort>) -> History<'_> {
    let Some(tracked) = repo.tracked_pushes() else {
        return History::default();
    };
    let pushes: Vec<(&PushEnds, &StoredPush)> = tracked.iter().collect();
    // A total order of the branch's pushes (push time, head, then base), so the map's order
    // never matters.
    let sort_key = |i: &usize| {
        (
            pushes[*i].1.pushed_at,
            &pushes[*i].0.after,
            &pushes[*i].0.before,
        )
    };
    // The pushes by the hash of their base and of their head (the commit hash: a SHA's first 16
    // hex digits), sorted: a push's successors and predecessors are a range there, compared
    // exactly. (Hash maps keyed by the 40-character heads cost two cache misses per push.)
    let by_hash = |hash_of: &dyn Fn(usize) -> u64| {
        let mut list: Vec<(u64, usize)> = (0..pushes.len()).map(|i| (hash_of(i), i)).collect();
        // By hash, then the few pushes of one hash by the total order (sorting by both at once
        // cost a comparison closure per step, 4 % of the engine).
        list.sort_unstable();
        for run in list.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| sort_key(&a.1).cmp(&sort_key(&b.1)));
            }
        }
        list
    };
    let by_before = by_hash(&|i| pushes[i].0.before.hash());
    let by_after = by_hash(&|i| pushes[i].0.after.hash());
    let with_hash = |list: &[(u64, usize)], hash: u64| {
        let start = list.partition_point(|(h, _)| *h < hash);
        let end = start + list[start..].partition_point(|(h, _)| *h == hash);
        start..end
    };
    // Ends are compared as kept with the push's key: a full SHA by its bytes.
    let continues_some_push = |i: usize| {
        let base = &pushes[i].0.before;
        by_after[with_hash(&by_after, base.hash())]
            .iter()
            .any(|(_, n)| pushes[*n].0.after == *base)
    };
    let loops = |i: usize| pushes[i].0.before == pushes[i].0.after;
    let mut roots: Vec<usize> = (0..pushes.len())
        .filter(|&i| !continues_some_push(i) || loops(i))
        .collect();
    roots.sort_by_key(sort_key);
    // The push continuing the part of the history that left the working state comes first, as
    // it did when that part was still there.
    if let Some(anchor) = &repo.anchor {
        let tip = Sha::of(&anchor.tip);
        roots.sort_by_key(|i| pushes[*i].0.before != tip);
    }
    let base = repo.anchor.as_ref().map_or(0, |a| a.next_position);
    let mut visited = vec![false; pushes.len()];
    let mut order = Vec::with_capacity(pushes.len());
    let visit = |start: usize, visited: &mut [bool], order: &mut Vec<usize>| {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if visited[i] {
                continue;
            }
            visited[i] = true;
            order.push(i);
            // Its successors: the pushes based on its head. Reversed so that the earliest is
            // visited first.
            let head = &pushes[i].0.after;
            let successors = &by_before[with_hash(&by_before, head.hash())];
            stack.extend(
                successors
                    .iter()
                    .rev()
                    .map(|(_, n)| *n)
                    .filter(|&n| !visited[n] && pushes[n].0.before == *head),
            );
        }
    };
    for start in roots {
        visit(start, &mut visited, &mut order);
    }
    // Pushes only reachable through a cycle come last, in time order (sorted only when there
    // are any).
    if order.len() < pushes.len() {
        let mut rest: Vec<usize> = (0..pushes.len()).filter(|&i| !visited[i]).collect();
        rest.sort_by_key(sort_key);
        for start in rest {
            visit(start, &mut visited, &mut order);
        }
    }

    let (kept, left_out) = match short.and_then(|short| tail_of(&order, &pushes, short)) {
        Some((start, left_out)) => (start, Some(left_out)),
        None => (order.len(), None),
    };

    // Commits by the hash they are remembered by (a SHA's first 16 hex digits).
    let mut index: HashMap<u64, usize> =
        HashMap::with_capacity_and_hasher(kept * 4, Default::default());
    let mut out = Vec::with_capacity(index.capacity());
    let mut forced = Vec::new();
    let mut visited_pushes = Vec::with_capacity(kept);
    for &i in &order[..kept] {
        let (ends, push) = pushes[i];
        let before = out.len();
        if push.forced {
            forced.push(ForcedPush {
                index: out.len(),
                pushed_at: push.pushed_at,
                carried: push.commits.iter().map(|c| &c.sha).collect(),
            });
        }
        for (place, hash) in push.hashes.iter().copied().enumerate() {
            if !repo.evicted.is_empty() && repo.evicted.contains_key(&hash) {
                continue;
            }
            if let Entry::Vacant(entry) = index.entry(hash) {
                entry.insert(out.len());
                out.push(OrderedChange {
                    push,
                    index: place as u32,
                    position: base + out.len() as u64,
                    hash,
                });
            }
        }
        visited_pushes.push((ends, push, out.len() - before));
    }
    History {
        changes: out,
        forced,
        pushes: visited_pushes,
        index,
        left_out,
    }
}

/// Where a history for a cut may stop: the index in `order` of the first push later than
/// `until`, and the sorted hashes of the commits from there on; `None` when it must be whole (a
/// forced push from there on happened before the cut, or a commit is older than `cut - span`).
fn tail_of(
    order: &[usize],
    pushes: &[(&PushEnds, &StoredPush)],
    short: CutShort,
) -> Option<(usize, Vec<u64>)> {
    let start = order
        .iter()
        .position(|&i| pushes[i].1.pushed_at > short.until)?;
    let old = short.cut - short.span;
    let mut left_out = Vec::new();
    for &i in &order[start..] {
        let push = pushes[i].1;
        if push.forced && push.pushed_at < short.cut {
            return None;
        }
        for (commit, hash) in push.hashed_commits() {
            if commit.timestamp < old {
                return None;
            }
            left_out.push(hash);
        }
    }
    left_out.sort_unstable();
    left_out.dedup();
    Some((start, left_out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::event::{Commit, Push};
    use doraflow_schemas::time::parse_rfc3339;

    use crate::engine::inputs::Inputs;
    use doraflow_schemas::sha::commit_hash;

    fn push(before: &str, after: &str, shas: &[&str], at: &str) -> Push {
        Push {
            repo: "acme/app".into(),
            branch: "main".into(),
            default_branch: "main".into(),
            before: before.into(),
            after: after.into(),
            forced: false,
            pushed_at: parse_rfc3339(at).unwrap(),
            commits: shas
                .iter()
                .map(|s| Commit {
                    sha: (*s).into(),
                    timestamp: parse_rfc3339(at).unwrap(),
                    title: "x".into(),
                    files: vec![],
                })
                .collect(),
            commits_not_listed: 0,
        }
    }

    fn order_of(pushes: &[Push]) -> Vec<String> {
        let mut inputs = Inputs::default();
        for p in pushes {
            inputs.add_push(&p.repo, p.clone(), false, None);
        }
        ordered_changes(&inputs.repos["acme/app"])
            .into_iter()
            .map(|c| c.commit().sha.to_string())
            .collect()
    }

    #[test]
    fn pushes_chain_by_before_and_after_whatever_the_arrival_order() {
        // The later push carries an earlier timestamp (clock skew), yet chains after the first.
        let a = push("0000", "b", &["a", "b"], "2026-01-02T00:00:00Z");
        let b = push("b", "d", &["c", "d"], "2026-01-01T00:00:00Z");
        let c = push("d", "e", &["e"], "2026-01-03T00:00:00Z");
        let expected = vec!["a", "b", "c", "d", "e"];
        assert_eq!(order_of(&[a.clone(), b.clone(), c.clone()]), expected);
        assert_eq!(order_of(&[c.clone(), b.clone(), a.clone()]), expected);
        assert_eq!(order_of(&[b, c, a]), expected);
    }

    #[test]
    fn unconnected_pushes_at_the_same_time_order_by_head_then_base() {
        let at = "2026-01-01T00:00:00Z";
        let x = push("1111", "b", &["x"], at);
        let y = push("2222", "a", &["y"], at);
        let z = push("0000", "a", &["z"], at);
        let expected = vec!["z", "y", "x"];
        assert_eq!(order_of(&[x.clone(), y.clone(), z.clone()]), expected);
        assert_eq!(order_of(&[z.clone(), x.clone(), y.clone()]), expected);
        assert_eq!(order_of(&[y, z, x]), expected);
    }

    fn cut_short(pushes: &[Push], cut: &str) -> (Vec<String>, Option<Vec<u64>>) {
        let mut inputs = Inputs::default();
        for p in pushes {
            inputs.add_push(&p.repo, p.clone(), false, None);
        }
        let cut = parse_rfc3339(cut).unwrap();
        let short = CutShort {
            cut,
            until: cut + Duration::days(1),
            span: Duration::days(3),
        };
        let history = history_for_cut(&inputs.repos["acme/app"], short);
        let shas = history.changes.iter().map(|c| c.commit().sha.to_string());
        (shas.collect(), history.left_out)
    }

    #[test]
    fn a_history_for_a_cut_stops_before_the_first_push_after_the_window() {
        let a = push("0000", "aa", &["aa"], "2026-01-01T00:00:00Z");
        // Pushed within the window after the cut: kept.
        let b = push("aa", "bb", &["bb"], "2026-01-03T12:00:00Z");
        // After it: left out, and so is the push after it, earlier as it says it is.
        let c = push("bb", "dd", &["cc", "dd"], "2026-01-04T01:00:00Z");
        let d = push("dd", "ee", &["ee"], "2026-01-03T13:00:00Z");
        let (kept, left_out) = cut_short(&[d, c, b, a], "2026-01-03T00:00:00Z");
        assert_eq!(kept, vec!["aa", "bb"]);
        let mut expected: Vec<u64> = ["cc", "dd", "ee"].iter().map(|s| commit_hash(s)).collect();
        expected.sort_unstable();
        assert_eq!(left_out, Some(expected));
    }

    #[test]
    fn a_history_for_a_cut_is_whole_when_what_follows_could_be_final() {
        let cut = "2026-01-10T00:00:00Z";
        let a = push("0000", "aa", &["aa"], "2026-01-09T00:00:00Z");
        let b = push("aa", "bb", &["bb"], "2026-01-12T00:00:00Z");
        // Nothing later than the window: whole.
        assert_eq!(
            cut_short(std::slice::from_ref(&a), cut),
            (vec!["aa".to_string()], None)
        );
        assert!(cut_short(&[a.clone(), b.clone()], cut).1.is_some());
        // A forced push after the first one left out but before the cut (its clock says so).
        let mut forced = push("bb", "cc", &["cc"], "2026-01-09T12:00:00Z");
        forced.forced = true;
        let (kept, left_out) = cut_short(&[a.clone(), b.clone(), forced], cut);
        assert_eq!((kept.len(), left_out), (3, None));
        // A commit older than the cut minus the horizon, pushed late: final by age.
        let mut old = push("bb", "cc", &["cc"], "2026-01-12T01:00:00Z");
        old.commits[0].timestamp = parse_rfc3339("2026-01-06T00:00:00Z").unwrap();
        let (kept, left_out) = cut_short(&[a, b, old], cut);
        assert_eq!((kept.len(), left_out), (3, None));
    }

    #[test]
    fn pushes_only_reachable_through_a_cycle_come_last_in_time_order() {
        // A force-push back to an earlier head makes a cycle: neither push starts the history.
        let root = push("0000", "aa", &["r"], "2026-01-01T00:00:00Z");
        let ahead = push("bb", "cc", &["x"], "2026-01-03T00:00:00Z");
        let back = push("cc", "bb", &["y"], "2026-01-02T00:00:00Z");
        let expected = vec!["r", "y", "x"];
        assert_eq!(
            order_of(&[root.clone(), ahead.clone(), back.clone()]),
            expected
        );
        assert_eq!(order_of(&[back, ahead, root]), expected);
    }

    #[test]
    fn other_branches_are_not_changes() {
        let mut feature = push("0000", "f", &["f"], "2026-01-01T00:00:00Z");
        feature.branch = "feature".into();
        let main = push("0000", "m", &["m"], "2026-01-01T00:00:00Z");
        assert_eq!(order_of(&[feature, main]), vec!["m"]);
    }
}
