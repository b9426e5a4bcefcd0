//! The metric engine alone on one core: the year of activity normalized by the real ingest code,
//! encoded as the event log stores records, then (a) only decoded and (b) decoded, applied to the
//! engine and every service derived, as the aggregator does when it replays the log. Prints the
//! normalized events per second of both and their ratio (medians over rounds).

use std::time::Instant;

use anyhow::{Context, bail};
use chrono::Utc;
use doraflow_aggregator::consumer::{BATCH, READ_BATCH};
use doraflow_aggregator::engine::horizon::event_time;
use doraflow_aggregator::{Catalog, Engine, EngineState};
use doraflow_ingest::sources::{Normalized, github, pagerduty};
use doraflow_schemas::{Event, LogRecord, Outcome};
use doraflow_telemetry::process::status_kib;

use crate::activity::Request;

/// Normalizes the requests with the ingest code into log records, in event order; returns them
/// with the number of normalized events.
pub fn normalize(requests: &[Request]) -> anyhow::Result<(Vec<LogRecord>, u64)> {
    let mut records = Vec::with_capacity(requests.len());
    let mut events = 0u64;
    for (n, request) in requests.iter().enumerate() {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        };
        let (source, normalized) = if request.path.ends_with("github") {
            let kind = header("x-github-event").context("event header")?;
            (
                "github",
                github::normalize(kind, request.body.as_bytes(), Utc::now()),
            )
        } else {
            ("pagerduty", pagerduty::normalize(request.body.as_bytes()))
        };
        let Ok(Normalized::Events(list)) = normalized else {
            bail!("request {n} did not normalize to events");
        };
        events += list.len() as u64;
        let received_at = list.iter().map(event_time).max().unwrap_or_else(Utc::now);
        let record = LogRecord {
            delivery: format!("{source}:{n}"),
            source: source.into(),
            received_at,
            headers: Vec::new(),
            body: Default::default(),
            outcome: Outcome::Events { events: list },
        };
        records.push(record);
    }
    // In the order things happened, as a log written by live webhooks holds them.
    records.sort_by_key(|r| r.received_at);
    Ok((records, events))
}

