//! Conditional answers for metric endpoints: a strong `ETag` (a hash of the answer's bytes) and
//! `Cache-Control: private, no-cache` on every 200 to a GET, and 304 Not Modified when the
//! caller's `If-None-Match` names the current tag. Figures move within a second, so clients
//! revalidate every time; an unchanged answer then costs no transfer.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::HttpError;

/// What metric answers say about caching.
pub const CACHE_CONTROL: &str = "private, no-cache";

/// The middleware (use with `axum::middleware::from_fn`).
pub async fn conditional(request: Request, next: Next) -> Response {
    let is_get = request.method() == Method::GET;
    let if_none_match = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    if !is_get || response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the answer could not be read",
        )
        .into_response();
    };
    let tag = entity_tag(&bytes);
    parts.headers.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).expect("hex is a header value"),
    );
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if if_none_match.is_some_and(|v| matches(&v, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The tag of an answer: 128 bits of its SHA-256, quoted.
fn entity_tag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]))
}

/// Whether an `If-None-Match` value names the tag (weak comparison, as RFC 9110 asks for it).
fn matches(if_none_match: &HeaderValue, tag: &str) -> bool {
    let Ok(text) = if_none_match.to_str() else {
        return false;
    };
    text.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == tag
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceExt;

    fn etag_of(headers: &HeaderMap) -> Option<&str> {
        headers.get(header::ETAG).and_then(|v| v.to_str().ok())
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/a",
                get(|| async { axum::Json(serde_json::json!({"n": 1})) }),
            )
            .layer(from_fn(conditional))
    }

    #[tokio::test]
    async fn an_unchanged_answer_is_not_modified() {
        let first = app()
            .oneshot(Request::get("/a").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        let tag = etag_of(first.headers()).unwrap().to_string();
        assert_eq!(tag, entity_tag(br#"{"n":1}"#));

        for given in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"x\", {tag}"),
            "*".into(),
        ] {
            let again = app()
                .oneshot(
                    Request::get("/a")
                        .header(header::IF_NONE_MATCH, given)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(etag_of(again.headers()), Some(tag.as_str()));
        }
        let other = app()
            .oneshot(
                Request::get("/a")
                    .header(header::IF_NONE_MATCH, "\"stale\"")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::OK);
    }
}
