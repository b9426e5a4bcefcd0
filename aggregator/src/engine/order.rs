//! Push order (metrics.md §2.1): the changes of a repository's tracked branch in history order.
//! A push whose `before` is another push's `after` comes after it, whatever order the deliveries
//! arrived in; within a push, commits keep their array order (oldest first).

use super::HashSet;

use doraflow_schemas::event::Commit;

use super::inputs::{PushKey, RepoInputs, StoredPush, commit_hash};

/// A change with its position in push order.
#[derive(Debug, Clone)]
pub struct OrderedChange<'a> {
    /// The commit.
    pub commit: &'a Commit,
    /// Position (0-based) in the branch's history order.
    pub position: u64,
    /// The hash the commit is remembered by once its push leaves
    /// ([`commit_hash`](super::inputs::commit_hash)).
    pub hash: u64,
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
    pub carried: HashSet<&'a str>,
}

/// A branch's history: its changes in push order and its forced pushes.
#[derive(Debug, Clone, Default)]
pub struct History<'a> {
    /// Changes in push order.
    pub changes: Vec<OrderedChange<'a>>,
    /// Forced pushes, in push order.
    pub forced: Vec<ForcedPush<'a>>,
    /// The pushes in push order, each with the number of changes it brought first.
    pub pushes: Vec<(&'a PushKey, &'a StoredPush, usize)>,
}

/// The changes of the repository's tracked (default) branch, in push order. A commit carried by
/// several pushes keeps its first position.
pub fn ordered_changes(repo: &RepoInputs) -> Vec<OrderedChange<'_>> {
    history(repo).changes
}

/// The tracked branch's history: changes in push order plus the forced pushes among them.
pub fn history(repo: &RepoInputs) -> History<'_> {
    let Some((_, branch)) = &repo.default_branch else {
        return History::default();
    };
    type Pushes<'a> = Vec<(&'a String, &'a String, &'a StoredPush)>;
    let (keys, pushes): (Vec<&PushKey>, Pushes) = repo
        .pushes
        .iter()
        .filter(|((b, _, _), _)| b == branch)
        .map(|(key, push)| (key, (&key.1, &key.2, push)))
        .unzip();
    // A total order of the branch's pushes (push time, head, then base), so the map's order
    // never matters.
    let sort_key = |i: &usize| {
        (
            pushes[*i].2.pushed_at,
            pushes[*i].1.as_str(),
            pushes[*i].0.as_str(),
        )
    };
    // The pushes by the hash of their base and of their head (the commit hash: a SHA's first 16
    // hex digits), sorted: a push's successors and predecessors are a range there, compared
    // exactly. (Hash maps keyed by the 40-character heads cost two cache misses per push.)
    let by_hash = |hash_of: &dyn Fn(usize) -> u64| {
        let mut list: Vec<(u64, usize)> = (0..pushes.len()).map(|i| (hash_of(i), i)).collect();
        list.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| sort_key(&a.1).cmp(&sort_key(&b.1)))
        });
        list
    };
    let by_before = by_hash(&|i| commit_hash(pushes[i].0));
    let by_after = by_hash(&|i| commit_hash(pushes[i].1));
    let with_hash = |list: &[(u64, usize)], hash: u64| {
        let start = list.partition_point(|(h, _)| *h < hash);
        let end = start + list[start..].partition_point(|(h, _)| *h == hash);
        start..end
    };
    let continues_some_push = |base: &str| {
        by_after[with_hash(&by_after, commit_hash(base))]
            .iter()
            .any(|(_, n)| pushes[*n].1 == base)
    };
    let mut roots: Vec<usize> = (0..pushes.len())
        .filter(|i| !continues_some_push(pushes[*i].0) || pushes[*i].0 == pushes[*i].1)
        .collect();
    roots.sort_by_key(sort_key);
    // The push continuing the part of the history that left the working state comes first, as
    // it did when that part was still there.
    if let Some(anchor) = &repo.anchor {
        roots.sort_by_key(|i| *pushes[*i].0 != anchor.tip);
    }
    let base = repo.anchor.as_ref().map_or(0, |a| a.next_position);
    // Pushes only reachable through a cycle come last, in time order.
    let mut rest: Vec<usize> = (0..pushes.len()).collect();
    rest.sort_by_key(sort_key);

    let mut visited = vec![false; pushes.len()];
    let mut order = Vec::with_capacity(pushes.len());
    for start in roots.into_iter().chain(rest) {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if visited[i] {
                continue;
            }
            visited[i] = true;
            order.push(i);
            // Its successors: the pushes based on its head. Reversed so that the earliest is
            // visited first.
            let head = pushes[i].1;
            let successors = &by_before[with_hash(&by_before, commit_hash(head))];
            stack.extend(
                successors
                    .iter()
                    .rev()
                    .map(|(_, n)| *n)
                    .filter(|n| pushes[*n].0 == head && !visited[*n]),
            );
        }
    }

    // Commits by the hash they are remembered by (a SHA's first 16 hex digits).
    let mut seen: HashSet<u64> =
        HashSet::with_capacity_and_hasher(pushes.len() * 4, Default::default());
    let mut out = Vec::with_capacity(seen.capacity());
    let mut forced = Vec::new();
    let mut visited_pushes = Vec::with_capacity(order.len());
    for i in order {
        let push = pushes[i].2;
        let before = out.len();
        if push.forced {
            forced.push(ForcedPush {
                index: out.len(),
                pushed_at: push.pushed_at,
                carried: push.commits.iter().map(|c| &*c.sha).collect(),
            });
        }
        for (commit, hash) in push.hashed_commits() {
            if !repo.evicted.is_empty() && repo.evicted.contains_key(&hash) {
                continue;
            }
            if seen.insert(hash) {
                out.push(OrderedChange {
                    commit,
                    position: base + out.len() as u64,
                    hash,
                });
            }
        }
        visited_pushes.push((keys[i], push, out.len() - before));
    }
    History {
        changes: out,
        forced,
        pushes: visited_pushes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::event::Push;
    use doraflow_schemas::time::parse_rfc3339;

    use crate::engine::inputs::Inputs;

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
            inputs.add_push(p, false);
        }
        ordered_changes(&inputs.repos["acme/app"])
            .into_iter()
            .map(|c| c.commit.sha.to_string())
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

    #[test]
    fn other_branches_are_not_changes() {
        let mut feature = push("0000", "f", &["f"], "2026-01-01T00:00:00Z");
        feature.branch = "feature".into();
        let main = push("0000", "m", &["m"], "2026-01-01T00:00:00Z");
        assert_eq!(order_of(&[feature, main]), vec!["m"]);
    }
}
