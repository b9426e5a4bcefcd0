//! From facts to the numbers of `/api/v1/dora` (metrics.md §6-§9): counts over a `[from, to)`
//! window, nearest-rank percentiles, bands and benchmark scores. Team and organisation figures
//! pool their services' facts; nothing here averages service figures.

use chrono_tz::Tz;
use doraflow_schemas::time::Timestamp;
use serde::Serialize;

use crate::engine::ServiceFacts;
use ledger::{Ledger, millis};
use tally::{Distribution, Selection, Tally};

/// Version of the metric definitions these numbers follow.
pub const DEFINITIONS_VERSION: &str = "1";

/// The benchmark editions (metrics.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// DORA Quick Check scoring, 2025 (default).
    Dora2025,
    /// The 2024 report's tiers.
    Dora2024,
    /// The 2023 report's tiers.
    Dora2023,
    /// The 2021 report's tiers.
    Dora2021,
}

impl Edition {
    /// Every edition, the default first.
    pub const ALL: [Edition; 4] = [
        Self::Dora2025,
        Self::Dora2024,
        Self::Dora2023,
        Self::Dora2021,
    ];

    /// Parses an edition name such as `dora-2025`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// The edition's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dora2025 => "dora-2025",
            Self::Dora2024 => "dora-2024",
            Self::Dora2023 => "dora-2023",
            Self::Dora2021 => "dora-2021",
        }
    }
}

/// What to summarize.
#[derive(Debug, Clone)]
pub struct Query {
    /// Window start (included).
    pub from: Timestamp,
    /// Window end (excluded).
    pub to: Timestamp,
    /// One environment by name; `None`: every production-tier environment.
    pub environment: Option<String>,
    /// Time zone for day boundaries.
    pub tz: Tz,
    /// Benchmark edition.
    pub edition: Edition,
}

/// In the OpenAPI document, an edition is its name.
impl utoipa::PartialSchema for Edition {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Self::ALL.map(Self::name)))
            .description(Some("Benchmark edition (metrics.md §8)"))
            .into()
    }
}

impl utoipa::ToSchema for Edition {}

/// Counters that are not windowed facts, summed over the scope.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counters {
    /// Duplicate deliveries ignored.
    pub duplicates_ignored: u64,
    /// Deliveries ignored for arriving after the facts they concern were final.
    pub too_late_ignored: u64,
    /// Facts rewritten after first being written.
    pub late_corrections: u64,
    /// Commits pushes brought without listing them.
    pub commits_not_listed: u64,
}

/// The `/api/v1/dora` answer without its scope.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Summary {
    /// The window.
    pub window: WindowOut,
    /// Version of the definitions.
    pub definitions_version: &'static str,
    /// §6.
    pub deployment_frequency: DeploymentFrequency,
    /// §2, §7.
    pub lead_time: Durations,
    /// §3.
    pub change_failure_rate: Rate<Failed>,
    /// §4.
    pub failed_deployment_recovery_time: Recovery,
    /// §4.
    pub time_to_restore: Durations,
    /// §5.
    pub rework_rate: Rate<Rework>,
    /// §8.
    pub benchmark: Benchmark,
    /// §9.
    pub data_quality: DataQuality,
}

/// The window as answered.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WindowOut {
    /// Start.
    pub from: String,
    /// End.
    pub to: String,
    /// Length in days.
    pub days: f64,
}

/// Deployment frequency.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DeploymentFrequency {
    /// Production deployments finished in the window.
    pub deployments: u64,
    /// Failed production-tier attempts finished in the window.
    pub failed_attempts: u64,
    /// Deployments per day.
    pub per_day: f64,
    /// Distinct days with a deployment.
    pub deploy_days: u64,
    /// Band 1-6.
    pub band: u8,
}

/// A duration summary.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Durations {
    /// How many values.
    pub count: u64,
    /// Median (nearest rank).
    pub p50: Option<f64>,
    /// 75th percentile.
    pub p75: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Band of the p50, where the metric has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<u8>,
}

/// Recovery time: a duration summary plus the unrecovered count.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Recovery {
    /// Recoveries in the window.
    pub count: u64,
    /// Failed deployments finished in the window and not recovered.
    pub unrecovered: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 75th percentile.
    pub p75: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Band of the p50.
    pub band: Option<u8>,
}

