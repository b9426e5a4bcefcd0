//! A role's whole router: its documented parts (each a router with its OpenAPI paths) merged,
//! `/metrics` for Prometheus, `/openapi.json` with the merged document, and the common layers
//! ([`crate::middleware::finish`]).

use axum::Router;
use axum::response::Response;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{middleware, openapi};

/// Assembles a role's router; `undocumented` holds routes outside the document (a role's own
/// `/healthz` and `/readyz`).
pub fn assemble(parts: Vec<(Router, OpenApi)>, undocumented: Router) -> Router {
    let (mut router, mut document) = OpenApiRouter::with_openapi(openapi::frame())
        .routes(routes!(metrics))
        .split_for_parts();
    for (part, part_document) in parts {
        router = router.merge(part);
        document.merge(part_document);
    }
    middleware::finish(router.merge(undocumented).merge(openapi::route(&document)))
}

/// Prometheus metrics of the process (docs/operations.md lists them).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "The Prometheus text exposition, format 0.0.4",
        content_type = "text/plain", body = String)))]
async fn metrics() -> Response {
    doraflow_telemetry::global().response()
}
