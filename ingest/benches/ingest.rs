//! Hot paths of a delivery before the log: signature verification, normalization, and framing a
//! record, on the captured GitHub push fixture and a three-commit push.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use doraflow_ingest::signature;
use doraflow_ingest::sources::{Normalized, github};
use doraflow_schemas::{LogRecord, Outcome};

fn push_body() -> Vec<u8> {
    let commits: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"id":"{i:040x}","tree_id":"{i:040x}","distinct":true,"message":"feat: change {i}\n\nLonger text.","timestamp":"2026-01-01T10:0{i}:00+02:00","url":"https://github.com/acme/app/commit/{i:040x}","author":{{"name":"Dev","email":"dev@acme.test","username":"dev"}},"committer":{{"name":"Dev","email":"dev@acme.test","username":"dev"}},"added":[],"removed":[],"modified":["src/lib.rs"]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"ref":"refs/heads/main","before":"{:040x}","after":"{:040x}","created":false,"deleted":false,"forced":false,"commits":[{}],"head_commit":{},"repository":{{"id":1,"name":"app","full_name":"acme/app","default_branch":"main","owner":{{"login":"acme"}}}},"pusher":{{"name":"dev"}},"sender":{{"login":"dev"}}}}"#,
        0,
        2,
        commits.join(","),
        commits[2]
    )
    .into_bytes()
}

fn benches(c: &mut Criterion) {
    let body = push_body();
    let secrets = vec!["old-secret".to_string(), "s3cret".to_string()];
    let header = format!("sha256={}", signature::sign_hex(b"s3cret", &body));
    let now = chrono::Utc::now();

    let mut group = c.benchmark_group("delivery");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("verify_github_two_secrets", |b| {
        b.iter(|| signature::verify_github(&secrets, Some(&header), &body).unwrap())
    });
    group.bench_function("normalize_push", |b| {
        b.iter(|| github::normalize("push", &body, now).unwrap())
    });
    let Normalized::Events(events) = github::normalize("push", &body, now).unwrap() else {
        panic!("a push normalizes to events")
    };
    let record = LogRecord {
        delivery: "github:1:0000-1111".into(),
        source: "github".into(),
        received_at: now,
        headers: vec![("x-github-event".into(), "push".into()); 8],
        body: body.clone().into(),
        outcome: Outcome::Events { events },
    };
    group.bench_function("encode_record", |b| {
        b.iter(|| doraflow_eventlog::record::encode(&record))
    });
    let frame = doraflow_eventlog::record::encode(&record);
    group.bench_function("decode_record_events_only", |b| {
        b.iter(|| doraflow_eventlog::record::decode(&frame, doraflow_eventlog::Body::Skip))
    });
    group.finish();
}

criterion_group!(ingest, benches);
criterion_main!(ingest);
