//! GitLab webhooks: Push Hook, Merge Request Hook (merged), Deployment Hook and the deploy jobs
//! of a Pipeline Hook. The kind is read from the body's `object_kind` (the `X-Gitlab-Event`
//! header says the same). Everything else is authentic but ignored.
//!
//! A deployment's attempt id is its job (`deployable_id`), so the Deployment Hook and the
//! Pipeline Hook reporting the same job merge into one attempt.

use doraflow_schemas::Event;
use doraflow_schemas::event::{DeploymentState, DeploymentUpdate, PullRequestMerged, Push, Tier};
use doraflow_schemas::time::Timestamp;
use serde::Deserialize;

use super::{NormalizeError, Normalized, PushCommit, is_full_sha, parse_loose_time};

/// A branch head of all zeros: the branch was created or deleted.
const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

#[derive(Deserialize)]
struct Kind {
    object_kind: String,
}

#[derive(Deserialize)]
struct Project {
    id: u64,
    path_with_namespace: String,
    #[serde(default)]
    default_branch: Option<String>,
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    git_ref: String,
    before: String,
    after: String,
    #[serde(default)]
    commits: Vec<PushCommit>,
    #[serde(default)]
    total_commits_count: Option<u64>,
    project: Project,
}

#[derive(Deserialize)]
struct MergeRequestPayload {
    object_attributes: MergeRequest,
    project: Project,
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    squash_commit_sha: Option<String>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct Label {
    title: String,
}

#[derive(Deserialize)]
struct DeploymentPayload {
    status: String,
    status_changed_at: String,
    deployment_id: u64,
    #[serde(default)]
    deployable_id: Option<u64>,
    environment: String,
    #[serde(default)]
    environment_tier: Option<String>,
    #[serde(default)]
    commit_url: Option<String>,
    project: Project,
}

#[derive(Deserialize)]
struct PipelinePayload {
    object_attributes: Pipeline,
    project: Project,
    #[serde(default)]
    builds: Vec<Build>,
}

#[derive(Deserialize)]
struct Pipeline {
    sha: String,
    #[serde(default)]
    finished_at: Option<String>,
}

#[derive(Deserialize)]
struct Build {
    id: u64,
    status: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    environment: Option<BuildEnvironment>,
}

#[derive(Deserialize)]
struct BuildEnvironment {
    name: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    deployment_tier: Option<String>,
}

/// Normalizes one verified GitLab delivery.
pub fn normalize(body: &[u8], received_at: Timestamp) -> Result<Normalized, NormalizeError> {
    let kind: Kind = serde_json::from_slice(body)?;
    match kind.object_kind.as_str() {
        "push" => push(serde_json::from_slice(body)?, received_at),
        "merge_request" => merge_request(serde_json::from_slice(body)?),
        "deployment" => deployment(serde_json::from_slice(body)?),
        "pipeline" => pipeline(serde_json::from_slice(body)?),
        other => Ok(Normalized::Ignored(format!(
            "the GitLab {other} event carries no metric"
        ))),
    }
}

fn push(payload: PushPayload, received_at: Timestamp) -> Result<Normalized, NormalizeError> {
    let Some(branch) = payload.git_ref.strip_prefix("refs/heads/") else {
        return Ok(Normalized::Ignored(format!(
            "{} is not a branch",
            payload.git_ref
        )));
    };
    if payload.after == NO_COMMIT {
        return Ok(Normalized::Ignored(format!("branch {branch} deleted")));
    }
    let default_branch = payload.project.default_branch.ok_or_else(|| {
        NormalizeError::Malformed("missing field `project.default_branch`".into())
    })?;
    let listed = payload.commits.len() as u64;
    let commits_not_listed = payload
        .total_commits_count
        .map_or(0, |total| total.saturating_sub(listed));
    let mut commits = Vec::with_capacity(payload.commits.len());
    for commit in payload.commits {
        commits.push(commit.into_commit()?);
    }
    // GitLab names no push time: the head commit's time, else the time it arrived.
    let pushed_at = commits
        .iter()
        .find(|c| c.sha == *payload.after)
        .or(commits.last())
        .map_or(received_at, |c| c.timestamp);
    Ok(Normalized::Events(vec![Event::Push(Push {
        repo: payload.project.path_with_namespace,
        branch: branch.to_string(),
        default_branch,
        before: payload.before.into(),
        after: payload.after.into(),
        forced: false,
        pushed_at,
        commits,
        commits_not_listed,
    })]))
}

fn merge_request(payload: MergeRequestPayload) -> Result<Normalized, NormalizeError> {
    let mr = payload.object_attributes;
    let merged = mr.action.as_deref() == Some("merge")
        || (mr.action.is_none() && mr.state.as_deref() == Some("merged"));
    if !merged {
        return Ok(Normalized::Ignored(format!(
            "merge request action {} carries no metric",
            mr.action.as_deref().unwrap_or("(none)")
        )));
    }
    // A squash merge lands the squash commit; a merge commit otherwise.
    let sha = mr
        .merge_commit_sha
        .filter(|s| !s.is_empty())
        .or(mr.squash_commit_sha.filter(|s| !s.is_empty()))
        .ok_or_else(|| {
            NormalizeError::Unusable(
                "a merged merge request without merge_commit_sha or squash_commit_sha".into(),
            )
        })?;
    let merged_at = mr.merged_at.or(mr.updated_at).ok_or_else(|| {
        NormalizeError::Malformed("missing field `object_attributes.updated_at`".into())
    })?;
    Ok(Normalized::Events(vec![Event::PullRequestMerged(
        PullRequestMerged {
            repo: payload.project.path_with_namespace,
            number: mr.iid,
            merge_commit_sha: sha,
            merged_at: parse_loose_time("object_attributes.merged_at", &merged_at)?,
            labels: payload.labels.into_iter().map(|l| l.title).collect(),
        },
    )]))
}

/// GitLab's deployment and job statuses: `success` and `failed` end an attempt; `running`,
/// `created`, `canceled` and the rest do not (a canceled deployment deployed nothing).
fn state_of(status: &str) -> DeploymentState {
    match status {
        "success" => DeploymentState::Success,
        "failed" => DeploymentState::Failure,
        _ => DeploymentState::Pending,
    }
}

/// The attempt id of a deployment: its job, else the deployment (one made through the API).
fn attempt_id(project: u64, job: Option<u64>, deployment: Option<u64>) -> String {
    match (job, deployment) {
        (Some(job), _) => format!("{project}:job:{job}"),
        (None, Some(deployment)) => format!("{project}:deployment:{deployment}"),
        (None, None) => format!("{project}:unknown"),
    }
}

fn deployment(payload: DeploymentPayload) -> Result<Normalized, NormalizeError> {
    let revision = payload
        .commit_url
        .as_deref()
        .and_then(|url| url.rsplit('/').next())
        .filter(|sha| is_full_sha(sha))
        .ok_or_else(|| {
            NormalizeError::Unusable("commit_url does not end in a full commit SHA".into())
        })?
        .to_string();
    Ok(Normalized::Events(vec![Event::Deployment(
        DeploymentUpdate {
            id: attempt_id(
                payload.project.id,
                payload.deployable_id,
                Some(payload.deployment_id),
            ),
            repo: Some(payload.project.path_with_namespace),
            service_hint: None,
            environment: payload.environment,
            revision,
            state: state_of(&payload.status),
            at: parse_loose_time("status_changed_at", &payload.status_changed_at)?,
            tier: payload.environment_tier.as_deref().map(Tier::parse),
            app: None,
        },
    )]))
}

fn pipeline(payload: PipelinePayload) -> Result<Normalized, NormalizeError> {
    let mut events = Vec::new();
    for build in &payload.builds {
        let Some(environment) = &build.environment else {
            continue;
        };
        // Only jobs that deploy (`environment:action: start`, the default) are deployments.
        if environment.action.as_deref().is_some_and(|a| a != "start") {
            continue;
        }
        // A job deploys once it runs; created, skipped, manual and canceled jobs deploy nothing.
        let state = state_of(&build.status);
        let at = match build.status.as_str() {
            "running" => build.started_at.as_ref(),
            "success" | "failed" => build
                .finished_at
                .as_ref()
                .or(payload.object_attributes.finished_at.as_ref()),
            _ => None,
        };
        let Some(at) = at else {
            continue;
        };
        events.push(Event::Deployment(DeploymentUpdate {
            id: attempt_id(payload.project.id, Some(build.id), None),
            repo: Some(payload.project.path_with_namespace.clone()),
            service_hint: None,
            environment: environment.name.clone(),
            revision: payload.object_attributes.sha.clone(),
            state,
            at: parse_loose_time("builds[].finished_at", at)?,
            tier: environment.deployment_tier.as_deref().map(Tier::parse),
            app: None,
        }));
    }
    if events.is_empty() {
        return Ok(Normalized::Ignored(
            "the pipeline has no started deploy job".into(),
        ));
    }
    Ok(Normalized::Events(events))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_support::{fixture_at, t};

    fn fixture(name: &str) -> Vec<u8> {
        fixture_at(&format!("gitlab/{name}"))
    }

    fn events(name: &str) -> Vec<Event> {
        match normalize(&fixture(name), t("2026-11-01T00:00:00Z")).unwrap() {
            Normalized::Events(events) => events,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn a_push_gives_its_commits_oldest_first_and_counts_the_unlisted() {
        let [Event::Push(push)] = &events("push.json")[..] else {
            panic!()
        };
        assert_eq!(push.repo, "mike/diaspora");
        assert_eq!(push.branch, "master");
        assert_eq!(push.default_branch, "master");
        assert_eq!(push.before, "95790bf891e76fee5e1747ab589903a6a1f80f22");
        assert_eq!(push.after, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
        assert_eq!(push.commits.len(), 2);
        assert_eq!(
            push.commits[0].sha,
            "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
        );
        assert_eq!(push.commits[0].timestamp, t("2011-12-12T12:27:31Z"));
        assert_eq!(
            &*push.commits[0].title,
            "Merge branch 'some-feature' into 'master'"
        );
        assert_eq!(push.commits[1].sha, push.after);
        assert_eq!(push.pushed_at, push.commits[1].timestamp);
        // total_commits_count is 4, two are listed.
        assert_eq!(push.commits_not_listed, 2);
    }

    #[test]
    fn go_scm_push_lists_files() {
        let [Event::Push(push)] = &events("go-scm.push.json")[..] else {
            panic!()
        };
        assert_eq!(push.repo, "gitlab-org/hello-world");
        assert_eq!(push.commits.len(), 1);
        assert_eq!(push.commits[0].files, vec!["README.md"]);
        assert_eq!(push.commits[0].timestamp, t("2017-12-10T16:26:38Z"));
        assert_eq!(push.commits_not_listed, 0);
    }

    #[test]
    fn a_merged_merge_request_with_utc_suffixed_times() {
        let [Event::PullRequestMerged(pr)] = &events("go-scm.pull_request_merge.json")[..] else {
            panic!()
        };
        assert_eq!(pr.repo, "gitlab-org/hello-world");
        assert_eq!(pr.number, 1);
        assert_eq!(
            pr.merge_commit_sha,
            "78a76ee6b4992a6baf64c59fc4c44c7323d60438"
        );
        assert_eq!(pr.merged_at, t("2017-12-10T17:08:07Z"));
        assert!(pr.labels.is_empty());
    }

    #[test]
    fn an_opened_merge_request_and_a_tag_push_are_ignored() {
        for name in ["merge_request.json", "tag_push.json", "build.json"] {
            let out = normalize(&fixture(name), t("2026-11-01T00:00:00Z")).unwrap();
            assert!(matches!(out, Normalized::Ignored(_)), "{name}: {out:?}");
        }
    }

    #[test]
    fn a_deployment_takes_the_sha_from_commit_url_and_its_offset_time() {
        let [Event::Deployment(d)] = &events("deployment.json")[..] else {
            panic!()
        };
        assert_eq!(d.id, "30:job:796");
        assert_eq!(d.repo.as_deref(), Some("root/test-deployment-webhooks"));
        assert_eq!(d.environment, "staging");
        assert_eq!(d.revision, "279484c09fbe69ededfced8c1bb6e6d24616b468");
        assert_eq!(d.state, DeploymentState::Success);
        assert_eq!(d.at, t("2021-04-28T19:50:00Z"));
        assert_eq!(d.tier, None);
        assert_eq!(d.app, None);
    }

    #[test]
    fn deployment_statuses_and_the_stated_tier() {
        let raw = String::from_utf8(fixture("deployment.json")).unwrap();
        for (status, state) in [
            ("running", DeploymentState::Pending),
            ("failed", DeploymentState::Failure),
            ("canceled", DeploymentState::Pending),
        ] {
            let body = raw
                .replace(
                    "\"status\": \"success\"",
                    &format!("\"status\": \"{status}\""),
                )
                .replace(
                    "\"environment\": \"staging\",",
                    "\"environment\": \"eu-live\", \"environment_tier\": \"production\",",
                );
            let Normalized::Events(events) =
                normalize(body.as_bytes(), t("2026-11-01T00:00:00Z")).unwrap()
            else {
                panic!()
            };
            let Event::Deployment(d) = &events[0] else {
                panic!()
            };
            assert_eq!(d.state, state, "{status}");
            assert_eq!(d.tier, Some(Tier::Production));
            assert_eq!(d.environment, "eu-live");
        }
    }

    #[test]
    fn a_pipeline_reports_only_its_started_deploy_jobs() {
        // The fixture's production job was skipped: no deployment.
        let out = normalize(&fixture("pipeline.json"), t("2026-11-01T00:00:00Z")).unwrap();
        assert!(matches!(out, Normalized::Ignored(_)), "{out:?}");
        let mut body: serde_json::Value =
            serde_json::from_slice(&fixture("pipeline.json")).unwrap();
        body["builds"][0]["status"] = "success".into();
        body["builds"][0]["finished_at"] = "2016-08-12 15:30:00 UTC".into();
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
        assert_eq!(d.id, format!("{}:job:380", body["project"]["id"]));
        assert_eq!(d.environment, "production");
        assert_eq!(d.tier, Some(Tier::Production));
        assert_eq!(d.revision, "bcbb5ec396a2c0f828686f14fac9b80b780504f2");
        assert_eq!(d.state, DeploymentState::Success);
        assert_eq!(d.at, t("2016-08-12T15:30:00Z"));
    }

    #[test]
    fn a_body_without_object_kind_is_malformed() {
        assert!(matches!(
            normalize(b"{\"ref\": \"x\"}", t("2026-11-01T00:00:00Z")),
            Err(NormalizeError::Malformed(_))
        ));
    }
}
