//! The HTTP side of ingest: one route per source under `/webhooks/`, each doing size and content
//! checks, signature verification on the raw bytes, normalization, and a durable append before
//! answering (interfaces.md, "Webhook endpoints").

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};

use chrono::Utc;
use doraflow_eventlog::EventLog;
use doraflow_http::HttpError;
use doraflow_schemas::config::SourcesConfig;
use doraflow_schemas::{LogRecord, Outcome};

use crate::signature::{self, SignatureError};
use crate::sources::{self, NormalizeError, Normalized};

/// Headers never stored with a delivery because they carry secrets.
const SECRET_HEADERS: &[&str] = &["authorization", "x-gitlab-token", "cookie"];

/// What ingest needs: the log, the sources' secrets, and the body limit.
pub struct Ingest {
    log: Arc<dyn EventLog>,
    sources: SourcesConfig,
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
    pub fn new(log: Arc<dyn EventLog>, sources: SourcesConfig, max_body_bytes: usize) -> Self {
        Self {
            log,
            sources,
            max_body_bytes,
        }
    }

    /// Reads the body within the limit after checking the content type.
    pub(crate) async fn body(
        &self,
        source: &'static str,
        request: Request,
    ) -> Result<(HeaderMap, Bytes), HttpError> {
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
        if let Some(t) = doraflow_telemetry::recording() {
            t.ingest
                .received_bytes
                .get_or_create(&doraflow_telemetry::SourceLabels { source })
                .inc_by(bytes.len() as u64);
        }
        Ok((parts.headers, bytes))
    }

