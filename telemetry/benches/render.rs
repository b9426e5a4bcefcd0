//! Rendering `/metrics` for a busy process: every source with every outcome, 20 routes with
//! three statuses each, every histogram observed (issue: rendering stays under 1 ms); and what
//! recording one delivery costs.

use criterion::{Criterion, criterion_group, criterion_main};
use doraflow_telemetry::{BackendLabels, DeliveryLabels, RouteLabels, SourceLabels, Telemetry};

fn busy() -> Telemetry {
    let t = Telemetry::new();
    let sources = [
        "github",
        "gitlab",
        "pagerduty",
        "argocd",
        "cdevents",
        "flux",
    ];
    let statuses = [
        "accepted",
        "ignored",
        "dead_letter",
        "pong",
        "bad_signature",
        "missing_signature",
        "malformed_body",
        "missing_header",
        "log_unavailable",
    ];
    for source in sources {
        for status in statuses {
            t.ingest
                .deliveries
                .get_or_create(&DeliveryLabels { source, status })
                .inc_by(1000);
        }
        t.ingest
            .receive_duration
            .get_or_create(&SourceLabels { source })
            .observe(0.003);
        t.ingest
            .received_bytes
            .get_or_create(&SourceLabels { source })
            .inc_by(1 << 20);
        t.ingest
            .signature_failures
            .get_or_create(&SourceLabels { source })
            .inc();
    }
    for backend in ["embedded", "kafka"] {
        t.eventlog
            .append_duration
            .get_or_create(&BackendLabels { backend })
            .observe(0.002);
    }
    t.eventlog.fsync_duration.observe(0.001);
    t.eventlog.group_records.observe(12.0);
    t.store
        .write_duration
        .get_or_create(&BackendLabels {
            backend: "embedded",
        })
        .observe(0.0005);
    for route in 0..20 {
        for status in [200, 400, 404] {
            t.http_duration
                .get_or_create(&RouteLabels {
                    route: format!("/api/v1/route-{route}"),
                    status,
                })
                .observe(0.004);
        }
    }
    t
}

fn render(c: &mut Criterion) {
    let t = busy();
    let size = t.render().len();
    c.bench_function(&format!("render /metrics ({size} bytes)"), |b| {
        b.iter(|| t.render())
    });
}

/// What recording one delivery costs when it is on: its outcome, size and latency, its HTTP
/// request, and its append to the log (the embedded log's fsync is per group, not counted).
fn record_a_delivery(c: &mut Criterion) {
    let t = busy();
    c.bench_function("record one delivery", |b| {
        b.iter(|| {
            let source = "github";
            t.ingest
                .deliveries
                .get_or_create(&DeliveryLabels {
                    source,
                    status: "accepted",
                })
                .inc();
            t.ingest
                .received_bytes
                .get_or_create(&SourceLabels { source })
                .inc_by(2200);
            t.ingest
                .receive_duration
                .get_or_create(&SourceLabels { source })
                .observe(0.003);
            t.eventlog
                .append_duration
                .get_or_create(&BackendLabels {
                    backend: "embedded",
                })
                .observe(0.002);
            t.http_duration
                .get_or_create(&RouteLabels {
                    route: "/webhooks/github".to_owned(),
                    status: 202,
                })
                .observe(0.003);
        })
    });
}

criterion_group!(benches, render, record_a_delivery);
criterion_main!(benches);
