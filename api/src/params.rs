//! The common query parameters of the metrics API (interfaces.md): scope, window, time zone and
//! benchmark edition, validated into a [`Query`] with clear 400s.

use chrono::{Duration, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use doraflow_aggregator::summary::series::{Bucket, Metric, Stat};
use doraflow_aggregator::summary::{Edition, Query};
use doraflow_http::HttpError;
use doraflow_schemas::time::{Timestamp, parse_rfc3339};
use serde::Deserialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{IntoParams, ToSchema};

/// Raw query parameters (others, such as `limit` or `metric`, are read by their endpoints).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommonParams {
    /// One service (neither `service` nor `team`: the whole organisation).
    #[param(example = "checkout")]
    #[serde(default, deserialize_with = "empty_as_none")]
    pub service: Option<String>,
    /// One team; not together with `service`.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub team: Option<String>,
    /// One environment by name (default: every production-tier environment).
    #[serde(default, deserialize_with = "empty_as_none")]
    pub environment: Option<String>,
    /// Window start, RFC 3339 or `YYYY-MM-DD` (midnight in `tz`); default `to` minus 30 days.
    #[param(value_type = Option<Instant>, example = "2026-10-27")]
    pub from: Option<String>,
    /// Window end (excluded), same forms; default now.
    #[param(value_type = Option<Instant>, example = "2026-11-26")]
    pub to: Option<String>,
    /// IANA time zone for day boundaries; default UTC.
    #[param(value_type = Option<TimeZone>, example = "Europe/Berlin")]
    pub tz: Option<String>,
    /// Benchmark edition; default `dora-2025`.
    #[param(value_type = Option<Edition>)]
    pub benchmark: Option<String>,
}

/// The parameters of `/api/v1/dora/series` besides the common ones (read by the endpoint, which
/// names a wrong one in its 400; this type documents them).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// The metric.
    #[param(inline)]
    pub metric: Metric,
    /// Bucket size; default `day`.
    #[param(inline)]
    pub bucket: Option<Bucket>,
    /// Statistic of duration metrics; default `p50`.
    #[param(inline)]
    pub stat: Option<Stat>,
}

/// Paging parameters of the drill-down pages (read by [`crate::drilldown::page`]; this type
/// documents them).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 1000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An empty scope parameter (`team=`, as a dashboard sends an unset variable) is an absent one.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.filter(|v| !v.is_empty()))
}

/// In the OpenAPI document: an instant, as RFC 3339 or a date.
pub struct Instant;

impl utoipa::PartialSchema for Instant {
    fn schema() -> RefOr<Schema> {
        let string = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        OneOfBuilder::new()
            .item(string(KnownFormat::DateTime))
            .item(string(KnownFormat::Date))
            .description(Some("An RFC 3339 time, or a date (midnight in `tz`)"))
            .into()
    }
}

impl ToSchema for Instant {}

/// In the OpenAPI document: an IANA time zone name (the tz database chrono-tz carries).
pub struct TimeZone;

impl utoipa::PartialSchema for TimeZone {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
            .description(Some("An IANA time zone name"))
            .into()
    }
}

impl ToSchema for TimeZone {}

fn invalid(message: impl Into<String>) -> HttpError {
    HttpError::bad_request("invalid_parameter", message)
}

fn parse_instant(name: &str, text: &str, tz: Tz) -> Result<Timestamp, HttpError> {
    if let Some(t) = parse_rfc3339(text) {
        return Ok(t);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        if let Some(local) = tz.from_local_datetime(&midnight).earliest() {
            return Ok(local.with_timezone(&Utc));
        }
    }
    Err(invalid(format!(
        "{name}: `{text}` is not an RFC 3339 time (2026-11-01T00:00:00Z) or a date (2026-11-01)"
    )))
}

impl CommonParams {
    /// Validates into a query; `now` is the default end.
    pub fn query(&self, now: Timestamp) -> Result<Query, HttpError> {
        if self.service.is_some() && self.team.is_some() {
            return Err(invalid("give service or team, not both"));
        }
        let tz: Tz = match &self.tz {
            None => Tz::UTC,
            Some(name) => name
                .parse()
                .map_err(|_| invalid(format!("tz: `{name}` is not an IANA time zone name")))?,
        };
        let to = match &self.to {
            Some(text) => parse_instant("to", text, tz)?,
            None => now,
        };
        let from = match &self.from {
            Some(text) => parse_instant("from", text, tz)?,
            None => to - Duration::days(30),
        };
        if from >= to {
            return Err(invalid("from must be before to"));
        }
        let edition = match &self.benchmark {
            None => Edition::Dora2025,
            Some(name) => Edition::parse(name).ok_or_else(|| {
                invalid(format!(
                    "benchmark: `{name}` is not one of dora-2025, dora-2024, dora-2023, dora-2021"
                ))
            })?,
        };
        Ok(Query {
            from,
            to,
            environment: self.environment.clone(),
            tz,
            edition,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        parse_rfc3339("2026-11-26T12:00:00Z").unwrap()
    }

    #[test]
    fn the_default_window_is_the_last_30_days() {
        let q = CommonParams::default().query(now()).unwrap();
        assert_eq!(q.to, now());
        assert_eq!(q.from, parse_rfc3339("2026-10-27T12:00:00Z").unwrap());
        assert_eq!(q.edition, Edition::Dora2025);
    }

    #[test]
    fn dates_are_midnight_in_the_time_zone() {
        let params = CommonParams {
            from: Some("2026-11-01".into()),
            to: Some("2026-11-02T00:00:00+01:00".into()),
            tz: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        let q = params.query(now()).unwrap();
        assert_eq!(q.from, parse_rfc3339("2026-10-31T23:00:00Z").unwrap());
        assert_eq!(q.to, parse_rfc3339("2026-11-01T23:00:00Z").unwrap());
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |p: CommonParams| p.query(now()).unwrap_err().message;
        assert!(
            bad(CommonParams {
                from: Some("yesterday".into()),
                ..Default::default()
            })
            .contains("from")
        );
        assert!(
            bad(CommonParams {
                tz: Some("Mars/Base".into()),
                ..Default::default()
            })
            .contains("tz")
        );
        assert!(
            bad(CommonParams {
                benchmark: Some("dora-1999".into()),
                ..Default::default()
            })
            .contains("benchmark")
        );
        assert!(
            bad(CommonParams {
                from: Some("2026-11-02".into()),
                to: Some("2026-11-01".into()),
                ..Default::default()
            })
            .contains("before")
        );
    }
}
