//! `doraflow migrate` and `doraflow ingest` on a real Kafka-compatible broker (`DORAFLOW_TEST_KAFKA`,
//! set by scripts/test): topics created once, signed deliveries acknowledged only after the broker
//! has them and read back from the topic whole, wrong signatures refused with nothing written.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use doraflow_eventlog::kafka::{KafkaLog, KafkaSettings};
use doraflow_eventlog::{Body, EventLog};
use support::free_port;
use support::scenario;

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
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{base}/readyz"))
        .send()
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "ingest never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }

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
