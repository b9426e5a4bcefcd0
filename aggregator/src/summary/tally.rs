//! A mergeable tally of ledger entries: the counts and duration distributions a summary is made
//! of. Tallies of disjoint time ranges merge into the tally of their union, which is what makes
//! rollups possible. Durations are kept exactly while few; past [`EXACT_LIMIT`] values they move
//! into an HDR histogram with two significant digits (under 1 % relative error, as metrics.md §7
//! allows), so a tally's size is bounded whatever the number of events.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use chrono_tz::Tz;
use hdrhistogram::Histogram;

use super::ledger::{DeploymentEntry, DurationEntry, Ledger, Millis, in_range};

/// Durations kept as exact values up to this count; beyond it, a histogram.
pub const EXACT_LIMIT: usize = 1024;
/// Largest duration the histograms hold exactly enough (about 4.4 years); longer ones saturate.
const HIGHEST_MILLIS: u64 = 1 << 37;

/// A distribution of durations (milliseconds).
#[derive(Debug, Clone, Default)]
pub struct Distribution {
    count: u64,
    sum: i128,
    exact: Vec<Millis>,
    histogram: Option<Box<Histogram<u32>>>,
}

impl Distribution {
    fn histogram() -> Box<Histogram<u32>> {
        Box::new(Histogram::new_with_bounds(1, HIGHEST_MILLIS, 2).expect("valid histogram bounds"))
    }

    fn record_into(histogram: &mut Histogram<u32>, value: Millis) {
        histogram.saturating_record(value.max(0) as u64);
    }

    /// Adds one value.
    pub fn add(&mut self, value: Millis) {
        self.count += 1;
        self.sum += i128::from(value);
        match &mut self.histogram {
            Some(h) => Self::record_into(h, value),
            None => {
                self.exact.push(value);
                if self.exact.len() > EXACT_LIMIT {
                    self.spill();
                }
            }
        }
    }

    fn spill(&mut self) {
        let mut h = Self::histogram();
        for v in self.exact.drain(..) {
            Self::record_into(&mut h, v);
        }
        self.exact = Vec::new();
        self.histogram = Some(h);
    }

    /// Merges another distribution in.
    pub fn merge(&mut self, other: &Distribution) {
        self.count += other.count;
        self.sum += other.sum;
        if let Some(theirs) = &other.histogram {
            if self.histogram.is_none() {
                self.spill();
            }
            let mine = self.histogram.as_mut().expect("spilled");
            mine.add(&**theirs).expect("histograms of equal bounds");
            return;
        }
        match &mut self.histogram {
            Some(h) => {
                for v in &other.exact {
                    Self::record_into(h, *v);
                }
            }
            None => {
                self.exact.extend_from_slice(&other.exact);
                if self.exact.len() > EXACT_LIMIT {
                    self.spill();
                }
            }
        }
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean in seconds.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64 / 1000.0)
    }

    /// Nearest-rank quantiles in seconds (metrics.md §7): the value at rank `ceil(p × n)`.
    /// Exact while the values are few; within the histogram's 1 % otherwise.
    pub fn quantiles<const N: usize>(&mut self, ps: [f64; N]) -> [Option<f64>; N] {
        let mut out = [None; N];
        if self.count == 0 {
            return out;
        }
        let rank = |p: f64| {
            // Integer arithmetic on per-mille avoids float error (0.9 × 10 = 9.000000000000002).
            let per_mille = (p * 1000.0).round() as u64;
            (per_mille * self.count).div_ceil(1000).max(1)
        };
        match &self.histogram {
            None => {
                self.exact.sort_unstable();
                for (o, p) in out.iter_mut().zip(ps) {
                    *o = Some(self.exact[rank(p) as usize - 1] as f64 / 1000.0);
                }
            }
            Some(h) => {
                for (o, p) in out.iter_mut().zip(ps) {
                    let wanted = rank(p);
                    let mut seen = 0u64;
                    for v in h.iter_recorded() {
                        seen += v.count_at_value() as u64;
                        if seen >= wanted {
                            *o = Some(h.median_equivalent(v.value_iterated_to()) as f64 / 1000.0);
                            break;
                        }
                    }
                }
            }
        }
        out
    }
}

/// Counts and distributions over some services and some time.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Production deployments.
    pub deployments: u64,
    /// Failed production-tier attempts.
    pub failed_attempts: u64,
    /// Change failures.
    pub failed: u64,
    /// Change failures not recovered.
    pub unrecovered: u64,
    /// Rework deployments.
    pub rework: u64,
    /// Deployments with a deployed change or a known revision.
    pub linked: u64,
    /// Days (in the tally's time zone) with a deployment.
    pub deploy_days: BTreeSet<NaiveDate>,
    /// Lead times.
    pub lead_times: Distribution,
    /// Lead times whose raw value was negative.
    pub clock_skew: u64,
    /// Recoveries.
    pub recoveries: Distribution,
    /// Restores.
    pub restores: Distribution,
    /// Incidents opened.
    pub opened: u64,
    /// Incidents opened and attributed.
    pub attributed: u64,
    /// Changes dropped by forced pushes.
    pub dropped: u64,
    /// Deployments of no service.
    pub unmapped: u64,
}

/// The selection a tally is made under.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// One environment, or every production-tier one.
    pub environment: Option<&'a str>,
    /// The time zone of `deploy_days`.
    pub tz: Tz,
}

impl Selection<'_> {
    fn env_ok(&self, environment: &str) -> bool {
        self.environment.is_none_or(|e| e == environment)
    }

    fn day(&self, at: Millis) -> NaiveDate {
        chrono::DateTime::from_timestamp_millis(at)
            .expect("an instant in range")
            .with_timezone(&self.tz)
            .date_naive()
    }
}

