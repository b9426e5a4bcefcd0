//! The OpenAPI 3.1 document's shared parts and its route: the frame (description, tags, the
//! bearer security scheme, the one error body) that the metrics API and the webhooks add their
//! paths to, the error answers, and `/openapi.json` serving a role's document.

use std::collections::BTreeMap;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder, response::Response};
use utoipa::{Modify, OpenApi as _};

use crate::ErrorBody;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "doraflow",
        description = "DORA metrics from webhooks. The metrics API answers JSON with UTC RFC 3339 \
times and durations in seconds; every metric follows the published definitions (docs/metrics.md). \
With `api.tokens` configured every `/api/v1` request needs `Authorization: Bearer <token>` (without \
tokens the API is open). Webhooks are verified by each source's signature or token. Errors are \
`{\"error\": {\"code\", \"message\"}}`; every answer carries an `X-Request-Id`.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody)),
    tags(
        (name = "metrics", description = "The DORA metrics of a service, team or the organisation"),
        (name = "drill-down", description = "The facts behind the metrics, page by page"),
        (name = "catalog", description = "Services and teams as the pipeline sees them"),
        (name = "webhooks", description = "Deliveries from the tools (doraflow serve and doraflow ingest)"),
        (name = "health", description = "Liveness, readiness and Prometheus metrics"),
    )
)]
struct Frame;

/// The document's frame, before the routes add their paths.
pub fn frame() -> OpenApi {
    Frame::openapi()
}

/// An error answer with the one error body.
pub fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// Error answers by status.
pub fn error_responses(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error_response(description)))
        .collect()
}

/// Name of the bearer-token security scheme of the metrics API and the token-checked webhooks.
pub const BEARER: &str = "bearer";

/// Adds the bearer security scheme to a document.
pub struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token of `api.tokens` (metrics API) or of the source's `tokens` \
                         (webhooks of GitLab, Argo CD and CDEvents)",
                    ))
                    .build(),
            ),
        );
    }
}

/// `/openapi.json`: the document, rendered once.
pub fn route(document: &OpenApi) -> Router {
    let json = document
        .to_pretty_json()
        .expect("an OpenAPI document serializes");
    Router::new().route(
        "/openapi.json",
        get(move || {
            let json = json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], json) }
        }),
    )
}
