//! Argo CD, through the notification template of `docs/sources/argocd.md`:
//! `{"trigger": "<name>", "app": {{toJson .app}}, "context": {{toJson .context}}}`.
//!
//! The events follow from the Application's state, whatever trigger sent it (metrics.md §1, §3):
//! a sync operation `Succeeded` with health `Healthy` is a successful deployment, `Failed` or
//! `Error` a failed one, anything else (`Running`, or succeeded but not healthy yet) an update
//! that ends nothing. Independently, health `Degraded` or `Healthy` is a health report of the
//! running revision: the degradation signal and its recovery.

use doraflow_schemas::Event;
use doraflow_schemas::event::{
    AppKind, AppRef, DeploymentState, DeploymentUpdate, HealthReport, HealthStatus,
};
use doraflow_schemas::time::Timestamp;
use serde::Deserialize;
use std::collections::BTreeMap;

use super::{NormalizeError, Normalized, parse_time};

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    trigger: Option<String>,
    app: Application,
}

#[derive(Deserialize)]
struct Application {
    metadata: Metadata,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, rename = "deletionTimestamp")]
    deletion_timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
struct Status {
    #[serde(default, rename = "operationState")]
    operation_state: Option<OperationState>,
    #[serde(default)]
    health: Option<Health>,
    #[serde(default)]
    sync: Option<SyncStatus>,
}

#[derive(Deserialize)]
struct OperationState {
    phase: String,
    #[serde(default, rename = "startedAt")]
    started_at: Option<String>,
    #[serde(default, rename = "finishedAt")]
    finished_at: Option<String>,
    #[serde(default, rename = "syncResult")]
    sync_result: Option<SyncResult>,
}

#[derive(Deserialize)]
struct SyncResult {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Vec<String>,
}

#[derive(Deserialize)]
struct Health {
    status: String,
    #[serde(default, rename = "lastTransitionTime")]
    last_transition_time: Option<String>,
}

#[derive(Deserialize)]
struct SyncStatus {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Vec<String>,
}

/// The label that names an application's environment (metrics.md §1).
const ENVIRONMENT_LABEL: &str = "environment";

fn first_revision(single: Option<&String>, many: &[String]) -> Option<String> {
    single
        .filter(|r| !r.is_empty())
        .or_else(|| many.iter().find(|r| !r.is_empty()))
        .cloned()
}

impl Application {
    /// The revision the last sync deployed: `syncResult.revision`, the first of `revisions`
    /// for a multi-source app; else the revision the app is synced to.
    fn revision(&self) -> Option<String> {
        let synced = self.status.operation_state.as_ref().and_then(|op| {
            let result = op.sync_result.as_ref()?;
            first_revision(result.revision.as_ref(), &result.revisions)
        });
        synced.or_else(|| {
            let sync = self.status.sync.as_ref()?;
            first_revision(sync.revision.as_ref(), &sync.revisions)
        })
    }
}

/// The delivery key of a notification (metrics.md §10): app uid, revision, phase, finish time
/// and health, so the same state notified twice (two triggers, a retry) counts once.
pub fn delivery_key(body: &[u8]) -> Result<String, NormalizeError> {
    let body: Body = serde_json::from_slice(body)?;
    let app = &body.app;
    let op = app.status.operation_state.as_ref();
    Ok(format!(
        "argocd:{}:{}:{}:{}:{}",
        app.metadata.uid.as_deref().unwrap_or(&app.metadata.name),
        app.revision().unwrap_or_default(),
        op.map_or("", |o| o.phase.as_str()),
        op.and_then(|o| o.finished_at.as_deref()).unwrap_or(""),
        app.status.health.as_ref().map_or("", |h| h.status.as_str()),
    ))
}

