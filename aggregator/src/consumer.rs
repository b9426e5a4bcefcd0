//! Drives the engine from the event log: restore the last checkpoint, replay the log from its
//! offset, then follow the log, re-deriving the services each batch touched and publishing them
//! to the store. Checkpoints (engine state, counters, offset) are written atomically every few
//! seconds and at shutdown, so a restart replays little.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use doraflow_eventlog::{Body, EventLog};
use doraflow_schemas::config::Definitions;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::clickhouse::facts::{FactWriter, PublishedService, PublishedState};
use crate::engine::{Engine, EngineState};
use crate::partitioning::Ownership;
use crate::store::{FactStore, StoreCounters};

/// Records applied between two looks at the horizon's cut while replaying the log.
pub const BATCH: usize = 5_000;
/// Records read (and so decoded) from the log at a time: each is applied while what decoding it
/// wrote is still in the core's caches. Decoding 5,000 ahead left the first ones' strings out of
/// the caches by the time the engine read them (docs/benchmarks.md, session 26).
pub const READ_BATCH: usize = 64;
/// Longest time between a record being applied and its facts being published.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(50);
/// Longest time between facts published and their write to the store's writer (ClickHouse):
/// each write carries every service's whole live facts, so writes are coalesced; an API process
/// reads them every 200 ms, which keeps freshness under a second.
pub const WRITE_EVERY: Duration = Duration::from_millis(500);
/// Checkpoint file format version.
const CHECKPOINT_VERSION: u32 = 5;

/// What a checkpoint holds.
#[derive(Deserialize)]
struct Checkpoint {
    version: u32,
    offset: u64,
    state: EngineState,
    counters: StoreCounters,
}

/// The same, borrowed, for writing without cloning the state.
#[derive(Serialize)]
struct CheckpointRef<'a> {
    version: u32,
    offset: u64,
    state: &'a EngineState,
    counters: &'a StoreCounters,
}

/// The aggregator loop over one log.
pub struct Consumer {
    engine: Engine,
    log: Arc<dyn EventLog>,
    store: Arc<RwLock<FactStore>>,
    checkpoint_path: PathBuf,
    checkpoint_every: Duration,
    offset: u64,
    /// Where published facts also go (the distributed deployment's ClickHouse).
    writer: Option<FactWriter>,
    /// The services this consumer publishes, when it reads one partition of several.
    ownership: Option<Ownership>,
    /// Told the offset up to which the writer has confirmed the facts.
    on_written: Option<Box<dyn FnMut(u64) + Send>>,
    /// Services published but not written yet, and when the writer last wrote.
    unwritten: std::collections::BTreeSet<String>,
    written_offset: Option<u64>,
    last_write: Instant,
    /// Duplicates already counted in the process's metrics.
    duplicates_reported: u64,
}

/// The longest wait between two attempts to write to an unavailable store.
const WRITE_RETRY_MAX: Duration = Duration::from_secs(2);

impl Consumer {
    /// Restores from `<dir>/checkpoint.json` if present and returns the consumer with a store
    /// holding every restored service's facts.
    pub fn restore(
        dir: &Path,
        log: Arc<dyn EventLog>,
        catalog: Catalog,
        definitions: Definitions,
        checkpoint_every: Duration,
    ) -> (Self, Arc<RwLock<FactStore>>) {
        let checkpoint_path = dir.join("checkpoint.json");
        let restored = std::fs::File::open(&checkpoint_path)
            .ok()
            .and_then(|file| match serde_json::from_reader::<_, Checkpoint>(std::io::BufReader::new(file)) {
                Ok(c) if c.version == CHECKPOINT_VERSION => Some(c),
                Ok(_) => {
                    tracing::warn!("checkpoint of another version ignored: replaying the whole log");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable checkpoint ignored: replaying the whole log");
                    None
                }
            })
            .filter(|c| {
                let end = *log.durable_end().borrow();
                let fits = c.offset <= end;
                if !fits {
                    tracing::warn!(offset = c.offset, end, "checkpoint is past the log end: replaying the whole log");
                }
                fits
            });
        let (offset, state, counters) = match restored {
            Some(c) => (c.offset, c.state, c.counters),
            None => (0, EngineState::default(), StoreCounters::default()),
        };
        tracing::info!(offset, "aggregator starting");
        let engine = Engine::new(state, catalog, definitions);
        let store = Arc::new(RwLock::new(FactStore::with_counters(counters)));
        let mut consumer = Self {
            engine,
            log,
            store: store.clone(),
            checkpoint_path,
            checkpoint_every,
            offset,
            writer: None,
            ownership: None,
            on_written: None,
            unwritten: Default::default(),
            written_offset: None,
            last_write: Instant::now(),
            duplicates_reported: 0,
        };
        consumer.publish_dirty();
        (consumer, store)
    }

