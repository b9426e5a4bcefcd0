//! A month of activity for several services, as signed webhook deliveries in real payload shapes,
//! together with the answers worked out independently of the engine: a simple model of what each
//! day does (pushes, deployments, failed attempts, incidents, rollbacks, hotfixes), from which the
//! expected figures follow by plain list arithmetic. Used by the end-to-end tests and by
//! `examples/generate_month.rs`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Secret of the GitHub webhooks in the scenario's config.
pub const GITHUB_SECRET: &str = "example-github-secret";
/// Secret of the PagerDuty webhooks in the scenario's config.
pub const PAGERDUTY_SECRET: &str = "example-pagerduty-secret";
/// Token of the GitLab webhooks in the mixed scenario's config.
pub const GITLAB_TOKEN: &str = "example-gitlab-token";
/// Bearer token of the Argo CD notifications in the mixed scenario's config.
pub const ARGOCD_TOKEN: &str = "example-argocd-token";
/// Bearer token of the CDEvents deliveries in the mixed scenario's config.
pub const CDEVENTS_TOKEN: &str = "example-cdevents-token";
/// HMAC secret of the Flux provider in the mixed scenario's config.
pub const FLUX_SECRET: &str = "example-flux-secret";
/// Days in the scenario.
pub const DAYS: i64 = 30;

/// Which tools send the scenario's activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sources {
    /// Changes and deployments from GitHub, incidents from PagerDuty.
    GithubAndPagerduty,
    /// The same activity from every source: checkout's changes from GitLab, deployments in turn
    /// from GitHub, GitLab, Argo CD, Flux and CDEvents, every other incident from CDEvents.
    Mixed,
}

/// The first day of the scenario (midnight UTC).
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 27, 0, 0, 0).unwrap()
}

/// One delivery as a source sends it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `/webhooks/<source>`.
    pub endpoint: &'static str,
    /// Headers, signature included.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: String,
    /// Service whose metrics this delivery feeds.
    pub service: String,
}

impl Delivery {
    /// The recorded form `doraflow replay` reads.
    pub fn to_json_line(&self) -> String {
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({"endpoint": self.endpoint, "headers": headers, "body": self.body}).to_string()
    }
}

/// A service of the scenario.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub name: &'static str,
    pub team: &'static str,
    pub repo: &'static str,
    pub pagerduty_id: &'static str,
    pub pagerduty_name: &'static str,
}

/// The scenario's catalog.
pub fn services() -> Vec<ServiceSpec> {
    vec![
        ServiceSpec {
            name: "checkout",
            team: "payments",
            repo: "acme/checkout",
            pagerduty_id: "PCHK001",
            pagerduty_name: "Checkout API",
        },
        ServiceSpec {
            name: "billing",
            team: "payments",
            repo: "acme/billing",
            pagerduty_id: "PBIL002",
            pagerduty_name: "Billing",
        },
        ServiceSpec {
            name: "search",
            team: "discovery",
            repo: "acme/search",
            pagerduty_id: "PSRC003",
            pagerduty_name: "Search API",
        },
    ]
}

/// The TOML config matching the scenario (services, secrets), listening on `listen`.
pub fn config_toml(listen: &str, api_tokens: &str) -> String {
    let mut text = format!(
        "[server]\nlisten = \"{listen}\"\n\n[sources.github]\nsecrets = [\"{GITHUB_SECRET}\"]\n\n[sources.pagerduty]\nsecrets = [\"{PAGERDUTY_SECRET}\"]\n\n[api]\ntokens = [{api_tokens}]\n"
    );
    for s in services() {
        // PagerDuty services are mapped by id for one service and by name for the others.
        let pd = if s.name == "checkout" {
            s.pagerduty_id
        } else {
            s.pagerduty_name
        };
        text.push_str(&format!(
            "\n[[services]]\nname = \"{}\"\nteam = \"{}\"\nrepos = [{{ repo = \"{}\" }}]\npagerduty_services = [\"{}\"]\n",
            s.name, s.team, s.repo, pd
        ));
    }
    text
}