/// Normalizes one verified Argo CD notification.
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, NormalizeError> {
    let body: Body = serde_json::from_slice(body)?;
    let app = body.app;
    if app.metadata.deletion_timestamp.is_some() {
        return Ok(Normalized::Ignored(format!(
            "application {} is being deleted",
            app.metadata.name
        )));
    }
    let revision = app.revision();
    let label = app.metadata.labels.get(ENVIRONMENT_LABEL).cloned();
    let health = app.status.health.as_ref();
    let healthy = health.is_some_and(|h| h.status == "Healthy");
    let mut events = Vec::new();

    if let (Some(op), Some(revision)) = (&app.status.operation_state, &revision) {
        let state = match op.phase.as_str() {
            "Succeeded" if healthy => DeploymentState::Success,
            "Failed" | "Error" => DeploymentState::Failure,
            _ => DeploymentState::Pending,
        };
        let at = match (state, &op.finished_at, &op.started_at) {
            (DeploymentState::Pending, _, Some(started)) => Some(started),
            (_, Some(finished), _) => Some(finished),
            (_, None, started) => started.as_ref(),
        };
        if let (Some(at), Some(started)) = (at, &op.started_at) {
            // One sync operation is one attempt, whatever its updates.
            let uid = app.metadata.uid.as_deref().unwrap_or(&app.metadata.name);
            events.push(Event::Deployment(DeploymentUpdate {
                id: format!("{uid}:{started}"),
                repo: None,
                service_hint: None,
                environment: label.clone().unwrap_or_default(),
                revision: revision.clone(),
                state,
                at: parse_time("app.status.operationState.finishedAt", at)?,
                tier: None,
                app: Some(AppRef {
                    kind: AppKind::Argocd,
                    name: app.metadata.name.clone(),
                }),
            }));
        }
    }

    if let (Some(health), Some(revision)) = (health, &revision) {
        let status = match health.status.as_str() {
            "Healthy" => Some(HealthStatus::Healthy),
            "Degraded" => Some(HealthStatus::Degraded),
            _ => None,
        };
        if let Some(status) = status {
            let at = match (&health.last_transition_time, &app.status.operation_state) {
                (Some(t), _) => parse_time("app.status.health.lastTransitionTime", t)?,
                (
                    None,
                    Some(OperationState {
                        finished_at: Some(t),
                        ..
                    }),
                ) => parse_time("app.status.operationState.finishedAt", t)?,
                _ => received_at,
            };
            events.push(Event::Health(HealthReport {
                app: app.metadata.name.clone(),
                environment: label.clone(),
                revision: revision.clone(),
                status,
                at,
            }));
        }
    }

    if events.is_empty() {
        return Ok(Normalized::Ignored(format!(
            "the {} notification of {} carries no deployment or health report",
            body.trigger.as_deref().unwrap_or("(untitled)"),
            app.metadata.name
        )));
    }
    Ok(Normalized::Events(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_support::t;

    /// What our notification template renders for a captured notification: the same `app`
    /// and `context` objects (`toJson`), under a trigger name.
    pub(crate) fn rendered(name: &str, trigger: &str) -> Vec<u8> {
        let captured: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!(
                "{}/tests/fixtures/argocd/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        serde_json::to_vec(&serde_json::json!({
            "trigger": trigger,
            "app": captured["app"],
            "context": captured["context"],
        }))
        .unwrap()
    }

    fn events(name: &str, trigger: &str) -> Vec<Event> {
        match normalize(&rendered(name, trigger), t("2026-11-01T00:00:00Z")).unwrap() {
            Normalized::Events(events) => events,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn podinfo() -> AppRef {
        AppRef {
            kind: AppKind::Argocd,
            name: "aaaaaaaaa".into(),
        }
    }

    #[test]
    fn every_captured_application_renders_a_body_that_parses() {
        for name in [
            "000_cli_template.json",
            "007_sync_podinfo_1_1.json",
            "008_sync_podinfo_1_2.json",
            "009_sync_podinfo_1_3.json",
            "010_sync_podinfo_1_4.json",
            "013_sync_podinfo_2_3.json",
            "019_sync_podinfo_4_2.json",
            "022_remove_podinfo_2_1.json",
        ] {
            let body = rendered(name, "on-deployed");
            normalize(&body, t("2026-11-01T00:00:00Z")).unwrap();
            delivery_key(&body).unwrap();
        }
    }

    /// The body templates of the `argocd-notifications-cm` snippet in docs/sources/argocd.md.
    fn documented_templates() -> Vec<String> {
        let doc = std::fs::read_to_string(format!(
            "{}/../docs/sources/argocd.md",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let lines: Vec<&str> = doc.lines().collect();
        lines
            .windows(2)
            .filter(|w| w[0].trim() == "body: |")
            .map(|w| w[1].trim().to_string())
            .collect()
    }

    /// Renders a template as the notifications controller does for these two variables:
    /// `toJson` of the Application and of the context.
    fn render(template: &str, captured: &serde_json::Value) -> Vec<u8> {
        template
            .replace("{{toJson .app}}", &captured["app"].to_string())
            .replace("{{toJson .context}}", &captured["context"].to_string())
            .into_bytes()
    }

    #[test]
    fn the_documented_templates_render_bodies_that_parse_for_every_captured_application() {
        let templates = documented_templates();
        assert_eq!(templates.len(), 4, "{templates:?}");
        let dir = format!("{}/tests/fixtures/argocd", env!("CARGO_MANIFEST_DIR"));
        let mut deployments = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let captured: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            for template in &templates {
                let body = render(template, &captured);
                assert!(
                    !String::from_utf8_lossy(&body).contains("{{toJson"),
                    "unrendered: {template}"
                );
                let out = normalize(&body, t("2026-11-01T00:00:00Z"))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                delivery_key(&body).unwrap();
                if let Normalized::Events(events) = out {
                    deployments += events
                        .iter()
                        .filter(|e| matches!(e, Event::Deployment(_)))
                        .count();
                }
            }
        }
        // Six captured Applications have a sync operation (and are not being deleted).
        assert_eq!(deployments, 6 * 4);
    }

    #[test]
    fn a_succeeded_healthy_sync_is_a_successful_deployment_and_a_healthy_report() {
        let events = events("008_sync_podinfo_1_2.json", "on-deployed");
        let revision = "94fcc5e8673e0d2d7fbca6b1c6c455ba308314fc";
        assert_eq!(
            events,
            vec![
                Event::Deployment(DeploymentUpdate {
                    id: "bb42b013-3ce1-4207-a409-2898419d8e74:2025-10-02T16:20:55Z".into(),
                    repo: None,
                    service_hint: None,
                    environment: String::new(),
                    revision: revision.into(),
                    state: DeploymentState::Success,
                    at: t("2025-10-02T16:20:59Z"),
                    tier: None,
                    app: Some(podinfo()),
                }),
                Event::Health(HealthReport {
                    app: "aaaaaaaaa".into(),
                    environment: None,
                    revision: revision.into(),
                    status: HealthStatus::Healthy,
                    at: t("2025-09-30T12:01:51Z"),
                }),
            ]
        );
    }

    #[test]
    fn a_running_sync_ends_nothing_and_joins_its_attempt() {
        let events = events("007_sync_podinfo_1_1.json", "on-sync-running");
        let Event::Deployment(d) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(d.state, DeploymentState::Pending);
        assert_eq!(
            d.id,
            "bb42b013-3ce1-4207-a409-2898419d8e74:2025-10-02T16:20:55Z"
        );
        assert_eq!(d.at, t("2025-10-02T16:20:55Z"));
    }

    #[test]
    fn a_multi_source_degraded_app_reports_its_first_revision_degraded() {
        let events = events("010_sync_podinfo_1_4.json", "on-health-degraded");
        assert_eq!(events.len(), 2, "{events:?}");
        let Event::Deployment(d) = &events[0] else {
            panic!()
        };
        // Succeeded but not healthy: not an end.
        assert_eq!(d.state, DeploymentState::Pending);
        assert_eq!(d.revision, "6.9.0");
        let Event::Health(h) = &events[1] else {
            panic!()
        };
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.revision, "6.9.0");
        assert_eq!(h.at, t("2025-10-02T16:31:04Z"));
    }

    #[test]
    fn a_failed_sync_is_a_failed_deployment_with_the_environment_label() {
        let mut body: serde_json::Value =
            serde_json::from_slice(&rendered("013_sync_podinfo_2_3.json", "on-sync-failed"))
                .unwrap();
        body["app"]["status"]["operationState"]["phase"] = "Failed".into();
        body["app"]["status"]["health"]["status"] = "Progressing".into();
        body["app"]["metadata"]["labels"] = serde_json::json!({"environment": "prod-eu"});
        let Normalized::Events(events) = normalize(
            &serde_json::to_vec(&body).unwrap(),
            t("2026-11-01T00:00:00Z"),
        )
        .unwrap() else {
            panic!()
        };
        let [Event::Deployment(d)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(d.state, DeploymentState::Failure);
        assert_eq!(d.environment, "prod-eu");
        assert_eq!(d.revision, "a390e57286ce93cd869ef0cd157c287a7082d504");
        assert_eq!(d.at, t("2025-10-02T16:45:19Z"));
    }

    #[test]
    fn deletion_and_unknown_health_without_a_sync_are_ignored() {
        for name in ["022_remove_podinfo_2_1.json", "000_cli_template.json"] {
            let out = normalize(&rendered(name, "on-deployed"), t("2026-11-01T00:00:00Z")).unwrap();
            assert!(matches!(out, Normalized::Ignored(_)), "{name}: {out:?}");
        }
    }

    #[test]
    fn the_delivery_key_is_the_state_not_the_trigger() {
        let a = delivery_key(&rendered("008_sync_podinfo_1_2.json", "on-deployed")).unwrap();
        let b = delivery_key(&rendered("008_sync_podinfo_1_2.json", "on-sync-succeeded")).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            "argocd:bb42b013-3ce1-4207-a409-2898419d8e74:94fcc5e8673e0d2d7fbca6b1c6c455ba308314fc:\
             Succeeded:2025-10-02T16:20:59Z:Healthy"
        );
        let c = delivery_key(&rendered("013_sync_podinfo_2_3.json", "on-deployed")).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn a_body_without_app_is_malformed() {
        assert!(matches!(
            normalize(b"{\"trigger\": \"on-deployed\"}", t("2026-11-01T00:00:00Z")),
            Err(NormalizeError::Malformed(_))
        ));
    }
}
