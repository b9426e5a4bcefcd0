//! Routes of the metrics API and the health checks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use axum::extract::{Query as QueryParams, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use chrono::Utc;
use doraflow_aggregator::summary::rollup::ScopeKey;
use doraflow_aggregator::summary::{self, Summary};
use doraflow_aggregator::{Catalog, FactStore, ServiceFacts};
use doraflow_http::HttpError;
use doraflow_schemas::config::ApiToken;
use serde::Serialize;
use serde_json::json;

use crate::auth::{Caller, authenticate};
use crate::drilldown::Kind;
use crate::params::CommonParams;

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

/// The API routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/dora", get(dora))
        .route("/api/v1/dora/series", get(series))
        .route("/api/v1/deployments", drill_down(Kind::Deployments))
        .route("/api/v1/changes", drill_down(Kind::Changes))
        .route("/api/v1/incidents", drill_down(Kind::Incidents))
        .route("/api/v1/services", get(services))
        .route("/api/v1/teams", get(teams))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let log = (state.log_available)();
    let end = (state.log_end)();
    let (caught_up, applied) = {
        let store = state.store.read().expect("store lock");
        (store.caught_up(), store.applied_offset())
    };
    let body = json!({
        "status": if log && caught_up { "ready" } else { "not_ready" },
        "event_log": if log { "available" } else { "unavailable" },
        "aggregator": if caught_up { "caught_up" } else { "replaying" },
        "log_end_offset": end,
        "applied_offset": applied,
        "lag_bytes": end.saturating_sub(applied),
    });
    let status = if log && caught_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
struct Scope {
    service: Option<String>,
    team: Option<String>,
    environment: Option<String>,
}

#[derive(Serialize)]
struct DoraAnswer {
    scope: Scope,
    #[serde(flatten)]
    summary: Summary,
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

async fn dora(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
) -> Result<Json<serde_json::Value>, HttpError> {
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
    let answer = DoraAnswer {
        scope: Scope {
            service: params.service.clone(),
            team: params.team.clone(),
            environment: query.environment.clone(),
        },
        summary,
    };
    Ok(Json(
        serde_json::to_value(answer).expect("answers serialize"),
    ))
}

async fn series(
    State(state): State<ApiState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<CommonParams>,
    QueryParams(raw): QueryParams<BTreeMap<String, String>>,
) -> Result<Json<serde_json::Value>, HttpError> {
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
    Ok(Json(json!({
        "definitions_version": summary::DEFINITIONS_VERSION,
        "metric": metric_name,
        "bucket": bucket_name,
        "stat": stat_name,
        "scope": {"service": params.service, "team": params.team, "environment": scoped.query.environment},
        "points": points,
    })))
}

/// The route of one drill-down page kind (the three differ only in what they list).
fn drill_down(kind: Kind) -> MethodRouter<ApiState> {
    get(
        move |State(state): State<ApiState>,
              headers: HeaderMap,
              QueryParams(params): QueryParams<CommonParams>,
              QueryParams(raw): QueryParams<BTreeMap<String, String>>| async move {
            let scoped = scoped(&state, &headers, &params)?;
            crate::drilldown::page(kind, &scoped.facts, &scoped.query, &raw).map(Json)
        },
    )
}

async fn services(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, HttpError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let store = state.store.read().expect("store lock");
    let names: BTreeSet<String> = state
        .catalog
        .services()
        .iter()
        .cloned()
        .chain(store.service_names().cloned())
        .collect();
    let services: Vec<_> = names
        .into_iter()
        .filter(|s| caller.may_see_team(state.catalog.team_of(s)))
        .map(|s| {
            json!({
                "name": s,
                "team": state.catalog.team_of(&s),
                "catalogued": state.catalog.services().contains(&s),
                "last_event_at": store.last_event(&s),
            })
        })
        .collect();
    Ok(Json(
        json!({"definitions_version": summary::DEFINITIONS_VERSION, "services": services}),
    ))
}

async fn teams(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, HttpError> {
    let caller = authenticate(&state.tokens, &headers)?;
    let store = state.store.read().expect("store lock");
    let teams: BTreeSet<&str> = state
        .catalog
        .services()
        .iter()
        .filter_map(|s| state.catalog.team_of(s))
        .collect();
    let teams: Vec<_> = teams
        .into_iter()
        .filter(|t| caller.may_see_team(Some(t)))
        .map(|t| {
            let services = state.catalog.services_of_team(t);
            let last = services.iter().filter_map(|s| store.last_event(s)).max();
            json!({"name": t, "services": services, "last_event_at": last})
        })
        .collect();
    Ok(Json(
        json!({"definitions_version": summary::DEFINITIONS_VERSION, "teams": teams}),
    ))
}