/// A rate over production deployments; `N` names the numerator field.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Rate<N> {
    /// Production deployments finished in the window.
    pub deployments: u64,
    /// The numerator.
    #[serde(flatten)]
    pub numerator: N,
    /// numerator / deployments; null without deployments.
    pub rate: Option<f64>,
}

/// Numerator of the change failure rate.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Failed {
    /// Failed deployments.
    pub failed: u64,
}

/// Numerator of the rework rate.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Rework {
    /// Rework deployments.
    pub rework: u64,
}

/// Benchmark scores or labels.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Benchmark {
    /// Edition name.
    pub edition: &'static str,
    /// Scores per metric (dora-2025).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ScoresSchema>)]
    pub scores: Option<MetricValues<f64>>,
    /// Mean of the scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overall: Option<Option<f64>>,
    /// Mean of lead time, deployment frequency and recovery scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Option<f64>>,
    /// Mean of change failure and rework scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stability: Option<Option<f64>>,
    /// Reference means (dora-2025).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ScoresSchema>)]
    pub reference: Option<MetricValues<f64>>,
    /// Tier labels (dora-2021, -2023, -2024).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<LabelsSchema>)]
    pub labels: Option<MetricValues<&'static str>>,
}

/// One value per DORA metric.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricValues<T> {
    /// Lead time for changes.
    pub lead_time: Option<T>,
    /// Deployment frequency.
    pub deployment_frequency: Option<T>,
    /// Failed deployment recovery time.
    pub failed_deployment_recovery_time: Option<T>,
    /// Change failure rate.
    pub change_failure_rate: Option<T>,
    /// Deployment rework rate.
    pub rework_rate: Option<T>,
}

/// The OpenAPI schema of [`MetricValues`] of scores (utoipa loses the `null` of a generic
/// `Option<T>`, so the two instances are spelled out for the document).
#[derive(utoipa::ToSchema)]
#[schema(as = MetricScores)]
#[allow(dead_code)]
struct ScoresSchema {
    lead_time: Option<f64>,
    deployment_frequency: Option<f64>,
    failed_deployment_recovery_time: Option<f64>,
    change_failure_rate: Option<f64>,
    rework_rate: Option<f64>,
}

/// The OpenAPI schema of [`MetricValues`] of tier labels.
#[derive(utoipa::ToSchema)]
#[schema(as = MetricLabels)]
#[allow(dead_code)]
struct LabelsSchema {
    lead_time: Option<String>,
    deployment_frequency: Option<String>,
    failed_deployment_recovery_time: Option<String>,
    change_failure_rate: Option<String>,
    rework_rate: Option<String>,
}

/// Data quality (§9).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DataQuality {
    /// Share of production deployments with a deployed change or a known revision.
    pub deployments_linked: Option<f64>,
    /// Share of incidents opened in the window that are attributed to a deployment.
    pub incidents_attributed: Option<f64>,
    /// Deployments in the window that map to no service (organisation scope only).
    pub unmapped_deployments: u64,
    /// Production deployments in the window whose revision is not a known change.
    pub unlinked_revisions: u64,
    /// Changes dropped by forced pushes in the window.
    pub dropped_changes: u64,
    /// Changes deployed in the window with a negative raw lead time.
    pub clock_skew_changes: u64,
    /// Duplicate deliveries ignored (since the start of the log).
    pub duplicates_ignored: u64,
    /// Deliveries ignored because they arrived after the facts they concern were final (older
    /// than the horizon's cut; since the start of the log).
    pub too_late_ignored: u64,
    /// Facts changed after first being written (since the start of the log).
    pub late_corrections: u64,
    /// Commits that pushes brought but did not list (GitLab lists only the newest 20 of a push;
    /// since the start of the log): changes whose lead time is unknown.
    pub commits_not_listed: u64,
}

/// The nearest-rank p-quantile of sorted values: the value at index `ceil(p × n) − 1`.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Integer arithmetic on per-mille avoids float error (0.9 × 10 = 9.000000000000002).
    let per_mille = (p * 1000.0).round() as usize;
    let rank = (per_mille * sorted.len()).div_ceil(1000).max(1);
    Some(sorted[rank - 1])
}

