//! The distributed roles on a real Kafka-compatible broker and a real ClickHouse server
//! (`DORAFLOW_TEST_KAFKA`, `DORAFLOW_TEST_CLICKHOUSE`, set by scripts/test):
//! - `migrate` and `ingest`: topics created once, signed deliveries acknowledged only after the
//!   broker has them and read back from the topic whole, wrong signatures refused;
//! - the month of the end-to-end test sent to `ingest`, aggregated by `aggregate` into ClickHouse
//!   and read from `api`, gives the answers the embedded `serve` gives.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doraflow_eventlog::kafka::{KafkaLog, KafkaSettings};
use doraflow_eventlog::{Body, EventLog};
use support::scenario::{self, DAYS};
use support::{api_shape, free_port, mismatches, send_all};

/// A child process killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_ready(client: &reqwest::blocking::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "{base} never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(client: &reqwest::blocking::Client, url: &str) -> serde_json::Value {
    client.get(url).send().unwrap().json().unwrap()
}

#[test]
fn the_month_through_kafka_and_clickhouse_gives_the_embedded_answers() {
    let (Ok(brokers), Ok(clickhouse)) = (
        std::env::var("DORAFLOW_TEST_KAFKA"),
        std::env::var("DORAFLOW_TEST_CLICKHOUSE"),
    ) else {
        eprintln!(
            "DORAFLOW_TEST_KAFKA or DORAFLOW_TEST_CLICKHOUSE is not set: skipped (scripts/test sets them)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ingest_listen = format!("127.0.0.1:{}", free_port());
    let api_listen = format!("127.0.0.1:{}", free_port());
    let id = std::process::id();
    let config = dir.path().join("doraflow.toml");
    let base_config = scenario::config_toml(&ingest_listen, "");
    std::fs::write(
        &config,
        base_config.replacen(
            "[sources.github]",
            &format!(
                "[storage]\nkafka = {{ brokers = \"{brokers}\", topic_prefix = \"month-{id}\" }}\n\
                 clickhouse = {{ url = \"{clickhouse}\", database = \"month_{id}\" }}\n\n[sources.github]"
            ),
            1,
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_doraflow");
    let config_arg = config.to_str().unwrap();
    let out = Command::new(bin)
        .args(["--config", config_arg, "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spawn = |args: &[&str], log: &str| {
        Child(
            Command::new(bin)
                .args(["--config", config_arg])
                .args(args)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join(log)).unwrap())
                .spawn()
                .unwrap(),
        )
    };
    let _ingest = spawn(&["ingest"], "ingest.log");
    let data = dir.path().join("aggregator-data");
    let _aggregate = spawn(
        &["aggregate", "--data-dir", data.to_str().unwrap()],
        "aggregate.log",
    );
    let _api = spawn(&["api", "--listen", &api_listen], "api.log");
    let client = reqwest::blocking::Client::new();
    let ingest_base = format!("http://{ingest_listen}");
    let api_base = format!("http://{api_listen}");
    wait_ready(&client, &ingest_base);
    wait_ready(&client, &api_base);

    let month = scenario::month(7);
    let statuses = send_all(&ingest_base, &month.deliveries, 8);
    assert!(statuses.iter().all(|s| *s == 202), "not all 202");

    let (from, to) = (
        scenario::start(),
        scenario::start() + chrono::Duration::days(DAYS),
    );
    let f = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let q = format!("from={}&to={}", f(from), f(to));
    let services = ["checkout", "billing", "search"];
    let expected_org = api_shape(scenario::expected(&month.model, &services, from, to));
    // Wait until the organisation's answer is complete (the aggregator has caught up and written).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let org = get(&client, &format!("{api_base}/api/v1/dora?{q}"));
        let mut problems = Vec::new();
        mismatches("org", &org, &expected_org, &mut problems);
        problems.retain(|p| !p.contains("late_corrections"));
        if problems.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let log = KafkaLog::connect(&KafkaSettings {
                brokers: brokers.clone(),
                topic_prefix: format!("month-{id}"),
            })
            .unwrap();
            let records = log.read_from(0, 10_000, Body::Skip).unwrap();
            let distinct: std::collections::BTreeSet<&str> =
                records.iter().map(|r| r.record.delivery.as_str()).collect();
            eprintln!(
                "the topic holds {} records ({} distinct deliveries), end {}",
                records.len(),
                distinct.len(),
                *log.durable_end().borrow()
            );
            for d in &month.deliveries {
                let h = |n: &str| {
                    d.headers
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.clone())
                };
                let key = match (h("x-github-delivery"), h("x-webhook-id")) {
                    (Some(g), _) => format!("github:{}:{g}", h("x-github-hook-id").unwrap()),
                    (None, Some(w)) => format!("pagerduty:{w}"),
                    _ => continue,
                };
                if !distinct.contains(key.as_str()) {
                    eprintln!("missing {key} {}", &d.body[..d.body.len().min(150)]);
                }
            }
            let offsets: Vec<u64> = records.iter().map(|r| r.next_offset - 1).collect();
            let gaps: Vec<_> = offsets.windows(2).filter(|w| w[1] != w[0] + 1).collect();
            eprintln!("read offsets gaps: {gaps:?}, first {:?}", offsets.first());
        }
        assert!(
            Instant::now() < deadline,
            "the API never reached the expected answer ({} deliveries sent):\n{}\naggregate log:\n{}",
            month.deliveries.len(),
            problems.join("\n"),
            std::fs::read_to_string(dir.path().join("aggregate.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let scopes: Vec<(&str, Vec<&str>)> = vec![
        ("service=checkout", vec!["checkout"]),
        ("service=billing", vec!["billing"]),
        ("service=search", vec!["search"]),
        ("team=payments", vec!["checkout", "billing"]),
        ("team=discovery", vec!["search"]),
    ];
    let mut problems = Vec::new();
    for (scope, services) in scopes {
        let answer = get(&client, &format!("{api_base}/api/v1/dora?{scope}&{q}"));
        let mut expected = api_shape(scenario::expected(&month.model, &services, from, to));
        expected["data_quality"]
            .as_object_mut()
            .unwrap()
            .remove("late_corrections");
        mismatches(&format!("[{scope}]"), &answer, &expected, &mut problems);
    }
    assert!(problems.is_empty(), "mismatches:\n{}", problems.join("\n"));
    let deployments = get(
        &client,
        &format!("{api_base}/api/v1/deployments?service=checkout&{q}&limit=5"),
    );
    assert_eq!(
        deployments["items"].as_array().unwrap().len(),
        5,
        "{deployments}"
    );
}

#[test]
fn ingest_writes_acknowledged_deliveries_to_kafka() {
    let Ok(brokers) = std::env::var("DORAFLOW_TEST_KAFKA") else {
        eprintln!(
            "DORAFLOW_TEST_KAFKA is not set: skipped (scripts/test starts tansu and sets it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let prefix = format!("roles-{}", std::process::id());
    let config = dir.path().join("doraflow.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{listen}\"\n[storage]\nkafka = {{ brokers = \"{brokers}\", topic_prefix = \"{prefix}\" }}\n\
             [sources.github]\nsecrets = [\"{}\"]\n[sources.pagerduty]\nsecrets = [\"{}\"]\n",
            scenario::GITHUB_SECRET,
            scenario::PAGERDUTY_SECRET
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_doraflow");
    let migrate = |expect: &str| {
        let out = Command::new(bin)
            .args(["--config", config.to_str().unwrap(), "migrate"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(expect),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    migrate("created");
    migrate("already exists");

    let mut ingest = Command::new(bin)
        .args(["--config", config.to_str().unwrap(), "ingest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    let client = reqwest::blocking::Client::new();
    wait_ready(&client, &base);

    let month = scenario::month(3);
    let sent: Vec<&scenario::Delivery> = month.deliveries.iter().take(40).collect();
    let mut accepted = Vec::new();
    for d in &sent {
        let status = support::send_one(&client, &base, d);
        assert_eq!(status, 202);
        accepted.push(d.body.clone());
    }
    // A wrong signature is refused and writes nothing.
    let mut forged = sent[0].clone();
    forged.body.push(' ');
    assert_eq!(support::send_one(&client, &base, &forged), 401);
    ingest.kill().unwrap();
    let _ = ingest.wait();

    let log = Arc::new(
        KafkaLog::connect(&KafkaSettings {
            brokers,
            topic_prefix: prefix,
        })
        .unwrap(),
    );
    let end = *log.durable_end().borrow();
    let records = log.read_from(0, 1000, Body::Keep).unwrap();
    assert_eq!(end as usize, records.len());
    let bodies: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.record.body.to_vec()).unwrap())
        .collect();
    assert_eq!(bodies, accepted);
}
