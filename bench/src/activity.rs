//! Realistic signed deliveries for the harness (GitHub push, deployment status, PagerDuty incident
//! in the shapes the sources send) and the "year of activity" load.

use std::cell::Cell;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Hex HMAC-SHA256.
pub fn sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn sha(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))[..40].to_string()
}

fn repository(repo: &str) -> Value {
    let (owner, name) = repo.split_once('/').unwrap_or(("acme", repo));
    json!({"id": 1, "name": name, "full_name": repo, "private": true,
           "owner": {"login": owner, "id": 2}, "html_url": format!("https://github.com/{repo}"),
           "default_branch": "main", "master_branch": "main"})
}

/// One commit of a push payload.
pub fn commit(seed: &str, at: DateTime<Utc>, title: &str) -> Value {
    let id = sha(seed);
    json!({"id": id, "tree_id": sha(&format!("tree{seed}")), "distinct": true,
           "message": format!("{title}\n\nA longer description of the change, as commit messages have."),
           "timestamp": at.to_rfc3339(), "url": format!("https://github.com/acme/x/commit/{id}"),
           "author": {"name": "Dev", "email": "dev@acme.test", "username": "dev"},
           "committer": {"name": "Dev", "email": "dev@acme.test", "username": "dev"},
           "added": [], "removed": [], "modified": ["src/lib.rs", "src/handler.rs"]})
}

/// A push of `commits` to main.
pub fn push_body(repo: &str, before: &str, after: &str, commits: &[Value]) -> String {
    json!({"ref": "refs/heads/main", "before": before, "after": after, "created": false,
           "deleted": false, "forced": false, "base_ref": null,
           "compare": format!("https://github.com/{repo}/compare/x...y"),
           "commits": commits, "head_commit": commits.last(), "repository": repository(repo),
           "pusher": {"name": "dev", "email": "dev@acme.test"}, "sender": {"login": "dev", "id": 3}})
    .to_string()
}

/// A `deployment_status` event.
pub fn deployment_status_body(
    repo: &str,
    id: u64,
    sha: &str,
    env: &str,
    at: DateTime<Utc>,
    state: &str,
) -> String {
    let t = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let deployment = json!({"id": id, "sha": sha, "ref": "main", "task": "deploy", "payload": {},
        "environment": env, "original_environment": env, "created_at": t, "updated_at": t,
        "creator": {"login": "dev", "id": 3}});
    json!({"action": "created",
           "deployment_status": {"id": id + 1, "state": state, "environment": env, "created_at": t,
                                 "updated_at": t, "description": "", "target_url": "",
                                 "creator": {"login": "dev", "id": 3}},
           "deployment": deployment, "repository": repository(repo), "sender": {"login": "dev", "id": 3}})
    .to_string()
}

/// A PagerDuty V3 incident event.
pub fn incident_body(
    event_id: &str,
    event_type: &str,
    incident: &str,
    service: &str,
    at: DateTime<Utc>,
    created: DateTime<Utc>,
) -> String {
    json!({"event": {"id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "agent": null, "client": null,
        "data": {"id": incident, "type": "incident", "number": 1, "status": "triggered",
                 "title": "Elevated error rate", "created_at": created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                 "service": {"id": format!("P{service}"), "summary": service, "type": "service_reference"},
                 "assignees": [], "teams": [], "priority": null, "urgency": "high"}}})
    .to_string()
}

