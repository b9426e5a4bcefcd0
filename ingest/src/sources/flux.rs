//! Flux notification-controller events through a `generic-hmac` Provider: Kustomization and
//! HelmRelease reconciliations as deployments of the object (`namespace/name`).
//!
//! An `info` event whose reason ends in `Succeeded` (`ReconciliationSucceeded`,
//! `InstallSucceeded`, `UpgradeSucceeded`, `RollbackSucceeded`) is a successful deployment of
//! the revision in its metadata; an `error` event a failed one. Tests and uninstalls, progress
//! reports and every other kind are authentic but ignored.
//!
//! Flux reports a success only when a reconciliation applied something, so each success event
//! is one deployment (a later return to an older revision is a new one, a rollback). Failures
//! repeat on every retry: all failures of one object at one revision are one failed attempt.

use std::collections::BTreeMap;

use doraflow_schemas::Event;
use doraflow_schemas::event::{AppKind, AppRef, DeploymentState, DeploymentUpdate};
use serde::Deserialize;

use super::{NormalizeError, Normalized, is_full_sha, parse_time};

#[derive(Deserialize)]
struct FluxEvent {
    #[serde(rename = "involvedObject")]
    involved_object: ObjectRef,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    severity: String,
    reason: String,
    timestamp: String,
}

#[derive(Deserialize)]
struct ObjectRef {
    kind: String,
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    uid: String,
}

/// The kinds whose reconciliations deploy.
const DEPLOYING_KINDS: &[&str] = &["Kustomization", "HelmRelease"];

/// Successful reasons that are not deployments.
const NOT_DEPLOYING: &[&str] = &["TestSucceeded", "UninstallSucceeded"];

/// The metadata key an Alert's `eventMetadata` sets to name the environment.
const ENVIRONMENT_KEY: &str = "environment";

impl FluxEvent {
    /// The source revision: metadata `<group>/revision`.
    fn revision(&self) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.ends_with("/revision"))
            .map(|(_, v)| v.as_str())
    }
}

/// The commit in a Flux revision: `main@sha1:<sha>`, the older `main/<sha>`, or the revision
/// as given (a chart version, an OCI digest: a deployment no change can link to).
pub fn commit_of(revision: &str) -> &str {
    if let Some((_, sha)) = revision.rsplit_once("@sha1:") {
        return sha;
    }
    match revision.rsplit_once('/') {
        Some((_, sha)) if is_full_sha(sha) => sha,
        _ => revision,
    }
}

/// The delivery key (interfaces.md): involved object uid, revision, reason and timestamp.
pub fn delivery_key(body: &[u8]) -> Result<String, NormalizeError> {
    let event: FluxEvent = serde_json::from_slice(body)?;
    Ok(format!(
        "flux:{}:{}:{}:{}",
        event.involved_object.uid,
        event.revision().unwrap_or_default(),
        event.reason,
        event.timestamp
    ))
}

