//! Facts through ClickHouse: the aggregator writes each published service's parts with the log
//! offset as version and the partition it reads, and its counters beside them (one state row per
//! partition); an API process keeps a replica of the store by reading what was written since the
//! version it last saw of each partition, and adds up the partitions' counters.
//!
//! Part 0 of a service is its index: the frozen chunks and the live windows that make up its
//! facts. Each frozen chunk is a part of its own, named by its content (a hash), written once. A
//! replay may cut the history into other chunks than the run before it did (replays move the
//! horizon in bigger steps), so chunks are never addressed by position: the newest part 0 names
//! exactly the chunks that go with it, and a chunk of an older chunking is simply no longer named.
//! The live facts are written in windows of 14 days of the facts' own times, each window a part
//! addressed by its place among the live windows (`windows.rs`), and a write carries only the
//! windows whose facts changed since the writer last wrote them: new data touches the newest
//! windows, so a write costs what changed rather than the whole horizon. A place no longer used
//! (the live facts got shorter) is written empty, so the table keeps no stale copy of it. Chunks
//! and windows are stored in a compact binary encoding (`encoding.rs`), the index as JSON. Writes
//! are retried by the caller until they succeed, so the aggregator waits out a ClickHouse outage
//! without losing or skipping anything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, RwLock};

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::windows::{WINDOW_BIT, Windowed, assemble};
use super::{ClickHouseSettings, StoreError, connect, encoding, statements};
use crate::engine::ServiceFacts;
use crate::store::{FactStore, StoreCounters};

const FACTS_SINCE: &str = include_str!("../../../schemas/clickhouse/queries/facts_since.sql");
const STATE: &str = include_str!("../../../schemas/clickhouse/queries/state.sql");

#[derive(Row, Serialize)]
struct FactRow<'a> {
    service: &'a str,
    part: u32,
    version: u64,
    #[serde(with = "serde_bytes")]
    facts: &'a [u8],
    log_partition: u32,
}

#[derive(Row, Deserialize)]
struct ReadFactRow {
    service: String,
    part: u32,
    #[serde(with = "serde_bytes")]
    facts: Vec<u8>,
}

/// Part 0: the frozen chunks and the live windows that make up the service's facts, in order.
#[derive(Serialize)]
struct IndexPart<'a> {
    frozen: &'a [u32],
    windows: &'a [u32],
}

/// Part 0 as read: also as written before live windows (the live facts whole, in `live`).
#[derive(Deserialize)]
struct ReadIndexPart {
    #[serde(default)]
    live: Option<ServiceFacts>,
    frozen: Vec<u32>,
    #[serde(default)]
    windows: Vec<u32>,
}

/// The part number of a frozen chunk: from the hash of its encoding, never 0 (the index) and
/// never with the bit of live windows.
fn chunk_part(encoded: &[u8]) -> u32 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(encoded);
    (u32::from_le_bytes(digest[..4].try_into().expect("4 bytes")) & !WINDOW_BIT).max(1)
}

/// What a writer last wrote of one service.
struct WrittenService {
    /// The part numbers of its frozen chunks, in order (chunks never change once frozen).
    frozen: Vec<u32>,
    /// Its live facts and their windows.
    live: Windowed,
}

/// Encodes the parts of one service to write, given what was last written of it (`before`):
/// its frozen chunks not written yet, its live windows whose facts changed, the windows that
/// left (empty), then its index. Each part's facts are appended to `buffer` and the part listed
/// in `rows` with where its facts are; returns what will have been written.
fn encode_service(
    live: &Arc<ServiceFacts>,
    frozen: &[Arc<ServiceFacts>],
    before: Option<&WrittenService>,
    buffer: &mut Vec<u8>,
    rows: &mut Vec<(u32, Range<usize>)>,
) -> WrittenService {
    let mut parts = before.map(|b| b.frozen.clone()).unwrap_or_default();
    for chunk in frozen.iter().skip(parts.len()) {
        let start = buffer.len();
        encoding::append(&**chunk, buffer);
        let part = chunk_part(&buffer[start..]);
        parts.push(part);
        rows.push((part, start..buffer.len()));
    }
    let live = Windowed::new(live.clone());
    for window in live.windows() {
        if before.is_some_and(|b| live.unchanged_since(window, &b.live)) {
            continue;
        }
        let start = buffer.len();
        encoding::append(&live.segment(window), buffer);
        rows.push((window.part, start..buffer.len()));
    }
    for part in before.into_iter().flat_map(|b| live.gone_since(&b.live)) {
        rows.push((part, buffer.len()..buffer.len()));
    }
    let index = IndexPart {
        frozen: &parts,
        windows: &live.parts(),
    };
    let start = buffer.len();
    serde_json::to_writer(&mut *buffer, &index).expect("the index serializes");
    rows.push((0, start..buffer.len()));
    WrittenService {
        frozen: parts,
        live,
    }
}