/// The mixed scenario's config: every source's secret, and the catalog from the Backstage files
/// [`write_backstage`] writes under `catalog_dir` (no `[[services]]`).
pub fn config_toml_mixed(listen: &str, catalog_dir: &std::path::Path) -> String {
    format!(
        "[server]\nlisten = \"{listen}\"\n\n[sources.github]\nsecrets = [\"{GITHUB_SECRET}\"]\n\
         [sources.pagerduty]\nsecrets = [\"{PAGERDUTY_SECRET}\"]\n[sources.gitlab]\ntokens = [\"{GITLAB_TOKEN}\"]\n\
         [sources.argocd]\ntokens = [\"{ARGOCD_TOKEN}\"]\n[sources.cdevents]\ntokens = [\"{CDEVENTS_TOKEN}\"]\n\
         [sources.flux]\nsecrets = [\"{FLUX_SECRET}\"]\n\n[catalog]\nbackstage = [\"{}/*/catalog-info.yaml\"]\n",
        catalog_dir.display()
    )
}

/// One Backstage `catalog-info.yaml` per service of the scenario, under `dir/<service>/`.
pub fn write_backstage(dir: &std::path::Path) {
    for s in services() {
        // checkout's code lives on GitLab in the mixed scenario.
        let slug = if s.name == "checkout" {
            "gitlab.com/project-slug"
        } else {
            "github.com/project-slug"
        };
        let text = format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  \
             annotations:\n    {slug}: {repo}\n    pagerduty.com/service-id: {pd}\n    \
             argocd/app-name: {name}-production, {name}-staging\nspec:\n  type: service\n  \
             lifecycle: production\n  owner: group:default/{team}\n",
            name = s.name,
            repo = s.repo,
            pd = s.pagerduty_id,
            team = s.team,
        );
        let path = dir.join(s.name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("catalog-info.yaml"), text).unwrap();
    }
}

/// A deterministic pseudo-random sequence (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))[..40].to_string()
}

fn sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What the model says about one production deployment.
#[derive(Clone, Debug)]
pub struct ModelDeployment {
    pub finished: DateTime<Utc>,
    pub failed: bool,
    pub recovered: Option<DateTime<Utc>>,
    pub rework: bool,
}

/// The model of one service.
#[derive(Clone, Debug, Default)]
pub struct ModelService {
    pub deployments: Vec<ModelDeployment>,
    pub failed_attempts: Vec<DateTime<Utc>>,
    /// (deployed_at, lead time seconds)
    pub lead_times: Vec<(DateTime<Utc>, f64)>,
    /// (resolved_at, restore seconds)
    pub restores: Vec<(DateTime<Utc>, f64)>,
    /// (opened_at, attributed)
    pub incidents: Vec<(DateTime<Utc>, bool)>,
    pub duplicates: u64,
}

/// The scenario: deliveries (shuffled, with duplicates) and the model.
pub struct Scenario {
    pub deliveries: Vec<Delivery>,
    pub model: BTreeMap<String, ModelService>,
}

struct Builder {
    deliveries: Vec<Delivery>,
    hook_id: u64,
    next_id: u64,
    sources: Sources,
    /// Deployments made so far (the mixed scenario takes the tools in turn).
    deployments: u64,
}

/// The tools a deployment can come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DeployTool {
    Github,
    Gitlab,
    Argocd,
    Flux,
    Cdevents,
}

impl Builder {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn github(&mut self, service: &str, event: &str, body: Value) {
        let body = body.to_string();
        let n = self.id();
        let delivery_id = format!("{:08x}-0000-4000-8000-{:012x}", self.hook_id, n);
        self.deliveries.push(Delivery {
            endpoint: "/webhooks/github",
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "GitHub-Hookshot/7e1b9f4".into()),
                ("x-github-event".into(), event.into()),
                ("x-github-delivery".into(), delivery_id),
                ("x-github-hook-id".into(), self.hook_id.to_string()),
                (
                    "x-hub-signature-256".into(),
                    format!("sha256={}", sign(GITHUB_SECRET, &body)),
                ),
            ],
            body,
            service: service.into(),
        });
    }

    fn send(
        &mut self,
        service: &str,
        endpoint: &'static str,
        mut headers: Vec<(String, String)>,
        body: Value,
    ) {
        let body = body.to_string();
        match endpoint {
            "/webhooks/flux" => headers.push((
                "x-signature".into(),
                format!("sha256={}", sign(FLUX_SECRET, &body)),
            )),
            "/webhooks/gitlab" => headers.push(("x-gitlab-token".into(), GITLAB_TOKEN.into())),
            "/webhooks/argocd" => {
                headers.push(("authorization".into(), format!("Bearer {ARGOCD_TOKEN}")))
            }
            _ => headers.push(("authorization".into(), format!("Bearer {CDEVENTS_TOKEN}"))),
        }
        self.deliveries.push(Delivery {
            endpoint,
            headers,
            body,
            service: service.into(),
        });
    }

    fn gitlab(&mut self, service: &str, event: &str, body: Value) {
        let n = self.id();
        let key = format!("{:08x}-1111-4000-8000-{n:012x}", self.hook_id);
        let headers = vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "GitLab/18.5.0".into()),
            ("x-gitlab-event".into(), event.into()),
            ("idempotency-key".into(), key.clone()),
            ("x-gitlab-event-uuid".into(), key),
        ];
        self.send(service, "/webhooks/gitlab", headers, body);
    }

    fn pagerduty(&mut self, service: &str, body: Value) {
        let body = body.to_string();
        let webhook_id = format!("{:032x}", self.id());
        self.deliveries.push(Delivery {
            endpoint: "/webhooks/pagerduty",
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("user-agent".into(), "PagerDuty-Webhook/V3.0".into()),
                ("x-webhook-id".into(), webhook_id),
                ("x-webhook-subscription".into(), "PSUB123".into()),
                (
                    "x-pagerduty-signature".into(),
                    format!("v1={}", sign(PAGERDUTY_SECRET, &body)),
                ),
            ],
            body,
            service: service.into(),
        });
    }
}

