//! The pushes of one branch: kept in a vector in the order they arrived, found by their ends
//! (base and head) through a table of indices into it. A hash map of whole pushes (buckets of 168
//! bytes) had each new push write cold lines and each growth move every push (a sixth of
//! applying events); a history for a derivation or a cut now reads the pushes in memory order.
//! Nothing depends on the order they are kept in: push order sorts them (see `order`).

use std::hash::BuildHasher;

use super::inputs::{PushEnds, StoredPush};

/// The pushes of one branch, by their ends.
#[derive(Debug, Clone, Default)]
pub struct BranchPushes {
    /// Indices into `pushes`, found by the hash of the ends they hold.
    by_ends: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// The pushes with their ends, in the order they arrived (less those that left).
    pushes: Vec<(PushEnds, StoredPush)>,
}

impl BranchPushes {
    fn hash(hasher: &foldhash::fast::RandomState, ends: &PushEnds) -> u64 {
        hasher.hash_one(ends)
    }

    /// The number of pushes (tests count them).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.pushes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.pushes.is_empty()
    }

    /// Every push with its ends, in the order kept.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&PushEnds, &StoredPush)> {
        self.pushes.iter().map(|(ends, push)| (ends, push))
    }

    /// Every push, in the order kept.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &StoredPush> {
        self.pushes.iter().map(|(_, push)| push)
    }

    /// The push with these ends, found as [`Self::upsert`] finds it (tests look pushes up).
    #[cfg(test)]
    fn get(&self, ends: &PushEnds) -> Option<&StoredPush> {
        let pushes = &self.pushes;
        let index = self.by_ends.find(Self::hash(&self.hasher, ends), |i| {
            pushes[*i as usize].0 == *ends
        })?;
        Some(&pushes[*index as usize].1)
    }

    /// Adds a push, or replaces the one with the same ends when it differs; true when anything
    /// changed.
    pub fn upsert(&mut self, ends: PushEnds, push: StoredPush) -> bool {
        let (pushes, hasher) = (&mut self.pushes, &self.hasher);
        let entry = self.by_ends.entry(
            Self::hash(hasher, &ends),
            |i| pushes[*i as usize].0 == ends,
            |i| Self::hash(hasher, &pushes[*i as usize].0),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(entry) => {
                let kept = &mut pushes[*entry.get() as usize].1;
                if *kept == push {
                    return false;
                }
                *kept = push;
            }
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let index = u32::try_from(pushes.len()).expect("fewer than 2^32 pushes a branch");
                pushes.push((ends, push));
                entry.insert(index);
            }
        }
        true
    }

    /// Keeps only the pushes `keep` says to (each asked in place, where [`Self::iter`] lent it
    /// out); the index is built again when any left.
    pub fn retain(&mut self, mut keep: impl FnMut(&StoredPush) -> bool) {
        let before = self.pushes.len();
        self.pushes.retain(|(_, push)| keep(push));
        if self.pushes.len() == before {
            return;
        }
        let (pushes, hasher) = (&self.pushes, &self.hasher);
        let rehash = |i: &u32| Self::hash(hasher, &pushes[*i as usize].0);
        self.by_ends = hashbrown::HashTable::with_capacity(pushes.len());
        for index in 0..pushes.len() as u32 {
            self.by_ends.insert_unique(rehash(&index), index, rehash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::event::Commit;
    use doraflow_schemas::sha::Sha;

    fn ends(before: &str, after: &str) -> PushEnds {
        PushEnds {
            before: Sha::of(before),
            after: Sha::of(after),
        }
    }

    fn push(sha: &str, forced: bool) -> StoredPush {
        let at = doraflow_schemas::time::parse_rfc3339("2026-03-01T10:00:00Z").unwrap();
        let commit = Commit {
            sha: sha.into(),
            timestamp: at,
            title: "feat: x".into(),
            files: Vec::new(),
        };
        StoredPush::new(forced, at, vec![commit])
    }

    #[test]
    fn a_push_is_found_by_its_ends_and_replaced_only_when_it_differs() {
        let mut branch = BranchPushes::default();
        assert!(branch.upsert(ends("a", "b"), push("b", false)));
        assert!(branch.upsert(ends("b", "c"), push("c", false)));
        assert!(
            !branch.upsert(ends("a", "b"), push("b", false)),
            "the same again"
        );
        assert_eq!(branch.len(), 2);
        assert!(branch.upsert(ends("a", "b"), push("b", true)), "now forced");
        assert_eq!(branch.len(), 2);
        assert!(branch.get(&ends("a", "b")).unwrap().forced);
        assert!(!branch.get(&ends("b", "c")).unwrap().forced);
        assert!(branch.get(&ends("a", "c")).is_none());
    }

    #[test]
    fn pushes_that_stay_are_still_found_after_others_leave() {
        let mut branch = BranchPushes::default();
        let shas: Vec<String> = (0..100).map(|n| format!("{n:040x}")).collect();
        for pair in shas.windows(2) {
            branch.upsert(ends(&pair[0], &pair[1]), push(&pair[1], false));
        }
        let leaving: Vec<*const StoredPush> = branch
            .iter()
            .take(60)
            .map(|(_, p)| std::ptr::from_ref(p))
            .collect();
        branch.retain(|p| !leaving.contains(&std::ptr::from_ref(p)));
        assert_eq!(branch.len(), 39);
        for (n, pair) in shas.windows(2).enumerate() {
            let found = branch.get(&ends(&pair[0], &pair[1]));
            assert_eq!(found.is_some(), n >= 60, "push {n}");
        }
        assert!(branch.upsert(ends("x", "y"), push("y", false)));
        assert!(branch.get(&ends("x", "y")).is_some());
        assert_eq!(branch.values().count(), 40);
    }
}
