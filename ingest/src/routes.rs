//! The webhook routes, one per source under `/webhooks/`, each with its OpenAPI description
//! (`utoipa::path`) and its Prometheus record: the delivery by source and status, signature
//! failures, and the time from arrival to answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use doraflow_http::HttpError;
use doraflow_http::openapi::error_responses;
use doraflow_telemetry::{DeliveryLabels, SourceLabels, recording};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{OpenApi, RefOr, response::Response as ResponseDoc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::receiver::{Ingest, IngestOutcome};

type Shared = State<Arc<Ingest>>;

/// The webhook routes and their OpenAPI document.
pub fn router(ingest: Arc<Ingest>) -> (Router, OpenApi) {
    OpenApiRouter::with_openapi(doraflow_http::openapi::frame())
        .routes(routes!(github))
        .routes(routes!(gitlab))
        .routes(routes!(pagerduty))
        .routes(routes!(argocd))
        .routes(routes!(cdevents))
        .routes(routes!(flux))
        .layer(DefaultBodyLimit::disable())
        .with_state(ingest)
        .split_for_parts()
}

/// The answer to a delivery written to the log (interfaces.md, "Webhook endpoints").
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "accepted", "delivery": "github:42:72d3162e-cc78-11e3-81ab-4c9367dc0958", "events": 2}))]
pub struct WebhookAnswer {
    /// `accepted` (normalized into `events` events), `ignored` (authentic, carries no metric;
    /// kept in the raw log) or `dead_letter` (authentic, but could not be normalized; kept with
    /// the reason).
    #[schema(value_type = String, pattern = "^(accepted|ignored|dead_letter)$")]
    pub status: &'static str,
    /// The delivery's key (its source's delivery id).
    pub delivery: String,
    /// Normalized events (`accepted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<usize>,
    /// Why it carries no metric or could not be normalized.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a GitHub ping.
#[derive(Serialize, ToSchema)]
pub struct Pong {
    /// Always `pong`.
    #[schema(example = "pong")]
    pub status: &'static str,
}

/// The errors every webhook answers with; nothing is written on any of them.
pub struct WebhookErrors;

impl utoipa::IntoResponses for WebhookErrors {
    fn responses() -> BTreeMap<String, RefOr<ResponseDoc>> {
        error_responses(&[
            (
                400,
                "Malformed JSON, or a missing required header or field (`malformed_body`, `missing_header`)",
            ),
            (
                401,
                "Missing or wrong signature or token, or the source has none configured (`missing_signature`, `bad_signature`, `malformed_signature`, `source_not_configured`)",
            ),
            (
                413,
                "The body is larger than `server.max_body_bytes` (`body_too_large`)",
            ),
            (
                415,
                "A content type the source never sends (`unsupported_content_type`)",
            ),
            (
                503,
                "The event log cannot take the delivery now: nothing was accepted, retry (`log_unavailable`)",
            ),
        ])
    }
}

impl IngestOutcome {
    /// The status label and answer of an outcome.
    fn status(&self) -> &'static str {
        match self {
            IngestOutcome::Accepted { .. } => "accepted",
            IngestOutcome::Ignored { .. } => "ignored",
            IngestOutcome::DeadLetter { .. } => "dead_letter",
            IngestOutcome::Pong => "pong",
        }
    }
}

impl IntoResponse for IngestOutcome {
    fn into_response(self) -> Response {
        let status = self.status();
        let (delivery, events, reason) = match self {
            IngestOutcome::Pong => {
                return (StatusCode::OK, axum::Json(Pong { status })).into_response();
            }
            IngestOutcome::Accepted { delivery, events } => (delivery, Some(events), None),
            IngestOutcome::Ignored { delivery, reason }
            | IngestOutcome::DeadLetter { delivery, reason } => (delivery, None, Some(reason)),
        };
        let answer = WebhookAnswer {
            status,
            delivery,
            events,
            reason,
        };
        (StatusCode::ACCEPTED, axum::Json(answer)).into_response()
    }
}

/// Answers a delivery and records it.
async fn observed(
    source: &'static str,
    answer: impl Future<Output = Result<IngestOutcome, HttpError>>,
) -> Response {
    let started = Instant::now();
    let result = answer.await;
    let Some(telemetry) = recording() else {
        return result.into_response();
    };
    let metrics = &telemetry.ingest;
    let status = match &result {
        Ok(outcome) => outcome.status(),
        Err(error) => error.code,
    };
    if matches!(&result, Err(e) if e.status == StatusCode::UNAUTHORIZED) {
        metrics
            .signature_failures
            .get_or_create(&SourceLabels { source })
            .inc();
    }
    metrics
        .deliveries
        .get_or_create(&DeliveryLabels { source, status })
        .inc();
    metrics
        .receive_duration
        .get_or_create(&SourceLabels { source })
        .observe(started.elapsed().as_secs_f64());
    result.into_response()
}