pub struct Request {
    /// `/webhooks/<source>`.
    pub path: &'static str,
    /// Headers besides the content type.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

/// Sends a year of activity for `services` services and prints the throughput: one service's
/// year after another, or `interleaved`, day by day across the services (as the webhooks of many
/// services arrive live).
#[allow(clippy::too_many_arguments)]
pub fn year(
    url: &str,
    github: &str,
    pagerduty: &str,
    services: usize,
    days: i64,
    deploys_per_day: usize,
    concurrency: usize,
    interleaved: bool,
) -> anyhow::Result<()> {
    let mut requests = year_requests(github, pagerduty, services, days, deploys_per_day);
    if interleaved {
        requests = interleave(requests, services);
    }
    send(url, requests, services, days, concurrency)
}

/// Deliveries of consecutive services, each with the same days in the same order, taken day by
/// day across the services: the k-th delivery of every service, then the next.
fn interleave(requests: Vec<Request>, services: usize) -> Vec<Request> {
    let per_service = requests.len() / services.max(1);
    assert_eq!(
        per_service * services,
        requests.len(),
        "the same deliveries per service"
    );
    let mut slots: Vec<Option<Request>> = requests.into_iter().map(Some).collect();
    (0..per_service)
        .flat_map(|k| (0..services).map(move |s| s * per_service + k))
        .map(|i| slots[i].take().expect("each delivery once"))
        .collect()
}

/// The signed deliveries of a year of activity: per service and day a push of four commits,
/// deployments, and every tenth day an incident (triggered, resolved).
pub fn year_requests(
    github: &str,
    pagerduty: &str,
    services: usize,
    days: i64,
    deploys_per_day: usize,
) -> Vec<Request> {
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut requests = Vec::new();
    let mut n = 0u64;
    let mut next = || {
        n += 1;
        n
    };
    for s in 0..services {
        let repo = format!("acme/service-{s:03}");
        let mut head = "0".repeat(40);
        for day in 0..days {
            let date = start + Duration::days(day);
            let commits: Vec<Value> = (0..4)
                .map(|c| {
                    commit(
                        &format!("{repo}-{day}-{c}"),
                        date + Duration::hours(8 + c),
                        "feat: change",
                    )
                })
                .collect();
            let after = commits[3]["id"].as_str().unwrap().to_string();
            let body = push_body(&repo, &head, &after, &commits);
            head = after;
            requests.push(Request {
                path: "/webhooks/github",
                headers: vec![
                    ("x-github-event", "push".into()),
                    ("x-github-delivery", format!("y-{}", next())),
                    (
                        "x-hub-signature-256",
                        format!("sha256={}", sign(github, &body)),
                    ),
                ],
                body,
            });
            // One deployment of the day's head on six days of seven, or `deploys_per_day`
            // deployments every day, each of the next commit of the day (the last: the head).
            let deploys: Vec<(usize, i64)> = if deploys_per_day <= 1 {
                if day % 7 != 6 { vec![(3, 15)] } else { vec![] }
            } else {
                (0..deploys_per_day)
                    .map(|k| ((k * 3 / (deploys_per_day - 1)).min(3), 12 + k as i64))
                    .collect()
            };
            for (k, (commit_index, hour)) in deploys.into_iter().enumerate() {
                let id = 10_000_000 * (s as u64 + 1) + day as u64 * 10 + k as u64;
                let sha = commits[commit_index]["id"].as_str().unwrap().to_string();
                let body = deployment_status_body(
                    &repo,
                    id,
                    &sha,
                    "production",
                    date + Duration::hours(hour),
                    "success",
                );
                requests.push(Request {
                    path: "/webhooks/github",
                    headers: vec![
                        ("x-github-event", "deployment_status".into()),
                        ("x-github-delivery", format!("y-{}", next())),
                        (
                            "x-hub-signature-256",
                            format!("sha256={}", sign(github, &body)),
                        ),
                    ],
                    body,
                });
            }
            if day % 10 == 3 {
                let incident = format!("Q{s:03}{day:04}");
                for (kind, at) in [
                    ("incident.triggered", date + Duration::hours(16)),
                    ("incident.resolved", date + Duration::hours(18)),
                ] {
                    let id = format!("ev-{}", next());
                    let body =
                        incident_body(&id, kind, &incident, &repo, at, date + Duration::hours(16));
                    requests.push(Request {
                        path: "/webhooks/pagerduty",
                        headers: vec![
                            ("x-webhook-id", id),
                            (
                                "x-pagerduty-signature",
                                format!("v1={}", sign(pagerduty, &body)),
                            ),
                        ],
                        body,
                    });
                }
            }
        }
    }
    requests
}

fn send(
    url: &str,
    requests: Vec<Request>,
    services: usize,
    days: i64,
    concurrency: usize,
) -> anyhow::Result<()> {
    let total = requests.len();
    let bytes: usize = requests.iter().map(|r| r.body.len()).sum();
    println!(
        "sending {total} deliveries ({:.1} MB of bodies) for {services} services over {days} days",
        bytes as f64 / 1e6
    );
    let failed = Cell::new(0u64);
    // One async client on a runtime of its own with `concurrency` requests in flight: the
    // generator shares the machine with what it measures, and a blocking client per sender
    // cost a thread and a runtime each, and two thread switches per request.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    // When the first delivery leaves (building and signing the requests came before): what an
    // end-to-end measurement starts from.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    println!(
        "first delivery at {:.3} (unix seconds)",
        since_epoch.as_secs_f64()
    );
    let started = Instant::now();
    runtime.block_on(
        futures_util::stream::iter(requests).for_each_concurrent(concurrency, |r| {
            let mut request = client
                .post(format!("{url}{}", r.path))
                .header("content-type", "application/json")
                .body(r.body);
            for (k, v) in r.headers {
                request = request.header(k, v);
            }
            let failed = &failed;
            async move {
                let accepted = request
                    .send()
                    .await
                    .is_ok_and(|resp| resp.status().as_u16() == 202);
                if !accepted {
                    failed.set(failed.get() + 1);
                }
            }
        }),
    );
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "sent {total} in {seconds:.1} s ({:.0}/s), {} not accepted",
        total as f64 / seconds,
        failed.get()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_takes_the_services_day_by_day() {
        let request = |name: &str| Request {
            path: "/webhooks/github",
            headers: vec![],
            body: name.into(),
        };
        let requests = Vec::from(["a1", "a2", "a3", "b1", "b2", "b3"].map(request));
        let bodies: Vec<String> = interleave(requests, 2)
            .into_iter()
            .map(|r| r.body)
            .collect();
        assert_eq!(bodies, ["a1", "b1", "a2", "b2", "a3", "b3"]);
    }
}