/// The same, encoded as the event log stores records.
fn encode(requests: &[Request]) -> anyhow::Result<(Vec<Vec<u8>>, u64)> {
    let (records, events) = normalize(requests)?;
    let encoded = records
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((encoded, events))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU time this thread has run, in seconds (`CLOCK_THREAD_CPUTIME_ID`): unlike wall time it
/// leaves out the time other processes of a busy machine took the core. One system call, about
/// half a microsecond here; reading `/proc/thread-self/schedstat` instead (until session 30) took
/// 4.2 µs, and a round reads it some 12,000 times inside the engine's wall time (each part of 64
/// records is timed): about 50 ms, 2 % of the engine's time, that was the harness's own.
fn thread_cpu_secs() -> f64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// Minor page faults this thread has taken (`/proc/thread-self/stat`, the tenth field): memory
/// touched for the first time, or again after the allocator returned it to the kernel. Unlike
/// times, a count this machine's other tenants do not move (what each fault costs does: little on
/// a quiet host, more on a busy one; docs/benchmarks.md, session 30). Read a few hundred times a
/// round, outside the timed intervals.
fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|stat| {
            // The fields after the command name (which may hold spaces) in parentheses: the
            // state is the third field, the minor faults the tenth.
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Memory this process holds in bytes: its resident pages (`statm`, as every figure in
/// docs/benchmarks.md) plus the huge pages it took from the kernel's reserved pool
/// (`MIMALLOC_ALLOW_LARGE_OS_PAGES=1` with `vm.nr_hugepages` set), which the resident size leaves
/// out (docs/operations.md, "Huge pages").
fn resident_bytes() -> u64 {
    let resident = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    resident + status_kib(&status, "HugetlbPages:").unwrap_or(0) * 1024
}

/// Wall and on-CPU time spent in the closures it ran.
#[derive(Default)]
struct Stopwatch {
    wall: f64,
    cpu: f64,
}

impl Stopwatch {
    fn run<T>(&mut self, work: impl FnOnce() -> T) -> T {
        // The clocks are read outside each other's interval: the wall time holds only the work.
        let cpu = thread_cpu_secs();
        let started = Instant::now();
        let result = work();
        self.wall += started.elapsed().as_secs_f64();
        self.cpu += thread_cpu_secs() - cpu;
        result
    }
}

/// Runs the engine benchmark with `horizon` (a duration like `90d`); with `decode_first`, the
/// engine reads the whole log decoded beforehand instead of batch by batch as the consumer does;
/// with `odd_rounds_one_at_a_time`, odd rounds apply each record on its own instead of a batch
/// at a time.
pub fn run(
    requests: Vec<Request>,
    rounds: usize,
    horizon: &str,
    decode_first: bool,
    odd_rounds_one_at_a_time: bool,
) -> anyhow::Result<()> {
    let definitions = doraflow_schemas::config::DefinitionsConfig {
        horizon: horizon.to_string(),
        ..Default::default()
    }
    .compile()?;
    let started = Instant::now();
    let (encoded, events) = encode(&requests)?;
    drop(requests);
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    println!(
        "{} records, {events} normalized events, {:.0} MB encoded (prepared in {:.1} s)",
        encoded.len(),
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let mut decode_rates = Vec::new();
    let mut engine_rates = Vec::new();
    let services = {
        let mut names = std::collections::BTreeSet::new();
        for bytes in &encoded {
            let record: LogRecord = serde_json::from_slice(bytes)?;
            if let Outcome::Events { events } = &record.outcome
                && let Some(Event::Push(p)) = events.first()
            {
                names.insert(p.repo.clone());
            }
        }
        names.len().max(1)
    };
    let mut both_rates = Vec::new();
    let mut engine_cpu_rates = Vec::new();
    for round in 1..=rounds {
        // Decoding alone: the log's records into normalized events (kept, in the consumer's
        // batches, only for the engine to read afterwards with `--decode-first`).
        let decode_faults = minor_faults();
        let started = Instant::now();
        let mut decoded: Vec<Vec<LogRecord>> = Vec::new();
        let mut decoded_events = 0u64;
        for (n, bytes) in encoded.iter().enumerate() {
            let record: LogRecord = serde_json::from_slice(bytes)?;
            if let Outcome::Events { events } = &record.outcome {
                decoded_events += events.len() as u64;
            }
            if decode_first {
                if n % BATCH == 0 {
                    decoded.push(Vec::with_capacity(BATCH));
                }
                decoded.last_mut().expect("a batch").push(record);
            }
        }
        let decode = started.elapsed().as_secs_f64();
        let decode_faults = minor_faults() - decode_faults;

        // The engine: apply, move the horizon's cut after each batch as the consumer's replay
        // does, then as its catch-up ends, and derive every service. As the consumer does, the
        // records are decoded `READ_BATCH` at a time and each part applied right after (the
        // decoding is timed apart, not as the engine's); with `--decode-first`, the engine reads
        // the whole year decoded above.
        let resident_before = resident_bytes();
        let faults_before = minor_faults();
        let mut cut_faults = 0;
        let mut engine_time = Stopwatch::default();
        let mut advancing = Stopwatch::default();
        let mut batch_decoding = 0.0;
        let mut engine = engine_time.run(|| {
            Engine::new(
                EngineState::default(),
                Catalog::default(),
                definitions.clone(),
            )
        });
        let one_at_a_time = odd_rounds_one_at_a_time && round % 2 == 1;
        let apply = |engine: &mut Engine, records: Vec<LogRecord>| {
            if one_at_a_time {
                for record in records {
                    engine.apply_owned(record);
                }
            } else {
                engine.apply_batch(records, |_| true);
            }
        };
        let mut decoded = decoded.into_iter();
        for batch in encoded.chunks(BATCH) {
            if decode_first {
                let batch = decoded.next().expect("one decoded batch per chunk");
                engine_time.run(|| apply(&mut engine, batch));
            } else {
                for part in batch.chunks(READ_BATCH) {
                    let started = Instant::now();
                    let part: Vec<LogRecord> = part
                        .iter()
                        .map(|bytes| serde_json::from_slice(bytes))
                        .collect::<Result<_, _>>()?;
                    batch_decoding += started.elapsed().as_secs_f64();
                    engine_time.run(|| apply(&mut engine, part));
                }
            }
            let faults = minor_faults();
            engine_time.run(|| advancing.run(|| engine.advance_horizon_replaying()));
            cut_faults += minor_faults() - faults;
        }
        // As the consumer's catch-up ends: the cut moves as far as live operation lets it.
        let faults = minor_faults();
        engine_time.run(|| advancing.run(|| engine.advance_horizon()));
        cut_faults += minor_faults() - faults;
        let replay_faults = minor_faults() - faults_before - cut_faults;
        let applied = engine_time.wall;
        let faults = minor_faults();
        let facts = engine_time.run(|| {
            let mut facts = 0usize;
            for service in engine.take_dirty() {
                facts += engine.facts(&service).deployments.len()
                    + engine
                        .frozen_facts(&service)
                        .iter()
                        .map(|f| f.deployments.len())
                        .sum::<usize>();
            }
            facts
        });
        let final_faults = minor_faults() - faults;
        let (total, total_cpu) = (engine_time.wall, engine_time.cpu);
        let (advancing, advancing_cpu) = (advancing.wall, advancing.cpu);
        // Decoding as part of the replay: in batches between the engine's work, or alone.
        let pipeline_decode = if decode_first { decode } else { batch_decoding };
        let grown = resident_bytes().saturating_sub(resident_before);
        let state = engine.state();
        if decoded_events != events || state.horizon.too_late_total != 0 || facts == 0 {
            bail!(
                "decoded {decoded_events} of {events} events, {} too late, {facts} deployments",
                state.horizon.too_late_total
            );
        }
        let pushes: usize = state
            .inputs
            .repos
            .values()
            .map(|r| r.all_pushes().count())
            .sum();
        println!(
            "round {round}: decode {:.0} events/s ({decode:.2} s); engine {:.0} events/s \
             ({total:.2} s, of which moving the cut {advancing:.2} s, the final derive {:.2} s); decode + engine {:.0} events/s; \
             {facts} deployments; on the CPU: engine {:.0} events/s ({total_cpu:.2} s, of which \
             moving the cut {advancing_cpu:.2} s); working state at the end: {pushes} pushes, {} attempts, {} \
             incidents, cut {:?}; resident memory grew {:.0} MB ({:.0} KB a service); page faults: \
             {replay_faults} applying (with the parts' decoding; decoding alone {decode_faults}), \
             {cut_faults} moving the cut, {final_faults} the final derive{}",
            events as f64 / decode,
            events as f64 / total,
            total - applied,
            events as f64 / (pipeline_decode + total),
            events as f64 / total_cpu,
            state.inputs.deployments.len(),
            state.inputs.incidents.len(),
            state.horizon.cut,
            grown as f64 / 1e6,
            grown as f64 / 1e3 / services as f64,
            if one_at_a_time {
                "; records applied one at a time"
            } else {
                ""
            },
        );
        drop(engine);
        decode_rates.push(events as f64 / decode);
        engine_rates.push(events as f64 / total);
        engine_cpu_rates.push(events as f64 / total_cpu);
        both_rates.push(events as f64 / (pipeline_decode + total));
    }
    let (decode, engine) = (median(decode_rates), median(engine_rates));
    println!(
        "median: decode {decode:.0} events/s, engine {engine:.0} events/s (ratio engine/decode \
         {:.2}), decode + engine {:.0} events/s; engine on the CPU {:.0} events/s",
        engine / decode,
        median(both_rates),
        median(engine_cpu_rates)
    );
    Ok(())
}
