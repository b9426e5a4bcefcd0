//! A service's live facts cut into windows of time for writing to ClickHouse: each window holds
//! the deployments that finished, the changes committed and the incidents opened in the same
//! [`WINDOW_DAYS`] days (counted from the Unix epoch, UTC), and is written as a part of its own.
//! A window's part number is its place among the service's live windows (the oldest first), so a
//! service never has more window parts than it ever had live windows (about a horizon and a third
//! of them), however long it runs; when the cut moves and the oldest windows leave, the others
//! move up a place and are written again, once per step of the cut. Concatenating the windows in
//! order gives the live facts back exactly, since derivation leaves each list in time order.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use doraflow_schemas::fact::{ChangeFact, DeploymentFact, IncidentFact};
use doraflow_schemas::time::Timestamp;
use serde::Serialize;

use crate::engine::ServiceFacts;

/// Days of facts in one live window.
pub const WINDOW_DAYS: i64 = 14;
const WINDOW_SECS: i64 = WINDOW_DAYS * 86_400;
/// The bit that marks a live window's part number; a frozen chunk's part number never has it.
pub const WINDOW_BIT: u32 = 1 << 31;

/// The window a time falls in (windows since the epoch, floored).
fn window_index(time: Timestamp) -> i64 {
    time.timestamp().div_euclid(WINDOW_SECS)
}

/// The part number of the window at a place among the live windows.
fn window_part(place: usize) -> u32 {
    WINDOW_BIT | (place as u32 & !WINDOW_BIT)
}

/// One window of a service's live facts: where its facts are in each list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Its part number.
    pub part: u32,
    deployments: Range<usize>,
    changes: Range<usize>,
    incidents: Range<usize>,
}

/// The facts of one window, borrowed; written as a [`ServiceFacts`] is.
#[derive(Debug, PartialEq, Serialize)]
pub struct Segment<'a> {
    deployments: &'a [DeploymentFact],
    changes: &'a [ChangeFact],
    incidents: &'a [IncidentFact],
}

/// A service's live facts and their windows, in time order.
#[derive(Debug, Clone)]
pub struct Windowed {
    facts: Arc<ServiceFacts>,
    windows: Vec<Window>,
}

impl Windowed {
    /// Cuts live facts into their windows.
    pub fn new(facts: Arc<ServiceFacts>) -> Self {
        let in_order = facts.deployments.is_sorted_by_key(|d| d.finished_at)
            && facts.changes.is_sorted_by_key(|c| c.timestamp)
            && facts.incidents.is_sorted_by_key(|i| i.opened_at);
        let facts = if in_order {
            facts
        } else {
            // Derivation keeps the lists in time order; a caller that did not still gets
            // windows that put the facts together again.
            let mut sorted = (*facts).clone();
            sorted.sort_by_time();
            Arc::new(sorted)
        };
        let mut windows: BTreeMap<i64, Window> = BTreeMap::new();
        fn window(windows: &mut BTreeMap<i64, Window>, index: i64) -> &mut Window {
            windows.entry(index).or_default()
        }
        for (index, range) in runs(&facts.deployments, |d| d.finished_at) {
            window(&mut windows, index).deployments = range;
        }
        for (index, range) in runs(&facts.changes, |c| c.timestamp) {
            window(&mut windows, index).changes = range;
        }
        for (index, range) in runs(&facts.incidents, |i| i.opened_at) {
            window(&mut windows, index).incidents = range;
        }
        let windows = windows
            .into_values()
            .enumerate()
            .map(|(place, window)| Window {
                part: window_part(place),
                ..window
            })
            .collect();
        Self { facts, windows }
    }

    /// The windows, in time order.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// The windows' part numbers, in time order.
    pub fn parts(&self) -> Vec<u32> {
        self.windows.iter().map(|w| w.part).collect()
    }

    /// The facts of one of its windows.
    pub fn segment(&self, window: &Window) -> Segment<'_> {
        Segment {
            deployments: &self.facts.deployments[window.deployments.clone()],
            changes: &self.facts.changes[window.changes.clone()],
            incidents: &self.facts.incidents[window.incidents.clone()],
        }
    }

    /// Whether `earlier` has a window of the same part with the same facts as `window` of these.
    pub fn unchanged_since(&self, window: &Window, earlier: &Windowed) -> bool {
        if Arc::ptr_eq(&self.facts, &earlier.facts) {
            return true;
        }
        earlier
            .windows
            .iter()
            .find(|w| w.part == window.part)
            .is_some_and(|w| earlier.segment(w) == self.segment(window))
    }

    /// The windows of `earlier` that these facts no longer have.
    pub fn gone_since<'a>(&'a self, earlier: &'a Windowed) -> impl Iterator<Item = u32> + 'a {
        earlier
            .windows
            .iter()
            .map(|w| w.part)
            .filter(|part| !self.windows.iter().any(|w| w.part == *part))
    }
}

