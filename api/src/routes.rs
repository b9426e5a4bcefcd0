//! Routes of the metrics API and the health checks, each with its OpenAPI description
//! (`utoipa::path`): the router and the document come from the same list ([`router`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::Utc;
use doraflow_aggregator::summary::rollup::ScopeKey;
use doraflow_aggregator::summary::{self, Summary};
use doraflow_aggregator::{Catalog, FactStore, ServiceFacts};
use doraflow_http::HttpError;
use doraflow_schemas::config::ApiToken;
use serde::Serialize;

use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, authenticate};
use crate::drilldown::{ChangeRow, DeploymentRow, IncidentRow, Kind, Page};
use crate::params::{CommonParams, PageParams, SeriesParams};

/// What the API reads.
#[derive(Clone)]
pub struct ApiState {
    /// The facts.
    pub store: Arc<RwLock<FactStore>>,
    /// The catalog, for teams.
    pub catalog: Arc<Catalog>,
    /// Configured tokens.
    pub tokens: Arc<Vec<ApiToken>>,
    /// Whether the event log takes writes.
    pub log_available: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Offset just past the last durable record of the event log.
    pub log_end: Arc<dyn Fn() -> u64 + Send + Sync>,
}

/// The API routes, with conditional answers (`ETag`) on the metric endpoints, and their OpenAPI
/// document.
pub fn router(state: ApiState) -> (Router, OpenApi) {
    let (metrics, document) = OpenApiRouter::with_openapi(crate::openapi::document())
        .routes(routes!(dora))
        .routes(routes!(series))
        .routes(routes!(deployments))
        .routes(routes!(changes))
        .routes(routes!(incidents))
        .routes(routes!(services))
        .routes(routes!(teams))
        .layer(axum::middleware::from_fn(
            doraflow_http::caching::conditional,
        ))
        .routes(routes!(readyz))
        .with_state(state)
        .split_for_parts();
    (metrics, document)
}

/// Whether the API's answers are current.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `available` or `unavailable`.
    pub event_log: &'static str,
    /// `caught_up` or `replaying`.
    pub aggregator: &'static str,
    /// Offset just past the last durable record of the log.
    pub log_end_offset: u64,
    /// Offset the aggregator applied up to.
    pub applied_offset: u64,
    /// The difference.
    pub lag_bytes: u64,
}

/// Dependencies reachable and the aggregator caught up.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready: the event log takes writes and the answers are current", body = Readiness),
        (status = 503, description = "Not ready (see the fields)", body = Readiness),
    ))]
async fn readyz(State(state): State<ApiState>) -> Response {
    let log = (state.log_available)();
    let end = (state.log_end)();
    let (caught_up, applied) = {
        let store = state.store.read().expect("store lock");
        (store.caught_up(), store.applied_offset())
    };
    let ready = log && caught_up;
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        event_log: if log { "available" } else { "unavailable" },
        aggregator: if caught_up { "caught_up" } else { "replaying" },
        log_end_offset: end,
        applied_offset: applied,
        lag_bytes: end.saturating_sub(applied),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The scope an answer is about.
#[derive(Serialize, ToSchema)]
pub struct Scope {
    /// The service asked for.
    pub service: Option<String>,
    /// The team asked for.
    pub team: Option<String>,
    /// The environment asked for (null: every production-tier environment).
    pub environment: Option<String>,
}

/// The `/api/v1/dora` answer: the five metrics, benchmark scores and data quality of a scope
/// and window (metrics.md).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "scope": {"service": "checkout", "team": null, "environment": null},
    "window": {"from": "2026-10-27T00:00:00Z", "to": "2026-11-26T00:00:00Z", "days": 30.0},
    "definitions_version": "1",
    "deployment_frequency": {"deployments": 42, "failed_attempts": 3, "per_day": 1.4, "deploy_days": 20, "band": 5},
    "lead_time": {"count": 120, "p50": 5400.0, "p75": 9000.0, "p90": 30000.0, "mean": 8000.0, "band": 5},
    "change_failure_rate": {"deployments": 42, "failed": 5, "rate": 0.119},
    "failed_deployment_recovery_time": {"count": 4, "unrecovered": 1, "p50": 3600.0, "p75": 5000.0, "p90": 7000.0, "mean": 4200.0, "band": 5},
    "time_to_restore": {"count": 7, "p50": 3000.0, "p75": 4000.0, "p90": 9000.0, "mean": 4100.0},
    "rework_rate": {"deployments": 42, "rework": 3, "rate": 0.071},
    "benchmark": {"edition": "dora-2025",
        "scores": {"lead_time": 8.0, "deployment_frequency": 8.0, "failed_deployment_recovery_time": 8.0, "change_failure_rate": 8.81, "rework_rate": 9.29},
        "overall": 8.42, "throughput": 8.0, "stability": 9.05,
        "reference": {"lead_time": 5.5, "deployment_frequency": 4.8, "failed_deployment_recovery_time": 7.4, "change_failure_rate": 8.1, "rework_rate": 7.8}},
    "data_quality": {"deployments_linked": 0.93, "incidents_attributed": 0.71, "unmapped_deployments": 0, "unlinked_revisions": 2, "dropped_changes": 0,
        "clock_skew_changes": 0, "duplicates_ignored": 12, "too_late_ignored": 0, "late_corrections": 4, "commits_not_listed": 0}
}))]
pub struct DoraAnswer {
    /// The scope.
    pub scope: Scope,
    /// The figures.
    #[serde(flatten)]
    pub summary: Summary,
}

