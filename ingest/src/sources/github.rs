//! GitHub webhooks: `push`, `pull_request` (closed and merged), `deployment`, `deployment_status`
//! and `ping`. Everything else is authentic but ignored.

use doraflow_schemas::Event;
use doraflow_schemas::event::{DeploymentState, DeploymentUpdate, PullRequestMerged, Push};
use doraflow_schemas::time::Timestamp;
use serde::Deserialize;

use super::{NormalizeError, Normalized, PushCommit, parse_time};

#[derive(Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    default_branch: Option<String>,
    #[serde(default)]
    master_branch: Option<String>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    forced: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    commits: Vec<PushCommit>,
    #[serde(default)]
    head_commit: Option<PushCommit>,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    pull_request: PullRequest,
    repository: Repository,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct DeploymentPayload {
    #[serde(default)]
    action: Option<String>,
    deployment: Deployment,
    #[serde(default)]
    deployment_status: Option<DeploymentStatus>,
    repository: Repository,
}

#[derive(Deserialize)]
struct Deployment {
    id: u64,
    sha: String,
    environment: String,
    created_at: String,
    #[serde(default)]
    payload: serde_json::Value,
}

#[derive(Deserialize)]
struct DeploymentStatus {
    state: String,
    created_at: String,
    #[serde(default)]
    environment: Option<String>,
}

/// Normalizes one GitHub delivery given its `X-GitHub-Event` name and verified body.
pub fn normalize(
    event: &str,
    body: &[u8],
    received_at: Timestamp,
) -> Result<Normalized, NormalizeError> {
    match event {
        "ping" => {
            serde_json::from_slice::<serde_json::Value>(body)?;
            Ok(Normalized::Pong)
        }
        "push" => push(serde_json::from_slice(body)?, received_at),
        "pull_request" => pull_request(serde_json::from_slice(body)?),
        "deployment" => deployment(serde_json::from_slice(body)?, false),
        "deployment_status" => deployment(serde_json::from_slice(body)?, true),
        other => {
            serde_json::from_slice::<serde_json::Value>(body)?;
            Ok(Normalized::Ignored(format!(
                "the {other} event carries no metric"
            )))
        }
    }
}

fn push(payload: PushPayload, received_at: Timestamp) -> Result<Normalized, NormalizeError> {
    let Some(branch) = payload.git_ref.strip_prefix("refs/heads/") else {
        return Ok(Normalized::Ignored(format!(
            "{} is not a branch",
            payload.git_ref
        )));
    };
    if payload.deleted {
        return Ok(Normalized::Ignored(format!("branch {branch} deleted")));
    }
    let default_branch = payload
        .repository
        .default_branch
        .or(payload.repository.master_branch)
        .ok_or_else(|| {
            NormalizeError::Malformed("missing field `repository.default_branch`".into())
        })?;
    let mut commits = Vec::with_capacity(payload.commits.len());
    for commit in payload.commits {
        commits.push(commit.into_commit()?);
    }
    let pushed_at = match &payload.head_commit {
        Some(head) => parse_time("head_commit.timestamp", &head.timestamp)?,
        None => received_at,
    };
    Ok(Normalized::Events(vec![Event::Push(Push {
        repo: payload.repository.full_name,
        branch: branch.to_string(),
        default_branch,
        before: payload.before.into(),
        after: payload.after.into(),
        forced: payload.forced,
        pushed_at,
        commits,
        commits_not_listed: 0,
    })]))
}

fn pull_request(payload: PullRequestPayload) -> Result<Normalized, NormalizeError> {
    let pr = payload.pull_request;
    if payload.action != "closed" {
        return Ok(Normalized::Ignored(format!(
            "pull_request action {} carries no metric",
            payload.action
        )));
    }
    if pr.merged != Some(true) {
        return Ok(Normalized::Ignored(
            "pull request closed without merging".into(),
        ));
    }
    let sha = pr.merge_commit_sha.ok_or_else(|| {
        NormalizeError::Malformed("missing field `pull_request.merge_commit_sha`".into())
    })?;
    let merged_at = pr.merged_at.ok_or_else(|| {
        NormalizeError::Malformed("missing field `pull_request.merged_at`".into())
    })?;
    Ok(Normalized::Events(vec![Event::PullRequestMerged(
        PullRequestMerged {
            repo: payload.repository.full_name,
            number: pr.number,
            merge_commit_sha: sha,
            merged_at: parse_time("pull_request.merged_at", &merged_at)?,
            labels: pr.labels.into_iter().map(|l| l.name).collect(),
        },
    )]))
}

