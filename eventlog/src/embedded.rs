//! The embedded event log: one append-only file `events.log` under `<data_dir>/log/`, written by a
//! single writer thread with group commit (one `fdatasync` covers every delivery waiting at that
//! moment). A delivery's future resolves only after its bytes are synced. At open, the file is
//! scanned and a torn or corrupt tail is cut off. If the directory cannot be written (missing
//! permissions, made read-only, disk errors) every append fails, so ingest answers 503; the writer
//! retries opening on the next append. The last few thousand records written are also kept
//! decoded (without body and headers) for a reader following the tail, so that the aggregator does
//! not re-read and re-parse what was just written; older offsets are read from the file.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use doraflow_schemas::LogRecord;
use tokio::sync::{mpsc, oneshot, watch};

use crate::record::{self, Body, Decoded, HEADER_LEN, MAX_PAYLOAD};
use crate::{BoxFuture, EventLog, LogError, ReadRecord};

/// Name of the log file inside the log directory.
const FILE_NAME: &str = "events.log";
/// Upper bound on the bytes one group commit writes.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;
/// Upper bound on the bytes one read of the file loads.
#[cfg(not(test))]
const READ_CHUNK: u64 = 8 * 1024 * 1024;
/// Small in unit tests, so that a few records span several chunks.
#[cfg(test)]
const READ_CHUNK: u64 = 4096;

/// Records kept decoded for a reader following the tail.
const RECENT_RECORDS: usize = 4096;

struct Pending {
    frame: Vec<u8>,
    slim: Arc<LogRecord>,
    reply: oneshot::Sender<Result<u64, LogError>>,
}

/// Recently written records: (offset, next offset, record without body and headers).
type Recent = Arc<Mutex<VecDeque<(u64, u64, Arc<LogRecord>)>>>;

/// The embedded, file-backed event log.
pub struct EmbeddedLog {
    path: PathBuf,
    sender: mpsc::UnboundedSender<Pending>,
    end: watch::Receiver<u64>,
    available: Arc<AtomicBool>,
    reader: Mutex<Option<File>>,
    /// The last chunk read from the file and where it starts: a reader taking a few records at a
    /// time (the aggregator decodes and applies 64 at once) reads on in it instead of reading the
    /// file again. Durable bytes never change, so it never goes stale.
    chunk: Mutex<Option<(u64, bytes::Bytes)>>,
    recent: Recent,
}

