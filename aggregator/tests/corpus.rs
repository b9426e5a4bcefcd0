//! The golden corpus (`tests/corpus/*.json`): small event streams, each named after the rule of
//! metrics.md it pins down, with hand-checked expected facts and figures. Every case is also run
//! reversed, rotated and with every delivery twice; the facts must not change. The same facts
//! drive the store conformance suite: the embedded store and ClickHouse must answer alike.
//!
//! A case: `catalog` (as `[[services]]`), `events` (a compact form of the normalized events, one
//! delivery each), `query` (`service`, `from`, `to`), and `expected`: `deployments` (by id, fact
//! fields), `changes` (by SHA), `incidents` (by id), and `summary` (dotted paths into the
//! `/api/v1/dora` answer).

use std::path::Path;
use std::sync::Arc;

use doraflow_aggregator::clickhouse::facts::{FactReader, FactWriter, PublishedState};
use doraflow_aggregator::clickhouse::{ClickHouseSettings, connect, migrate};
use doraflow_aggregator::store::{FactStore, StoreCounters};
use doraflow_aggregator::summary::{Counters, Edition, Query, summarize};
use doraflow_aggregator::{Catalog, Engine, EngineState, ServiceFacts};
use doraflow_schemas::config::{Definitions, ServiceConfig};
use doraflow_schemas::event::{
    Commit, DeploymentState, DeploymentUpdate, HealthReport, HealthStatus, IncidentChange,
    IncidentUpdate, PullRequestMerged, Push,
};
use doraflow_schemas::fact::DeploymentFact;
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
            before: text(p, "before").into(),
            after: text(p, "after").into(),
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
            before: text(m, "before").into(),
            after: format!("m{}", count - 1).into(),
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
            changes.insert(c.sha().to_string(), serde_json::to_value(c).unwrap());
        }
        for i in &f.incidents {
            let mut v = serde_json::to_value(i).unwrap();
            v["time_to_restore"] = json!(i.restore_secs());
            incidents.insert(i.id.trim_start_matches("github:").to_string(), v);
        }
    }
    json!({"deployments": deployments, "changes": changes, "incidents": incidents})
}

