//! The published elite/high/medium/low tables of the DORA reports of 2021, 2023 and 2024
//! (metrics.md §8). Each metric gets the best tier whose published value it meets; where a report
//! lists overlapping or non-monotonic values, the rule is stated next to the table in
//! docs/metrics.md. Rework rate has no published tiers.

use super::{Edition, MetricValues};

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// A table row: the tier label and the bound a value must meet for it.
type Table = &'static [(&'static str, f64)];

/// Deployments per day at or above the bound.
const DF_2024: Table = &[("elite", 1.0), ("high", 1.0 / 7.0), ("medium", 1.0 / 30.0)];
const DF_2023: Table = DF_2024;
const DF_2021: Table = &[
    ("elite", 1.0),
    ("high", 1.0 / 30.0),
    ("medium", 1.0 / 182.0),
];
/// Durations strictly below the bound.
const LT_2024: Table = &[("elite", DAY), ("high", 7.0 * DAY), ("medium", 30.0 * DAY)];
const LT_2023: Table = LT_2024;
const LT_2021: Table = &[
    ("elite", HOUR),
    ("high", 7.0 * DAY),
    ("medium", 182.0 * DAY),
];
const RT_2024: Table = &[("elite", HOUR), ("high", DAY)];
const RT_2023: Table = &[("elite", HOUR), ("high", DAY), ("medium", 7.0 * DAY)];
const RT_2021: Table = &[("elite", HOUR), ("high", DAY), ("medium", 7.0 * DAY)];
/// Rates at or below the bound.
const CFR_2024: Table = &[("elite", 0.05), ("high", 0.20)];
const CFR_2023: Table = &[("elite", 0.05), ("high", 0.10), ("medium", 0.15)];
const CFR_2021: Table = &[("elite", 0.15), ("high", 0.30)];

fn at_least(table: Table, value: f64) -> &'static str {
    table
        .iter()
        .find(|(_, bound)| value >= *bound)
        .map_or("low", |(l, _)| l)
}

fn below(table: Table, value: f64) -> &'static str {
    table
        .iter()
        .find(|(_, bound)| value < *bound)
        .map_or("low", |(l, _)| l)
}

fn at_most(table: Table, value: f64) -> &'static str {
    table
        .iter()
        .find(|(_, bound)| value <= *bound)
        .map_or("low", |(l, _)| l)
}

/// Tier labels of one edition; a metric without data gets none.
pub fn labels(
    edition: Edition,
    lead_p50: Option<f64>,
    per_day: f64,
    recovery_p50: Option<f64>,
    cfr: Option<f64>,
) -> MetricValues<&'static str> {
    let (df, lt, rt, cf) = match edition {
        Edition::Dora2024 | Edition::Dora2025 => (DF_2024, LT_2024, RT_2024, CFR_2024),
        Edition::Dora2023 => (DF_2023, LT_2023, RT_2023, CFR_2023),
        Edition::Dora2021 => (DF_2021, LT_2021, RT_2021, CFR_2021),
    };
    MetricValues {
        lead_time: lead_p50.map(|v| below(lt, v)),
        deployment_frequency: Some(at_least(df, per_day)),
        failed_deployment_recovery_time: recovery_p50.map(|v| below(rt, v)),
        change_failure_rate: cfr.map(|v| at_most(cf, v)),
        rework_rate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_their_tables() {
        let l = labels(
            Edition::Dora2023,
            Some(3600.0),
            3.0,
            Some(2.0 * DAY),
            Some(0.12),
        );
        assert_eq!(l.lead_time, Some("elite"));
        assert_eq!(l.deployment_frequency, Some("elite"));
        assert_eq!(l.failed_deployment_recovery_time, Some("medium"));
        assert_eq!(l.change_failure_rate, Some("medium"));
        let l = labels(Edition::Dora2021, None, 0.001, None, Some(0.5));
        assert_eq!(l.lead_time, None);
        assert_eq!(l.deployment_frequency, Some("low"));
        assert_eq!(l.change_failure_rate, Some("low"));
    }
}