/// Normalizes one verified Flux event.
pub fn normalize(body: &[u8]) -> Result<Normalized, NormalizeError> {
    let event: FluxEvent = serde_json::from_slice(body)?;
    let object = &event.involved_object;
    if !DEPLOYING_KINDS.contains(&object.kind.as_str()) {
        return Ok(Normalized::Ignored(format!(
            "a {} event carries no metric",
            object.kind
        )));
    }
    let state = match event.severity.as_str() {
        "error" => DeploymentState::Failure,
        "info"
            if event.reason.ends_with("Succeeded")
                && !NOT_DEPLOYING.contains(&event.reason.as_str()) =>
        {
            DeploymentState::Success
        }
        _ => {
            return Ok(Normalized::Ignored(format!(
                "the {} {} event carries no metric",
                event.severity, event.reason
            )));
        }
    };
    let Some(revision) = event.revision() else {
        return Ok(Normalized::Ignored(format!(
            "the {} event of {}/{} names no revision",
            event.reason, object.namespace, object.name
        )));
    };
    let name = if object.namespace.is_empty() {
        object.name.clone()
    } else {
        format!("{}/{}", object.namespace, object.name)
    };
    Ok(Normalized::Events(vec![Event::Deployment(
        DeploymentUpdate {
            id: match state {
                DeploymentState::Failure => format!("{}:{revision}:failed", object.uid),
                _ => format!("{}:{revision}@{}", object.uid, event.timestamp),
            },
            repo: None,
            service_hint: None,
            environment: event
                .metadata
                .get(ENVIRONMENT_KEY)
                .cloned()
                .unwrap_or_default(),
            revision: commit_of(revision).to_string(),
            state,
            at: parse_time("timestamp", &event.timestamp)?,
            tier: None,
            app: Some(AppRef {
                kind: AppKind::Flux,
                name,
            }),
        },
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_support::fixture_at;
    use doraflow_schemas::time::parse_rfc3339;

    fn fixture(name: &str) -> Vec<u8> {
        fixture_at(&format!("flux/{name}"))
    }

    fn deployment(name: &str) -> DeploymentUpdate {
        match normalize(&fixture(name)).unwrap() {
            Normalized::Events(events) => match &events[..] {
                [Event::Deployment(d)] => d.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn revisions_in_both_formats_give_the_commit() {
        let sha = "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1";
        assert_eq!(commit_of(&format!("main@sha1:{sha}")), sha);
        assert_eq!(commit_of(&format!("main/{sha}")), sha);
        assert_eq!(commit_of(&format!("refs/tags/v1@sha1:{sha}")), sha);
        assert_eq!(commit_of("6.5.4"), "6.5.4");
    }

    #[test]
    fn the_documented_error_event_is_a_failed_deployment() {
        let d = deployment("kustomization.validation-failed.json");
        assert_eq!(
            d,
            DeploymentUpdate {
                id: "7d0cdc51-ddcf-4743-b223-83ca5c699632:main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1:failed".into(),
                repo: None,
                service_hint: None,
                environment: String::new(),
                revision: "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1".into(),
                state: DeploymentState::Failure,
                at: parse_rfc3339("2022-10-28T07:26:19Z").unwrap(),
                tier: None,
                app: Some(AppRef {
                    kind: AppKind::Flux,
                    name: "apps/webapp".into()
                }),
            }
        );
    }

    #[test]
    fn a_reconciliation_and_a_helm_upgrade_are_successful_deployments() {
        let d = deployment("kustomization.reconciled.json");
        assert_eq!(d.state, DeploymentState::Success);
        assert_eq!(d.revision, "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1");
        let h = deployment("helmrelease.upgraded.json");
        assert_eq!(h.state, DeploymentState::Success);
        assert_eq!(h.revision, "6.5.4");
        assert_eq!(h.environment, "staging");
        assert_eq!(h.app.unwrap().name, "apps/podinfo");
    }

    #[test]
    fn progress_tests_and_other_kinds_are_ignored() {
        let base: serde_json::Value =
            serde_json::from_slice(&fixture("kustomization.reconciled.json")).unwrap();
        for (field, value) in [
            ("reason", "Progressing"),
            ("reason", "TestSucceeded"),
            ("kind", "GitRepository"),
        ] {
            let mut event = base.clone();
            if field == "kind" {
                event["involvedObject"]["kind"] = value.into();
            } else {
                event[field] = value.into();
            }
            let out = normalize(&serde_json::to_vec(&event).unwrap()).unwrap();
            assert!(matches!(out, Normalized::Ignored(_)), "{value}: {out:?}");
        }
    }

    #[test]
    fn the_delivery_key_is_uid_revision_reason_and_time() {
        assert_eq!(
            delivery_key(&fixture("kustomization.reconciled.json")).unwrap(),
            "flux:7d0cdc51-ddcf-4743-b223-83ca5c699632:main@sha1:731f7eaddfb6af01cb2173e18f0f75b0ba780ef1:\
             ReconciliationSucceeded:2022-10-28T07:31:02Z"
        );
    }
}
