//! `/api/v1/dora/series`: one metric per day, week (Monday first) or month bucket in the caller's
//! time zone over `[from, to)`. Every bucket is present, empty ones with count 0. Each bucket is
//! summarized with the same rules as the whole window (the first and last buckets are cut to the
//! window), so a bucket's figure is exactly what `/api/v1/dora` answers for that bucket's window.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use doraflow_schemas::time::Timestamp;
use serde::Serialize;

use super::tally::Tally;
use super::{Counters, Query, Summary, summary_of};

/// Bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Calendar days.
    Day,
    /// ISO weeks, starting Monday.
    Week,
    /// Calendar months.
    Month,
}

impl Bucket {
    /// Parses `day`, `week` or `month`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }
}

/// A series metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Deployments per day in the bucket; count: deployments.
    DeploymentFrequency,
    /// A lead-time statistic; count: changes.
    LeadTime,
    /// Change failure rate; count: deployments.
    ChangeFailureRate,
    /// A recovery-time statistic; count: recoveries.
    FailedDeploymentRecoveryTime,
    /// A time-to-restore statistic; count: restores.
    TimeToRestore,
    /// Rework rate; count: deployments.
    ReworkRate,
}

impl Metric {
    /// Parses a metric name of the API.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "deployment_frequency" => Some(Self::DeploymentFrequency),
            "lead_time" => Some(Self::LeadTime),
            "change_failure_rate" => Some(Self::ChangeFailureRate),
            "failed_deployment_recovery_time" => Some(Self::FailedDeploymentRecoveryTime),
            "time_to_restore" => Some(Self::TimeToRestore),
            "rework_rate" => Some(Self::ReworkRate),
            _ => None,
        }
    }
}

/// The statistic of a duration metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Median.
    P50,
    /// 75th percentile.
    P75,
    /// 90th percentile.
    P90,
    /// Mean.
    Mean,
}

impl Stat {
    /// Parses `p50`, `p75`, `p90` or `mean`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "p50" => Some(Self::P50),
            "p75" => Some(Self::P75),
            "p90" => Some(Self::P90),
            "mean" => Some(Self::Mean),
            _ => None,
        }
    }
}

/// One bucket of a series.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Point {
    /// Bucket start (in UTC; midnight in the requested time zone).
    pub start: String,
    /// The metric's value; `null` for a duration or rate without data.
    pub value: Option<f64>,
    /// How many values the bucket holds.
    pub count: u64,
}

/// The first instant of a local date: midnight, or the first valid instant when DST skips it.
pub fn midnight(tz: Tz, date: NaiveDate) -> Timestamp {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    // A zone whose midnight is skipped (DST) starts the day at the first valid instant.
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .expect("a day has a start")
}

fn bucket_start(tz: Tz, bucket: Bucket, t: Timestamp) -> NaiveDate {
    let date = t.with_timezone(&tz).date_naive();
    match bucket {
        Bucket::Day => date,
        Bucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        Bucket::Month => date.with_day(1).expect("day 1 exists"),
    }
}

fn next_start(bucket: Bucket, date: NaiveDate) -> NaiveDate {
    match bucket {
        Bucket::Day => date + Duration::days(1),
        Bucket::Week => date + Duration::days(7),
        Bucket::Month => date
            .checked_add_months(chrono::Months::new(1))
            .expect("dates stay in range"),
    }
}

/// The bucket boundaries covering `[from, to)`, each as (start, end) in UTC.
pub fn buckets(
    from: Timestamp,
    to: Timestamp,
    tz: Tz,
    bucket: Bucket,
) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    let mut date = bucket_start(tz, bucket, from);
    loop {
        let start = midnight(tz, date);
        if start >= to {
            break;
        }
        let next = next_start(bucket, date);
        out.push((start, midnight(tz, next)));
        date = next;
    }
    out
}

fn value(summary: &Summary, metric: Metric, stat: Stat) -> (Option<f64>, u64) {
    let pick = |p50, p75, p90, mean| match stat {
        Stat::P50 => p50,
        Stat::P75 => p75,
        Stat::P90 => p90,
        Stat::Mean => mean,
    };
    match metric {
        Metric::DeploymentFrequency => (
            Some(summary.deployment_frequency.per_day),
            summary.deployment_frequency.deployments,
        ),
        Metric::LeadTime => {
            let d = &summary.lead_time;
            (pick(d.p50, d.p75, d.p90, d.mean), d.count)
        }
        Metric::ChangeFailureRate => (
            summary.change_failure_rate.rate,
            summary.change_failure_rate.deployments,
        ),
        Metric::FailedDeploymentRecoveryTime => {
            let d = &summary.failed_deployment_recovery_time;
            (pick(d.p50, d.p75, d.p90, d.mean), d.count)
        }
        Metric::TimeToRestore => {
            let d = &summary.time_to_restore;
            (pick(d.p50, d.p75, d.p90, d.mean), d.count)
        }
        Metric::ReworkRate => (summary.rework_rate.rate, summary.rework_rate.deployments),
    }
}

/// The series of one metric over the query's window; `tally_of` tallies a `[from, to)` range
/// of the scope (from rollups, or straight from the facts).
pub fn series(
    mut tally_of: impl FnMut(Timestamp, Timestamp) -> Tally,
    query: &Query,
    metric: Metric,
    stat: Stat,
    bucket: Bucket,
) -> Vec<Point> {
    buckets(query.from, query.to, query.tz, bucket)
        .into_iter()
        .map(|(start, end)| {
            let window = Query {
                from: start.max(query.from),
                to: end.min(query.to),
                ..query.clone()
            };
            let summary = summary_of(
                tally_of(window.from, window.to),
                Counters::default(),
                &window,
            );
            let (value, count) = value(&summary, metric, stat);
            Point {
                start: start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                value,
                count,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::time::parse_rfc3339;

    fn t(s: &str) -> Timestamp {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn day_buckets_follow_the_time_zone() {
        let b = buckets(
            t("2026-11-01T00:00:00Z"),
            t("2026-11-03T00:00:00Z"),
            "Europe/Berlin".parse().unwrap(),
            Bucket::Day,
        );
        // Midnight in Berlin is 23:00 UTC in November: the first bucket starts the day before.
        assert_eq!(b[0].0, t("2026-10-31T23:00:00Z"));
        assert_eq!(b.len(), 3);
        assert_eq!(b[2].0, t("2026-11-02T23:00:00Z"));
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let w = buckets(
            t("2026-11-04T12:00:00Z"),
            t("2026-11-20T00:00:00Z"),
            Tz::UTC,
            Bucket::Week,
        );
        assert_eq!(w[0].0, t("2026-11-02T00:00:00Z"));
        assert_eq!(w.len(), 3);
        let m = buckets(
            t("2026-01-15T00:00:00Z"),
            t("2026-03-01T00:00:00Z"),
            Tz::UTC,
            Bucket::Month,
        );
        assert_eq!(
            m.iter().map(|b| b.0).collect::<Vec<_>>(),
            vec![t("2026-01-01T00:00:00Z"), t("2026-02-01T00:00:00Z")]
        );
    }

    #[test]
    fn a_dst_change_gives_a_23_hour_day() {
        let b = buckets(
            t("2026-03-29T00:00:00Z"),
            t("2026-03-30T00:00:00Z"),
            "Europe/Berlin".parse().unwrap(),
            Bucket::Day,
        );
        let day = b
            .iter()
            .find(|(s, _)| *s == t("2026-03-28T23:00:00Z"))
            .unwrap();
        assert_eq!(day.1 - day.0, Duration::hours(23));
    }
}