/// What a start-up scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Valid bytes kept.
    pub kept_bytes: u64,
    /// Records kept.
    pub records: u64,
    /// Bytes of torn or corrupt tail cut off.
    pub cut_bytes: u64,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir` and starts its writer thread. A directory that
    /// cannot be opened gives a log that refuses appends until it can; the error is returned
    /// beside it so the caller can report it.
    pub fn open(dir: impl Into<PathBuf>) -> (Self, Result<Recovery, LogError>) {
        let dir = dir.into();
        let path = dir.join(FILE_NAME);
        let (sender, receiver) = mpsc::unbounded_channel();
        let (end_tx, end_rx) = watch::channel(0);
        let available = Arc::new(AtomicBool::new(false));
        let recent: Recent = Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_RECORDS)));
        let mut writer = Writer {
            recent: recent.clone(),
            dir,
            path: path.clone(),
            file: None,
            len: 0,
            end: end_tx,
            available: available.clone(),
        };
        let first = writer.ensure_open();
        std::thread::Builder::new()
            .name("doraflow-log-writer".into())
            .spawn(move || writer.run(receiver))
            .expect("spawn the log writer thread");
        let log = Self {
            path,
            sender,
            end: end_rx,
            available,
            reader: Mutex::new(None),
            chunk: Mutex::new(None),
            recent,
        };
        (log, first)
    }

    /// Serves a tail read from the recent records, when `offset` is among them.
    fn read_recent(&self, offset: u64, max: usize) -> Option<Vec<ReadRecord>> {
        let recent = self.recent.lock().expect("recent lock");
        let start = recent
            .binary_search_by_key(&offset, |(at, _, _)| *at)
            .ok()?;
        Some(
            recent
                .range(start..)
                .take(max)
                .map(|(_, next, record)| ReadRecord {
                    next_offset: *next,
                    record: record.clone(),
                })
                .collect(),
        )
    }

    /// Durable bytes from `offset` on (up to `end`): the chunk kept from the last read when it
    /// holds `offset`, else a new chunk read from the file (and kept); with where `offset` is in
    /// it.
    fn chunk_at(&self, offset: u64, end: u64) -> Result<(bytes::Bytes, usize), LogError> {
        let mut kept = self.chunk.lock().expect("chunk lock");
        if let Some((start, bytes)) = kept.as_ref()
            && (*start..*start + bytes.len() as u64).contains(&offset)
        {
            return Ok((bytes.clone(), (offset - start) as usize));
        }
        let bytes = bytes::Bytes::from(self.read_chunk(offset, (end - offset).min(READ_CHUNK))?);
        *kept = Some((offset, bytes.clone()));
        Ok((bytes, 0))
    }

    /// Drops the kept chunk (a frame runs past its end).
    fn forget_chunk(&self) {
        *self.chunk.lock().expect("chunk lock") = None;
    }

    fn read_chunk(&self, offset: u64, len: u64) -> Result<Vec<u8>, LogError> {
        let mut guard = self.reader.lock().expect("reader lock");
        if guard.is_none() {
            *guard = Some(File::open(&self.path).map_err(|e| LogError::Read(e.to_string()))?);
        }
        let file = guard.as_mut().expect("opened above");
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| LogError::Read(e.to_string()))?;
        let mut buf = vec![0; len as usize];
        file.read_exact(&mut buf)
            .map_err(|e| LogError::Read(e.to_string()))?;
        Ok(buf)
    }
}

impl EventLog for EmbeddedLog {
    fn append(&self, record: &LogRecord) -> BoxFuture<'_, Result<u64, LogError>> {
        let frame = record::encode(record);
        let slim = Arc::new(LogRecord {
            delivery: record.delivery.clone(),
            source: record.source.clone(),
            received_at: record.received_at,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            outcome: record.outcome.clone(),
        });
        Box::pin(crate::timed_append("embedded", async move {
            let (reply, done) = oneshot::channel();
            self.sender
                .send(Pending { frame, slim, reply })
                .map_err(|_| LogError::Unavailable("log writer stopped".into()))?;
            done.await
                .map_err(|_| LogError::Unavailable("log writer stopped".into()))?
        }))
    }

    fn read_from(&self, offset: u64, max: usize, body: Body) -> Result<Vec<ReadRecord>, LogError> {
        if body == Body::Skip
            && let Some(records) = self.read_recent(offset, max)
        {
            return Ok(records);
        }
        let end = *self.end.borrow();
        let mut out = Vec::new();
        let mut at = offset;
        while at < end && out.len() < max {
            let (kept, start) = self.chunk_at(at, end)?;
            let chunk = &kept[start..];
            let mut pos = 0usize;
            while out.len() < max {
                match record::decode(&chunk[pos..], body) {
                    Decoded::Frame(n, record) => {
                        pos += n;
                        out.push(ReadRecord {
                            next_offset: at + pos as u64,
                            record: Arc::new(record),
                        });
                    }
                    Decoded::Incomplete if pos == 0 && start > 0 => {
                        // The frame runs past the end of the chunk kept from an earlier read:
                        // the next turn reads a chunk from it.
                        self.forget_chunk();
                        break;
                    }
                    Decoded::Incomplete if pos == 0 => {
                        // One frame larger than the chunk: read exactly that frame.
                        let len = u32::from_le_bytes(chunk[0..4].try_into().expect("4 bytes"));
                        let whole = self.read_chunk(at, HEADER_LEN as u64 + u64::from(len))?;
                        match record::decode(&whole, body) {
                            Decoded::Frame(n, record) => {
                                pos = n;
                                out.push(ReadRecord {
                                    next_offset: at + n as u64,
                                    record: Arc::new(record),
                                });
                            }
                            _ => return Err(LogError::Read(format!("bad frame at offset {at}"))),
                        }
                        break;
                    }
                    Decoded::Incomplete => break,
                    Decoded::Corrupt(why) => {
                        return Err(LogError::Read(format!(
                            "corrupt frame at offset {}: {why}",
                            at + pos as u64
                        )));
                    }
                }
            }
            at += pos as u64;
        }
        Ok(out)
    }

    fn durable_end(&self) -> watch::Receiver<u64> {
        self.end.clone()
    }

    fn is_available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }
}

struct Writer {
    recent: Recent,
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
    len: u64,
    end: watch::Sender<u64>,
    available: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Pending>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut group = vec![first];
            let mut bytes = group[0].frame.len();
            while bytes < MAX_GROUP_BYTES {
                match receiver.try_recv() {
                    Ok(next) => {
                        bytes += next.frame.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            match self.commit(&group) {
                Ok(offsets) => {
                    {
                        let mut recent = self.recent.lock().expect("recent lock");
                        for (pending, &offset) in group.iter().zip(&offsets) {
                            if recent.len() == RECENT_RECORDS {
                                recent.pop_front();
                            }
                            let next = offset + pending.frame.len() as u64;
                            recent.push_back((offset, next, pending.slim.clone()));
                        }
                    }
                    for (pending, offset) in group.into_iter().zip(offsets) {
                        let _ = pending.reply.send(Ok(offset));
                    }
                }
                Err(message) => {
                    tracing::warn!(error = %message, deliveries = group.len(), "event log append failed");
                    self.available.store(false, Ordering::Relaxed);
                    for pending in group {
                        let _ = pending
                            .reply
                            .send(Err(LogError::Unavailable(message.clone())));
                    }
                }
            }
        }
    }

    /// Writes and syncs one group; returns each frame's offset.
    fn commit(&mut self, group: &[Pending]) -> Result<Vec<u64>, String> {
        self.ensure_open().map_err(|e| e.to_string())?;
        // An operator who makes the data directory read-only means "stop writing": honour it
        // even where the open descriptor (or root) could still write.
        if dir_is_read_only(&self.dir) {
            return Err(format!("{} is read-only", self.dir.display()));
        }
        let file = self.file.as_mut().expect("opened above");
        let start = self.len;
        let mut buf = Vec::with_capacity(group.iter().map(|p| p.frame.len()).sum());
        let mut offsets = Vec::with_capacity(group.len());
        for pending in group {
            offsets.push(start + buf.len() as u64);
            buf.extend_from_slice(&pending.frame);
        }
        let result = file
            .seek(SeekFrom::Start(start))
            .and_then(|_| file.write_all(&buf))
            .and_then(|_| {
                let started = std::time::Instant::now();
                let synced = file.sync_data();
                if let Some(t) = doraflow_telemetry::recording() {
                    let metrics = &t.eventlog;
                    metrics
                        .fsync_duration
                        .observe(started.elapsed().as_secs_f64());
                    metrics.group_records.observe(group.len() as f64);
                }
                synced
            });
        if let Err(e) = result {
            // The state of the bytes past `start` is unknown: cut them and reopen next time.
            let _ = file.set_len(start);
            self.file = None;
            return Err(format!("write to {}: {e}", self.path.display()));
        }
        self.len = start + buf.len() as u64;
        self.end.send_replace(self.len);
        self.available.store(true, Ordering::Relaxed);
        Ok(offsets)
    }

    fn ensure_open(&mut self) -> Result<Recovery, LogError> {
        if self.file.is_some() {
            return Ok(Recovery {
                kept_bytes: self.len,
                records: 0,
                cut_bytes: 0,
            });
        }
        let opened = open_and_recover(&self.dir, &self.path);
        match opened {
            Ok((file, recovery)) => {
                self.file = Some(file);
                self.len = recovery.kept_bytes;
                self.end.send_replace(self.len);
                self.available
                    .store(!dir_is_read_only(&self.dir), Ordering::Relaxed);
                Ok(recovery)
            }
            Err(e) => {
                self.available.store(false, Ordering::Relaxed);
                Err(LogError::Unavailable(format!(
                    "{}: {e}",
                    self.path.display()
                )))
            }
        }
    }
}

fn dir_is_read_only(dir: &Path) -> bool {
    fs::metadata(dir)
        .map(|m| m.permissions().readonly())
        .unwrap_or(true)
}

/// Opens the log file, scans it, and cuts a torn or corrupt tail.
fn open_and_recover(dir: &Path, path: &Path) -> std::io::Result<(File, Recovery)> {
    fs::create_dir_all(dir)?;
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if !existed {
        File::open(dir)?.sync_all()?;
    }
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut kept = 0u64;
    let mut records = 0u64;
    let mut header = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    while kept + HEADER_LEN as u64 <= total {
        reader.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        if len == 0 || len > MAX_PAYLOAD || kept + (HEADER_LEN + len) as u64 > total {
            break;
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload)?;
        if crc32fast::hash(&payload) != crc {
            break;
        }
        kept += (HEADER_LEN + len) as u64;
        records += 1;
    }
    drop(reader);
    let cut = total - kept;
    if cut > 0 {
        tracing::warn!(cut_bytes = cut, kept_bytes = kept, path = %path.display(), "cut a torn tail off the event log");
        file.set_len(kept)?;
        file.sync_all()?;
    }
    Ok((
        file,
        Recovery {
            kept_bytes: kept,
            records,
            cut_bytes: cut,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::Outcome;

    fn record(n: usize) -> LogRecord {
        LogRecord {
            delivery: format!("test:{n}"),
            source: "test".into(),
            received_at: doraflow_schemas::time::parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
            headers: vec![],
            body: format!("{{\"n\":{n}}}").into(),
            outcome: Outcome::Ignored {
                reason: "test".into(),
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_all_durable_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (log, opened) = EmbeddedLog::open(dir.path().join("log"));
        opened.unwrap();
        let log = Arc::new(log);
        let mut tasks = Vec::new();
        for n in 0..200 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move { log.append(&record(n)).await }));
        }
        let mut offsets = Vec::new();
        for task in tasks {
            offsets.push(task.await.unwrap().unwrap());
        }
        offsets.sort();
        offsets.dedup();
        assert_eq!(offsets.len(), 200);
        let read = log.read_from(0, 1000, Body::Keep).unwrap();
        assert_eq!(read.len(), 200);
        let mut seen: Vec<String> = read.iter().map(|r| r.record.delivery.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 200);
        // Paging by offset continues exactly where the previous page stopped.
        let first = log.read_from(0, 50, Body::Keep).unwrap();
        let rest = log
            .read_from(first.last().unwrap().next_offset, 1000, Body::Keep)
            .unwrap();
        assert_eq!(first.len() + rest.len(), 200);
        assert_eq!(rest[0].record, read[50].record);
    }

    #[tokio::test]
    async fn reads_of_a_few_records_at_a_time_walk_the_file_as_one_read_does() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EmbeddedLog::open(dir.path().join("log"));
        for n in 0..120 {
            let mut record = record(n);
            // Every 25th frame is larger than a whole chunk (4 KiB in unit tests).
            if n % 25 == 7 {
                record.body = "x".repeat(10_000).into();
            }
            log.append(&record).await.unwrap();
        }
        // Reopened: nothing in memory, every read comes from the file, in chunks.
        drop(log);
        let (log, _) = EmbeddedLog::open(dir.path().join("log"));
        let whole = log.read_from(0, usize::MAX, Body::Keep).unwrap();
        assert_eq!(whole.len(), 120);
        for page in [1, 3, 64] {
            for body in [Body::Keep, Body::Skip] {
                let mut paged = Vec::new();
                let mut at = 0;
                loop {
                    let read = log.read_from(at, page, body).unwrap();
                    let Some(last) = read.last() else { break };
                    assert!(read.len() <= page);
                    at = last.next_offset;
                    paged.extend(read);
                }
                assert_eq!(paged.len(), 120, "pages of {page}");
                for (one, all) in paged.iter().zip(&whole) {
                    assert_eq!(one.next_offset, all.next_offset);
                    assert_eq!(one.record.delivery, all.record.delivery);
                    if body == Body::Keep {
                        assert_eq!(one.record.body, all.record.body);
                    }
                }
            }
        }
        // A read elsewhere in the file after them is not served from the kept chunk.
        let again = log.read_from(whole[9].next_offset, 2, Body::Keep).unwrap();
        assert_eq!(again[0].record.delivery, "test:10");
        assert_eq!(again[1].record.delivery, "test:11");
    }

    #[tokio::test]
    async fn a_chunk_ending_inside_a_frame_header_is_read_on_from_the_file() {
        // Frames of 1,365 bytes: three fill a 4,096-byte chunk but one byte, so a read of one
        // record at a time reaches the end of a kept chunk with less than a frame header left.
        let sized = |n: usize, body: usize| {
            let mut record = record(n);
            record.body = "y".repeat(body).into();
            record
        };
        let body = 1365 + 1000 - record::encode(&sized(0, 1000)).len();
        assert_eq!(record::encode(&sized(0, body)).len(), 1365);
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EmbeddedLog::open(dir.path().join("log"));
        for n in 0..9 {
            log.append(&sized(n, body)).await.unwrap();
        }
        drop(log);
        let (log, _) = EmbeddedLog::open(dir.path().join("log"));
        let mut at = 0;
        for n in 0..9 {
            let read = log.read_from(at, 1, Body::Keep).unwrap();
            assert_eq!(read[0].record.delivery, format!("test:{n}"));
            at = read[0].next_offset;
        }
        assert!(log.read_from(at, 1, Body::Keep).unwrap().is_empty());
    }

    #[tokio::test]
    async fn tail_reads_from_memory_match_reads_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = EmbeddedLog::open(dir.path().join("log"));
        for n in 0..(RECENT_RECORDS + 10) {
            log.append(&record(n)).await.unwrap();
        }
        // The oldest records are no longer in memory: they come from the file.
        let from_file = log.read_from(0, usize::MAX, Body::Keep).unwrap();
        let skip_old = log.read_from(0, 20, Body::Skip).unwrap();
        assert!(skip_old[0].record.headers.is_empty() && skip_old[0].record.body.is_empty());
        // The newest are served from memory, with the same offsets and events.
        let tail_at = from_file[from_file.len() - 100 - 1].next_offset;
        let tail = log.read_from(tail_at, 1000, Body::Skip).unwrap();
        assert_eq!(tail.len(), 100);
        for (mem, file) in tail.iter().zip(&from_file[from_file.len() - 100..]) {
            assert_eq!(mem.next_offset, file.next_offset);
            assert_eq!(mem.record.delivery, file.record.delivery);
            assert_eq!(mem.record.outcome, file.record.outcome);
        }
        // Reopened, the log has nothing in memory and reads the same from the file.
        drop(log);
        let (log, _) = EmbeddedLog::open(dir.path().join("log"));
        let again = log.read_from(tail_at, 1000, Body::Skip).unwrap();
        assert_eq!(again.len(), 100);
        assert_eq!(again[99].next_offset, tail[99].next_offset);
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_at_open_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        {
            let (log, _) = EmbeddedLog::open(&log_dir);
            for n in 0..3 {
                log.append(&record(n)).await.unwrap();
            }
        }
        let path = log_dir.join(FILE_NAME);
        let good = fs::metadata(&path).unwrap().len();
        // Simulate a crash mid-write: half a frame at the end.
        let frame = record::encode(&record(99));
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&frame[..frame.len() / 2]).unwrap();
        drop(file);

        let (log, opened) = EmbeddedLog::open(&log_dir);
        let recovery = opened.unwrap();
        assert_eq!(recovery.kept_bytes, good);
        assert_eq!(recovery.records, 3);
        assert_eq!(recovery.cut_bytes, (frame.len() / 2) as u64);
        log.append(&record(3)).await.unwrap();
        let all = log.read_from(0, 100, Body::Keep).unwrap();
        let names: Vec<_> = all.iter().map(|r| r.record.delivery.as_str()).collect();
        assert_eq!(names, ["test:0", "test:1", "test:2", "test:3"]);
    }

    #[tokio::test]
    async fn a_read_only_directory_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let log_dir = dir.path().join("log");
        let (log, _) = EmbeddedLog::open(&log_dir);
        log.append(&record(0)).await.unwrap();
        let mut perms = fs::metadata(&log_dir).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&log_dir, perms.clone()).unwrap();
        let refused = log.append(&record(1)).await;
        assert!(
            matches!(refused, Err(LogError::Unavailable(_))),
            "{refused:?}"
        );
        assert!(!log.is_available());
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&log_dir, perms).unwrap();
        log.append(&record(2)).await.unwrap();
        assert_eq!(log.read_from(0, 10, Body::Keep).unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_unopenable_directory_gives_an_unavailable_log() {
        let (log, opened) = EmbeddedLog::open("/proc/doraflow-cannot-exist/log");
        assert!(opened.is_err());
        assert!(!log.is_available());
        assert!(matches!(
            log.append(&record(0)).await,
            Err(LogError::Unavailable(_))
        ));
    }
}
