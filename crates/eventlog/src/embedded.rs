//! The embedded event log: one SQLite file, written by a single thread that commits appends in groups.
//!
//! Group commit is what makes a synchronous, fsync-per-commit log fast: every append that arrives while a commit
//! is in progress rides on the next one, so the cost of the disk flush is shared by the whole batch.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use bytes::Bytes;
use dingguard_model::Record;
use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

use crate::unique_ids::{IdKey, UniqueIds};
use crate::{Appended, LogError, LoggedRecord, next_positions, partition_for};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log_topics (
    topic TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_records (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    ce_id TEXT,
    key TEXT,
    headers TEXT NOT NULL,
    value BLOB NOT NULL,
    appended_at_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
-- Uniqueness of ce_id is checked in memory (see unique_ids.rs); older files carried it as an index.
DROP INDEX IF EXISTS log_records_ce_id;
CREATE TABLE IF NOT EXISTS log_consumer_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
-- The readiness probe's heartbeat: a probe that writes is one that notices a full or read-only disk.
CREATE TABLE IF NOT EXISTS log_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: an acknowledged record survives power loss.
    Full,
    /// fsync at checkpoints only: survives a process crash, not power loss.
    Normal,
}

#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    pub partitions: i32,
    pub durability: Durability,
    /// Most appends folded into one commit.
    pub max_batch: usize,
    /// Appends waiting for the writer before new ones are refused as unavailable.
    pub queue_depth: usize,
    /// How many of the newest records' `ce_id`s are held to refuse a second copy, also across restarts.
    pub unique_ids: usize,
    /// Below this much free space on the log's file system the log reports itself not ready, before a commit
    /// fails half-way.
    pub min_free_bytes: u64,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            partitions: 4,
            durability: Durability::Full,
            max_batch: 2048,
            queue_depth: 8192,
            unique_ids: 1_000_000,
            min_free_bytes: 4 * 1024 * 1024,
        }
    }
}

enum Op {
    Append { topic: String, record: Record, reply: oneshot::Sender<Result<Appended, LogError>> },
    EnsureTopics { topics: Vec<String>, reply: oneshot::Sender<Result<(), LogError>> },
    Commit { group: String, positions: Vec<(String, i32, i64)>, reply: oneshot::Sender<Result<(), LogError>> },
    Probe { at_ms: i64, reply: oneshot::Sender<Result<(), LogError>> },
}

struct Shared {
    path: PathBuf,
    options: EmbeddedOptions,
    ops: SyncSender<Op>,
    /// Bumped after every commit so idle consumers wake without polling the file.
    committed: watch::Receiver<u64>,
    active_groups: Mutex<HashSet<String>>,
    lag: crate::LagGauges,
}

#[derive(Clone)]
pub struct EmbeddedLog {
    shared: Arc<Shared>,
}

fn storage(e: impl std::fmt::Display) -> LogError {
    LogError::Storage(e.to_string())
}