/// GitHub: pushes, merged pull requests, deployments and deployment statuses (docs/sources/github.md).
#[utoipa::path(post, path = "/webhooks/github", tag = "webhooks",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256(secret, raw body)>`"),
        ("X-GitHub-Event" = String, Header, description = "The event type, e.g. `push`"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's id"),
        ("X-GitHub-Hook-ID" = Option<String>, Header, description = "The webhook's id (part of the delivery key)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The event as GitHub sends it"),
    responses(
        (status = 200, description = "A `ping`, after the signature check", body = Pong),
        (status = 202, description = "Verified and durably written", body = WebhookAnswer),
        WebhookErrors,
    ))]
async fn github(State(ingest): Shared, request: Request) -> Response {
    observed("github", ingest.github(request)).await
}

/// GitLab: push, merge request, deployment and pipeline hooks (docs/sources/gitlab.md).
#[utoipa::path(post, path = "/webhooks/gitlab", tag = "webhooks",
    params(
        ("X-Gitlab-Token" = String, Header, description = "The webhook's secret token"),
        ("Idempotency-Key" = String, Header, description = "The delivery's id, the same on every retry (older GitLab: `X-Gitlab-Event-UUID`)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The hook as GitLab sends it"),
    responses(
        (status = 202, description = "Verified and durably written", body = WebhookAnswer),
        WebhookErrors,
    ))]
async fn gitlab(State(ingest): Shared, request: Request) -> Response {
    observed("gitlab", ingest.gitlab(request)).await
}

/// PagerDuty: incident webhooks (V3) (docs/sources/pagerduty.md).
#[utoipa::path(post, path = "/webhooks/pagerduty", tag = "webhooks",
    params(
        ("X-PagerDuty-Signature" = String, Header, description = "`v1=<hex HMAC-SHA256(secret, raw body)>`, several separated by commas"),
        ("X-Webhook-Id" = Option<String>, Header, description = "The delivery's id (else the event's `id`)"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The V3 webhook as PagerDuty sends it"),
    responses(
        (status = 202, description = "Verified and durably written", body = WebhookAnswer),
        WebhookErrors,
    ))]
async fn pagerduty(State(ingest): Shared, request: Request) -> Response {
    observed("pagerduty", ingest.pagerduty(request)).await
}

/// Argo CD: syncs and health through the notifications controller, with the documented template
/// (docs/sources/argocd.md).
#[utoipa::path(post, path = "/webhooks/argocd", tag = "webhooks",
    security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "`{\"trigger\": \"<trigger name>\", \"app\": {{toJson .app}}, \"context\": {{toJson .context}}}`"),
    responses(
        (status = 202, description = "Verified and durably written", body = WebhookAnswer),
        WebhookErrors,
    ))]
async fn argocd(State(ingest): Shared, request: Request) -> Response {
    observed("argocd", ingest.argocd(request)).await
}

/// CDEvents 0.4 and 0.5: binary-mode CloudEvents (`ce-*` headers), structured mode, or a bare
/// CDEvent (docs/sources/cdevents.md).
#[utoipa::path(post, path = "/webhooks/cdevents", tag = "webhooks",
    security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json", description = "The CDEvent"),
    responses(
        (status = 202, description = "Verified and durably written", body = WebhookAnswer),
        WebhookErrors,
    ))]
async fn cdevents(State(ingest): Shared, request: Request) -> Response {
    observed("cdevents", ingest.cdevents(request)).await
}

/// Flux: notification-controller events through a generic-hmac provider (docs/sources/flux.md).
#[utoipa::path(post, path = "/webhooks/flux", tag = "webhooks",
    params(
        ("X-Signature" = String, Header, description = "`sha256=<hex HMAC-SHA256(secret, raw body)>`"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The event as the notification controller sends it"),
    responses(
        (status = 202, description = "Verified and durably written", body = WebhookAnswer),
        WebhookErrors,
    ))]
async fn flux(State(ingest): Shared, request: Request) -> Response {
    observed("flux", ingest.flux(request)).await
}