/// A metric's series of buckets.
#[derive(Serialize, ToSchema)]
pub struct SeriesAnswer {
    /// Version of the metric definitions.
    pub definitions_version: &'static str,
    /// The metric.
    pub metric: String,
    /// The bucket size.
    pub bucket: String,
    /// The statistic of duration metrics.
    pub stat: String,
    /// The scope.
    pub scope: Scope,
    /// Every bucket of the window, empty ones with count 0.
    pub points: Vec<summary::series::Point>,
}

/// A service as the pipeline sees it.
#[derive(Serialize, ToSchema)]
pub struct ServiceEntry {
    /// Canonical name.
    pub name: String,
    /// Its team.
    pub team: Option<String>,
    /// Whether the catalog names it (otherwise it comes from events only, e.g. CDEvents).
    pub catalogued: bool,
    /// Time of its newest event.
    #[schema(format = DateTime, value_type = Option<String>)]
    pub last_event_at: Option<doraflow_schemas::time::Timestamp>,
}

/// The services.
#[derive(Serialize, ToSchema)]
pub struct ServicesAnswer {
    /// Version of the metric definitions.
    pub definitions_version: &'static str,
    /// Every service the caller may see, by name.
    pub services: Vec<ServiceEntry>,
}

/// A team of the catalog.
#[derive(Serialize, ToSchema)]
pub struct TeamEntry {
    /// Name.
    pub name: String,
    /// Its services.
    pub services: Vec<String>,
    /// Time of the newest event of its services.
    #[schema(format = DateTime, value_type = Option<String>)]
    pub last_event_at: Option<doraflow_schemas::time::Timestamp>,
}

/// The teams.
#[derive(Serialize, ToSchema)]
pub struct TeamsAnswer {
    /// Version of the metric definitions.
    pub definitions_version: &'static str,
    /// Every team the caller may see, by name.
    pub teams: Vec<TeamEntry>,
}

/// The services a scope pools; `None`: the organisation.
fn resolve_scope(
    state: &ApiState,
    store: &FactStore,
    caller: &Caller,
    params: &CommonParams,
) -> Result<Option<Vec<String>>, HttpError> {
    if let Some(service) = &params.service {
        let known = store.service(service).is_some() || state.catalog.services().contains(service);
        if !known {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "unknown_service",
                format!("no service named `{service}` in the catalog or in the events"),
            ));
        }
        if !caller.may_see_team(state.catalog.team_of(service)) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token may not see service `{service}`"),
            ));
        }
        return Ok(Some(vec![service.clone()]));
    }
    if let Some(team) = &params.team {
        if !state.catalog.has_team(team) {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "unknown_team",
                format!("no service of the catalog has team `{team}`"),
            ));
        }
        if !caller.may_see_team(Some(team)) {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token may not see team `{team}`"),
            ));
        }
        return Ok(Some(state.catalog.services_of_team(team)));
    }
    if !caller.may_see_organisation() {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token is limited to some teams: ask with team= or service=",
        ));
    }
    Ok(None)
}

/// The rollup key of a request's scope.
fn scope_key(params: &CommonParams) -> ScopeKey {
    match (&params.service, &params.team) {
        (Some(service), _) => ScopeKey::Service(service.clone()),
        (None, Some(team)) => ScopeKey::Team(team.clone()),
        (None, None) => ScopeKey::Organisation,
    }
}

