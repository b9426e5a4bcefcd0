//! A role's whole router: its documented parts (each a router with its OpenAPI paths) merged,
//! `/healthz` and `/metrics` (every process has them), `/openapi.json` with the merged document,
//! and the common layers ([`crate::middleware::finish`]).

use axum::response::Response;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{middleware, openapi};

/// Assembles a role's router; `undocumented` holds routes outside the document (the `/readyz` of
/// `doraflow ingest`).
pub fn assemble(parts: Vec<(Router, OpenApi)>, undocumented: Router) -> Router {
    let (mut router, mut document) = OpenApiRouter::with_openapi(openapi::frame())
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .split_for_parts();
    for (part, part_document) in parts {
        router = router.merge(part);
        document.merge(part_document);
    }
    middleware::finish(router.merge(undocumented).merge(openapi::route(&document)))
}

/// The process is up.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Process up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Prometheus metrics of the process (docs/operations.md lists them).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "The Prometheus text exposition, format 0.0.4",
        content_type = "text/plain", body = String)))]
async fn metrics() -> Response {
    doraflow_telemetry::global().response()
}
