//! librdkafka's statistics as Prometheus metrics: the latest snapshot of each Kafka client (by
//! role: `producer`, `reader`, `group`), encoded on each scrape. Labels: `client` (the role),
//! `broker` (the broker's node id) and `partition`, all bounded by the deployment.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use rdkafka::Statistics;

use crate::names;

/// The latest statistics per client role.
#[derive(Debug, Default)]
pub struct KafkaStatistics {
    latest: Mutex<BTreeMap<&'static str, Statistics>>,
}

impl KafkaStatistics {
    /// Keeps a client's newest snapshot.
    pub fn observe(&self, client: &'static str, statistics: Statistics) {
        self.latest
            .lock()
            .expect("statistics lock")
            .insert(client, statistics);
    }
}

fn gauge<L: prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(L, f64)],
) -> std::fmt::Result {
    if values.is_empty() {
        return Ok(());
    }
    let mut family =
        encoder.encode_descriptor(name, help, None, ConstGauge::new(0.0).metric_type())?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter<L: prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(L, u64)],
) -> std::fmt::Result {
    if values.is_empty() {
        return Ok(());
    }
    let mut family =
        encoder.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for (labels, value) in values {
        ConstCounter::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

type Client = [(&'static str, String); 1];
type Broker = [(&'static str, String); 2];

impl Collector for KafkaStatistics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let latest = self.latest.lock().expect("statistics lock");
        let client = |role: &str| -> Client { [("client", role.to_string())] };
        let mut queued: Vec<(Client, f64)> = Vec::new();
        let (mut sent, mut received, mut sent_bytes, mut received_bytes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut up, mut rtt) = (Vec::<(Broker, f64)>::new(), Vec::<(Broker, f64)>::new());
        let (mut errors, mut timeouts) = (Vec::<(Broker, u64)>::new(), Vec::<(Broker, u64)>::new());
        let mut lag: Vec<([(&'static str, String); 3], f64)> = Vec::new();
        for (role, s) in latest.iter() {
            queued.push((client(role), s.msg_cnt as f64));
            sent.push((client(role), s.txmsgs.max(0) as u64));
            received.push((client(role), s.rxmsgs.max(0) as u64));
            sent_bytes.push((client(role), s.tx_bytes.max(0) as u64));
            received_bytes.push((client(role), s.rx_bytes.max(0) as u64));
            for b in s.brokers.values().filter(|b| b.nodeid >= 0) {
                let labels: Broker = [
                    ("client", role.to_string()),
                    ("broker", b.nodeid.to_string()),
                ];
                up.push((labels.clone(), f64::from(u8::from(b.state == "UP"))));
                if let Some(window) = &b.rtt {
                    rtt.push((labels.clone(), window.avg as f64 / 1e6));
                }
                errors.push((labels.clone(), b.txerrs + b.rxerrs));
                timeouts.push((labels, b.req_timeouts));
            }
            for t in s.topics.values() {
                for (p, partition) in &t.partitions {
                    if *p >= 0 && partition.consumer_lag >= 0 {
                        lag.push((
                            [
                                ("client", role.to_string()),
                                ("topic", t.topic.clone()),
                                ("partition", p.to_string()),
                            ],
                            partition.consumer_lag as f64,
                        ));
                    }
                }
            }
        }
        gauge(
            &mut encoder,
            names::KAFKA_MESSAGES_QUEUED,
            "Messages waiting in the Kafka client's queues.",
            &queued,
        )?;
        counter(
            &mut encoder,
            names::KAFKA_MESSAGES_SENT,
            "Messages the Kafka client sent to brokers.",
            &sent,
        )?;
        counter(
            &mut encoder,
            names::KAFKA_MESSAGES_RECEIVED,
            "Messages the Kafka client received from brokers.",
            &received,
        )?;
        counter(
            &mut encoder,
            names::KAFKA_SENT,
            "Bytes the Kafka client sent to brokers.",
            &sent_bytes,
        )?;
        counter(
            &mut encoder,
            names::KAFKA_RECEIVED,
            "Bytes the Kafka client received from brokers.",
            &received_bytes,
        )?;
        gauge(
            &mut encoder,
            names::KAFKA_BROKER_UP,
            "1 when the connection to the broker is up.",
            &up,
        )?;
        gauge(
            &mut encoder,
            names::KAFKA_BROKER_RTT,
            "Average round-trip time to the broker over the last statistics window.",
            &rtt,
        )?;
        counter(
            &mut encoder,
            names::KAFKA_BROKER_ERRORS,
            "Send and receive errors on the broker connection.",
            &errors,
        )?;
        counter(
            &mut encoder,
            names::KAFKA_BROKER_TIMEOUTS,
            "Requests to the broker that timed out.",
            &timeouts,
        )?;
        gauge(
            &mut encoder,
            names::KAFKA_CONSUMER_LAG,
            "Records between the reader's position and the partition's high watermark.",
            &lag,
        )
    }
}