/// Band of a deployment rate per day (§6).
pub fn frequency_band(per_day: f64) -> u8 {
    match per_day {
        x if x < 1.0 / 182.0 => 1,
        x if x < 1.0 / 30.0 => 2,
        x if x < 1.0 / 7.0 => 3,
        x if x < 1.0 => 4,
        x if x < 2.0 => 5,
        _ => 6,
    }
}

/// Band of a duration in seconds (§7).
pub fn duration_band(seconds: f64) -> u8 {
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86_400.0;
    match seconds {
        x if x < HOUR => 6,
        x if x < DAY => 5,
        x if x < 7.0 * DAY => 4,
        x if x < 30.0 * DAY => 3,
        x if x < 182.0 * DAY => 2,
        _ => 1,
    }
}

fn durations(dist: &mut Distribution, banded: bool) -> Durations {
    let [p50, p75, p90] = dist.quantiles([0.5, 0.75, 0.9]);
    Durations {
        count: dist.count(),
        p50,
        p75,
        p90,
        mean: dist.mean(),
        band: if banded { p50.map(duration_band) } else { None },
    }
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean_of(values: &[Option<f64>]) -> Option<f64> {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// The selection a query makes.
pub fn selection(query: &Query) -> Selection<'_> {
    Selection {
        environment: query.environment.as_deref(),
        tz: query.tz,
    }
}

/// Summarizes the pooled facts of a scope directly from the facts (no rollups).
pub fn summarize<'a>(
    scope: impl IntoIterator<Item = &'a ServiceFacts>,
    unmapped: Option<&ServiceFacts>,
    counters: Counters,
    query: &Query,
) -> Summary {
    let ledgers: Vec<Ledger> = scope
        .into_iter()
        .map(|f| Ledger::of([f], false))
        .chain(unmapped.map(|u| Ledger::of([u], true)))
        .collect();
    let (from, to) = (millis(query.from), millis(query.to));
    let mut tally = Tally::default();
    for ledger in &ledgers {
        tally.add_ledger(ledger, from, to, &selection(query));
    }
    summary_of(tally, counters, query)
}

