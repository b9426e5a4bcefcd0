//! Rollups: tallies of whole local days and months, per scope (a service, a team, the
//! organisation), environment selection and time zone, computed once from the services' ledgers
//! and kept until a fact inside them changes. A window is answered from the months and days it
//! covers whole plus its ragged edges read from the ledgers, so its cost grows with the number of
//! services and buckets, not with the number of events.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;

use super::ledger::{Ledger, Millis};
use super::tally::{Selection, Tally};

/// What a rollup pools.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopeKey {
    /// Every service, plus the unmapped bucket.
    Organisation,
    /// The services of a team.
    Team(String),
    /// One service.
    Service(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    scope: ScopeKey,
    environment: Option<String>,
    tz: Tz,
}

#[derive(Debug, Default)]
struct Buckets {
    days: HashMap<Millis, Arc<Tally>>,
    months: HashMap<Millis, Arc<Tally>>,
}

/// Most (scope, environment, time zone) combinations kept at once; beyond, the cache restarts.
const MAX_KEYS: usize = 64;

/// The rollup cache.
#[derive(Debug, Default)]
pub struct Rollups {
    caches: HashMap<CacheKey, Buckets>,
}

/// The first instant of a local date, in milliseconds.
fn local_midnight(tz: Tz, date: NaiveDate) -> Millis {
    super::series::midnight(tz, date).timestamp_millis()
}

fn local_date(tz: Tz, at: Millis) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(at)
        .expect("an instant in range")
        .with_timezone(&tz)
        .date_naive()
}

fn next_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        .expect("dates stay in range")
}

impl Rollups {
    /// Forgets the buckets holding `instants` in every rollup that pools `service` (of `team`;
    /// `None`: of any team, so every team's rollups are forgotten too).
    pub fn invalidate(&mut self, service: &str, team: Option<&str>, instants: &[Millis]) {
        if instants.is_empty() {
            return;
        }
        for (key, buckets) in &mut self.caches {
            let pools = match &key.scope {
                ScopeKey::Organisation => true,
                ScopeKey::Team(t) => team.is_none_or(|team| team == t),
                ScopeKey::Service(s) => s == service,
            };
            if !pools {
                continue;
            }
            let mut last: Option<NaiveDate> = None;
            for &at in instants {
                let date = local_date(key.tz, at);
                if last == Some(date) {
                    continue;
                }
                last = Some(date);
                buckets.days.remove(&local_midnight(key.tz, date));
                let first = date.with_day(1).expect("day 1 exists");
                buckets.months.remove(&local_midnight(key.tz, first));
            }
        }
    }

    /// The tally of `[from, to)` over `ledgers` (the scope's), from whole cached months and days
    /// and the ragged edges.
    pub fn tally(
        &mut self,
        scope: ScopeKey,
        environment: Option<&str>,
        tz: Tz,
        ledgers: &[&Ledger],
        from: Millis,
        to: Millis,
    ) -> Tally {
        let key = CacheKey {
            scope,
            environment: environment.map(String::from),
            tz,
        };
        if !self.caches.contains_key(&key) && self.caches.len() >= MAX_KEYS {
            self.caches.clear();
        }
        let buckets = self.caches.entry(key).or_default();
        let sel = Selection { environment, tz };
        let mut total = Tally::default();
        let mut t = from;
        while t < to {
            let date = local_date(tz, t);
            let day_start = local_midnight(tz, date);
            let day_end = local_midnight(tz, date + Duration::days(1));
            if day_start == t {
                if date.day() == 1 {
                    let month_end = local_midnight(tz, next_month(date));
                    if month_end <= to {
                        total.merge(&buckets.month(ledgers, &sel, date));
                        t = month_end;
                        continue;
                    }
                }
                if day_end <= to {
                    total.merge(&buckets.day(ledgers, &sel, t, day_end));
                    t = day_end;
                    continue;
                }
            }
            let end = day_end.min(to);
            for ledger in ledgers {
                total.add_ledger(ledger, t, end, &sel);
            }
            t = end;
        }
        total
    }
}

impl Buckets {
    fn day(
        &mut self,
        ledgers: &[&Ledger],
        sel: &Selection,
        start: Millis,
        end: Millis,
    ) -> Arc<Tally> {
        self.days
            .entry(start)
            .or_insert_with(|| {
                let mut tally = Tally::default();
                for ledger in ledgers {
                    tally.add_ledger(ledger, start, end, sel);
                }
                Arc::new(tally)
            })
            .clone()
    }

    fn month(&mut self, ledgers: &[&Ledger], sel: &Selection, first: NaiveDate) -> Arc<Tally> {
        let start = local_midnight(sel.tz, first);
        if let Some(month) = self.months.get(&start) {
            return month.clone();
        }
        let mut bounds = vec![start];
        let mut date = first;
        while date.month() == first.month() {
            date += Duration::days(1);
            bounds.push(local_midnight(sel.tz, date));
        }
        let mut days: Vec<Option<Arc<Tally>>> = bounds[..bounds.len() - 1]
            .iter()
            .map(|b| self.days.get(b).cloned())
            .collect();
        if days.iter().all(Option::is_none) {
            // Cold: one pass over the month's entries, split by day.
            let mut split = vec![Tally::default(); days.len()];
            for ledger in ledgers {
                Tally::add_ledger_split(ledger, &bounds, &mut split, sel);
            }
            for ((slot, tally), b) in days.iter_mut().zip(split).zip(&bounds) {
                let tally = Arc::new(tally);
                self.days.insert(*b, tally.clone());
                *slot = Some(tally);
            }
        }
        let mut month = Tally::default();
        for (i, slot) in days.into_iter().enumerate() {
            let day = match slot {
                Some(day) => day,
                None => self.day(ledgers, sel, bounds[i], bounds[i + 1]),
            };
            month.merge(&day);
        }
        let month = Arc::new(month);
        self.months.insert(start, month.clone());
        month
    }
}
