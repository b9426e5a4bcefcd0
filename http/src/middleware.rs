//! The layers every role's router gets, outermost first: a request id (the caller's
//! `X-Request-Id`, or a new UUID) carried into the logs and back in the answer; the request's
//! latency by route for Prometheus; and one error JSON for the answers the framework makes itself
//! (404 of an unknown path, 405 with its `Allow` header, a rejected query string).

use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use doraflow_telemetry::{RouteLabels, recording};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;

use crate::HttpError;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of requests no route matched (bounded: never the path asked for).
const UNMATCHED: &str = "unmatched";

/// Adds the common layers and a JSON 404 for unknown paths to a role's whole router.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async {
            HttpError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(from_fn(observe))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The CORS layer of the metrics API for the configured origins (`*`: any); `None` without any.
/// Browsers may send the bearer token and `If-None-Match`, and read the tag, the request id and
/// the next page's link.
pub fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allowed = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allowed)
            .allow_methods([Method::GET, Method::HEAD])
            .allow_headers([header::AUTHORIZATION, header::IF_NONE_MATCH, REQUEST_ID])
            .expose_headers([header::ETAG, header::LINK, REQUEST_ID])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!("request", request_id, method = %request.method(), route);
    let response = next.run(request).instrument(span.clone()).await;
    let response = as_error_json(response).await;
    let status = response.status();
    let elapsed = started.elapsed();
    if let Some(t) = recording() {
        t.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                status: status.as_u16(),
            })
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                millis = elapsed.as_millis() as u64,
                "answered with a server error"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                millis = elapsed.as_millis() as u64,
                "answered"
            );
        }
    });
    response
}

/// An error answer that is not JSON yet (the framework's own) becomes the one error JSON, its
/// text as the message; its headers (`Allow` of a 405) stay.
async fn as_error_json(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error");
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => reason.to_string(),
        text => text.to_string(),
    };
    let code = error_code(status);
    let rebuilt = HttpError::new(status, code, message).into_response();
    // The framework's headers (`Allow`) stay; the body's own (type, length) are the new one's.
    parts.headers.remove(header::CONTENT_LENGTH);
    let (new_parts, body) = rebuilt.into_parts();
    for (name, value) in new_parts.headers {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    Response::from_parts(parts, Body::new(body))
}

/// The error code of a framework answer by its status.
fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_parameter",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_content_type",
        s if s.is_server_error() => "internal_error",
        _ => "request_refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Query;
    use axum::routing::get;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Limit {
        #[allow(dead_code)]
        limit: u32,
    }

    fn app() -> Router {
        finish(Router::new().route("/things", get(|_: Query<Limit>| async { "ok" })))
    }

    async fn send(request: Request) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn framework_errors_answer_the_error_json_with_a_request_id() {
        let (status, headers, body) =
            send(Request::get("/nowhere").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert!(headers.get(REQUEST_ID).is_some());

        let (status, headers, body) =
            send(Request::post("/things").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(headers[header::ALLOW], "GET,HEAD");

        let (status, _, body) = send(
            Request::get("/things?limit=many")
                .header(REQUEST_ID, "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "invalid_parameter");
        assert!(body["error"]["message"].as_str().unwrap().contains("limit"));
    }

    #[tokio::test]
    async fn cors_answers_configured_origins_only() {
        let app = Router::new()
            .route("/a", get(|| async { "ok" }))
            .layer(cors(&["https://grafana.example.com".to_string()]).unwrap());
        let preflight = |origin: &'static str| {
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/a")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
                .body(Body::empty())
                .unwrap()
        };
        let allowed = app
            .clone()
            .oneshot(preflight("https://grafana.example.com"))
            .await
            .unwrap();
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://grafana.example.com"
        );
        assert!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap()
                .contains("authorization")
        );
        let other = app
            .oneshot(preflight("https://evil.example"))
            .await
            .unwrap();
        assert!(
            other
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
        assert!(cors(&[]).is_none());
    }

    #[tokio::test]
    async fn a_callers_request_id_comes_back() {
        let response = app()
            .oneshot(
                Request::get("/things?limit=1")
                    .header(REQUEST_ID, "abc-123")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[REQUEST_ID], "abc-123");
    }
}
