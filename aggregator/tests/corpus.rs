//! The golden corpus (`tests/corpus/*.json`): small event streams, each named after the rule of
//! metrics.md it pins down, with hand-checked expected facts and figures. Every case is also run
//! reversed, rotated and with every delivery twice; the facts must not change.
//!
//! A case: `catalog` (as `[[services]]`), `events` (a compact form of the normalized events, one
//! delivery each), `query` (`service`, `from`, `to`), and `expected`: `deployments` (by id, fact
//! fields), `changes` (by SHA), `incidents` (by id), and `summary` (dotted paths into the
//! `/api/v1/dora` answer).

use std::path::Path;

use doraflow_aggregator::summary::{Counters, Edition, Query, summarize};
use doraflow_aggregator::{Catalog, Engine, EngineState, ServiceFacts};
use doraflow_schemas::config::{Definitions, ServiceConfig};
use doraflow_schemas::event::{
    Commit, DeploymentState, DeploymentUpdate, HealthReport, HealthStatus, IncidentChange,
    IncidentUpdate, PullRequestMerged, Push,
};
use doraflow_schemas::time::{Timestamp, parse_rfc3339};
use doraflow_schemas::{Event, LogRecord, Outcome};
use serde_json::{Value, json};

fn time(v: &Value) -> Timestamp {
    parse_rfc3339(v.as_str().expect("a time string")).expect("an RFC 3339 time")
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` missing in {v}"))
        .to_string()
}

fn opt<'a>(v: &'a Value, key: &str, default: &'a str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or(default)
}

/// Turns one compact corpus event into a normalized event.
fn event(v: &Value) -> Event {
    if let Some(p) = v.get("push") {
        let commits = p["commits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Commit {
                sha: c[0].as_str().unwrap().into(),
                timestamp: time(&c[1]),
                title: c[2].as_str().unwrap().into(),
                files: c.get(3).map_or(vec![], |f| {
                    f.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_string())
                        .collect()
                }),
            })
            .collect();
        return Event::Push(Push {
            repo: opt(p, "repo", "acme/app").into(),
            branch: "main".into(),
            default_branch: "main".into(),
            before: text(p, "before"),
            after: text(p, "after"),
            forced: p.get("forced").and_then(Value::as_bool).unwrap_or(false),
            pushed_at: time(&p["at"]),
            commits,
            commits_not_listed: 0,
        });
    }
    if let Some(d) = v.get("deploy") {
        return Event::Deployment(DeploymentUpdate {
            id: text(d, "id"),
            repo: Some(opt(d, "repo", "acme/app").into()),
            service_hint: d.get("service").and_then(Value::as_str).map(String::from),
            environment: opt(d, "env", "production").into(),
            revision: text(d, "sha"),
            state: match opt(d, "state", "success") {
                "success" => DeploymentState::Success,
                "failure" => DeploymentState::Failure,
                _ => DeploymentState::Pending,
            },
            at: time(&d["at"]),
            tier: None,
            app: None,
        });
    }
    if let Some(i) = v.get("incident") {
        return Event::Incident(IncidentUpdate {
            id: text(i, "id"),
            service_id: Some(opt(i, "service", "PAPP").into()),
            service_name: None,
            title: opt(i, "title", "down").into(),
            change: match text(i, "change").as_str() {
                "triggered" => IncidentChange::Triggered,
                "resolved" => IncidentChange::Resolved,
                "reopened" => IncidentChange::Reopened,
                _ => IncidentChange::Acknowledged,
            },
            occurred_at: time(&i["at"]),
            created_at: i.get("created_at").map(time),
        });
    }
    if let Some(p) = v.get("pr") {
        return Event::PullRequestMerged(PullRequestMerged {
            repo: opt(p, "repo", "acme/app").into(),
            number: 1,
            merge_commit_sha: text(p, "sha"),
            merged_at: time(&p["at"]),
            labels: p["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect(),
        });
    }
    if let Some(h) = v.get("health") {
        return Event::Health(HealthReport {
            app: opt(h, "app", "app").into(),
            environment: h.get("env").and_then(Value::as_str).map(String::from),
            revision: text(h, "sha"),
            status: match text(h, "status").as_str() {
                "degraded" => HealthStatus::Degraded,
                _ => HealthStatus::Healthy,
            },
            at: time(&h["at"]),
        });
    }
    if let Some(m) = v.get("many_commits") {
        // A push of `count` commits m0..m{count-1}, all at `at`.
        let count = m["count"].as_u64().unwrap();
        let at = time(&m["at"]);
        return Event::Push(Push {
            repo: "acme/app".into(),
            branch: "main".into(),
            default_branch: "main".into(),
            before: text(m, "before"),
            after: format!("m{}", count - 1),
            forced: false,
            pushed_at: at,
            commits: (0..count)
                .map(|i| Commit {
                    sha: format!("m{i}").into(),
                    timestamp: at,
                    title: "x".into(),
                    files: vec![],
                })
                .collect(),
            commits_not_listed: 0,
        });
    }
    panic!("unknown corpus event {v}")
}

fn records(case: &Value) -> Vec<LogRecord> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(n, e)| LogRecord {
            delivery: format!("delivery-{n}"),
            source: "github".into(),
            received_at: parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            headers: vec![],
            body: Default::default(),
            outcome: Outcome::Events {
                events: vec![event(e)],
            },
        })
        .collect()
}

fn run(case: &Value, records: &[LogRecord]) -> Vec<ServiceFacts> {
    let services: Vec<ServiceConfig> = serde_json::from_value(case["catalog"].clone()).unwrap();
    let mut engine = Engine::new(
        EngineState::default(),
        Catalog::new(&services).unwrap(),
        Definitions::default(),
    );
    for r in records {
        engine.apply(r);
    }
    services.iter().map(|s| engine.derive(&s.name)).collect()
}

fn check(name: &str, actual: &Value, expected: &Value, path: &str, problems: &mut Vec<String>) {
    match expected {
        Value::Object(fields) => {
            for (k, v) in fields {
                check(
                    name,
                    actual.get(k).unwrap_or(&Value::Null),
                    v,
                    &format!("{path}.{k}"),
                    problems,
                );
            }
        }
        Value::Number(n) => match actual.as_f64() {
            Some(a) if (a - n.as_f64().unwrap()).abs() < 1e-9 => {}
            _ => problems.push(format!("{name}: {path}: got {actual}, expected {expected}")),
        },
        _ if actual == expected => {}
        _ => problems.push(format!("{name}: {path}: got {actual}, expected {expected}")),
    }
}

fn fact_json(facts: &[ServiceFacts]) -> Value {
    let (mut deployments, mut changes, mut incidents) = (
        serde_json::Map::new(),
        serde_json::Map::new(),
        serde_json::Map::new(),
    );
    for f in facts {
        for d in &f.deployments {
            let mut v = serde_json::to_value(d).unwrap();
            v["failed"] = json!(d.failed());
            v["recovery_time"] = json!(d.recovery_secs());
            deployments.insert(d.id.trim_start_matches("github:").to_string(), v);
        }
        for c in &f.changes {
            changes.insert(c.sha.to_string(), serde_json::to_value(c).unwrap());
        }
        for i in &f.incidents {
            let mut v = serde_json::to_value(i).unwrap();
            v["time_to_restore"] = json!(i.restore_secs());
            incidents.insert(i.id.trim_start_matches("github:").to_string(), v);
        }
    }
    json!({"deployments": deployments, "changes": changes, "incidents": incidents})
}

#[test]
fn every_corpus_case_gives_its_hand_checked_answers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 15, "the corpus has {} cases", paths.len());
    let mut problems = Vec::new();
    for path in &paths {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let records = records(&case);
        let facts = run(&case, &records);
        let facts_value = fact_json(&facts);
        for kind in ["deployments", "changes", "incidents"] {
            if let Some(expected) = case["expected"].get(kind) {
                check(&name, &facts_value[kind], expected, kind, &mut problems);
            }
        }
        if let Some(expected) = case["expected"].get("summary") {
            let q = &case["query"];
            let query = Query {
                from: time(&q["from"]),
                to: time(&q["to"]),
                environment: q
                    .get("environment")
                    .and_then(Value::as_str)
                    .map(String::from),
                tz: chrono_tz::Tz::UTC,
                edition: Edition::Dora2025,
            };
            let summary =
                serde_json::to_value(summarize(facts.iter(), None, Counters::default(), &query))
                    .unwrap();
            for (dotted, want) in expected.as_object().unwrap() {
                let got = dotted
                    .split('.')
                    .fold(&summary, |v, k| v.get(k).unwrap_or(&Value::Null));
                check(
                    &name,
                    got,
                    want,
                    &format!("summary.{dotted}"),
                    &mut problems,
                );
            }
        }
        // Order and duplicate independence on every case.
        let mut reversed = records.clone();
        reversed.reverse();
        let half = records.len() / 2;
        let mut rotated: Vec<LogRecord> = records[half..]
            .iter()
            .chain(&records[..half])
            .cloned()
            .collect();
        rotated.extend(records.iter().cloned());
        for (label, variant) in [("reversed", reversed), ("rotated and doubled", rotated)] {
            if run(&case, &variant) != facts {
                problems.push(format!("{name}: {label} arrival changes the facts"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