fn repository(spec: &ServiceSpec, id: u64) -> Value {
    let (owner, name) = spec.repo.split_once('/').unwrap();
    json!({
        "id": id, "node_id": format!("R_kgDO{id}"), "name": name, "full_name": spec.repo,
        "private": true, "owner": {"login": owner, "id": 9_000_001, "type": "Organization"},
        "html_url": format!("https://github.com/{}", spec.repo), "default_branch": "main",
        "master_branch": "main", "visibility": "private"
    })
}

fn user() -> Value {
    json!({"login": "octo-deployer", "id": 4_242_424, "type": "User", "site_admin": false})
}

fn deployment_object(
    spec: &ServiceSpec,
    id: u64,
    sha: &str,
    env: &str,
    at: DateTime<Utc>,
) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/{}/deployments/{id}", spec.repo),
        "id": id, "node_id": format!("DE_kwDO{id}"), "sha": sha, "ref": "main", "task": "deploy",
        "payload": {}, "original_environment": env, "environment": env, "description": null,
        "creator": user(), "created_at": rfc(at), "updated_at": rfc(at),
        "statuses_url": format!("https://api.github.com/repos/{}/deployments/{id}/statuses", spec.repo),
        "repository_url": format!("https://api.github.com/repos/{}", spec.repo),
        "transient_environment": false, "production_environment": env == "production"
    })
}

impl Builder {
    /// A deployment: the `deployment` event, then a `deployment_status` (success or failure).
    #[allow(clippy::too_many_arguments)]
    fn deploy(
        &mut self,
        spec: &ServiceSpec,
        repo_id: u64,
        sha: &str,
        env: &str,
        created: DateTime<Utc>,
        finished: DateTime<Utc>,
        success: bool,
    ) {
        let tool = match self.sources {
            Sources::GithubAndPagerduty => DeployTool::Github,
            Sources::Mixed => {
                self.deployments += 1;
                match (self.deployments % 5, success) {
                    (0, _) => DeployTool::Github,
                    (1, _) => DeployTool::Gitlab,
                    (2, _) => DeployTool::Argocd,
                    (3, _) => DeployTool::Flux,
                    // CDEvents has no failed deployment: GitLab reports those.
                    (_, true) => DeployTool::Cdevents,
                    (_, false) => DeployTool::Gitlab,
                }
            }
        };
        match tool {
            DeployTool::Github => {}
            DeployTool::Gitlab => {
                return self.deploy_gitlab(spec, repo_id, sha, env, created, finished, success);
            }
            DeployTool::Argocd => {
                return self.deploy_argocd(spec, sha, env, created, finished, success);
            }
            DeployTool::Flux => return self.deploy_flux(spec, sha, env, finished, success),
            DeployTool::Cdevents => return self.deploy_cdevents(spec, sha, env, finished),
        }
        let id = 100_000_000 + self.id();
        let deployment = deployment_object(spec, id, sha, env, created);
        self.github(spec.name, "deployment", json!({
            "action": "created", "deployment": deployment, "repository": repository(spec, repo_id), "sender": user()
        }));
        let status_id = 200_000_000 + self.id();
        let state = if success { "success" } else { "failure" };
        self.github(spec.name, "deployment_status", json!({
            "action": "created",
            "deployment_status": {
                "url": format!("https://api.github.com/repos/{}/deployments/{id}/statuses/{status_id}", spec.repo),
                "id": status_id, "node_id": format!("DES_kwDO{status_id}"), "state": state, "creator": user(),
                "description": "", "environment": env, "target_url": "", "created_at": rfc(finished),
                "updated_at": rfc(finished),
                "deployment_url": format!("https://api.github.com/repos/{}/deployments/{id}", spec.repo),
                "repository_url": format!("https://api.github.com/repos/{}", spec.repo)
            },
            "deployment": deployment, "repository": repository(spec, repo_id), "sender": user()
        }));
    }