/// The facts a request may see: authenticated, scoped, with its validated query.
struct Scoped {
    query: summary::Query,
    /// The scope's services; `None`: the organisation.
    services: Option<Vec<String>>,
    facts: Vec<Arc<ServiceFacts>>,
    counters: summary::Counters,
}

fn scoped(
    state: &ApiState,
    headers: &HeaderMap,
    params: &CommonParams,
) -> Result<Scoped, HttpError> {
    let caller = authenticate(&state.tokens, headers)?;
    let query = params.query(Utc::now())?;
    let store = state.store.read().expect("store lock");
    let scope = resolve_scope(state, &store, &caller, params)?;
    let facts: Vec<Arc<ServiceFacts>> = match &scope {
        Some(services) => services.iter().flat_map(|s| store.parts(s)).collect(),
        None => store.service_names().flat_map(|s| store.parts(s)).collect(),
    };
    let counters = store.counters_for(scope.as_deref());
    Ok(Scoped {
        query,
        services: scope,
        facts,
        counters,
    })
}

/// The five DORA metrics of a scope and window, with benchmark scores and data quality.
#[utoipa::path(get, path = "/api/v1/dora", tag = "metrics", params(CommonParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The summary (field names are the contract; more fields may be added)", body = DoraAnswer,
            headers(("ETag" = String, description = "Tag of this answer"), ("Cache-Control" = String))),
        crate::openapi::MetricErrors,
    ))]
async fn dora(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
) -> Result<Json<DoraAnswer>, HttpError> {
    let Scoped {
        query,
        services,
        counters,
        ..
    } = scoped(&state, &headers, &params)?;
    let tally = state.store.read().expect("store lock").tally(
        services.as_deref(),
        scope_key(&params),
        &query,
    );
    let summary = summary::summary_of(tally, counters, &query);
    Ok(Json(DoraAnswer {
        scope: Scope {
            service: params.service.clone(),
            team: params.team.clone(),
            environment: query.environment.clone(),
        },
        summary,
    }))
}

/// One metric bucket by bucket (day, week or month in `tz`); empty buckets have count 0.
#[utoipa::path(get, path = "/api/v1/dora/series", tag = "metrics", params(SeriesParams, CommonParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The series", body = SeriesAnswer),
        crate::openapi::MetricErrors,
    ))]
async fn series(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
    QueryParams(raw): QueryParams<BTreeMap<String, String>>,
) -> Result<Json<SeriesAnswer>, HttpError> {
    use doraflow_aggregator::summary::series::{Bucket, Metric, Stat};
    let invalid = |m: String| HttpError::bad_request("invalid_parameter", m);
    let metric_name = raw.get("metric").ok_or_else(|| invalid("metric is required: deployment_frequency, lead_time, change_failure_rate, failed_deployment_recovery_time, time_to_restore or rework_rate".into()))?;
    let metric = Metric::parse(metric_name).ok_or_else(|| invalid(format!("metric: `{metric_name}` is not one of deployment_frequency, lead_time, change_failure_rate, failed_deployment_recovery_time, time_to_restore, rework_rate")))?;
    let bucket_name = raw.get("bucket").map_or("day", String::as_str);
    let bucket = Bucket::parse(bucket_name)
        .ok_or_else(|| invalid(format!("bucket: `{bucket_name}` is not day, week or month")))?;
    let stat_name = raw.get("stat").map_or("p50", String::as_str);
    let stat = Stat::parse(stat_name)
        .ok_or_else(|| invalid(format!("stat: `{stat_name}` is not p50, p75, p90 or mean")))?;
    let scoped = scoped(&state, &headers, &params)?;
    let store = state.store.read().expect("store lock");
    let key = scope_key(&params);
    let points = summary::series::series(
        |from, to| {
            store.tally_range(
                scoped.services.as_deref(),
                key.clone(),
                &scoped.query,
                from,
                to,
            )
        },
        &scoped.query,
        metric,
        stat,
        bucket,
    );
    drop(store);
    Ok(Json(SeriesAnswer {
        definitions_version: summary::DEFINITIONS_VERSION,
        metric: metric_name.clone(),
        bucket: bucket_name.to_string(),
        stat: stat_name.to_string(),
        scope: Scope {
            service: params.service,
            team: params.team,
            environment: scoped.query.environment,
        },
        points,
    }))
}

