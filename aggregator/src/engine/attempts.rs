//! Deployment attempts in numbered slots: the engine files attempts under their services by slot,
//! so deriving a service reads its attempts by index instead of hashing and comparing each id
//! again (that was a tenth of a step of the cut). A slot freed as its attempt leaves is reused.
//! Checkpoints hold a map from id to inputs, as before slots.

use std::hash::BuildHasher;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::HashMap;
use super::inputs::AttemptInputs;

/// The number of an attempt's slot in [`Attempts`].
pub type AttemptSlot = u32;

/// Deployment attempts by source-given id, each in a numbered slot.
#[derive(Debug, Clone, Default)]
pub struct Attempts {
    /// Slots, found by the hash of the id they hold.
    by_id: hashbrown::HashTable<AttemptSlot>,
    hasher: foldhash::fast::RandomState,
    /// Id and inputs per slot; `None`: free. The id is shared with the facts derived from the
    /// attempt (a copy a deployment and derivation before).
    slots: Vec<Option<(Arc<str>, AttemptInputs)>>,
    /// Free slots.
    free: Vec<AttemptSlot>,
}

impl Attempts {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    fn id_at(slots: &[Option<(Arc<str>, AttemptInputs)>], slot: AttemptSlot) -> &str {
        slots[slot as usize].as_ref().map_or("", |(id, _)| id)
    }

    /// The number of attempts.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The slot of an attempt.
    pub fn slot_of(&self, id: &str) -> Option<AttemptSlot> {
        let slots = &self.slots;
        self.by_id
            .find(self.hash(id), |s| Self::id_at(slots, *s) == id)
            .copied()
    }

    /// Whether an attempt is there.
    pub fn contains_key(&self, id: &str) -> bool {
        self.slot_of(id).is_some()
    }

    /// An attempt's inputs by id.
    pub fn get(&self, id: &str) -> Option<&AttemptInputs> {
        self.at(self.slot_of(id)?).map(|(_, inputs)| inputs)
    }

    /// The id and inputs in a slot, unless it is free.
    pub fn at(&self, slot: AttemptSlot) -> Option<(&Arc<str>, &AttemptInputs)> {
        let (id, inputs) = self.slots.get(slot as usize)?.as_ref()?;
        Some((id, inputs))
    }

    /// An attempt's slot and inputs, created empty on first sight (the id is kept then); also
    /// whether it was known.
    pub fn upsert<I>(&mut self, id: I) -> (AttemptSlot, &mut AttemptInputs, bool)
    where
        I: AsRef<str> + Into<Arc<str>>,
    {
        let hash = self.hash(id.as_ref());
        let (slots, hasher) = (&mut self.slots, &self.hasher);
        let entry = self.by_id.entry(
            hash,
            |s| Self::id_at(slots, *s) == id.as_ref(),
            |s| hasher.hash_one(Self::id_at(slots, *s)),
        );
        let (slot, known) = match entry {
            hashbrown::hash_table::Entry::Occupied(entry) => (*entry.get(), true),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                let filled = Some((id.into(), AttemptInputs::default()));
                let slot = match self.free.pop() {
                    Some(slot) => {
                        slots[slot as usize] = filled;
                        slot
                    }
                    None => {
                        slots.push(filled);
                        AttemptSlot::try_from(slots.len() - 1).expect("fewer than 2^32 attempts")
                    }
                };
                entry.insert(slot);
                (slot, false)
            }
        };
        let (_, inputs) = slots[slot as usize].as_mut().expect("a filled slot");
        (slot, inputs, known)
    }

    /// Removes an attempt; returns the slot it freed.
    pub fn remove(&mut self, id: &str) -> Option<AttemptSlot> {
        let slots = &self.slots;
        let entry = self
            .by_id
            .find_entry(self.hash(id), |s| Self::id_at(slots, *s) == id)
            .ok()?;
        let (slot, _) = entry.remove();
        self.slots[slot as usize] = None;
        self.free.push(slot);
        Some(slot)
    }

    /// Slot, id and inputs of every attempt, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (AttemptSlot, &str, &AttemptInputs)> {
        self.slots.iter().enumerate().filter_map(|(slot, entry)| {
            let (id, inputs) = entry.as_ref()?;
            Some((slot as AttemptSlot, &**id, inputs))
        })
    }
}

impl Serialize for Attempts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter().map(|(_, id, inputs)| (id, inputs)))
    }
}

impl<'de> Deserialize<'de> for Attempts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = HashMap::<String, AttemptInputs>::deserialize(deserializer)?;
        let mut attempts = Self::default();
        for (id, inputs) in map {
            *attempts.upsert(id).1 = inputs;
        }
        Ok(attempts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_keeps_its_slot_and_a_freed_slot_is_reused() {
        let mut attempts = Attempts::default();
        let (first, _, known) = attempts.upsert("github:1");
        assert!(!known);
        let (second, _, _) = attempts.upsert("github:2");
        assert_ne!(first, second);
        let (again, _, known) = attempts.upsert("github:1");
        assert!(known && again == first);
        assert_eq!(attempts.len(), 2);

        assert_eq!(attempts.remove("github:1"), Some(first));
        assert_eq!(attempts.remove("github:1"), None);
        assert!(attempts.at(first).is_none() && !attempts.contains_key("github:1"));
        assert_eq!(attempts.at(second).map(|(id, _)| &**id), Some("github:2"));
        let (third, _, known) = attempts.upsert("github:3");
        assert!(!known && third == first, "the freed slot is reused");
        assert_eq!(attempts.slot_of("github:3"), Some(first));
        assert_eq!(attempts.len(), 2);
    }

    #[test]
    fn checkpoints_hold_a_map_from_id_to_inputs() {
        let mut attempts = Attempts::default();
        attempts.upsert("github:1");
        attempts.upsert("argocd:2");
        attempts.remove("github:1");
        attempts.upsert("gitlab:3");
        let json = serde_json::to_value(&attempts).unwrap();
        let ids: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(ids.len(), 2);
        assert!(json.get("argocd:2").is_some() && json.get("gitlab:3").is_some());
        let back: Attempts = serde_json::from_value(json).unwrap();
        let mut ids: Vec<&str> = back.iter().map(|(_, id, _)| id).collect();
        ids.sort();
        assert_eq!(ids, ["argocd:2", "gitlab:3"]);
        assert!(back.get("argocd:2").is_some() && back.get("github:1").is_none());
    }
}
