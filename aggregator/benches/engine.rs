//! The metric engine on a year of one busy service (four commits a day, six deployments a week,
//! an incident every ten days): folding events in, deriving the facts from scratch, and
//! summarizing them for a 30-day and a 365-day window.

use chrono::{Duration, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use doraflow_aggregator::consumer::READ_BATCH;
use doraflow_aggregator::summary::ledger::Ledger;
use doraflow_aggregator::summary::rollup::{Rollups, ScopeKey};
use doraflow_aggregator::summary::tally::Tally;
use doraflow_aggregator::summary::{self, Counters, Edition, Query};
use doraflow_aggregator::{Catalog, Engine, EngineState};
use doraflow_schemas::config::Definitions;
use doraflow_schemas::event::{
    Commit, DeploymentState, DeploymentUpdate, IncidentChange, IncidentUpdate, Push,
};
use doraflow_schemas::{Event, LogRecord, Outcome};

fn year() -> Vec<LogRecord> {
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut records = Vec::new();
    let mut head = format!("{:040x}", 0);
    let record = |key: String, event: Event| LogRecord {
        delivery: key,
        source: "github".into(),
        received_at: start,
        headers: Vec::new(),
        body: Default::default(),
        outcome: Outcome::Events {
            events: vec![event],
        },
    };
    for day in 0..365i64 {
        let date = start + Duration::days(day);
        let commits: Vec<Commit> = (0..4)
            .map(|c| Commit {
                sha: format!("{:040x}", day * 10 + c + 1).into(),
                timestamp: date + Duration::hours(8 + c),
                title: "feat: change".into(),
                files: Vec::new(),
            })
            .collect();
        let after = commits[3].sha.to_string();
        records.push(record(
            format!("push-{day}"),
            Event::Push(Push {
                repo: "acme/app".into(),
                branch: "main".into(),
                default_branch: "main".into(),
                before: head.clone().into(),
                after: after.clone().into(),
                forced: false,
                pushed_at: date + Duration::hours(11),
                commits,
                commits_not_listed: 0,
            }),
        ));
        head = after.clone();
        if day % 7 != 6 {
            records.push(record(
                format!("deploy-{day}"),
                Event::Deployment(DeploymentUpdate {
                    id: day.to_string(),
                    repo: Some("acme/app".into()),
                    service_hint: None,
                    environment: "production".into(),
                    revision: after,
                    state: DeploymentState::Success,
                    at: date + Duration::hours(15),
                    tier: None,
                    app: None,
                }),
            ));
        }
        if day % 10 == 3 {
            for (change, hours) in [
                (IncidentChange::Triggered, 16),
                (IncidentChange::Resolved, 18),
            ] {
                records.push(record(
                    format!("incident-{day}-{hours}"),
                    Event::Incident(IncidentUpdate {
                        id: format!("Q{day}"),
                        service_id: None,
                        service_name: Some("acme/app".into()),
                        title: "Elevated errors".into(),
                        change,
                        occurred_at: date + Duration::hours(hours),
                        created_at: None,
                    }),
                ));
            }
        }
    }
    records
}

fn benches(c: &mut Criterion) {
    let records = year();
    let catalog = Catalog::new(&[]).unwrap();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("apply_a_year", |b| {
        // The consumer hands its records over, a read batch at a time (`apply_batch`): copying
        // them is setup.
        b.iter_batched(
            || records.clone(),
            |records| {
                let mut engine = Engine::new(
                    EngineState::default(),
                    catalog.clone(),
                    Definitions::default(),
                );
                let mut records = records.into_iter();
                loop {
                    let batch: Vec<LogRecord> = records.by_ref().take(READ_BATCH).collect();
                    if batch.is_empty() {
                        break;
                    }
                    engine.apply_batch(batch, |_| true);
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    let mut engine = Engine::new(
        EngineState::default(),
        catalog.clone(),
        Definitions::default(),
    );
    for r in &records {
        engine.apply(r);
    }
    group.bench_function("derive_a_year_of_one_service", |b| {
        b.iter(|| engine.derive("acme/app"))
    });
    group.finish();

    let facts = engine.derive("acme/app");
    let end = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut group = c.benchmark_group("summary");
    for days in [30, 365] {
        let query = Query {
            from: end - Duration::days(days),
            to: end,
            environment: None,
            tz: chrono_tz::Tz::UTC,
            edition: Edition::Dora2025,
        };
        // Straight from the facts (reduces them to a ledger first): what tests use.
        group.bench_function(format!("summarize_{days}_days"), |b| {
            b.iter(|| summary::summarize([&facts], None, Counters::default(), &query))
        });
        // What the API does: a tally of the window from the service's ledger, through rollups
        // (warm: whole days and months cached) and straight over the ledger (ragged edges).
        let ledger = Ledger::of([&facts], false);
        let mut rollups = Rollups::default();
        group.bench_function(format!("rollup_{days}_days"), |b| {
            b.iter(|| {
                let tally = rollups.tally(
                    ScopeKey::Service("acme/app".into()),
                    None,
                    chrono_tz::Tz::UTC,
                    &[&ledger],
                    query.from.timestamp_millis(),
                    query.to.timestamp_millis(),
                );
                summary::summary_of(tally, Counters::default(), &query)
            })
        });
        group.bench_function(format!("ledger_{days}_days"), |b| {
            b.iter(|| {
                let mut tally = Tally::default();
                tally.add_ledger(
                    &ledger,
                    query.from.timestamp_millis(),
                    query.to.timestamp_millis(),
                    &summary::selection(&query),
                );
                summary::summary_of(tally, Counters::default(), &query)
            })
        });
    }
    group.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
