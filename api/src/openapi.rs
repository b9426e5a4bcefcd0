//! The OpenAPI 3.1 document of the metrics API: the frame shared with the webhooks
//! (`doraflow_http::openapi`), every path from its handler's `utoipa::path` (routes.rs), and the
//! error answers the metric endpoints share.

use std::collections::BTreeMap;

use doraflow_http::openapi::error_responses as responses;
use utoipa::openapi::{OpenApi, RefOr, ResponseBuilder, response::Response};

/// The document's frame, before the routes add their paths, with the schemas of parameters
/// whose types are described by hand.
pub fn document() -> OpenApi {
    use utoipa::PartialSchema;
    let mut document = doraflow_http::openapi::frame();
    let schemas = &mut document
        .components
        .get_or_insert_with(Default::default)
        .schemas;
    schemas.insert(
        "Edition".into(),
        doraflow_aggregator::summary::Edition::schema(),
    );
    schemas.insert("Instant".into(), crate::params::Instant::schema());
    schemas.insert("TimeZone".into(), crate::params::TimeZone::schema());
    document
}

/// The errors of the catalog endpoints: authentication only.
pub struct AuthErrors;

impl utoipa::IntoResponses for AuthErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[(
            401,
            "Missing or wrong bearer token (`missing_token`, `bad_token`)",
        )])
    }
}

/// The errors of the metric endpoints, and 304 for a conditional request.
pub struct MetricErrors;

impl utoipa::IntoResponses for MetricErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = responses(&[
            (
                400,
                "A parameter is not valid (`invalid_parameter`): the message names it",
            ),
            (
                401,
                "Missing or wrong bearer token (`missing_token`, `bad_token`)",
            ),
            (
                403,
                "The token may not see this service or team, or the whole organisation (`forbidden`)",
            ),
            (
                404,
                "No such service or team (`unknown_service`, `unknown_team`)",
            ),
        ]);
        all.insert(
            "304".into(),
            ResponseBuilder::new()
                .description("Not modified: the `If-None-Match` tag is current")
                .build()
                .into(),
        );
        all
    }
}