/// One drill-down page of a kind (the three endpoints differ only in what they list); a next
/// page's link also goes in a `Link: <...>; rel="next"` header.
fn drill_down(
    kind: Kind,
    state: &ApiState,
    headers: &HeaderMap,
    params: &CommonParams,
    raw: &BTreeMap<String, String>,
) -> Result<Response, HttpError> {
    let scoped = scoped(state, headers, params)?;
    let page = crate::drilldown::page(kind, &scoped.facts, &scoped.query, raw)?;
    let link = page
        .next
        .as_ref()
        .map(|next| format!("<{next}>; rel=\"next\""));
    let mut response = Json(page).into_response();
    if let Some(link) = link.and_then(|l| axum::http::HeaderValue::from_str(&l).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::LINK, link);
    }
    Ok(response)
}

/// Production deployment attempts finished in the window (or of `environment`), newest first,
/// each failed one with its reasons and the incidents or rollback behind them.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "drill-down", params(PageParams, CommonParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of deployments", body = Page<DeploymentRow>,
            headers(("Link" = String, description = "The next page, `<...>; rel=\"next\"`"))),
        crate::openapi::MetricErrors,
    ))]
async fn deployments(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
    QueryParams(raw): QueryParams<BTreeMap<String, String>>,
) -> Result<Response, HttpError> {
    drill_down(Kind::Deployments, &state, &headers, &params, &raw)
}

/// Changes committed in the window, newest first, each with the deployment that shipped it.
#[utoipa::path(get, path = "/api/v1/changes", tag = "drill-down", params(PageParams, CommonParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of changes", body = Page<ChangeRow>),
        crate::openapi::MetricErrors,
    ))]
async fn changes(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
    QueryParams(raw): QueryParams<BTreeMap<String, String>>,
) -> Result<Response, HttpError> {
    drill_down(Kind::Changes, &state, &headers, &params, &raw)
}

/// Incidents opened in the window, newest first, each with the deployment it is attributed to.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "drill-down", params(PageParams, CommonParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of incidents", body = Page<IncidentRow>),
        crate::openapi::MetricErrors,
    ))]
async fn incidents(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
    QueryParams(raw): QueryParams<BTreeMap<String, String>>,
) -> Result<Response, HttpError> {
    drill_down(Kind::Incidents, &state, &headers, &params, &raw)
}

/// The services the caller may see (catalog and events), with the time of the newest event.
#[utoipa::path(get, path = "/api/v1/services", tag = "catalog",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The services", body = ServicesAnswer),
        crate::openapi::AuthErrors,
    ))]
async fn services(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<ServicesAnswer>, HttpError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let store = state.store.read().expect("store lock");
    let names: BTreeSet<String> = state
        .catalog
        .services()
        .iter()
        .cloned()
        .chain(store.service_names().cloned())
        .collect();
    let services = names
        .into_iter()
        .filter(|s| caller.may_see_team(state.catalog.team_of(s)))
        .map(|s| ServiceEntry {
            team: state.catalog.team_of(&s).map(str::to_string),
            catalogued: state.catalog.services().contains(&s),
            last_event_at: store.last_event(&s),
            name: s,
        })
        .collect();
    Ok(Json(ServicesAnswer {
        definitions_version: summary::DEFINITIONS_VERSION,
        services,
    }))
}

/// The teams the caller may see, with their services.
#[utoipa::path(get, path = "/api/v1/teams", tag = "catalog",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The teams", body = TeamsAnswer),
        crate::openapi::AuthErrors,
    ))]
async fn teams(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<TeamsAnswer>, HttpError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let store = state.store.read().expect("store lock");
    let teams: BTreeSet<&str> = state
        .catalog
        .services()
        .iter()
        .filter_map(|s| state.catalog.team_of(s))
        .collect();
    let teams = teams
        .into_iter()
        .filter(|t| caller.may_see_team(Some(t)))
        .map(|t| {
            let services = state.catalog.services_of_team(t);
            let last = services.iter().filter_map(|s| store.last_event(s)).max();
            TeamEntry {
                name: t.to_string(),
                services,
                last_event_at: last,
            }
        })
        .collect();
    Ok(Json(TeamsAnswer {
        definitions_version: summary::DEFINITIONS_VERSION,
        teams,
    }))
}