/// The state key of a partition's aggregator.
fn state_key(partition: u32) -> String {
    format!("published/{partition}")
}

/// The partition whose state a key is, if it is a partition's state.
fn state_partition(key: &str) -> Option<u32> {
    key.strip_prefix("published/")?.parse().ok()
}

#[derive(Row, Serialize, Deserialize)]
struct StateRow {
    key: String,
    version: u64,
    value: String,
}

/// One published service: its name, live facts and frozen chunks.
pub type PublishedService = (String, Arc<ServiceFacts>, Vec<Arc<ServiceFacts>>);

/// The aggregator's state as the API needs it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublishedState {
    /// Offset of the log the facts cover.
    pub offset: u64,
    /// Counters.
    pub counters: StoreCounters,
}

/// Writes published facts to ClickHouse.
pub struct FactWriter {
    runtime: tokio::runtime::Runtime,
    settings: ClickHouseSettings,
    /// Connected on first use (and again after a failure), so that a server down at start-up
    /// is waited for like one that goes down later.
    client: Option<Client>,
    /// What was last written of each service.
    written: HashMap<String, WrittenService>,
    /// The events-topic partition whose facts this writer writes.
    partition: u32,
}

impl FactWriter {
    /// A writer for the settings (the tables must exist: `doraflow migrate`); it connects on
    /// its first write.
    pub fn new(settings: &ClickHouseSettings) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        Self {
            runtime,
            settings: settings.clone(),
            client: None,
            written: HashMap::new(),
            partition: 0,
        }
    }

    /// Writes as the aggregator of `partition` (versions are that partition's offsets).
    pub fn for_partition(mut self, partition: u32) -> Self {
        self.partition = partition;
        self
    }

    /// Writes the services' frozen chunks and live windows not written yet (a window whose facts
    /// changed is written again, one that left is written empty) and their indexes, then the
    /// state, all with `version`. On error nothing is marked written, so a retry writes it all
    /// again.
    pub fn write(
        &mut self,
        services: &[PublishedService],
        state: &PublishedState,
        version: u64,
    ) -> Result<(), StoreError> {
        let state_row = StateRow {
            key: state_key(self.partition),
            version,
            value: serde_json::to_string(state).expect("state serializes"),
        };
        if self.client.is_none() {
            // Inserts name the table alone (the crate quotes the name it is given as one
            // identifier), so the client carries the database.
            let client = self
                .runtime
                .block_on(connect(&self.settings))?
                .with_database(&self.settings.database);
            self.client = Some(client);
        }
        let client = self.client.as_ref().expect("connected");
        let written = self.runtime.block_on(async {
            let mut written_now = Vec::with_capacity(services.len());
            if !services.is_empty() {
                let mut insert = client.insert::<FactRow>("service_facts").await?;
                // One service's rows at a time, their facts encoded into one buffer that every
                // service reuses: the insert streams what it is given, so a replay's large
                // first write never holds all its rows in memory.
                let mut buffer = Vec::new();
                let mut rows = Vec::new();
                for (service, live, frozen) in services {
                    buffer.clear();
                    rows.clear();
                    let before = self.written.get(service);
                    let written = encode_service(live, frozen, before, &mut buffer, &mut rows);
                    for (part, facts) in &rows {
                        let row = FactRow {
                            service,
                            part: *part,
                            version,
                            facts: &buffer[facts.clone()],
                            log_partition: self.partition,
                        };
                        insert.write(&row).await?;
                    }
                    written_now.push((service.clone(), written));
                }
                insert.end().await?;
            }
            let mut insert = client.insert::<StateRow>("aggregator_state").await?;
            insert.write(&state_row).await?;
            insert.end().await?;
            Ok::<_, StoreError>(written_now)
        });
        match written {
            Ok(written_now) => {
                self.written.extend(written_now);
                Ok(())
            }
            Err(e) => {
                self.client = None;
                Err(e)
            }
        }
    }
}

/// A replica of the aggregator's store, read from ClickHouse.
pub struct FactReader {
    client: Client,
    database: String,
    /// The newest version read per partition.
    seen: BTreeMap<u32, u64>,
    services: HashMap<String, ServiceParts>,
}