    /// Publishes only the services `ownership` owns, and counts the organisation's totals only
    /// for records at home here (one aggregator of several, each reading a partition). Call
    /// before [`Self::with_writer`].
    pub fn with_ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = Some(ownership);
        self
    }

    /// Calls `confirmed` with the offset up to which the writer has the facts, after each write.
    pub fn on_written(mut self, confirmed: impl FnMut(u64) + Send + 'static) -> Self {
        self.on_written = Some(Box::new(confirmed));
        self
    }

    /// Also writes every publish to ClickHouse; everything restored is written first.
    pub fn with_writer(mut self, writer: FactWriter) -> Self {
        self.writer = Some(writer);
        let services: Vec<String> = {
            let store = self.store.read().expect("store lock");
            store.service_names().cloned().collect()
        };
        self.publish_counters();
        let all = self.published(services);
        self.write_through(&all);
        self.written_offset = Some(self.offset);
        self.last_write = Instant::now();
        self
    }

    fn owns(&self, service: &str) -> bool {
        self.ownership.as_ref().is_none_or(|o| o.owns(service))
    }

    /// The services' facts as published: live and frozen.
    fn published(&mut self, services: impl IntoIterator<Item = String>) -> Vec<PublishedService> {
        let owned: Vec<String> = services.into_iter().filter(|s| self.owns(s)).collect();
        owned
            .into_iter()
            .map(|service| {
                let facts = self.engine.facts(&service);
                let frozen = self.engine.frozen_facts(&service);
                (service, facts, frozen)
            })
            .collect()
    }

    /// Writes published services to the store's writer, retrying until it succeeds: the
    /// aggregator waits out an outage rather than lose or skip anything.
    fn write_through(&mut self, derived: &[PublishedService]) {
        let Some(writer) = self.writer.as_mut() else {
            return;
        };
        let state = PublishedState {
            offset: self.offset,
            counters: self.store.read().expect("store lock").counters().clone(),
        };
        let mut wait = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let written = writer.write(derived, &state, self.offset);
            store_write_took("clickhouse", started);
            match written {
                Ok(()) => {
                    if let Some(confirmed) = self.on_written.as_mut() {
                        confirmed(self.offset);
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot write facts to the store: retrying");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(WRITE_RETRY_MAX);
                }
            }
        }
    }

    /// Applies every durable record not yet applied, without re-deriving; returns how many.
    fn apply_available(&mut self) -> usize {
        self.apply_for(None).0
    }

    /// Applies durable records not yet applied, for at most `budget` when one is given (records
    /// that keep arriving would otherwise keep the loop from ever publishing); returns how many,
    /// and whether it stopped with records perhaps left.
    fn apply_for(&mut self, budget: Option<Duration>) -> (usize, bool) {
        let started = Instant::now();
        let mut applied = 0;
        let mut since_cut = 0;
        let more = loop {
            if budget.is_some_and(|b| started.elapsed() >= b) {
                break true;
            }
            let records = match self.log.read_from(self.offset, READ_BATCH, Body::Skip) {
                Ok(records) => records,
                Err(e) => {
                    tracing::error!(error = %e, offset = self.offset, "reading the event log failed");
                    break false;
                }
            };
            let Some(last) = records.last() else {
                break false;
            };
            self.offset = last.next_offset;
            if let Some(t) = doraflow_telemetry::recording() {
                t.aggregator.records.inc_by(records.len() as u64);
            }
            applied += records.len();
            since_cut += records.len();
            // Read from disk or Kafka, a record is this reader's alone and moves into the
            // engine; one the embedded log still holds among its recent ones is copied.
            let records = records
                .into_iter()
                .map(|read| Arc::unwrap_or_clone(read.record))
                .collect();
            let ownership = self.ownership.as_ref();
            self.engine
                .apply_batch(records, |r| ownership.is_none_or(|o| o.is_home(r)));
            // A long replay keeps the working state bounded too (in whole-horizon steps: each
            // step derives every service).
            if since_cut >= BATCH {
                self.engine.advance_horizon_replaying();
                since_cut = 0;
            }
        };
        if since_cut > 0 {
            self.engine.advance_horizon_replaying();
        }
        (applied, more)
    }

    /// Applies, publishes and writes everything durable now; returns how many records were
    /// applied.
    pub fn catch_up(&mut self) -> usize {
        let applied = self.apply_available();
        self.engine.advance_horizon();
        self.publish_dirty();
        self.flush_writes(true);
        applied
    }

    /// Writes the services published since the last write (with the counters and offset), when
    /// [`WRITE_EVERY`] has passed or `now`.
    fn flush_writes(&mut self, now: bool) {
        if self.writer.is_none() {
            self.unwritten.clear();
            return;
        }
        let due = now || self.last_write.elapsed() >= WRITE_EVERY;
        if !due || (self.unwritten.is_empty() && self.written_offset == Some(self.offset)) {
            return;
        }
        let services = std::mem::take(&mut self.unwritten);
        let derived = self.published(services);
        self.write_through(&derived);
        self.written_offset = Some(self.offset);
        self.last_write = Instant::now();
    }

    /// Re-derives the services touched since the last call and publishes them, with the
    /// counters and the offset they reflect, in one store update. With a writer (the
    /// distributed deployment, where no API reads this process's store) the services are only
    /// marked for the next write and derived then, at most every [`WRITE_EVERY`]: deriving a
    /// busy partition's services every [`PUBLISH_EVERY`] for a store nobody reads took most of
    /// the aggregator's time under load.
    fn publish_dirty(&mut self) {
        let dirty = self.engine.take_dirty();
        if self.writer.is_some() {
            self.unwritten.extend(dirty);
            self.publish_counters();
            self.flush_writes(false);
            return;
        }
        let derived = self.published(dirty);
        {
            let started = Instant::now();
            let mut store = self.store.write().expect("store lock");
            for (service, facts, frozen) in &derived {
                store.publish(service.clone(), facts.clone(), frozen.clone());
            }
            store_write_took("embedded", started);
        }
        self.publish_counters();
        self.unwritten
            .extend(derived.into_iter().map(|(service, _, _)| service));
        self.flush_writes(false);
    }

    /// Puts the engine's counters (those of owned services) and the offset into the store.
    fn publish_counters(&mut self) {
        let state = self.engine.state();
        let owned = |map: &std::collections::BTreeMap<String, u64>| {
            map.iter()
                .filter(|(s, _)| self.owns(s))
                .map(|(s, n)| (s.clone(), *n))
                .collect()
        };
        let duplicates: std::collections::BTreeMap<String, u64> = owned(&state.duplicates);
        let duplicates_owned: u64 = duplicates.values().sum();
        {
            let mut store = self.store.write().expect("store lock");
            store.set_duplicates(duplicates, state.duplicates_total);
            store.set_too_late(owned(&state.horizon.too_late), state.horizon.too_late_total);
            store.set_commits_not_listed(owned(&state.commits_not_listed));
            store.set_applied_offset(self.offset);
        }
        if let Some(t) = doraflow_telemetry::recording() {
            t.aggregator
                .duplicates
                .inc_by(duplicates_owned.saturating_sub(self.duplicates_reported));
        }
        self.duplicates_reported = self.duplicates_reported.max(duplicates_owned);
    }

    /// Writes a checkpoint atomically (temporary file, fsync, rename, directory fsync).
    pub fn checkpoint(&self) -> std::io::Result<()> {
        use std::io::Write;
        let counters = self.store.read().expect("store lock").counters().clone();
        let checkpoint = CheckpointRef {
            version: CHECKPOINT_VERSION,
            offset: self.offset,
            state: self.engine.state(),
            counters: &counters,
        };
        let dir = self.checkpoint_path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = self.checkpoint_path.with_extension("json.tmp");
        {
            // Streamed to the file: no copy of the state, no whole-file buffer.
            let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
            serde_json::to_writer(&mut file, &checkpoint).map_err(std::io::Error::other)?;
            file.flush()?;
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, &self.checkpoint_path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// Follows the log until `shutdown` turns true, then checkpoints. Blocking: run it on its
    /// own thread. Records are applied as they become durable, for at most [`PUBLISH_EVERY`] at a
    /// time (records that keep arriving never hold a publish back longer); the services they
    /// touched are re-derived and published at most every [`PUBLISH_EVERY`], so that a busy
    /// service is not recomputed for every small batch (freshness stays well under a second).
    pub fn run(
        mut self,
        runtime: tokio::runtime::Handle,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut end = self.log.durable_end();
        let started = Instant::now();
        let backlog = end.borrow().saturating_sub(self.offset);
        if backlog > 0 {
            tracing::info!(
                from_offset = self.offset,
                bytes = backlog,
                "replaying the event log"
            );
        }
        let replayed = self.catch_up();
        tracing::info!(
            records = replayed,
            seconds = started.elapsed().as_secs_f64(),
            "aggregator caught up"
        );
        self.store.write().expect("store lock").set_caught_up();
        let warming = Instant::now();
        self.store.read().expect("store lock").warm_up();
        tracing::info!(
            seconds = warming.elapsed().as_secs_f64(),
            "organisation rollups built"
        );
        let mut last_publish = Instant::now();
        let mut last_checkpoint = Instant::now();
        let mut checkpointed = u64::MAX;
        let mut unpublished = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let (applied, more) = self.apply_for(Some(PUBLISH_EVERY));
            unpublished |= applied > 0;
            if let Some(t) = doraflow_telemetry::recording()
                && self.ownership.is_none()
            {
                // One consumer reads the whole log: its distance to the end is the lag.
                let lag = end.borrow().saturating_sub(self.offset);
                t.aggregator
                    .lag_bytes
                    .set(lag.try_into().unwrap_or(i64::MAX));
            }
            if unpublished && last_publish.elapsed() >= PUBLISH_EVERY {
                self.engine.advance_horizon();
                self.publish_dirty();
                last_publish = Instant::now();
                unpublished = false;
            }
            self.flush_writes(false);
            if last_checkpoint.elapsed() >= self.checkpoint_every && self.offset != checkpointed {
                // A checkpoint never covers facts the store has not confirmed.
                self.flush_writes(true);
                match self.checkpoint() {
                    Ok(()) => checkpointed = self.offset,
                    Err(e) => tracing::warn!(error = %e, "checkpoint failed"),
                }
                last_checkpoint = Instant::now();
            }
            if more {
                // The budget ran out with records perhaps left: read on without waiting.
                continue;
            }
            let mut wait = if unpublished {
                PUBLISH_EVERY.saturating_sub(last_publish.elapsed())
            } else {
                Duration::from_millis(500)
            };
            if !self.unwritten.is_empty() {
                wait = wait.min(WRITE_EVERY.saturating_sub(self.last_write.elapsed()));
            }
            runtime.block_on(async {
                tokio::select! {
                    _ = end.changed(), if !unpublished => {}
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            });
        }
        self.catch_up();
        if let Err(e) = self.checkpoint() {
            tracing::warn!(error = %e, "final checkpoint failed");
        }
    }
}

/// Records one publish to a store.
fn store_write_took(backend: &'static str, started: Instant) {
    if let Some(t) = doraflow_telemetry::recording() {
        t.store
            .write_duration
            .get_or_create(&doraflow_telemetry::BackendLabels { backend })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Runs a consumer built by `build` on a thread of its own until `stop` turns true. A panic
/// exits the process (status 70), so that a restart replays the log from the last checkpoint
/// rather than serve facts that stopped moving.
pub fn spawn(
    name: String,
    build: impl FnOnce() -> Consumer + Send + 'static,
    runtime: tokio::runtime::Handle,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        let run = std::panic::AssertUnwindSafe(move || build().run(runtime, stop));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!(
                "the aggregator stopped on a panic: exiting so that a restart replays the log"
            );
            std::process::exit(70);
        }
    })
}