    fn incident(
        &mut self,
        spec: &ServiceSpec,
        number: u64,
        title: &str,
        opened: DateTime<Utc>,
        resolved: DateTime<Utc>,
    ) {
        if self.sources == Sources::Mixed && number % 2 == 1 {
            return self.incident_cdevents(spec, number, title, opened, resolved);
        }
        let incident_id = format!("Q{:013X}", 0xABC000 + number);
        let mk = |event_type: &str, status: &str, at: DateTime<Utc>, event_id: u64| {
            json!({"event": {
                "id": format!("01{event_id:024X}"), "event_type": event_type, "resource_type": "incident",
                "occurred_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "agent": {"html_url": "https://acme.pagerduty.com/users/PUSR01", "id": "PUSR01",
                          "self": "https://api.pagerduty.com/users/PUSR01", "summary": "On Call", "type": "user_reference"},
                "client": null,
                "data": {
                    "id": incident_id, "type": "incident",
                    "self": format!("https://api.pagerduty.com/incidents/{incident_id}"),
                    "html_url": format!("https://acme.pagerduty.com/incidents/{incident_id}"),
                    "number": number, "status": status, "incident_key": null,
                    "created_at": rfc(opened), "title": title,
                    "service": {"html_url": format!("https://acme.pagerduty.com/services/{}", spec.pagerduty_id),
                                "id": spec.pagerduty_id,
                                "self": format!("https://api.pagerduty.com/services/{}", spec.pagerduty_id),
                                "summary": spec.pagerduty_name, "type": "service_reference"},
                    "assignees": [], "escalation_policy": {"id": "PESC01", "summary": "Default", "type": "escalation_policy_reference"},
                    "teams": [], "priority": null, "urgency": "high", "conference_bridge": null, "resolve_reason": null
                }
            }})
        };
        let a = self.id();
        self.pagerduty(spec.name, mk("incident.triggered", "triggered", opened, a));
        let b = self.id();
        self.pagerduty(
            spec.name,
            mk(
                "incident.acknowledged",
                "acknowledged",
                opened + Duration::minutes(3),
                b,
            ),
        );
        let c = self.id();
        self.pagerduty(spec.name, mk("incident.resolved", "resolved", resolved, c));
    }
}

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn deploy_gitlab(
        &mut self,
        spec: &ServiceSpec,
        repo_id: u64,
        sha: &str,
        env: &str,
        created: DateTime<Utc>,
        finished: DateTime<Utc>,
        success: bool,
    ) {
        let deployment_id = self.id();
        let job = 900_000 + self.id();
        // GitLab's own time format, at a +02:00 offset.
        let gitlab_time = |t: DateTime<Utc>| {
            t.with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
                .format("%Y-%m-%d %H:%M:%S %z")
                .to_string()
        };
        for (status, at) in [
            ("running", created),
            (if success { "success" } else { "failed" }, finished),
        ] {
            self.gitlab(spec.name, "Deployment Hook", json!({
                "object_kind": "deployment", "status": status, "status_changed_at": gitlab_time(at),
                "deployment_id": deployment_id, "deployable_id": job,
                "deployable_url": format!("https://gitlab.com/{}/-/jobs/{job}", spec.repo),
                "environment": env, "environment_tier": env, "environment_slug": env,
                "environment_external_url": null,
                "project": {"id": repo_id, "name": spec.name, "path_with_namespace": spec.repo,
                            "default_branch": "main", "web_url": format!("https://gitlab.com/{}", spec.repo)},
                "short_sha": &sha[..8], "user": user(), "user_url": "https://gitlab.com/octo-deployer",
                "commit_url": format!("https://gitlab.com/{}/-/commit/{sha}", spec.repo),
                "commit_title": "deploy", "ref": "main"
            }));
        }
    }

    fn deploy_argocd(
        &mut self,
        spec: &ServiceSpec,
        sha: &str,
        env: &str,
        created: DateTime<Utc>,
        finished: DateTime<Utc>,
        success: bool,
    ) {
        let name = format!("{}-{env}", spec.name);
        let uid = format!("uid-{name}");
        let app = |phase: &str, health: &str, finished_at: Option<DateTime<Utc>>| {
            let mut operation = json!({"phase": phase, "startedAt": rfc(created),
                "operation": {"sync": {"revision": sha}}, "message": "sync"});
            if let Some(t) = finished_at {
                operation["finishedAt"] = rfc(t).into();
                operation["syncResult"] = json!({"revision": sha,
                    "source": {"repoURL": format!("https://github.com/{}", spec.repo), "path": "deploy"}});
            }
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": name, "namespace": "argocd", "uid": uid,
                             "labels": {"environment": env}},
                "spec": {"destination": {"server": "https://kubernetes.default.svc", "namespace": spec.name},
                         "source": {"repoURL": format!("https://github.com/{}", spec.repo), "path": "deploy", "targetRevision": "HEAD"}},
                "status": {"operationState": operation,
                           "health": {"status": health, "lastTransitionTime": rfc(finished_at.unwrap_or(created))},
                           "sync": {"status": "Synced", "revision": sha}}
            })
        };
        let context =
            json!({"argocdUrl": "https://argocd.acme.test", "notificationType": "webhook"});
        let running = json!({"trigger": "on-sync-running", "app": app("Running", "Progressing", None), "context": context});
        self.send(
            spec.name,
            "/webhooks/argocd",
            vec![("content-type".into(), "application/json".into())],
            running,
        );
        let done = if success {
            json!({"trigger": "on-deployed", "app": app("Succeeded", "Healthy", Some(finished)), "context": context})
        } else {
            json!({"trigger": "on-sync-failed", "app": app("Failed", "Progressing", Some(finished)), "context": context})
        };
        self.send(
            spec.name,
            "/webhooks/argocd",
            vec![("content-type".into(), "application/json".into())],
            done,
        );
    }

    fn deploy_flux(
        &mut self,
        spec: &ServiceSpec,
        sha: &str,
        env: &str,
        finished: DateTime<Utc>,
        success: bool,
    ) {
        let (severity, reason) = if success {
            ("info", "ReconciliationSucceeded")
        } else {
            ("error", "HealthCheckFailed")
        };
        let body = json!({
            "involvedObject": {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                               "name": spec.name, "namespace": env,
                               "uid": format!("f1f1f1f1-0000-4000-8000-{:012x}", spec.repo.len() * 10 + env.len())},
            "metadata": {"kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{sha}"), "environment": env},
            "severity": severity, "reason": reason,
            "message": if success { "Reconciliation finished in 3.2s, next run in 10m0s" } else { "health check failed" },
            "reportingController": "kustomize-controller", "reportingInstance": "kustomize-controller-7c8d9",
            "timestamp": rfc(finished)
        });
        self.send(
            spec.name,
            "/webhooks/flux",
            vec![
                ("content-type".into(), "application/json".into()),
                ("gotk-component".into(), "kustomize-controller".into()),
            ],
            body,
        );
    }

    fn deploy_cdevents(
        &mut self,
        spec: &ServiceSpec,
        sha: &str,
        env: &str,
        finished: DateTime<Utc>,
    ) {
        let id = format!("cd000000-0000-4000-8000-{:012x}", self.id());
        let event = json!({
            "context": {"specversion": "0.5.1", "id": id, "source": format!("/ci/{}", spec.name),
                        "type": "dev.cdevents.service.deployed.0.3.0", "timestamp": rfc(finished)},
            "subject": {"id": spec.name, "source": format!("/ci/{}", spec.name),
                        "content": {"environment": {"id": env},
                                    "artifactId": format!("pkg:github/{}@{sha}", spec.repo)}}
        });
        // Every other one as a binary-mode CloudEvent, the rest as bare CDEvents.
        let headers = if self.deployments.is_multiple_of(2) {
            vec![
                ("content-type".into(), "application/json".into()),
                ("ce-specversion".into(), "1.0".into()),
                ("ce-id".into(), id.clone()),
                ("ce-source".into(), format!("/ci/{}", spec.name)),
                (
                    "ce-type".into(),
                    "dev.cdevents.service.deployed.0.3.0".into(),
                ),
            ]
        } else {
            vec![("content-type".into(), "application/json".into())]
        };
        self.send(spec.name, "/webhooks/cdevents", headers, event);
    }

    fn incident_cdevents(
        &mut self,
        spec: &ServiceSpec,
        number: u64,
        title: &str,
        opened: DateTime<Utc>,
        resolved: DateTime<Utc>,
    ) {
        for (predicate, at, version) in [
            ("detected", opened, "0.5.1"),
            ("resolved", resolved, "0.4.1"),
        ] {
            let id = format!("ce000000-0000-4000-8000-{:012x}", self.id());
            let (version_key, type_version) = if version == "0.5.1" {
                ("specversion", "0.3.0")
            } else {
                ("version", "0.2.0")
            };
            let mut context = json!({"id": id, "source": "/monitoring/prod",
                "type": format!("dev.cdevents.incident.{predicate}.{type_version}"), "timestamp": rfc(at)});
            context[version_key] = version.into();
            let event = json!({
                "context": context,
                "subject": {"id": format!("incident-{number}"), "source": "/monitoring/prod",
                            "content": {"description": title, "environment": {"id": "production"},
                                        "service": {"id": spec.name}}}
            });
            // Structured-mode CloudEvents.
            let envelope = json!({"specversion": "1.0", "id": id, "source": "/monitoring/prod",
                "type": format!("dev.cdevents.incident.{predicate}.{type_version}"),
                "datacontenttype": "application/json", "data": event});
            self.send(
                spec.name,
                "/webhooks/cdevents",
                vec![("content-type".into(), "application/cloudevents+json".into())],
                envelope,
            );
        }
    }

    /// A push of checkout's commits as GitLab sends it.
    fn push_gitlab(&mut self, spec: &ServiceSpec, repo_id: u64, before: &str, commits: &[Value]) {
        let after = commits.last().unwrap()["id"].as_str().unwrap().to_string();
        let commits: Vec<Value> = commits
            .iter()
            .map(|c| {
                let message = c["message"].as_str().unwrap();
                json!({"id": c["id"], "message": message, "title": message.lines().next().unwrap(),
                       "timestamp": c["timestamp"], "url": format!("https://gitlab.com/{}/-/commit/{}", spec.repo, c["id"].as_str().unwrap()),
                       "author": {"name": "Dev", "email": "dev@acme.test"},
                       "added": [], "modified": c["modified"], "removed": []})
            })
            .collect();
        self.gitlab(spec.name, "Push Hook", json!({
            "object_kind": "push", "event_name": "push", "before": before, "after": after,
            "ref": "refs/heads/main", "ref_protected": true, "checkout_sha": after,
            "user_id": 4242424, "user_name": "Dev", "user_username": "dev", "project_id": repo_id,
            "project": {"id": repo_id, "name": spec.name, "path_with_namespace": spec.repo,
                        "default_branch": "main", "web_url": format!("https://gitlab.com/{}", spec.repo)},
            "commits": commits, "total_commits_count": commits.len(),
            "repository": {"name": spec.name, "homepage": format!("https://gitlab.com/{}", spec.repo)}
        }));
    }
}

