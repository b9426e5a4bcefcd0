//! The HTTP side of ingest: one route per source under `/webhooks/`, each doing size and content
//! checks, signature verification on the raw bytes, normalization, and a durable append before
//! answering (interfaces.md, "Webhook endpoints").

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use doraflow_eventlog::EventLog;
use doraflow_http::HttpError;
use doraflow_schemas::{LogRecord, Outcome};
use serde_json::json;

use crate::signature::{self, SignatureError};
use crate::sources::{self, NormalizeError, Normalized};

/// Headers never stored with a delivery because they carry secrets.
const SECRET_HEADERS: &[&str] = &["authorization", "x-gitlab-token", "cookie"];

/// What ingest needs: the log, the secrets, and the body limit.
pub struct Ingest {
    log: Arc<dyn EventLog>,
    github_secrets: Vec<String>,
    pagerduty_secrets: Vec<String>,
    max_body_bytes: usize,
}

/// What an accepted delivery came to; the HTTP layer turns it into a response.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestOutcome {
    /// Written; `events` normalized events.
    Accepted {
        /// Delivery key.
        delivery: String,
        /// Number of events.
        events: usize,
    },
    /// Written, but carries no metric.
    Ignored {
        /// Delivery key.
        delivery: String,
        /// Why.
        reason: String,
    },
    /// Written to the dead letters.
    DeadLetter {
        /// Delivery key.
        delivery: String,
        /// Why it could not be normalized.
        reason: String,
    },
    /// A GitHub ping.
    Pong,
}

impl IntoResponse for IngestOutcome {
    fn into_response(self) -> Response {
        match self {
            IngestOutcome::Accepted { delivery, events } => (
                StatusCode::ACCEPTED,
                Json(json!({"status": "accepted", "delivery": delivery, "events": events})),
            )
                .into_response(),
            IngestOutcome::Ignored { delivery, reason } => (
                StatusCode::ACCEPTED,
                Json(json!({"status": "ignored", "delivery": delivery, "reason": reason})),
            )
                .into_response(),
            IngestOutcome::DeadLetter { delivery, reason } => (
                StatusCode::ACCEPTED,
                Json(json!({"status": "dead_letter", "delivery": delivery, "reason": reason})),
            )
                .into_response(),
            IngestOutcome::Pong => {
                (StatusCode::OK, Json(json!({"status": "pong"}))).into_response()
            }
        }
    }
}

/// The webhook routes.
pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/webhooks/github", post(github))
        .route("/webhooks/pagerduty", post(pagerduty))
        .layer(DefaultBodyLimit::disable())
        .with_state(ingest)
}