/// The corpus cases, in name order.
fn corpus_paths() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_corpus_case_gives_its_hand_checked_answers() {
    let paths = corpus_paths();
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

/// One step of the store conformance suite: what an aggregator of one partition publishes.
struct Publish {
    partition: u32,
    /// Which writer of the partition (another one is an aggregator that took the partition over
    /// and replays it).
    writer: u32,
    version: u64,
    services: Vec<(String, Arc<ServiceFacts>, Vec<Arc<ServiceFacts>>)>,
    counters: StoreCounters,
}

/// The embedded store after the steps (applied in version order, as one aggregator does).
fn embedded_store(steps: &[Publish]) -> FactStore {
    let mut store = FactStore::default();
    let mut counters = std::collections::BTreeMap::new();
    for step in steps {
        for (service, live, frozen) in &step.services {
            store.publish(service.clone(), live.clone(), frozen.clone());
        }
        counters.insert(step.partition, step.counters.clone());
    }
    let mut whole = StoreCounters::default();
    for c in counters.values() {
        whole.merge(c);
    }
    store.set_counters(whole);
    store
}

/// The store as an API process sees it through ClickHouse after the steps, each written by the
/// writer of its partition; `then` is written afterwards (a replay).
fn clickhouse_store(url: &str, database: &str, steps: &[Publish], then: &[Publish]) -> FactStore {
    let settings = ClickHouseSettings {
        url: url.into(),
        database: database.into(),
        user: None,
        password: None,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(migrate(&settings)).unwrap();
    let mut writers: std::collections::BTreeMap<(u32, u32), FactWriter> = Default::default();
    for step in steps.iter().chain(then) {
        let writer = writers
            .entry((step.partition, step.writer))
            .or_insert_with(|| FactWriter::new(&settings).for_partition(step.partition));
        let state = PublishedState {
            offset: step.version,
            counters: step.counters.clone(),
        };
        writer.write(&step.services, &state, step.version).unwrap();
    }
    let store = std::sync::RwLock::new(FactStore::default());
    runtime.block_on(async {
        let mut reader = FactReader::connect(&settings).await.unwrap();
        reader.refresh(&store).await.unwrap();
        // A second refresh reads nothing new and changes nothing.
        assert_eq!(reader.refresh(&store).await.unwrap(), 0);
        let client = connect(&settings).await.unwrap();
        client
            .query(&format!("DROP DATABASE {database}"))
            .execute()
            .await
            .unwrap();
    });
    store.into_inner().unwrap()
}

/// What the API reads of a store.
fn observed(store: &FactStore) -> Value {
    let mut services: Vec<&String> = store.service_names().collect();
    services.sort();
    let parts: serde_json::Map<String, Value> = services
        .iter()
        .map(|s| {
            (
                s.to_string(),
                serde_json::to_value(
                    store
                        .parts(s)
                        .iter()
                        .map(|p| (**p).clone())
                        .collect::<Vec<_>>(),
                )
                .unwrap(),
            )
        })
        .collect();
    let per_service: serde_json::Map<String, Value> = services
        .iter()
        .map(|s| {
            let c = store.counters_for(Some(std::slice::from_ref(*s)));
            (s.to_string(), serde_json::to_value(c).unwrap())
        })
        .collect();
    json!({
        "parts": parts,
        "counters": serde_json::to_value(store.counters_for(None)).unwrap(),
        "per_service": per_service,
    })
}

/// The store conformance suite: the facts of every corpus case, published by two partitions'
/// aggregators (one service's facts as a frozen chunk plus an empty live part, the others live),
/// then published again newer, read by the API from the embedded store and from ClickHouse (when
/// `DORAFLOW_TEST_CLICKHOUSE` names a server; scripts/test starts one): the same answers. A
/// replay that writes older versions afterwards changes nothing.
#[test]
fn the_embedded_store_and_clickhouse_conform() {
    let Some(url) = clickhouse_url() else {
        return;
    };
    let paths = corpus_paths();
    let mut steps = Vec::new();
    for (n, path) in paths.iter().enumerate() {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let services: Vec<ServiceConfig> = serde_json::from_value(case["catalog"].clone()).unwrap();
        let facts = run(&case, &records(&case));
        let partition = (n % 2) as u32;
        let published = services
            .iter()
            .zip(facts)
            .enumerate()
            .map(|(i, (s, f))| {
                let name = format!("{}-{}", n, s.name);
                if i == 0 {
                    (name, Arc::new(ServiceFacts::default()), vec![Arc::new(f)])
                } else {
                    (name, Arc::new(f), vec![])
                }
            })
            .collect();
        let mut counters = StoreCounters::default();
        counters.duplicates.insert(format!("{n}-x"), n as u64 + 1);
        counters.duplicates_total = n as u64 + 1;
        counters.too_late_total = 1;
        steps.push(Publish {
            partition,
            writer: 0,
            version: 10 + n as u64,
            services: published,
            counters,
        });
    }
    // The first step's services are published again, newer, with other facts.
    let first = &steps[0];
    let again = Publish {
        partition: first.partition,
        writer: 0,
        version: 1_000,
        services: first
            .services
            .iter()
            .map(|(s, _, frozen)| (s.clone(), Arc::new(ServiceFacts::default()), frozen.clone()))
            .collect(),
        counters: first.counters.clone(),
    };
    // A replay of an older version, written last.
    let stale = Publish {
        partition: first.partition,
        writer: 0,
        version: 5,
        services: steps[1]
            .services
            .iter()
            .map(|(s, _, frozen)| (s.clone(), Arc::new(ServiceFacts::default()), frozen.clone()))
            .collect(),
        counters: StoreCounters::default(),
    };
    steps.push(again);
    // A service whose live facts span five weeks, written again by the same aggregator with its
    // first week gone (frozen meanwhile) and its last deployment changed: the second write
    // carries only the windows that changed, and the first week's window is emptied.
    let template = steps
        .iter()
        .flat_map(|step| &step.services)
        .flat_map(|(_, live, frozen)| std::iter::once(live).chain(frozen))
        .find_map(|facts| facts.deployments.first())
        .expect("a corpus case with a deployment")
        .clone();
    let weeks = ServiceFacts {
        deployments: (0..12)
            .map(|n| DeploymentFact {
                id: format!("w{n}").into(),
                finished_at: template.finished_at + chrono::Duration::days(3 * n),
                ..template.clone()
            })
            .collect(),
        ..ServiceFacts::default()
    };
    let mut later = weeks.clone();
    later.deployments.drain(..3);
    let last = later.deployments.last_mut().unwrap();
    last.rework = !last.rework;
    let (partition, counters) = (steps[0].partition, steps[0].counters.clone());
    for (version, facts) in [(3_000, weeks), (3_001, later)] {
        steps.push(Publish {
            partition,
            writer: 0,
            version,
            services: vec![("windowed".into(), Arc::new(facts), vec![])],
            counters: counters.clone(),
        });
    }
    // An aggregator that takes the second step's partition over replays it and cuts the frozen
    // facts of its first service into other chunks: first at versions below what is written
    // (nothing may change yet), then past them.
    let (second_partition, second_counters) = (steps[1].partition, steps[1].counters.clone());
    let (service, live, frozen) = steps[1].services[0].clone();
    let whole = &frozen[0];
    let half = whole.deployments.len() / 2;
    let split = vec![
        Arc::new(ServiceFacts {
            deployments: whole.deployments[..half].to_vec(),
            ..ServiceFacts::default()
        }),
        Arc::new(ServiceFacts {
            deployments: whole.deployments[half..].to_vec(),
            changes: whole.changes.clone(),
            incidents: whole.incidents.clone(),
            pending: whole.pending.clone(),
            open_changes: Vec::new(),
        }),
    ];
    let rechunked = |version| Publish {
        partition: second_partition,
        writer: 1,
        version,
        services: vec![(service.clone(), live.clone(), split.clone())],
        counters: second_counters.clone(),
    };
    let replay = [rechunked(3), rechunked(2_000)];
    let mut expected_steps = steps;
    expected_steps.push(rechunked(2_000));
    let embedded = observed(&embedded_store(&expected_steps));
    let steps = &expected_steps[..expected_steps.len() - 1];
    let database = format!("store_conformance_{}", std::process::id());
    let mut then = vec![stale];
    then.extend(replay);
    let through_clickhouse = observed(&clickhouse_store(&url, &database, steps, &then));
    assert!(embedded["parts"].as_object().unwrap().len() >= 15);
    // Each partition's state replaces its last one; the partitions add up.
    assert_eq!(embedded["counters"]["too_late_ignored"], json!(2));
    if through_clickhouse != embedded {
        let (a, b) = (
            serde_json::to_string_pretty(&through_clickhouse).unwrap(),
            serde_json::to_string_pretty(&embedded).unwrap(),
        );
        let first_difference = a
            .lines()
            .zip(b.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(0);
        panic!(
            "ClickHouse differs from the embedded store near line {first_difference}:\n{}\n---\n{}",
            a.lines()
                .skip(first_difference.saturating_sub(5))
                .take(12)
                .collect::<Vec<_>>()
                .join("\n"),
            b.lines()
                .skip(first_difference.saturating_sub(5))
                .take(12)
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
}

/// The ClickHouse server of the tests (`DORAFLOW_TEST_CLICKHOUSE`, started by scripts/test), or
/// `None`, said once, when there is none and the ClickHouse run is skipped.
fn clickhouse_url() -> Option<String> {
    let url = std::env::var("DORAFLOW_TEST_CLICKHOUSE").ok();
    if url.is_none() {
        eprintln!("DORAFLOW_TEST_CLICKHOUSE is not set: the ClickHouse run is skipped");
    }
    url
}

/// The first corpus case.
fn first_case() -> Value {
    serde_json::from_str(&std::fs::read_to_string(&corpus_paths()[0]).unwrap()).unwrap()
}

/// Writes rows of `service_facts` for a service `legacy` as an older version wrote them (part,
/// facts) with a state at their version, and reads them with this version's reader: how many
/// services changed, and the service's parts (frozen chunks, then live facts).
fn read_rows_written_before(
    url: &str,
    database: &str,
    rows: &[(u32, String)],
) -> (usize, Vec<Arc<ServiceFacts>>) {
    let settings = ClickHouseSettings {
        url: url.to_string(),
        database: format!("{database}_{}", std::process::id()),
        user: None,
        password: None,
    };
    let state = serde_json::to_string(&PublishedState {
        offset: 7,
        counters: StoreCounters::default(),
    })
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        migrate(&settings).await.unwrap();
        let client = connect(&settings).await.unwrap();
        let db = &settings.database;
        for (part, facts) in rows {
            client
                .query(&format!(
                    "INSERT INTO {db}.service_facts (service, part, version, facts, log_partition) \
                     VALUES ('legacy', ?, 7, ?, 0)"
                ))
                .bind(part)
                .bind(facts.as_str())
                .execute()
                .await
                .unwrap();
        }
        client
            .query(&format!(
                "INSERT INTO {db}.aggregator_state VALUES ('published/0', 7, ?)"
            ))
            .bind(state.as_str())
            .execute()
            .await
            .unwrap();
        let store = std::sync::RwLock::new(FactStore::default());
        let mut reader = FactReader::connect(&settings).await.unwrap();
        let changed = reader.refresh(&store).await.unwrap();
        client
            .query(&format!("DROP DATABASE {db}"))
            .execute()
            .await
            .unwrap();
        (changed, store.into_inner().unwrap().parts("legacy"))
    })
}

/// A store written before the live facts moved into windows (part 0 held them whole) is still
/// read: an `api` upgraded first reads what the aggregators of the version before wrote.
#[test]
fn clickhouse_rows_written_before_live_windows_are_read() {
    let Some(url) = clickhouse_url() else {
        return;
    };
    let case = first_case();
    let live = run(&case, &records(&case)).remove(0);
    assert!(!live.deployments.is_empty() || !live.changes.is_empty());
    let index = json!({"live": live, "frozen": []}).to_string();
    let read = read_rows_written_before(&url, "store_before_windows", &[(0, index)]);
    assert_eq!(read.0, 1);
    assert_eq!(read.1.len(), 1, "the live part alone");
    // What is written (and read) of facts: `pending` stays with the aggregator.
    assert_eq!(
        serde_json::to_value(&*read.1[0]).unwrap(),
        serde_json::to_value(&live).unwrap()
    );
}

/// A store written before the binary encoding of facts (frozen chunks and live windows as JSON)
/// is still read, and gives the same facts.
#[test]
fn clickhouse_parts_written_as_json_are_read() {
    let Some(url) = clickhouse_url() else {
        return;
    };
    let case = first_case();
    let facts = run(&case, &records(&case)).remove(0);
    assert!(!facts.deployments.is_empty() && !facts.changes.is_empty());
    // The first deployment frozen, the rest live in one window (part numbers as that version
    // chose them: a chunk's from its hash, a window's with the high bit).
    let frozen = ServiceFacts {
        deployments: facts.deployments[..1].to_vec(),
        ..ServiceFacts::default()
    };
    let live = ServiceFacts {
        deployments: facts.deployments[1..].to_vec(),
        ..facts.clone()
    };
    let window = 1u32 << 31;
    let rows = [
        (
            0,
            json!({"frozen": [12345], "windows": [window]}).to_string(),
        ),
        (12345, serde_json::to_string(&frozen).unwrap()),
        (window, serde_json::to_string(&live).unwrap()),
    ];
    let read = read_rows_written_before(&url, "store_json_parts", &rows);
    assert_eq!(read.0, 1);
    assert_eq!(read.1.len(), 2, "the frozen chunk, then the live facts");
    assert_eq!(read.1[0].deployments, frozen.deployments);
    assert_eq!(read.1[1].deployments, live.deployments);
    assert_eq!(read.1[1].changes, facts.changes);
    assert_eq!(read.1[1].incidents, facts.incidents);
}