/// Builds the month: per service and day a push, usually a deployment (with a staging one before
/// it), and on some days a failed attempt, an incident, a rollback or only hotfix commits.
pub fn month(seed: u64) -> Scenario {
    month_from(seed, Sources::GithubAndPagerduty)
}

/// The same month sent by the given tools.
pub fn month_from(seed: u64, sources: Sources) -> Scenario {
    let mut rng = Rng::new(seed);
    let mut b = Builder {
        deliveries: Vec::new(),
        hook_id: 4_000_000 + seed,
        next_id: 0,
        sources,
        deployments: 0,
    };
    let mut model: BTreeMap<String, ModelService> = BTreeMap::new();
    let mut incident_number = 0;
    for (k, spec) in services().into_iter().enumerate() {
        let m = model.entry(spec.name.to_string()).or_default();
        let repo_id = 500_000 + k as u64;
        let mut head = "0000000000000000000000000000000000000000".to_string();
        let mut pending: Vec<(String, DateTime<Utc>, bool)> = Vec::new();
        let mut last_deployed: Option<String> = None;
        // An incident before any deployment: restored, but attributed to none.
        incident_number += 1;
        let opened = start() + Duration::hours(3) + Duration::minutes(k as i64);
        let resolved = opened + Duration::minutes(50 + 5 * k as i64);
        b.incident(
            &spec,
            incident_number,
            "Elevated error rate on login",
            opened,
            resolved,
        );
        m.incidents.push((opened, false));
        m.restores
            .push((resolved, (resolved - opened).num_seconds() as f64));

        for day in 0..DAYS {
            let date = start() + Duration::days(day);
            let kind = rng.below(10);
            let hotfix_day = kind == 3;
            // The day's push: 1 to 3 commits from 08:00 on, some with a non-UTC offset.
            let n = 1 + rng.below(3);
            let mut commits = Vec::new();
            for i in 0..n {
                let at =
                    date + Duration::hours(8) + Duration::minutes((rng.below(240) + 60 * i) as i64);
                let commit_sha = sha(&format!("{}-{day}-{i}-{seed}", spec.name));
                let title = if hotfix_day {
                    format!("hotfix: guard against empty cart ({day}.{i})")
                } else {
                    format!("feat: step {day}.{i} of the new flow")
                };
                let offset =
                    chrono::FixedOffset::east_opt(if i % 2 == 1 { 2 * 3600 } else { 0 }).unwrap();
                commits.push(json!({
                    "id": commit_sha, "tree_id": sha(&format!("tree-{commit_sha}")), "distinct": true,
                    "message": format!("{title}\n\nSigned-off-by: Dev <dev@acme.test>"),
                    "timestamp": at.with_timezone(&offset).to_rfc3339(),
                    "url": format!("https://github.com/{}/commit/{commit_sha}", spec.repo),
                    "author": {"name": "Dev", "email": "dev@acme.test", "username": "dev"},
                    "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
                    "added": [], "removed": [], "modified": [format!("src/step_{day}.rs")]
                }));
                pending.push((commit_sha, at, hotfix_day));
            }
            let after = pending.last().unwrap().0.clone();
            if sources == Sources::Mixed && spec.name == "checkout" {
                b.push_gitlab(&spec, repo_id, &head, &commits);
                head = after.clone();
            } else {
                b.github(spec.name, "push", json!({
                "ref": "refs/heads/main", "before": head, "after": after, "created": false, "deleted": false,
                "forced": false, "base_ref": null,
                "compare": format!("https://github.com/{}/compare/{}...{}", spec.repo, &head[..12], &after[..12]),
                "commits": commits, "head_commit": commits.last().unwrap(),
                "repository": repository(&spec, repo_id), "pusher": {"name": "dev", "email": "dev@acme.test"},
                "sender": user()
            }));
                head = after.clone();
            }

            if kind == 0 {
                continue; // no deployment today: the commits wait for the next one
            }
            let deploy_at = date + Duration::hours(14) + Duration::minutes(5 * k as i64);
            b.deploy(
                &spec,
                repo_id,
                &after,
                "staging",
                date + Duration::hours(12),
                date + Duration::hours(12) + Duration::minutes(4),
                true,
            );
            if kind == 4 {
                b.deploy(
                    &spec,
                    repo_id,
                    &after,
                    "production",
                    deploy_at - Duration::minutes(40),
                    deploy_at - Duration::minutes(30),
                    false,
                );
                m.failed_attempts.push(deploy_at - Duration::minutes(30));
            }
            b.deploy(
                &spec,
                repo_id,
                &after,
                "production",
                deploy_at - Duration::minutes(6),
                deploy_at,
                true,
            );
            let all_fixes = pending.iter().all(|(_, _, fix)| *fix);
            for (_, at, _) in pending.drain(..) {
                m.lead_times
                    .push((deploy_at, (deploy_at - at).num_seconds().max(0) as f64));
            }
            let mut this = ModelDeployment {
                finished: deploy_at,
                failed: false,
                recovered: None,
                rework: all_fixes,
            };
            if kind == 1 {
                incident_number += 1;
                let opened = deploy_at + Duration::minutes(55);
                let resolved = opened + Duration::minutes(30 + rng.below(180) as i64);
                b.incident(
                    &spec,
                    incident_number,
                    &format!("Checkout errors after deploy {}", &after[..7]),
                    opened,
                    resolved,
                );
                m.incidents.push((opened, true));
                m.restores
                    .push((resolved, (resolved - opened).num_seconds() as f64));
                this.failed = true;
                this.recovered = Some(resolved);
                m.deployments.push(this);
            } else if kind == 2 && last_deployed.is_some() {
                let rollback_at = deploy_at + Duration::minutes(90 + rng.below(60) as i64);
                let target = last_deployed.clone().unwrap();
                this.failed = true;
                this.recovered = Some(rollback_at);
                m.deployments.push(this);
                b.deploy(
                    &spec,
                    repo_id,
                    &target,
                    "production",
                    rollback_at - Duration::minutes(5),
                    rollback_at,
                    true,
                );
                m.deployments.push(ModelDeployment {
                    finished: rollback_at,
                    failed: false,
                    recovered: None,
                    rework: true,
                });
                last_deployed = Some(target);
                continue;
            } else {
                m.deployments.push(this);
            }
            last_deployed = Some(after);
        }
    }

    // Duplicates: every seventh delivery arrives twice; then everything arrives shuffled.
    let originals = b.deliveries.len();
    for i in (0..originals).step_by(7) {
        let again = b.deliveries[i].clone();
        model.get_mut(&again.service).unwrap().duplicates += 1;
        b.deliveries.push(again);
    }
    for i in (1..b.deliveries.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        b.deliveries.swap(i, j);
    }
    Scenario {
        deliveries: b.deliveries,
        model,
    }
}