impl Tally {
    /// Adds the entries of `ledger` that count in `[from, to)`.
    pub fn add_ledger(&mut self, ledger: &Ledger, from: Millis, to: Millis, sel: &Selection) {
        Self::add_ledger_split(ledger, &[from, to], std::slice::from_mut(self), sel);
    }

    /// Adds the entries of `ledger` in `[bounds[0], bounds[n])` to `tallies`, entry `i` of the
    /// tallies taking `[bounds[i], bounds[i + 1])`. One pass, however many ranges.
    pub fn add_ledger_split(
        ledger: &Ledger,
        bounds: &[Millis],
        tallies: &mut [Tally],
        sel: &Selection,
    ) {
        debug_assert_eq!(bounds.len(), tallies.len() + 1);
        let (from, to) = (bounds[0], bounds[bounds.len() - 1]);
        let slot = |at: Millis| bounds.partition_point(|b| *b <= at) - 1;
        let mut last_day: Option<(Millis, NaiveDate)> = None;
        for d in in_range(&ledger.deployments, |e| e.at, from, to) {
            if !sel.env_ok(&d.environment) {
                continue;
            }
            let tally = &mut tallies[slot(d.at)];
            if !d.has(DeploymentEntry::SUCCEEDED) {
                tally.failed_attempts += 1;
                continue;
            }
            tally.deployments += 1;
            // Entries are sorted: consecutive deployments often share their instant.
            let day = match last_day {
                Some((at, day)) if at == d.at => day,
                _ => sel.day(d.at),
            };
            last_day = Some((d.at, day));
            tally.deploy_days.insert(day);
            tally.failed += u64::from(d.has(DeploymentEntry::FAILED));
            tally.unrecovered += u64::from(d.has(DeploymentEntry::UNRECOVERED));
            tally.rework += u64::from(d.has(DeploymentEntry::REWORK));
            tally.linked += u64::from(d.has(DeploymentEntry::LINKED));
        }
        for d in in_range(&ledger.unmapped, |e| e.at, from, to) {
            if sel.env_ok(&d.environment) {
                tallies[slot(d.at)].unmapped += 1;
            }
        }
        let env_ok = |e: &DurationEntry| e.environment.as_deref().is_none_or(|n| sel.env_ok(n));
        for e in in_range(&ledger.lead_times, |e| e.at, from, to) {
            if env_ok(e) {
                let tally = &mut tallies[slot(e.at)];
                tally.lead_times.add(e.value);
                tally.clock_skew += u64::from(e.skewed);
            }
        }
        for e in in_range(&ledger.recoveries, |e| e.at, from, to) {
            if env_ok(e) {
                tallies[slot(e.at)].recoveries.add(e.value);
            }
        }
        for e in in_range(&ledger.restores, |e| e.at, from, to) {
            tallies[slot(e.at)].restores.add(e.value);
        }
        for o in in_range(&ledger.opened, |e| e.at, from, to) {
            let tally = &mut tallies[slot(o.at)];
            tally.opened += 1;
            tally.attributed += u64::from(o.attributed);
        }
        for at in in_range(&ledger.dropped, |e| *e, from, to) {
            tallies[slot(*at)].dropped += 1;
        }
    }

    /// Merges the tally of a disjoint range (of the same time zone and environment) in.
    pub fn merge(&mut self, other: &Tally) {
        self.deployments += other.deployments;
        self.failed_attempts += other.failed_attempts;
        self.failed += other.failed;
        self.unrecovered += other.unrecovered;
        self.rework += other.rework;
        self.linked += other.linked;
        self.deploy_days.extend(other.deploy_days.iter().copied());
        self.lead_times.merge(&other.lead_times);
        self.clock_skew += other.clock_skew;
        self.recoveries.merge(&other.recoveries);
        self.restores.merge(&other.restores);
        self.opened += other.opened;
        self.attributed += other.attributed;
        self.dropped += other.dropped;
        self.unmapped += other.unmapped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact nearest rank over sorted values.
    fn exact(sorted: &[Millis], p: f64) -> f64 {
        let rank = ((p * 1000.0).round() as usize * sorted.len())
            .div_ceil(1000)
            .max(1);
        sorted[rank - 1] as f64 / 1000.0
    }

    #[test]
    fn few_values_are_exact_and_many_stay_within_one_percent() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [1usize, 10, EXACT_LIMIT, EXACT_LIMIT + 1, 50_000] {
            // Durations from a second to a month, spread over orders of magnitude.
            let values: Vec<Millis> = (0..n)
                .map(|_| {
                    let exp = next() % 22 + 10;
                    ((1u64 << exp) + next() % (1u64 << exp)) as Millis
                })
                .collect();
            // Built in pieces and merged, as rollups do.
            let mut whole = Distribution::default();
            for chunk in values.chunks(777) {
                let mut part = Distribution::default();
                for v in chunk {
                    part.add(*v);
                }
                whole.merge(&part);
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let got = whole.quantiles([0.5, 0.75, 0.9]);
            for (p, got) in [0.5, 0.75, 0.9].into_iter().zip(got) {
                let want = exact(&sorted, p);
                let got = got.unwrap();
                if n <= EXACT_LIMIT {
                    assert_eq!(got, want, "n={n} p={p}");
                } else {
                    assert!(
                        (got - want).abs() <= 0.01 * want,
                        "n={n} p={p}: {got} vs {want}"
                    );
                }
            }
            let mean = values.iter().map(|v| *v as f64).sum::<f64>() / n as f64 / 1000.0;
            assert!((whole.mean().unwrap() - mean).abs() < 1e-6 * mean);
            assert_eq!(whole.count(), n as u64);
        }
    }
}