fn writer_gone() -> LogError {
    LogError::Stopped
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`; `None` where it cannot be told.
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log at `path` and starts its writer thread.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, LogError> {
        if options.partitions < 1 {
            return Err(LogError::Config("embedded log needs at least one partition".into()));
        }
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| storage(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(&path).map_err(storage)?;
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000;"))
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        let (ops, rx) = sync_channel(options.queue_depth);
        let (notify, committed) = watch::channel(0u64);
        let mut ids = UniqueIds::new(options.unique_ids);
        load_unique_ids(&conn, &mut ids)?;
        let writer = Writer {
            conn,
            next_offsets: HashMap::new(),
            partitions: HashMap::new(),
            default_partitions: options.partitions,
            max_batch: options.max_batch.max(1),
            ids,
            batch_ids: Vec::new(),
        };
        std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer.run(rx, notify))
            .map_err(storage)?;
        Ok(Self {
            shared: Arc::new(Shared {
                path,
                options,
                ops,
                committed,
                active_groups: Mutex::new(HashSet::new()),
                lag: crate::LagGauges::default(),
            }),
        })
    }

    pub(crate) fn lag_gauges(&self) -> crate::LagGauges {
        self.shared.lag.clone()
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    fn submit(&self, op: Op) -> Result<(), LogError> {
        self.shared.ops.try_send(op).map_err(|e| match e {
            TrySendError::Full(_) => LogError::Unavailable("embedded log queue is full".into()),
            TrySendError::Disconnected(_) => writer_gone(),
        })
    }

    pub(crate) async fn ensure_topics(&self, topics: &[&str]) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Op::EnsureTopics { topics: topics.iter().map(|t| (*t).to_owned()).collect(), reply })?;
        rx.await.map_err(|_| writer_gone())?
    }

    pub(crate) async fn append(&self, topic: &str, record: Record) -> Result<Appended, LogError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Op::Append { topic: topic.to_owned(), record, reply })?;
        rx.await.map_err(|_| writer_gone())?
    }

    pub(crate) async fn check(&self) -> Result<(), LogError> {
        // A committed heartbeat proves the writer is alive and the file writable; the free-space floor says the
        // next batch has room, since SQLite may reuse its write-ahead file for a small write on a full disk.
        let (reply, rx) = oneshot::channel();
        self.submit(Op::Probe { at_ms: now_ms(), reply })?;
        rx.await.map_err(|_| writer_gone())??;
        let dir = match self.shared.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => dir.to_path_buf(),
            None => PathBuf::from("."),
        };
        let floor = self.shared.options.min_free_bytes;
        match free_bytes(&dir) {
            Some(free) if free < floor => Err(LogError::Storage(format!(
                "{} has {free} bytes free, under the {floor} the log keeps in hand",
                dir.display()
            ))),
            _ => Ok(()),
        }
    }

    fn reader(&self) -> Result<Connection, LogError> {
        let conn = Connection::open_with_flags(&self.shared.path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(storage)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(storage)?;
        Ok(conn)
    }

    pub(crate) async fn read_all(&self, topic: &str) -> Result<Vec<LoggedRecord>, LogError> {
        let conn = self.reader()?;
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut stmt = conn
                .prepare(
                    "SELECT partition, offset, key, headers, value FROM log_records WHERE topic = ?1 \
                     ORDER BY partition, offset",
                )
                .map_err(storage)?;
            let rows = stmt.query_map(params![topic], |row| row_to_record(&topic, row)).map_err(storage)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(storage)
        })
        .await
        .map_err(storage)?
    }

    pub(crate) async fn describe_topics(&self, topics: &[&str]) -> Result<Vec<crate::TopicShape>, LogError> {
        let conn = self.reader()?;
        let mut shapes = Vec::new();
        for topic in topics {
            let partitions: Option<i32> = conn
                .query_row("SELECT partitions FROM log_topics WHERE topic = ?1", params![topic], |r| r.get(0))
                .optional()
                .map_err(storage)?;
            if let Some(partitions) = partitions {
                shapes.push(crate::TopicShape { topic: (*topic).to_owned(), partitions, replicas: None });
            }
        }
        Ok(shapes)
    }

    pub(crate) fn consumer(&self, group: &str, topics: &[&str]) -> Result<EmbeddedConsumer, LogError> {
        if !self.shared.active_groups.lock().insert(group.to_owned()) {
            return Err(LogError::GroupBusy(group.to_owned()));
        }
        let guard = GroupGuard { shared: self.shared.clone(), group: group.to_owned() };
        let conn = self.reader()?;
        let mut positions = Vec::new();
        for topic in topics {
            let partitions: Option<i32> = conn
                .query_row("SELECT partitions FROM log_topics WHERE topic = ?1", params![topic], |r| r.get(0))
                .optional()
                .map_err(storage)?;
            for partition in 0..partitions.unwrap_or(self.shared.options.partitions) {
                let next: Option<i64> = conn
                    .query_row(
                        "SELECT next_offset FROM log_consumer_offsets WHERE group_id=?1 AND topic=?2 AND partition=?3",
                        params![group, topic, partition],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(storage)?;
                positions.push(((*topic).to_owned(), partition, next.unwrap_or(0)));
            }
        }
        Ok(EmbeddedConsumer {
            log: self.clone(),
            group: group.to_owned(),
            conn: Arc::new(Mutex::new(conn)),
            positions,
            committed: self.shared.committed.clone(),
            _guard: guard,
        })
    }
}

/// The newest records' ids, newest first, up to the table's capacity.
fn load_unique_ids(conn: &Connection, ids: &mut UniqueIds) -> Result<(), LogError> {
    let mut stmt = conn
        .prepare("SELECT rowid, topic, ce_id FROM log_records WHERE ce_id IS NOT NULL ORDER BY rowid DESC LIMIT ?1")
        .map_err(storage)?;
    let limit = i64::try_from(ids.capacity()).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![limit]).map_err(storage)?;
    while let Some(row) = rows.next().map_err(storage)? {
        let (rowid, topic, ce_id): (i64, String, String) =
            (row.get(0).map_err(storage)?, row.get(1).map_err(storage)?, row.get(2).map_err(storage)?);
        let hash = ids.hash(&topic, &ce_id);
        ids.insert(hash, &topic, &ce_id, rowid);
    }
    Ok(())
}

fn row_to_record(topic: &str, row: &rusqlite::Row<'_>) -> rusqlite::Result<LoggedRecord> {
    let headers: String = row.get(3)?;
    let value: Vec<u8> = row.get(4)?;
    Ok(LoggedRecord {
        topic: topic.to_owned(),
        partition: row.get(0)?,
        offset: row.get(1)?,
        key: row.get(2)?,
        headers: serde_json::from_str(&headers).unwrap_or_default(),
        value: Bytes::from(value),
    })
}

struct GroupGuard {
    shared: Arc<Shared>,
    group: String,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.shared.active_groups.lock().remove(&self.group);
    }
}

/// The one member of a consumer group in this process; it owns every partition of its topics.
pub struct EmbeddedConsumer {
    log: EmbeddedLog,
    group: String,
    conn: Arc<Mutex<Connection>>,
    positions: Vec<(String, i32, i64)>,
    committed: watch::Receiver<u64>,
    _guard: GroupGuard,
}

impl EmbeddedConsumer {
    pub(crate) async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LoggedRecord>, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.committed.borrow_and_update();
            let records = self.fetch(max).await?;
            if !records.is_empty() {
                for record in &records {
                    if let Some(pos) =
                        self.positions.iter_mut().find(|(t, p, _)| *t == record.topic && *p == record.partition)
                    {
                        pos.2 = pos.2.max(record.offset + 1);
                    }
                }
                return Ok(records);
            }
            if tokio::time::timeout_at(deadline, self.committed.changed()).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn fetch(&self, max: usize) -> Result<Vec<LoggedRecord>, LogError> {
        let conn = self.conn.clone();
        let positions = self.positions.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT partition, offset, key, headers, value FROM log_records \
                     WHERE topic = ?1 AND partition = ?2 AND offset >= ?3 ORDER BY offset LIMIT ?4",
                )
                .map_err(storage)?;
            let mut out = Vec::new();
            for (topic, partition, next) in &positions {
                let room = max.saturating_sub(out.len());
                if room == 0 {
                    break;
                }
                let room = i64::try_from(room).unwrap_or(i64::MAX);
                let rows = stmt
                    .query_map(params![topic, partition, next, room], |row| row_to_record(topic, row))
                    .map_err(storage)?;
                for row in rows {
                    out.push(row.map_err(storage)?);
                }
            }
            Ok(out)
        })
        .await
        .map_err(storage)?
    }

    /// Every partition of its topics, the group's committed offset against the newest record's; records this
    /// member has read but not committed still count.
    pub(crate) async fn lag(&self, group: &str) -> Result<Vec<crate::lag::Held>, LogError> {
        let conn = self.conn.clone();
        let partitions: Vec<(String, i32)> = self.positions.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
        let group = group.to_owned();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock();
            // Both by primary key: one index lookup per partition, however long the log.
            let mut high = conn
                .prepare_cached(
                    "SELECT COALESCE(MAX(offset) + 1, 0) FROM log_records WHERE topic = ?1 AND partition = ?2",
                )
                .map_err(storage)?;
            let mut committed = conn
                .prepare_cached(
                    "SELECT next_offset FROM log_consumer_offsets WHERE group_id=?1 AND topic=?2 AND partition=?3",
                )
                .map_err(storage)?;
            let mut out = Vec::with_capacity(partitions.len());
            for (topic, partition) in partitions {
                let end: i64 = high.query_row(params![topic, partition], |r| r.get(0)).map_err(storage)?;
                let next: Option<i64> =
                    committed.query_row(params![group, topic, partition], |r| r.get(0)).optional().map_err(storage)?;
                out.push(crate::lag::Held { topic, high: end, next: next.unwrap_or(0) });
            }
            Ok(out)
        })
        .await
        .map_err(storage)?
    }

    pub(crate) async fn commit(&mut self, records: &[LoggedRecord]) -> Result<(), LogError> {
        let positions = next_positions(records);
        let (reply, rx) = oneshot::channel();
        self.log.submit(Op::Commit { group: self.group.clone(), positions, reply })?;
        rx.await.map_err(|_| writer_gone())?
    }
}

struct Writer {
    conn: Connection,
    next_offsets: HashMap<(String, i32), i64>,
    partitions: HashMap<String, i32>,
    default_partitions: i32,
    max_batch: usize,
    ids: UniqueIds,
    /// Ids added by the open transaction, taken back if it rolls back.
    batch_ids: Vec<IdKey>,
}

enum Pending {
    Append(oneshot::Sender<Result<Appended, LogError>>, Result<Appended, LogError>),
    Done(oneshot::Sender<Result<(), LogError>>),
}

impl Writer {
    fn run(mut self, ops: Receiver<Op>, notify: watch::Sender<u64>) {
        let mut generation = 0u64;
        while let Ok(first) = ops.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            // The writer is the only way into the log: a panic in one batch refuses that batch (its callers hear
            // the writer failed and DingTalk retries) and the thread goes on with the next, from a clean slate.
            let wrote = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.commit_batch(batch))) {
                Ok(wrote) => wrote,
                Err(payload) => {
                    dingguard_telemetry::panicked("eventlog-writer", payload.as_ref());
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.forget_uncommitted();
                    false
                }
            };
            if wrote {
                generation += 1;
                notify.send_replace(generation);
            }
        }
    }

    /// Applies a batch in one transaction; replies go out only after the commit returned.
    fn commit_batch(&mut self, batch: Vec<Op>) -> bool {
        let mut pending = Vec::with_capacity(batch.len());
        let mut ops = batch.into_iter();
        let outcome = (|| -> Result<(), LogError> {
            self.conn.execute_batch("BEGIN IMMEDIATE").map_err(storage)?;
            for op in ops.by_ref() {
                // Each reply is parked before its statement runs, so a failure answers it with the real cause.
                match op {
                    Op::Append { topic, record, reply } => {
                        let result = self.append(&topic, record);
                        let failed = match &result {
                            Err(LogError::Storage(cause)) => Some(cause.clone()),
                            _ => None,
                        };
                        pending.push(Pending::Append(reply, result));
                        if let Some(cause) = failed {
                            // A statement failed inside the transaction: give up on the whole batch.
                            return Err(LogError::Storage(cause));
                        }
                    }
                    Op::EnsureTopics { topics, reply } => {
                        pending.push(Pending::Done(reply));
                        for topic in topics {
                            self.partitions_of(&topic)?;
                        }
                    }
                    Op::Probe { at_ms, reply } => {
                        pending.push(Pending::Done(reply));
                        self.conn
                            .prepare_cached(
                                "INSERT INTO log_meta (key, value) VALUES ('probe', ?1) \
                                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            )
                            .and_then(|mut stmt| stmt.execute(params![at_ms]))
                            .map_err(storage)?;
                    }
                    Op::Commit { group, positions, reply } => {
                        pending.push(Pending::Done(reply));
                        let mut stmt = self
                            .conn
                            .prepare_cached(
                                "INSERT INTO log_consumer_offsets (group_id, topic, partition, next_offset) \
                                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (group_id, topic, partition) \
                                 DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                            )
                            .map_err(storage)?;
                        for (topic, partition, offset) in positions {
                            stmt.execute(params![group, topic, partition, offset]).map_err(storage)?;
                        }
                    }
                }
            }
            self.conn.execute_batch("COMMIT").map_err(storage)
        })();
        match outcome {
            Ok(()) => {
                self.batch_ids.clear();
                self.ids.trim();
                for p in pending {
                    match p {
                        Pending::Append(reply, result) => drop(reply.send(result)),
                        Pending::Done(reply) => drop(reply.send(Ok(()))),
                    }
                }
                true
            }
            Err(error) => {
                tracing::error!(%error, "embedded log commit failed; the batch is refused");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.forget_uncommitted();
                let refused = || LogError::Storage(error.to_string());
                for p in pending {
                    match p {
                        Pending::Append(reply, _) => drop(reply.send(Err(refused()))),
                        Pending::Done(reply) => drop(reply.send(Err(refused()))),
                    }
                }
                // What the failure cut off never ran; it hears the same answer rather than a closed channel.
                for op in ops {
                    match op {
                        Op::Append { reply, .. } => drop(reply.send(Err(refused()))),
                        Op::EnsureTopics { reply, .. } | Op::Probe { reply, .. } | Op::Commit { reply, .. } => {
                            drop(reply.send(Err(refused())));
                        }
                    }
                }
                false
            }
        }
    }

    /// Offsets and ids handed out inside a transaction that did not commit were never written.
    fn forget_uncommitted(&mut self) {
        self.next_offsets.clear();
        self.partitions.clear();
        for key in self.batch_ids.drain(..) {
            self.ids.forget(&key);
        }
    }

    fn partitions_of(&mut self, topic: &str) -> Result<i32, LogError> {
        if let Some(&n) = self.partitions.get(topic) {
            return Ok(n);
        }
        self.conn
            .execute(
                "INSERT INTO log_topics (topic, partitions) VALUES (?1, ?2) ON CONFLICT (topic) DO NOTHING",
                params![topic, self.default_partitions],
            )
            .map_err(storage)?;
        let n: i32 = self
            .conn
            .query_row("SELECT partitions FROM log_topics WHERE topic = ?1", params![topic], |r| r.get(0))
            .map_err(storage)?;
        self.partitions.insert(topic.to_owned(), n);
        Ok(n)
    }

    fn append(&mut self, topic: &str, record: Record) -> Result<Appended, LogError> {
        let ce_id = record.ce_id().ok_or(LogError::MissingId)?;
        let hash = self.ids.hash(topic, ce_id);
        if let Some((partition, offset)) = self.existing(hash, topic, ce_id)? {
            return Ok(Appended { partition, offset, duplicate: true });
        }
        let partitions = self.partitions_of(topic)?;
        let partition = partition_for(record.key.as_bytes(), partitions);
        let slot = (topic.to_owned(), partition);
        let offset = match self.next_offsets.get(&slot) {
            Some(&o) => o,
            None => self
                .conn
                .query_row(
                    "SELECT COALESCE(MAX(offset) + 1, 0) FROM log_records WHERE topic = ?1 AND partition = ?2",
                    params![topic, partition],
                    |r| r.get(0),
                )
                .map_err(storage)?,
        };
        let headers = serde_json::to_string(&record.headers).map_err(storage)?;
        self.conn
            .prepare_cached(
                "INSERT INTO log_records (topic, partition, offset, ce_id, key, headers, value, appended_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![topic, partition, offset, ce_id, record.key, headers, &record.value[..], now_ms()])
            })
            .map_err(storage)?;
        let key = self.ids.insert(hash, topic, ce_id, self.conn.last_insert_rowid());
        self.batch_ids.push(key);
        self.next_offsets.insert(slot, offset + 1);
        Ok(Appended { partition, offset, duplicate: false })
    }

    /// Where the log already holds this id, comparing the stored id since another may share its hash.
    fn existing(&self, hash: u64, topic: &str, ce_id: &str) -> Result<Option<(i32, i64)>, LogError> {
        for rowid in self.ids.candidates(hash, topic, ce_id) {
            let row: Option<(String, Option<String>, i32, i64)> = self
                .conn
                .prepare_cached("SELECT topic, ce_id, partition, offset FROM log_records WHERE rowid = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row(params![rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
                })
                .map_err(storage)?;
            if let Some((stored_topic, Some(stored_id), partition, offset)) = row
                && stored_topic == topic
                && stored_id == ce_id
            {
                return Ok(Some((partition, offset)));
            }
        }
        Ok(None)
    }
}