/// Nearest-rank percentile, written out independently of the engine.
pub fn percentile(sorted: &[f64], p_percent: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p_percent * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// The expected `/api/v1/dora` figures of a set of services over `[from, to)`.
pub fn expected(
    model: &BTreeMap<String, ModelService>,
    services: &[&str],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Value {
    let inside = |t: DateTime<Utc>| t >= from && t < to;
    let pooled: Vec<&ModelService> = services.iter().map(|s| &model[*s]).collect();
    let deployments: Vec<&ModelDeployment> = pooled
        .iter()
        .flat_map(|m| &m.deployments)
        .filter(|d| inside(d.finished))
        .collect();
    let count = deployments.len() as f64;
    let days = (to - from).num_seconds() as f64 / 86_400.0;
    let deploy_days: BTreeSet<_> = deployments
        .iter()
        .map(|d| d.finished.date_naive())
        .collect();
    let failed = deployments.iter().filter(|d| d.failed).count();
    let rework = deployments.iter().filter(|d| d.rework).count();
    let unrecovered = deployments
        .iter()
        .filter(|d| d.failed && d.recovered.is_none())
        .count();
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = if v.is_empty() {
            None
        } else {
            Some(v.iter().sum::<f64>() / v.len() as f64)
        };
        json!({"count": v.len(), "p50": percentile(&v, 50), "p75": percentile(&v, 75), "p90": percentile(&v, 90), "mean": mean})
    };
    let leads: Vec<f64> = pooled
        .iter()
        .flat_map(|m| &m.lead_times)
        .filter(|(at, _)| inside(*at))
        .map(|(_, v)| *v)
        .collect();
    let recoveries: Vec<f64> = pooled
        .iter()
        .flat_map(|m| &m.deployments)
        .filter_map(|d| {
            d.recovered
                .filter(|r| d.failed && inside(*r))
                .map(|r| (r - d.finished).num_seconds() as f64)
        })
        .collect();
    let restores: Vec<f64> = pooled
        .iter()
        .flat_map(|m| &m.restores)
        .filter(|(at, _)| inside(*at))
        .map(|(_, v)| *v)
        .collect();
    let opened: Vec<bool> = pooled
        .iter()
        .flat_map(|m| &m.incidents)
        .filter(|(at, _)| inside(*at))
        .map(|(_, a)| *a)
        .collect();
    let duplicates: u64 = pooled.iter().map(|m| m.duplicates).sum();
    json!({
        "deployment_frequency": {"deployments": deployments.len(), "failed_attempts": pooled.iter().flat_map(|m| &m.failed_attempts).filter(|t| inside(**t)).count(),
                                 "per_day": count / days, "deploy_days": deploy_days.len()},
        "lead_time": stats(leads),
        "change_failure_rate": {"deployments": deployments.len(), "failed": failed, "rate": if count > 0.0 { Some(failed as f64 / count) } else { None }},
        "failed_deployment_recovery_time": {"unrecovered": unrecovered, "stats": stats(recoveries)},
        "time_to_restore": stats(restores),
        "rework_rate": {"deployments": deployments.len(), "rework": rework, "rate": if count > 0.0 { Some(rework as f64 / count) } else { None }},
        "data_quality": {"deployments_linked": if count > 0.0 { Some(1.0) } else { None },
                         "incidents_attributed": if opened.is_empty() { None } else { Some(opened.iter().filter(|a| **a).count() as f64 / opened.len() as f64) },
                         "unlinked_revisions": 0, "duplicates_ignored": duplicates, "clock_skew_changes": 0, "dropped_changes": 0,
                         "commits_not_listed": 0}
    })
}