async fn github(State(ingest): State<Arc<Ingest>>, request: Request) -> Response {
    match ingest.github(request).await {
        Ok(outcome) => outcome.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn pagerduty(State(ingest): State<Arc<Ingest>>, request: Request) -> Response {
    match ingest.pagerduty(request).await {
        Ok(outcome) => outcome.into_response(),
        Err(error) => error.into_response(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn required_header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, HttpError> {
    header_str(headers, name)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            HttpError::bad_request("missing_header", format!("the {name} header is required"))
        })
}

fn signature_error(error: SignatureError) -> HttpError {
    let code = match error {
        SignatureError::NotConfigured => "source_not_configured",
        SignatureError::Missing(_) => "missing_signature",
        SignatureError::Malformed(_) => "malformed_signature",
        SignatureError::Mismatch => "bad_signature",
    };
    HttpError::unauthorized(code, error.to_string())
}

impl Ingest {
    /// Builds the receiver over a log.
    pub fn new(
        log: Arc<dyn EventLog>,
        github_secrets: Vec<String>,
        pagerduty_secrets: Vec<String>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            log,
            github_secrets,
            pagerduty_secrets,
            max_body_bytes,
        }
    }

    /// Reads the body within the limit after checking the content type.
    async fn body(&self, request: Request) -> Result<(HeaderMap, Bytes), HttpError> {
        let (parts, body): (_, Body) = request.into_parts();
        if let Some(kind) = header_str(&parts.headers, header::CONTENT_TYPE.as_str())
            && !kind.to_ascii_lowercase().contains("json")
        {
            return Err(HttpError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_content_type",
                format!(
                    "content type {kind} is not accepted: configure the webhook to send application/json"
                ),
            ));
        }
        let too_large = || {
            HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the body is larger than server.max_body_bytes = {}",
                    self.max_body_bytes
                ),
            )
        };
        let declared = header_str(&parts.headers, header::CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return Err(too_large());
        }
        let bytes = axum::body::to_bytes(body, self.max_body_bytes)
            .await
            .map_err(|_| too_large())?;
        Ok((parts.headers, bytes))
    }

    async fn github(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body(request).await?;
        signature::verify_github(
            &self.github_secrets,
            header_str(&headers, "x-hub-signature-256"),
            &body,
        )
        .map_err(signature_error)?;
        let event = required_header(&headers, "x-github-event")?;
        let delivery_id = required_header(&headers, "x-github-delivery")?;
        let hook_id = header_str(&headers, "x-github-hook-id").unwrap_or("-");
        let received_at = Utc::now();
        let normalized = sources::github::normalize(event, &body, received_at);
        if matches!(normalized, Ok(Normalized::Pong)) {
            return Ok(IngestOutcome::Pong);
        }
        let key = format!("github:{hook_id}:{delivery_id}");
        self.write("github", key, &headers, &body, normalized).await
    }

    async fn pagerduty(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body(request).await?;
        signature::verify_pagerduty(
            &self.pagerduty_secrets,
            header_str(&headers, "x-pagerduty-signature"),
            &body,
        )
        .map_err(signature_error)?;
        let id = match header_str(&headers, "x-webhook-id").filter(|v| !v.is_empty()) {
            Some(id) => id.to_string(),
            None => sources::pagerduty::event_id(&body).map_err(malformed)?,
        };
        let normalized = sources::pagerduty::normalize(&body);
        self.write(
            "pagerduty",
            format!("pagerduty:{id}"),
            &headers,
            &body,
            normalized,
        )
        .await
    }

    /// Writes an authentic delivery with its outcome and waits until it is durable.
    async fn write(
        &self,
        source: &str,
        delivery: String,
        headers: &HeaderMap,
        body: &Bytes,
        normalized: Result<Normalized, NormalizeError>,
    ) -> Result<IngestOutcome, HttpError> {
        let (outcome, answer) = match normalized {
            Ok(Normalized::Events(events)) => {
                let n = events.len();
                (
                    Outcome::Events { events },
                    IngestOutcome::Accepted {
                        delivery: delivery.clone(),
                        events: n,
                    },
                )
            }
            Ok(Normalized::Ignored(reason)) => (
                Outcome::Ignored {
                    reason: reason.clone(),
                },
                IngestOutcome::Ignored {
                    delivery: delivery.clone(),
                    reason,
                },
            ),
            Ok(Normalized::Pong) => return Ok(IngestOutcome::Pong),
            Err(NormalizeError::Unusable(reason)) => (
                Outcome::DeadLetter {
                    reason: reason.clone(),
                },
                IngestOutcome::DeadLetter {
                    delivery: delivery.clone(),
                    reason,
                },
            ),
            Err(error @ NormalizeError::Malformed(_)) => return Err(malformed(error)),
        };
        let record = LogRecord {
            delivery,
            source: source.to_string(),
            received_at: Utc::now(),
            headers: kept_headers(headers),
            body: body.clone(),
            outcome,
        };
        self.log.append(&record).await.map_err(|e| {
            HttpError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "log_unavailable",
                format!("the delivery was not stored, retry later: {e}"),
            )
        })?;
        Ok(answer)
    }
}

fn malformed(error: NormalizeError) -> HttpError {
    HttpError::bad_request("malformed_body", error.to_string())
}