fn deployment(payload: DeploymentPayload, with_status: bool) -> Result<Normalized, NormalizeError> {
    let deployment = payload.deployment;
    let (state, at, environment) = if with_status {
        let status = payload
            .deployment_status
            .ok_or_else(|| NormalizeError::Malformed("missing field `deployment_status`".into()))?;
        let state = match status.state.as_str() {
            "success" => DeploymentState::Success,
            "failure" | "error" => DeploymentState::Failure,
            _ => DeploymentState::Pending,
        };
        let at = parse_time("deployment_status.created_at", &status.created_at)?;
        let environment = status.environment.unwrap_or(deployment.environment);
        (state, at, environment)
    } else {
        if payload.action.as_deref().is_some_and(|a| a != "created") {
            return Ok(Normalized::Ignored(
                "deployment action carries no metric".into(),
            ));
        }
        let at = parse_time("deployment.created_at", &deployment.created_at)?;
        (DeploymentState::Pending, at, deployment.environment)
    };
    if deployment.sha.is_empty() {
        return Err(NormalizeError::Unusable("deployment.sha is empty".into()));
    }
    let service_hint = match &deployment.payload {
        serde_json::Value::Object(map) => map
            .get("service")
            .and_then(|s| s.as_str())
            .map(String::from),
        serde_json::Value::String(text) => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("service").and_then(|s| s.as_str()).map(String::from)),
        _ => None,
    };
    Ok(Normalized::Events(vec![Event::Deployment(
        DeploymentUpdate {
            id: deployment.id.to_string(),
            repo: Some(payload.repository.full_name),
            service_hint,
            environment,
            revision: deployment.sha,
            state,
            at,
            tier: None,
            app: None,
        },
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_support::{fixture_at, t};
    use doraflow_schemas::time::parse_rfc3339;

    fn fixture(name: &str) -> Vec<u8> {
        fixture_at(&format!("github/{name}"))
    }

    fn now() -> Timestamp {
        parse_rfc3339("2026-11-01T00:00:00Z").unwrap()
    }

    #[test]
    fn a_push_to_a_new_branch_gives_its_commits() {
        let out = normalize("push", &fixture("push.with-new-branch.json"), now()).unwrap();
        let Normalized::Events(events) = out else {
            panic!("{out:?}")
        };
        let Event::Push(push) = &events[0] else {
            panic!()
        };
        assert_eq!(push.repo, "Codertocat/Hello-World");
        assert_eq!(push.branch, "master");
        assert_eq!(push.default_branch, "master");
        assert_eq!(push.before, "0000000000000000000000000000000000000000");
        assert_eq!(push.after, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
        assert!(!push.forced);
        assert_eq!(push.commits.len(), 1);
        assert_eq!(
            push.commits[0].sha,
            "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
        );
        assert_eq!(push.commits[0].timestamp, t("2019-05-15T15:19:25Z"));
        assert_eq!(&*push.commits[0].title, "Initial commit");
        assert_eq!(push.commits[0].files, vec!["README.md"]);
    }

    #[test]
    fn go_scm_push_without_commits_still_orders_the_branch() {
        let out = normalize("push", &fixture("push.go-scm.json"), now()).unwrap();
        let Normalized::Events(events) = out else {
            panic!("{out:?}")
        };
        let Event::Push(push) = &events[0] else {
            panic!()
        };
        let raw: serde_json::Value = serde_json::from_slice(&fixture("push.go-scm.json")).unwrap();
        assert_eq!(push.repo, "Codertocat/Hello-World");
        assert_eq!(push.branch, "master");
        assert_eq!(push.before, raw["before"].as_str().unwrap());
        assert_eq!(push.after, raw["after"].as_str().unwrap());
        assert!(push.commits.is_empty());
    }

    #[test]
    fn commit_times_with_offsets_convert_to_utc() {
        let body = br#"{"ref":"refs/heads/main","before":"a","after":"b","repository":{"full_name":"o/r","default_branch":"main"},"commits":[{"id":"b","timestamp":"2026-01-01T10:00:00+02:00","message":"fix: x\n\nbody"}]}"#;
        let Normalized::Events(events) = normalize("push", body, now()).unwrap() else {
            panic!()
        };
        let Event::Push(push) = &events[0] else {
            panic!()
        };
        assert_eq!(push.commits[0].timestamp, t("2026-01-01T08:00:00Z"));
        assert_eq!(&*push.commits[0].title, "fix: x");
    }

    #[test]
    fn a_tag_deletion_is_ignored() {
        let out = normalize("push", &fixture("push.tag-deleted.json"), now()).unwrap();
        assert!(
            matches!(out, Normalized::Ignored(ref r) if r.contains("refs/tags/simple-tag")),
            "{out:?}"
        );
    }

    #[test]
    fn deployment_and_its_status_share_an_id() {
        let created = normalize("deployment", &fixture("deployment.json"), now()).unwrap();
        let status = normalize(
            "deployment_status",
            &fixture("deployment_status.json"),
            now(),
        )
        .unwrap();
        let expected_created = Normalized::Events(vec![Event::Deployment(DeploymentUpdate {
            id: "145988746".into(),
            repo: Some("Codertocat/Hello-World".into()),
            service_hint: None,
            environment: "production".into(),
            revision: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e".into(),
            state: DeploymentState::Pending,
            at: t("2019-05-15T15:20:53Z"),
            tier: None,
            app: None,
        })]);
        assert_eq!(created, expected_created);
        let Normalized::Events(events) = status else {
            panic!()
        };
        let Event::Deployment(update) = &events[0] else {
            panic!()
        };
        assert_eq!(update.id, "145988746");
        assert_eq!(update.state, DeploymentState::Success);
        assert_eq!(update.at, t("2019-05-15T15:20:55Z"));
        assert_eq!(update.environment, "production");
    }

    #[test]
    fn go_scm_deployment_status_parses() {
        let out = normalize(
            "deployment_status",
            &fixture("deployment_status.go-scm.json"),
            now(),
        )
        .unwrap();
        let Normalized::Events(events) = out else {
            panic!("{out:?}")
        };
        let Event::Deployment(update) = &events[0] else {
            panic!()
        };
        assert_eq!(update.state, DeploymentState::Success);
        assert_eq!(update.revision, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    }

    #[test]
    fn only_merged_pull_requests_count() {
        let captured = normalize(
            "pull_request",
            &fixture("pull_request.closed.cdviz.json"),
            now(),
        )
        .unwrap();
        let Normalized::Events(events) = captured else {
            panic!("{captured:?}")
        };
        let Event::PullRequestMerged(pr) = &events[0] else {
            panic!()
        };
        assert_eq!(pr.number, 97);
        assert_eq!(
            pr.merge_commit_sha,
            "44d21f9752bb9eb3952238ff7e25965b8f779d51"
        );
        assert_eq!(pr.merged_at, t("2025-05-21T17:35:21Z"));
        for unmerged in [
            "pull_request.closed.json",
            "pull_request.closed.go-scm.json",
        ] {
            let out = normalize("pull_request", &fixture(unmerged), now()).unwrap();
            assert!(matches!(out, Normalized::Ignored(_)), "{unmerged}: {out:?}");
        }
        let opened =
            normalize("pull_request", &fixture("pull_request.opened.json"), now()).unwrap();
        assert!(matches!(opened, Normalized::Ignored(_)));
    }

    #[test]
    fn ping_pongs_and_other_events_are_ignored() {
        assert_eq!(
            normalize("ping", &fixture("ping.json"), now()).unwrap(),
            Normalized::Pong
        );
        let out = normalize("release", &fixture("release.published.json"), now()).unwrap();
        assert!(matches!(out, Normalized::Ignored(_)));
    }

    #[test]
    fn bad_bodies_are_malformed_and_bad_times_unusable() {
        assert!(matches!(
            normalize("push", b"{not json", now()),
            Err(NormalizeError::Malformed(_))
        ));
        assert!(matches!(
            normalize("push", b"{\"ref\":\"refs/heads/main\"}", now()),
            Err(NormalizeError::Malformed(_))
        ));
        let body = br#"{"ref":"refs/heads/main","before":"a","after":"b","repository":{"full_name":"o/r","default_branch":"main"},"commits":[{"id":"b","timestamp":"yesterday","message":"x"}]}"#;
        assert!(matches!(
            normalize("push", body, now()),
            Err(NormalizeError::Unusable(_))
        ));
    }

    #[test]
    fn a_monorepo_deployment_names_its_service() {
        let body = br#"{"action":"created","deployment":{"id":7,"sha":"abc1234","environment":"production","created_at":"2026-01-01T00:00:00Z","payload":{"service":"cart"}},"repository":{"full_name":"acme/mono"}}"#;
        let Normalized::Events(events) = normalize("deployment", body, now()).unwrap() else {
            panic!()
        };
        let Event::Deployment(update) = &events[0] else {
            panic!()
        };
        assert_eq!(update.service_hint.as_deref(), Some("cart"));
    }
}