/// The runs of a list in time order that fall in one window each: (window, range).
fn runs<T>(list: &[T], time: impl Fn(&T) -> Timestamp) -> Vec<(i64, Range<usize>)> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < list.len() {
        let index = window_index(time(&list[start]));
        let len = list[start..]
            .iter()
            .take_while(|f| window_index(time(f)) == index)
            .count();
        runs.push((index, start..start + len));
        start += len;
    }
    runs
}

/// Live facts put together again from their windows' facts, in the order of the windows.
pub fn assemble<'a>(windows: impl IntoIterator<Item = &'a ServiceFacts>) -> ServiceFacts {
    let mut facts = ServiceFacts::default();
    for window in windows {
        facts.deployments.extend_from_slice(&window.deployments);
        facts.changes.extend_from_slice(&window.changes);
        facts.incidents.extend_from_slice(&window.incidents);
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use doraflow_schemas::fact::FailureReason;

    fn deployment(id: &str, finished_at: Timestamp) -> DeploymentFact {
        DeploymentFact {
            id: id.into(),
            service: Some("api".into()),
            environment: "production".into(),
            production: true,
            revision: format!("rev-{id}").into(),
            finished_at,
            succeeded: true,
            linked: false,
            changes: 0,
            lead_time_p50: None,
            rollback: false,
            failure_reasons: vec![],
            incidents: vec![],
            rolled_back_by: None,
            detected_at: None,
            recovered_at: None,
            rework: false,
            located: None,
        }
    }

    fn incident(id: &str, opened_at: Timestamp) -> IncidentFact {
        IncidentFact {
            id: id.into(),
            service: "api".into(),
            title: "down".into(),
            opened_at,
            resolved_at: None,
            attributed_to: None,
        }
    }

    /// Facts over 40 days: a deployment every 3 days, an incident every 10 (changes stay empty).
    fn forty_days() -> ServiceFacts {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        ServiceFacts {
            deployments: (0..14)
                .map(|n| deployment(&format!("d{n}"), start + Duration::days(3 * n)))
                .collect(),
            incidents: (0..4)
                .map(|n| incident(&format!("i{n}"), start + Duration::days(10 * n)))
                .collect(),
            ..ServiceFacts::default()
        }
    }

    fn reassembled(windowed: &Windowed) -> ServiceFacts {
        let segments: Vec<ServiceFacts> = windowed
            .windows()
            .iter()
            .map(|w| {
                serde_json::from_str(&serde_json::to_string(&windowed.segment(w)).unwrap()).unwrap()
            })
            .collect();
        assemble(&segments)
    }

    #[test]
    fn windows_put_the_live_facts_together_again() {
        let facts = forty_days();
        let windowed = Windowed::new(Arc::new(facts.clone()));
        // 2026-01-01 starts a 14-day window counted from the epoch: days 0-13, 14-27, 28-39.
        assert_eq!(windowed.windows().len(), 3);
        assert_eq!(
            windowed.parts(),
            vec![WINDOW_BIT, WINDOW_BIT | 1, WINDOW_BIT | 2]
        );
        assert_eq!(reassembled(&windowed), facts);
    }

    #[test]
    fn facts_out_of_order_are_put_in_time_order() {
        let mut facts = forty_days();
        facts.deployments.reverse();
        let windowed = Windowed::new(Arc::new(facts.clone()));
        facts.sort_by_time();
        assert_eq!(reassembled(&windowed), facts);
    }

    fn changed(later: &Windowed, earlier: &Windowed) -> Vec<u32> {
        later
            .windows()
            .iter()
            .filter(|w| !later.unchanged_since(w, earlier))
            .map(|w| w.part)
            .collect()
    }

    #[test]
    fn only_the_window_that_changed_differs() {
        let facts = forty_days();
        let earlier = Windowed::new(Arc::new(facts.clone()));
        assert!(changed(&earlier, &earlier.clone()).is_empty());
        let mut later = facts.clone();
        later.deployments.last_mut().unwrap().failure_reasons = vec![FailureReason::Incident];
        let later = Windowed::new(Arc::new(later));
        assert_eq!(changed(&later, &earlier), vec![WINDOW_BIT | 2]);
        assert_eq!(later.gone_since(&earlier).count(), 0);
    }

    #[test]
    fn when_the_oldest_window_leaves_the_others_move_up_and_the_last_place_is_gone() {
        let facts = forty_days();
        let earlier = Windowed::new(Arc::new(facts.clone()));
        let second_window = facts.deployments[5].finished_at; // day 15
        let mut later = facts.clone();
        later.deployments.retain(|d| d.finished_at >= second_window);
        later.incidents.retain(|i| i.opened_at >= second_window);
        let later = Windowed::new(Arc::new(later));
        assert_eq!(later.parts(), vec![WINDOW_BIT, WINDOW_BIT | 1]);
        assert_eq!(changed(&later, &earlier), later.parts());
        assert_eq!(
            later.gone_since(&earlier).collect::<Vec<_>>(),
            vec![WINDOW_BIT | 2]
        );
    }
}