/// What a reader holds of one service.
#[derive(Default)]
struct ServiceParts {
    /// The newest index.
    index: Option<ReadIndexPart>,
    /// The frozen chunks and live windows read that the index may name, by part number.
    parts: HashMap<u32, Arc<ServiceFacts>>,
}

impl FactReader {
    /// Connects.
    pub async fn connect(settings: &ClickHouseSettings) -> Result<Self, StoreError> {
        Ok(Self {
            client: connect(settings).await?,
            database: settings.database.clone(),
            seen: BTreeMap::new(),
            services: HashMap::new(),
        })
    }

    /// Reads what was written since the last call into `store`; returns how many services
    /// changed.
    pub async fn refresh(&mut self, store: &RwLock<FactStore>) -> Result<usize, StoreError> {
        // The state rows first: a partition's writer writes its state after its facts, so
        // every fact row up to the state's version is wholly visible (one insert may become
        // visible in pieces), and rows past it are read next time.
        let states: Vec<StateRow> = self
            .client
            .query(&statements(STATE, &self.database)[0])
            .fetch_all()
            .await?;
        let written: BTreeMap<u32, u64> = states
            .iter()
            .filter_map(|s| Some((state_partition(&s.key)?, s.version)))
            .collect();
        // Versions are offsets of the partition that wrote a row: newer is per partition.
        let newer: Vec<String> = written
            .iter()
            .filter(|(p, v)| self.seen.get(*p).is_none_or(|seen| seen < *v))
            .map(|(p, v)| {
                let seen = self.seen.get(p).map_or(-1, |s| *s as i64);
                format!("(log_partition = {p} AND version > {seen} AND version <= {v})")
            })
            .collect();
        let rows: Vec<ReadFactRow> = if newer.is_empty() {
            Vec::new()
        } else {
            let query = FACTS_SINCE.replace("{newer}", &newer.join(" OR "));
            self.client
                .query(&statements(&query, &self.database)[0])
                .fetch_all()
                .await?
        };
        for (p, v) in &written {
            self.seen.insert(*p, *v);
        }
        let mut touched = Vec::new();
        for row in rows {
            let corrupt =
                |e: String| StoreError::Corrupt(format!("{} part {}: {e}", row.service, row.part));
            let service = self.services.entry(row.service.clone()).or_default();
            if row.part == 0 {
                let index = serde_json::from_slice(&row.facts).map_err(|e| corrupt(e.to_string()));
                service.index = Some(index?);
            } else if row.facts.is_empty() {
                // A live window that left the live facts.
                service.parts.remove(&row.part);
            } else {
                let facts = encoding::decode(&row.facts).map_err(corrupt)?;
                service.parts.insert(row.part, Arc::new(facts));
            }
            touched.push(row.service);
        }
        touched.sort();
        touched.dedup();
        // Each partition's aggregator counts its own services (and the organisation's totals of
        // the deliveries at home there): the sum is the whole.
        let mut state: Option<PublishedState> = None;
        for row in states.iter().filter(|s| state_partition(&s.key).is_some()) {
            let part: PublishedState = serde_json::from_str(&row.value)
                .map_err(|e| StoreError::Corrupt(format!("aggregator state {}: {e}", row.key)))?;
            let whole = state.get_or_insert_with(PublishedState::default);
            whole.offset += part.offset;
            whole.counters.merge(&part.counters);
        }
        let mut store = store.write().expect("store lock");
        for name in &touched {
            let service = self
                .services
                .get_mut(name)
                .expect("touched services were read");
            let Some(index) = &service.index else {
                continue;
            };
            let named = |parts: &[u32]| -> Option<Vec<Arc<ServiceFacts>>> {
                parts
                    .iter()
                    .map(|p| service.parts.get(p).cloned())
                    .collect()
            };
            let (Some(frozen), Some(windows)) = (named(&index.frozen), named(&index.windows))
            else {
                // A part named but not read (rows read before under another partition's
                // versions): read everything again next time.
                tracing::warn!(service = %name, "a part of the facts is missing: reading every part again");
                self.seen.clear();
                self.services.clear();
                return Ok(0);
            };
            let live = match &index.live {
                Some(whole) => whole.clone(),
                None => assemble(windows.iter().map(|w| &**w)),
            };
            store.publish(name.clone(), Arc::new(live), frozen);
            // A part no longer named is written again before it is named again (a chunk is
            // named by its content; a writer writes a window place it did not last write).
            let named: HashSet<u32> = index.frozen.iter().chain(&index.windows).copied().collect();
            service.parts.retain(|p, _| named.contains(p));
        }
        if let Some(state) = state {
            store.set_counters(state.counters);
            store.set_applied_offset(state.offset);
        }
        Ok(touched.len())
    }
}