fn kept_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !SECRET_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_eventlog::EmbeddedLog;
    use tower::ServiceExt;

    const SECRET: &str = "s3cret";

    fn setup(max_body: usize) -> (tempfile::TempDir, Arc<EmbeddedLog>, Router) {
        let dir = tempfile::tempdir().unwrap();
        let (log, opened) = EmbeddedLog::open(dir.path().join("log"));
        opened.unwrap();
        let log = Arc::new(log);
        let ingest = Ingest::new(
            log.clone(),
            vec![SECRET.into()],
            vec![SECRET.into()],
            max_body,
        );
        (dir, log, router(Arc::new(ingest)))
    }

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn github_request(event: &str, body: Vec<u8>, signature: Option<String>) -> Request {
        let mut builder = Request::post("/webhooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-github-delivery", "d-1")
            .header("x-github-hook-id", "42");
        if let Some(sig) = signature {
            builder = builder.header("x-hub-signature-256", sig);
        }
        builder.body(Body::from(body)).unwrap()
    }

    fn sign(body: &[u8]) -> String {
        format!("sha256={}", signature::sign_hex(SECRET.as_bytes(), body))
    }

    async fn send(app: &Router, request: Request) -> (StatusCode, serde_json::Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn a_signed_push_is_written_before_202() {
        let (_dir, log, app) = setup(1 << 20);
        let body = fixture("github/push.with-new-branch.json");
        let (status, answer) = send(
            &app,
            github_request("push", body.clone(), Some(sign(&body))),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(
            answer,
            json!({"status":"accepted","delivery":"github:42:d-1","events":1})
        );
        let stored = log.read_from(0, 10, doraflow_eventlog::Body::Keep).unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(&stored[0].record.body[..], &body[..]);
        assert!(
            matches!(stored[0].record.outcome, Outcome::Events { ref events } if events.len() == 1)
        );
    }

    #[tokio::test]
    async fn wrong_missing_or_malformed_signatures_are_401_and_write_nothing() {
        let (_dir, log, app) = setup(1 << 20);
        let body = fixture("github/push.with-new-branch.json");
        let wrong = format!("sha256={}", signature::sign_hex(b"other", &body));
        for signature in [
            Some(wrong),
            None,
            Some("sha256=xyz".into()),
            Some("abc".into()),
        ] {
            let (status, answer) = send(
                &app,
                github_request("push", body.clone(), signature.clone()),
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{signature:?}");
            assert!(answer["error"]["code"].is_string());
        }
        let pd = fixture("pagerduty/triggered_v3.json");
        let request = Request::post("/webhooks/pagerduty")
            .header(
                "x-pagerduty-signature",
                format!("v1={}", signature::sign_hex(b"other", &pd)),
            )
            .body(Body::from(pd))
            .unwrap();
        assert_eq!(send(&app, request).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(*log.durable_end().borrow(), 0);
    }

    #[tokio::test]
    async fn malformed_json_is_400_and_writes_nothing() {
        let (_dir, log, app) = setup(1 << 20);
        let body = b"{\"ref\": ".to_vec();
        let (status, answer) = send(
            &app,
            github_request("push", body.clone(), Some(sign(&body))),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"]["code"], "malformed_body");
        assert_eq!(*log.durable_end().borrow(), 0);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_a_form_body_415() {
        let (_dir, log, app) = setup(100);
        let body = fixture("github/push.with-new-branch.json");
        let (status, _) = send(
            &app,
            github_request("push", body.clone(), Some(sign(&body))),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let request = Request::post("/webhooks/github")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("payload=%7B%7D"))
            .unwrap();
        assert_eq!(
            send(&app, request).await.0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(*log.durable_end().borrow(), 0);
    }

    #[tokio::test]
    async fn ping_pongs_and_unknown_events_are_kept_but_ignored() {
        let (_dir, log, app) = setup(1 << 20);
        let ping = fixture("github/ping.json");
        let (status, answer) = send(
            &app,
            github_request("ping", ping.clone(), Some(sign(&ping))),
        )
        .await;
        assert_eq!((status, answer), (StatusCode::OK, json!({"status":"pong"})));
        let release = fixture("github/release.published.json");
        let (status, answer) = send(
            &app,
            github_request("release", release.clone(), Some(sign(&release))),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer["status"], "ignored");
        assert_eq!(
            log.read_from(0, 10, doraflow_eventlog::Body::Keep)
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn pagerduty_keys_by_webhook_id_else_event_id() {
        let (_dir, _log, app) = setup(1 << 20);
        let body = fixture("pagerduty/triggered_v3.json");
        let sig = format!("v1={}", signature::sign_hex(SECRET.as_bytes(), &body));
        let request = Request::post("/webhooks/pagerduty")
            .header("content-type", "application/json")
            .header("x-pagerduty-signature", &sig)
            .header("x-webhook-id", "wh-1")
            .body(Body::from(body.clone()))
            .unwrap();
        let (status, answer) = send(&app, request).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer["delivery"], "pagerduty:wh-1");
        let request = Request::post("/webhooks/pagerduty")
            .header("x-pagerduty-signature", &sig)
            .body(Body::from(body))
            .unwrap();
        let (_, answer) = send(&app, request).await;
        assert_eq!(answer["delivery"], "pagerduty:01BZYIL05THJDFF2Y08X9SVMTU");
    }

    #[tokio::test]
    async fn an_unwritable_log_gives_503() {
        let (log, _) = EmbeddedLog::open("/proc/doraflow-cannot-exist/log");
        let ingest = Ingest::new(Arc::new(log), vec![SECRET.into()], vec![], 1 << 20);
        let app = router(Arc::new(ingest));
        let body = fixture("github/push.with-new-branch.json");
        let (status, answer) = send(
            &app,
            github_request("push", body.clone(), Some(sign(&body))),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer["error"]["code"], "log_unavailable");
    }
}
