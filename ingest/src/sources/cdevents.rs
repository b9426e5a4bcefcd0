//! CDEvents 0.4.x and 0.5.x, in any of the three ways they travel: a binary-mode CloudEvent
//! (`ce-*` headers, the CDEvent as body), a structured-mode CloudEvent
//! (`application/cloudevents+json`, the CDEvent under `data`), or a bare CDEvent.
//!
//! Read: `service.deployed`, `service.upgraded`, `service.rolledback` (successful deployments
//! of the service named by the subject id), `incident.detected`, `incident.reported`,
//! `incident.resolved`, and `change.merged` when it names the merged commit. Every other
//! CDEvent is authentic but ignored.
//!
//! The fields are read through narrow structs rather than the `cdevents-sdk` crate: its types
//! deny unknown fields (one producer's extra field would turn a delivery into a 400), and the
//! handful of fields the metrics need are the same in 0.4 and 0.5.

use axum::http::HeaderMap;
use doraflow_schemas::Event;
use doraflow_schemas::event::{
    AppKind, AppRef, DeploymentState, DeploymentUpdate, IncidentChange, IncidentUpdate,
    PullRequestMerged,
};
use serde::Deserialize;

use super::{NormalizeError, Normalized, is_full_sha, parse_time};

/// A CDEvent's envelope.
#[derive(Deserialize)]
struct CdEvent {
    context: Context,
    subject: Subject,
    #[serde(default, rename = "customData")]
    custom_data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Context {
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    timestamp: String,
}

#[derive(Deserialize)]
struct Subject {
    id: String,
    #[serde(default)]
    content: Content,
}

#[derive(Deserialize, Default)]
struct Content {
    #[serde(default)]
    environment: Option<Reference>,
    #[serde(default, rename = "artifactId")]
    artifact_id: Option<String>,
    #[serde(default)]
    service: Option<Reference>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    repository: Option<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    id: String,
}

/// A structured-mode CloudEvent: attributes beside the CDEvent in `data`.
#[derive(Deserialize)]
struct Structured {
    id: String,
    source: String,
    data: serde_json::Value,
}

/// A CDEvent as it arrived, with its CloudEvents id and source.
pub struct Delivery {
    /// CloudEvents `id` and `source`: the delivery key.
    pub key: String,
    event: CdEvent,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Reads a delivery in whichever mode it came: `ce-id` headers (binary), a CloudEvents
/// content type (structured), else a bare CDEvent.
pub fn read(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, NormalizeError> {
    let structured = header(headers, "content-type").is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/cloudevents")
    });
    if let (Some(id), Some(source)) = (header(headers, "ce-id"), header(headers, "ce-source")) {
        let event: CdEvent = serde_json::from_slice(body)?;
        return Ok(Delivery {
            key: format!("cdevents:{source}:{id}"),
            event,
        });
    }
    if structured {
        let envelope: Structured = serde_json::from_slice(body)?;
        let event: CdEvent = serde_json::from_value(envelope.data)?;
        return Ok(Delivery {
            key: format!("cdevents:{}:{}", envelope.source, envelope.id),
            event,
        });
    }
    let event: CdEvent = serde_json::from_slice(body)?;
    Ok(Delivery {
        key: format!("cdevents:{}:{}", event.context.source, event.context.id),
        event,
    })
}

/// `dev.cdevents.<subject>.<predicate>.<version>` → (`subject`, `predicate`).
fn subject_and_predicate(event_type: &str) -> Option<(&str, &str)> {
    let rest = event_type.strip_prefix("dev.cdevents.")?;
    let mut parts = rest.splitn(3, '.');
    Some((parts.next()?, parts.next()?))
}

/// The commit a deployment deployed (metrics.md §1): the version of a `pkg:github/...@<sha>`
/// or `pkg:gitlab/...@<sha>` artifact, else `customData.revision`, else the artifact id itself
/// (a deployment all the same, but one no change can link to).
fn revision_of(content: &Content, custom: Option<&serde_json::Value>) -> Option<String> {
    let artifact = content.artifact_id.as_deref();
    let from_purl = artifact.and_then(|a| {
        let rest = a
            .strip_prefix("pkg:github/")
            .or_else(|| a.strip_prefix("pkg:gitlab/"))?;
        let version = rest.rsplit_once('@')?.1;
        let version = version.split(['?', '#']).next()?;
        Some(version.to_string())
    });
    from_purl
        .or_else(|| custom?.get("revision")?.as_str().map(String::from))
        .or_else(|| artifact.map(String::from))
}

/// Normalizes a read CDEvent.
pub fn normalize(delivery: Delivery) -> Result<Normalized, NormalizeError> {
    let event = delivery.event;
    let context = &event.context;
    let Some((subject, predicate)) = subject_and_predicate(&context.event_type) else {
        return Err(NormalizeError::Malformed(format!(
            "context.type `{}` is not a CDEvents type",
            context.event_type
        )));
    };
    let at = parse_time("context.timestamp", &context.timestamp)?;
    let content = &event.subject.content;
    let custom = event.custom_data.as_ref();
    let normalized = match (subject, predicate) {
        ("service", "deployed" | "upgraded" | "rolledback") => {
            let revision = revision_of(content, custom).ok_or_else(|| {
                NormalizeError::Unusable(format!(
                    "service.{predicate} names no artifactId and no customData.revision"
                ))
            })?;
            Event::Deployment(DeploymentUpdate {
                // Each of these events is one finished deployment.
                id: format!("{}:{}", context.source, context.id),
                repo: None,
                service_hint: None,
                environment: content
                    .environment
                    .as_ref()
                    .map(|e| e.id.clone())
                    .unwrap_or_default(),
                revision,
                state: DeploymentState::Success,
                at,
                tier: None,
                app: Some(AppRef {
                    kind: AppKind::Cdevents,
                    name: event.subject.id.clone(),
                }),
            })
        }
        ("incident", "detected" | "reported" | "resolved") => {
            let change = if predicate == "resolved" {
                IncidentChange::Resolved
            } else {
                IncidentChange::Triggered
            };
            Event::Incident(IncidentUpdate {
                id: event.subject.id.clone(),
                // The catalog maps the id; unmapped, the id names the service (metrics.md §1).
                service_id: content.service.as_ref().map(|s| s.id.clone()),
                service_name: None,
                title: content.description.clone().unwrap_or_default(),
                change,
                occurred_at: at,
                created_at: (change == IncidentChange::Triggered).then_some(at),
            })
        }
        ("change", "merged") => {
            let repo = content.repository.as_ref().map(|r| r.id.clone());
            let sha = custom
                .and_then(|c| c.get("sha").or_else(|| c.get("revision")))
                .and_then(|s| s.as_str())
                .map(String::from)
                .or_else(|| is_full_sha(&event.subject.id).then(|| event.subject.id.clone()));
            let (Some(repo), Some(sha)) = (repo, sha) else {
                return Ok(Normalized::Ignored(
                    "change.merged names no repository or merged commit (customData.sha)".into(),
                ));
            };
            let labels = custom
                .and_then(|c| c.get("labels"))
                .and_then(|l| l.as_array())
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            Event::PullRequestMerged(PullRequestMerged {
                repo,
                number: 0,
                merge_commit_sha: sha,
                merged_at: at,
                labels,
            })
        }
        _ => {
            return Ok(Normalized::Ignored(format!(
                "the CDEvent {subject}.{predicate} carries no metric"
            )));
        }
    };
    Ok(Normalized::Events(vec![normalized]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_support::fixture_at;
    use doraflow_schemas::time::parse_rfc3339;

    fn fixture(path: &str) -> Vec<u8> {
        fixture_at(&format!("cdevents/{path}"))
    }

    fn bare(path: &str) -> Result<Normalized, NormalizeError> {
        normalize(read(&HeaderMap::new(), &fixture(path))?)
    }

    #[test]
    fn every_conformance_example_of_both_versions_parses() {
        for version in ["v0.4.1", "v0.5.1"] {
            let dir = format!(
                "{}/tests/fixtures/cdevents/{version}",
                env!("CARGO_MANIFEST_DIR")
            );
            let mut read_ones = 0;
            for entry in std::fs::read_dir(dir).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                let out = bare(&format!("{version}/{name}"))
                    .unwrap_or_else(|e| panic!("{version}/{name}: {e}"));
                let carries = matches!(out, Normalized::Events(_));
                let expected = [
                    "service_deployed.json",
                    "service_upgraded.json",
                    "service_rolledback.json",
                    "incident_detected.json",
                    "incident_reported.json",
                    "incident_resolved.json",
                ]
                .contains(&name.as_str());
                assert_eq!(carries, expected, "{version}/{name}: {out:?}");
                read_ones += 1;
            }
            assert_eq!(read_ones, 18);
        }
    }

    #[test]
    fn service_deployed_is_a_successful_deployment_of_the_subject() {
        for version in ["v0.4.1", "v0.5.1"] {
            let Normalized::Events(events) =
                bare(&format!("{version}/service_deployed.json")).unwrap()
            else {
                panic!()
            };
            assert_eq!(
                events,
                vec![Event::Deployment(DeploymentUpdate {
                    id: "/event/source/123:271069a8-fc18-44f1-b38f-9d70a1695819".into(),
                    repo: None,
                    service_hint: None,
                    environment: "test123".into(),
                    revision: "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427".into(),
                    state: DeploymentState::Success,
                    at: parse_rfc3339("2023-03-20T14:27:05.315384Z").unwrap(),
                    tier: None,
                    app: Some(AppRef {
                        kind: AppKind::Cdevents,
                        name: "mySubject123".into()
                    }),
                })]
            );
        }
    }

    #[test]
    fn incidents_open_and_resolve_under_their_service() {
        let Normalized::Events(events) = bare("v0.5.1/incident_detected.json").unwrap() else {
            panic!()
        };
        assert_eq!(
            events,
            vec![Event::Incident(IncidentUpdate {
                id: "incident-123".into(),
                service_id: Some("myApp".into()),
                service_name: None,
                title: "Response time above threshold of 100ms".into(),
                change: IncidentChange::Triggered,
                occurred_at: parse_rfc3339("2022-11-11T13:52:20.079Z").unwrap(),
                created_at: Some(parse_rfc3339("2022-11-11T13:52:20.079Z").unwrap()),
            })]
        );
        let Normalized::Events(events) = bare("v0.4.1/incident_resolved.json").unwrap() else {
            panic!()
        };
        let Event::Incident(i) = &events[0] else {
            panic!()
        };
        assert_eq!(i.change, IncidentChange::Resolved);
        assert_eq!(i.created_at, None);
        assert_eq!(i.title, "Response time restored below 100ms");
    }

    #[test]
    fn a_github_purl_gives_the_commit_and_custom_data_the_merged_commit() {
        let mut event: serde_json::Value =
            serde_json::from_slice(&fixture("v0.5.1/service_upgraded.json")).unwrap();
        let sha = "94fcc5e8673e0d2d7fbca6b1c6c455ba308314fc";
        event["subject"]["content"]["artifactId"] =
            format!("pkg:github/acme/checkout@{sha}?arch=amd64").into();
        let out = normalize(read(&HeaderMap::new(), &serde_json::to_vec(&event).unwrap()).unwrap())
            .unwrap();
        let Normalized::Events(events) = out else {
            panic!()
        };
        let Event::Deployment(d) = &events[0] else {
            panic!()
        };
        assert_eq!(d.revision, sha);

        let mut merged: serde_json::Value =
            serde_json::from_slice(&fixture("v0.4.1/change_merged.json")).unwrap();
        merged["customData"] = serde_json::json!({"sha": sha, "labels": ["hotfix"]});
        let out =
            normalize(read(&HeaderMap::new(), &serde_json::to_vec(&merged).unwrap()).unwrap())
                .unwrap();
        let Normalized::Events(events) = out else {
            panic!()
        };
        assert_eq!(
            events,
            vec![Event::PullRequestMerged(PullRequestMerged {
                repo: "TestRepo/TestOrg".into(),
                number: 0,
                merge_commit_sha: sha.into(),
                merged_at: parse_rfc3339("2023-03-20T14:27:05.315384Z").unwrap(),
                labels: vec!["hotfix".into()],
            })]
        );
    }

    #[test]
    fn binary_structured_and_bare_modes_read_the_same_event_with_their_keys() {
        let body = fixture("v0.5.1/service_deployed.json");
        let mut headers = HeaderMap::new();
        headers.insert("ce-id", "ce-1".parse().unwrap());
        headers.insert("ce-source", "/ci".parse().unwrap());
        headers.insert(
            "ce-type",
            "dev.cdevents.service.deployed.0.3.0".parse().unwrap(),
        );
        headers.insert("ce-specversion", "1.0".parse().unwrap());
        let binary = read(&headers, &body).unwrap();
        assert_eq!(binary.key, "cdevents:/ci:ce-1");

        let cdevent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let envelope = serde_json::json!({
            "specversion": "1.0", "id": "ce-2", "source": "/cd", "type": "dev.cdevents.service.deployed.0.3.0",
            "datacontenttype": "application/json", "data": cdevent,
        });
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            "application/cloudevents+json".parse().unwrap(),
        );
        let structured = read(&headers, &serde_json::to_vec(&envelope).unwrap()).unwrap();
        assert_eq!(structured.key, "cdevents:/cd:ce-2");

        let bare = read(&HeaderMap::new(), &body).unwrap();
        assert_eq!(
            bare.key,
            "cdevents:/event/source/123:271069a8-fc18-44f1-b38f-9d70a1695819"
        );
        let all: Vec<Normalized> = [binary, structured, bare]
            .into_iter()
            .map(|d| normalize(d).unwrap())
            .collect();
        assert_eq!(all[0], all[1]);
        assert_eq!(all[1], all[2]);
    }

    #[test]
    fn not_a_cdevent_is_malformed() {
        assert!(matches!(
            read(&HeaderMap::new(), b"{\"context\": {}}"),
            Err(NormalizeError::Malformed(_))
        ));
        let mut event: serde_json::Value =
            serde_json::from_slice(&fixture("v0.5.1/service_deployed.json")).unwrap();
        event["context"]["type"] = "com.example.thing".into();
        let delivery = read(&HeaderMap::new(), &serde_json::to_vec(&event).unwrap()).unwrap();
        assert!(matches!(
            normalize(delivery),
            Err(NormalizeError::Malformed(_))
        ));
    }
}