    pub(crate) async fn github(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body("github", request).await?;
        signature::verify_github(
            &self.sources.github.secrets,
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

    pub(crate) async fn pagerduty(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body("pagerduty", request).await?;
        signature::verify_pagerduty(
            &self.sources.pagerduty.secrets,
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

    pub(crate) async fn gitlab(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body("gitlab", request).await?;
        signature::verify_token(
            &self.sources.gitlab.tokens,
            header_str(&headers, "x-gitlab-token"),
            "X-Gitlab-Token",
        )
        .map_err(signature_error)?;
        // GitLab sends `Idempotency-Key` (the same on every retry); older versions only
        // `X-Gitlab-Event-UUID`.
        let id = header_str(&headers, "idempotency-key")
            .or_else(|| header_str(&headers, "x-gitlab-event-uuid"))
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                HttpError::bad_request(
                    "missing_header",
                    "the Idempotency-Key (or X-Gitlab-Event-UUID) header is required",
                )
            })?;
        let normalized = sources::gitlab::normalize(&body, Utc::now());
        self.write(
            "gitlab",
            format!("gitlab:{id}"),
            &headers,
            &body,
            normalized,
        )
        .await
    }

    pub(crate) async fn argocd(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body("argocd", request).await?;
        signature::verify_token(
            &self.sources.argocd.tokens,
            doraflow_http::bearer_token(&headers),
            "Authorization",
        )
        .map_err(signature_error)?;
        let key = sources::argocd::delivery_key(&body).map_err(malformed)?;
        let normalized = sources::argocd::normalize(&body, Utc::now());
        self.write("argocd", key, &headers, &body, normalized).await
    }

    pub(crate) async fn cdevents(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body("cdevents", request).await?;
        signature::verify_token(
            &self.sources.cdevents.tokens,
            doraflow_http::bearer_token(&headers),
            "Authorization",
        )
        .map_err(signature_error)?;
        let delivery = sources::cdevents::read(&headers, &body).map_err(malformed)?;
        let key = delivery.key.clone();
        let normalized = sources::cdevents::normalize(delivery);
        self.write("cdevents", key, &headers, &body, normalized)
            .await
    }

    pub(crate) async fn flux(&self, request: Request) -> Result<IngestOutcome, HttpError> {
        let (headers, body) = self.body("flux", request).await?;
        signature::verify_flux(
            &self.sources.flux.secrets,
            header_str(&headers, "x-signature"),
            &body,
        )
        .map_err(signature_error)?;
        let key = sources::flux::delivery_key(&body).map_err(malformed)?;
        let normalized = sources::flux::normalize(&body);
        self.write("flux", key, &headers, &body, normalized).await
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
    use axum::Router;
    use doraflow_eventlog::EmbeddedLog;
    use serde_json::json;
    use tower::ServiceExt;

    const SECRET: &str = "s3cret";

    /// Every source configured with `SECRET`.
    fn all_sources() -> SourcesConfig {
        let secrets = doraflow_schemas::config::SecretsConfig {
            secrets: vec![SECRET.into()],
        };
        let tokens = doraflow_schemas::config::TokensConfig {
            tokens: vec![SECRET.into()],
        };
        SourcesConfig {
            github: secrets.clone(),
            gitlab: tokens.clone(),
            pagerduty: secrets.clone(),
            argocd: tokens.clone(),
            cdevents: tokens,
            flux: secrets,
        }
    }

    fn setup(max_body: usize) -> (tempfile::TempDir, Arc<EmbeddedLog>, Router) {
        let dir = tempfile::tempdir().unwrap();
        let (log, opened) = EmbeddedLog::open(dir.path().join("log"));
        opened.unwrap();
        let log = Arc::new(log);
        let ingest = Ingest::new(log.clone(), all_sources(), max_body);
        (dir, log, crate::router(Arc::new(ingest)).0)
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

    /// A request to one of the token or signature sources, authenticated as `auth` says.
    fn source_request(
        path: &str,
        body: &[u8],
        auth: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Request {
        let mut builder = Request::post(path).header("content-type", "application/json");
        if let Some(secret) = auth {
            builder = match path {
                "/webhooks/gitlab" => builder.header("x-gitlab-token", secret),
                "/webhooks/flux" => builder.header(
                    "x-signature",
                    format!("sha256={}", signature::sign_hex(secret.as_bytes(), body)),
                ),
                _ => builder.header("authorization", format!("Bearer {secret}")),
            };
        }
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::from(body.to_vec())).unwrap()
    }

    fn argocd_body() -> Vec<u8> {
        let captured: serde_json::Value =
            serde_json::from_slice(&fixture("argocd/008_sync_podinfo_1_2.json")).unwrap();
        serde_json::to_vec(&json!({
            "trigger": "on-deployed", "app": captured["app"], "context": captured["context"],
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn every_source_refuses_wrong_or_missing_credentials_and_writes_nothing() {
        let (_dir, log, app) = setup(1 << 20);
        type Headers = Vec<(&'static str, &'static str)>;
        let cases: Vec<(&str, Vec<u8>, Headers)> = vec![
            (
                "/webhooks/gitlab",
                fixture("gitlab/push.json"),
                vec![("idempotency-key", "k-1")],
            ),
            ("/webhooks/argocd", argocd_body(), vec![]),
            (
                "/webhooks/cdevents",
                fixture("cdevents/v0.5.1/service_deployed.json"),
                vec![],
            ),
            (
                "/webhooks/flux",
                fixture("flux/kustomization.reconciled.json"),
                vec![],
            ),
        ];
        for (path, body, extra) in &cases {
            for auth in [Some("wrong"), None] {
                let (status, answer) = send(&app, source_request(path, body, auth, extra)).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {auth:?}");
                assert!(answer["error"]["code"].is_string());
            }
        }
        assert_eq!(*log.durable_end().borrow(), 0);
        for (path, body, extra) in &cases {
            let (status, answer) =
                send(&app, source_request(path, body, Some(SECRET), extra)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{path}: {answer}");
            assert_eq!(answer["status"], "accepted", "{path}: {answer}");
        }
        let stored = log.read_from(0, 10, doraflow_eventlog::Body::Keep).unwrap();
        let keys: Vec<&str> = stored.iter().map(|s| s.record.delivery.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "gitlab:k-1",
                "argocd:bb42b013-3ce1-4207-a409-2898419d8e74:94fcc5e8673e0d2d7fbca6b1c6c455ba308314fc:Succeeded:2025-10-02T16:20:59Z:Healthy",
                "cdevents:/event/source/123:271069a8-fc18-44f1-b38f-9d70a1695819",
                "flux:7d0cdc51-ddcf-4743-b223-83ca5c699632:main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1:ReconciliationSucceeded:2022-10-28T07:31:02Z",
            ]
        );
        // The GitLab token is a secret: not kept with the delivery.
        assert!(
            stored[0]
                .record
                .headers
                .iter()
                .all(|(name, _)| name != "x-gitlab-token")
        );
    }

    #[tokio::test]
    async fn gitlab_needs_a_delivery_id_and_cdevents_reads_binary_mode_keys() {
        let (_dir, log, app) = setup(1 << 20);
        let (status, answer) = send(
            &app,
            source_request(
                "/webhooks/gitlab",
                &fixture("gitlab/push.json"),
                Some(SECRET),
                &[],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"]["code"], "missing_header");
        let (_, answer) = send(
            &app,
            source_request(
                "/webhooks/gitlab",
                &fixture("gitlab/push.json"),
                Some(SECRET),
                &[("x-gitlab-event-uuid", "u-1")],
            ),
        )
        .await;
        assert_eq!(answer["delivery"], "gitlab:u-1");
        let (status, answer) = send(
            &app,
            source_request(
                "/webhooks/cdevents",
                &fixture("cdevents/v0.4.1/incident_detected.json"),
                Some(SECRET),
                &[
                    ("ce-id", "e-9"),
                    ("ce-source", "/pagerduty"),
                    ("ce-specversion", "1.0"),
                ],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer["delivery"], "cdevents:/pagerduty:e-9");
        let (status, answer) = send(
            &app,
            source_request("/webhooks/cdevents", b"{\"context\": 1}", Some(SECRET), &[]),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let stored = log.read_from(0, 10, doraflow_eventlog::Body::Keep).unwrap();
        assert_eq!(stored.len(), 2);
    }

    #[tokio::test]
    async fn an_unwritable_log_gives_503() {
        let (log, _) = EmbeddedLog::open("/proc/doraflow-cannot-exist/log");
        let ingest = Ingest::new(Arc::new(log), all_sources(), 1 << 20);
        let app = crate::router(Arc::new(ingest)).0;
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