/// The summary of a tally of the query's window (metrics.md §6-§9).
pub fn summary_of(mut tally: Tally, counters: Counters, query: &Query) -> Summary {
    let deployments = tally.deployments;
    let failed = tally.failed;
    let rework = tally.rework;
    let window_days = (query.to - query.from).num_milliseconds() as f64 / 86_400_000.0;
    let per_day = if window_days > 0.0 {
        deployments as f64 / window_days
    } else {
        0.0
    };
    let lead_time = durations(&mut tally.lead_times, true);
    let recovery = durations(&mut tally.recoveries, true);
    let change_failure_rate = ratio(failed, deployments);
    let rework_rate = ratio(rework, deployments);
    let df_band = frequency_band(per_day);

    let benchmark = benchmark(
        query.edition,
        lead_time.p50,
        per_day,
        recovery.p50,
        change_failure_rate,
        rework_rate,
        lead_time.band,
        df_band,
        recovery.band,
    );

    Summary {
        window: WindowOut {
            from: query
                .from
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            to: query.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            days: window_days,
        },
        definitions_version: DEFINITIONS_VERSION,
        deployment_frequency: DeploymentFrequency {
            deployments,
            failed_attempts: tally.failed_attempts,
            per_day,
            deploy_days: tally.deploy_days.len() as u64,
            band: df_band,
        },
        lead_time,
        change_failure_rate: Rate {
            deployments,
            numerator: Failed { failed },
            rate: change_failure_rate,
        },
        failed_deployment_recovery_time: Recovery {
            count: recovery.count,
            unrecovered: tally.unrecovered,
            p50: recovery.p50,
            p75: recovery.p75,
            p90: recovery.p90,
            mean: recovery.mean,
            band: recovery.band,
        },
        time_to_restore: durations(&mut tally.restores, false),
        rework_rate: Rate {
            deployments,
            numerator: Rework { rework },
            rate: rework_rate,
        },
        benchmark,
        data_quality: DataQuality {
            deployments_linked: ratio(tally.linked, deployments),
            incidents_attributed: ratio(tally.attributed, tally.opened),
            unmapped_deployments: tally.unmapped,
            unlinked_revisions: deployments - tally.linked,
            dropped_changes: tally.dropped,
            clock_skew_changes: tally.clock_skew,
            duplicates_ignored: counters.duplicates_ignored,
            too_late_ignored: counters.too_late_ignored,
            late_corrections: counters.late_corrections,
            commits_not_listed: counters.commits_not_listed,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn benchmark(
    edition: Edition,
    lead_p50: Option<f64>,
    per_day: f64,
    recovery_p50: Option<f64>,
    cfr: Option<f64>,
    rework: Option<f64>,
    lead_band: Option<u8>,
    df_band: u8,
    recovery_band: Option<u8>,
) -> Benchmark {
    match edition {
        Edition::Dora2025 => {
            let banded = |band: Option<u8>| band.map(|b| f64::from(b - 1) * 2.0);
            let rated = |rate: Option<f64>| rate.map(|r| 10.0 - 10.0 * r);
            let scores = MetricValues {
                lead_time: banded(lead_band),
                deployment_frequency: banded(Some(df_band)),
                failed_deployment_recovery_time: banded(recovery_band),
                change_failure_rate: rated(cfr),
                rework_rate: rated(rework),
            };
            Benchmark {
                edition: edition.name(),
                overall: Some(mean_of(&[
                    scores.lead_time,
                    scores.deployment_frequency,
                    scores.failed_deployment_recovery_time,
                    scores.change_failure_rate,
                    scores.rework_rate,
                ])),
                throughput: Some(mean_of(&[
                    scores.lead_time,
                    scores.deployment_frequency,
                    scores.failed_deployment_recovery_time,
                ])),
                stability: Some(mean_of(&[scores.change_failure_rate, scores.rework_rate])),
                scores: Some(scores),
                reference: Some(MetricValues {
                    lead_time: Some(5.5),
                    deployment_frequency: Some(4.8),
                    failed_deployment_recovery_time: Some(7.4),
                    change_failure_rate: Some(8.1),
                    rework_rate: Some(7.8),
                }),
                labels: None,
            }
        }
        _ => Benchmark {
            edition: edition.name(),
            scores: None,
            overall: None,
            throughput: None,
            stability: None,
            reference: None,
            labels: Some(crate::summary::tiers::labels(
                edition,
                lead_p50,
                per_day,
                recovery_p50,
                cfr,
            )),
        },
    }
}

pub mod ledger;
pub mod rollup;
pub mod series;
pub mod tally;
pub mod tiers;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_follows_the_definition() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.5), Some(5.0));
        assert_eq!(nearest_rank(&v, 0.75), Some(8.0));
        assert_eq!(nearest_rank(&v, 0.9), Some(9.0));
        assert_eq!(nearest_rank(&[7.0], 0.9), Some(7.0));
        assert_eq!(nearest_rank(&[1.0, 2.0], 0.5), Some(1.0));
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 0.75), Some(3.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn bands_follow_the_tables() {
        assert_eq!(frequency_band(0.0), 1);
        assert_eq!(frequency_band(1.0 / 100.0), 2);
        assert_eq!(frequency_band(1.0 / 10.0), 3);
        assert_eq!(frequency_band(1.0 / 7.0), 4);
        assert_eq!(frequency_band(1.0), 5);
        assert_eq!(frequency_band(2.0), 6);
        assert_eq!(duration_band(3599.0), 6);
        assert_eq!(duration_band(3600.0), 5);
        assert_eq!(duration_band(86_400.0 * 7.0), 3);
        assert_eq!(duration_band(86_400.0 * 200.0), 1);
    }

    #[test]
    fn the_interfaces_example_scores() {
        let b = benchmark(
            Edition::Dora2025,
            None,
            1.4,
            None,
            Some(5.0 / 42.0),
            Some(3.0 / 42.0),
            Some(5),
            5,
            Some(5),
        );
        let scores = b.scores.unwrap();
        assert_eq!(scores.lead_time, Some(8.0));
        assert!((scores.change_failure_rate.unwrap() - 8.8095).abs() < 1e-3);
        assert!((b.overall.unwrap().unwrap() - 8.42).abs() < 0.01);
        assert!((b.stability.unwrap().unwrap() - 9.05).abs() < 0.01);
        assert_eq!(b.throughput.unwrap(), Some(8.0));
    }
}
