//! The event log: an ordered, durable, partitioned record store with consumer groups.
//!
//! Two back ends sit behind one interface and pass one contract suite: the embedded SQLite log for a single box
//! (the default) and Kafka for clusters. Code above the log never learns which one it talks to.

mod embedded;
mod kafka;
mod lag;
mod unique_ids;

use std::time::Duration;

use bytes::Bytes;
use dingguard_model::Record;

pub use embedded::{Durability, EmbeddedLog, EmbeddedOptions};
pub use kafka::{KafkaLog, KafkaOptions};
pub use lag::{LAG_EVERY, LagGauges};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log cannot be reached or refused the write; the caller may retry later.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    #[error("event log did not confirm within {0:?}")]
    Timeout(Duration),
    #[error("event log storage failed: {0}")]
    Storage(String),
    #[error("event log configuration is invalid: {0}")]
    Config(String),
    #[error("consumer group `{0}` already has a member in this process")]
    GroupBusy(String),
    #[error("record has no ce_id header")]
    MissingId,
    /// The log can no longer be written by this process: only a restart brings it back.
    #[error("event log writer has stopped")]
    Stopped,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: i32,
    pub offset: i64,
    /// True when the log already held a record with the same `ce_id` among its newest records (embedded back end
    /// only; Kafka always reports false and consumers deduplicate).
    pub duplicate: bool,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoggedRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "value_as_text")]
    pub value: Bytes,
}

fn value_as_text<S: serde::Serializer>(value: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(value))
}

/// A topic as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicShape {
    pub topic: String,
    pub partitions: i32,
    /// The fewest replicas any of its partitions has; `None` on the embedded log, which has none.
    pub replicas: Option<i32>,
}

impl TopicShape {
    /// Why the topic cannot serve as configured: fewer partitions than asked (keys would not spread as the
    /// consumers expect) or fewer replicas than asked (one broker's loss would lose what it alone holds).
    pub fn mismatch(&self, partitions: i32, replicas: Option<i32>) -> Option<String> {
        let mut why = Vec::new();
        if self.partitions < partitions {
            why.push(format!("{} partitions, fewer than the {partitions} configured", self.partitions));
        }
        if let (Some(has), Some(wanted)) = (self.replicas, replicas)
            && has < wanted
        {
            why.push(format!("replication {has}, below the {wanted} configured"));
        }
        (!why.is_empty()).then(|| format!("topic {} has {}", self.topic, why.join(" and ")))
    }
}

impl LoggedRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The record's `ce_time` in milliseconds: the event's own time, or when it was received where the payload
    /// stated none worth believing. A consumer judging the record later passes this, never its own clock, as the
    /// time an event without one was received.
    pub fn time_ms(&self) -> Option<i64> {
        self.header(dingguard_model::header::TIME).and_then(dingguard_model::parse_rfc3339_ms)
    }
}

/// One interface over both back ends.
#[derive(Clone)]
pub enum EventLog {
    Embedded(EmbeddedLog),
    Kafka(KafkaLog),
}

impl EventLog {
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Kafka(_) => "kafka",
        }
    }

    /// Creates the topics if they do not exist yet.
    pub async fn ensure_topics(&self, topics: &[&str]) -> Result<(), LogError> {
        match self {
            Self::Embedded(log) => log.ensure_topics(topics).await,
            Self::Kafka(log) => log.ensure_topics(topics).await,
        }
    }

    /// How the topics that exist are laid out; a topic that does not exist is left out.
    pub async fn describe_topics(&self, topics: &[&str]) -> Result<Vec<TopicShape>, LogError> {
        match self {
            Self::Embedded(log) => log.describe_topics(topics).await,
            Self::Kafka(log) => log.describe_topics(topics).await,
        }
    }

    /// Resolves once the record is durable: committed to disk, or acknowledged by all in-sync Kafka replicas.
    pub async fn append(&self, topic: &str, record: Record) -> Result<Appended, LogError> {
        match self {
            Self::Embedded(log) => log.append(topic, record).await,
            Self::Kafka(log) => log.append(topic, record).await,
        }
    }

    /// Whether the log can take writes now; used by readiness and to fail fast while it cannot.
    pub async fn check(&self) -> Result<(), LogError> {
        match self {
            Self::Embedded(log) => log.check().await,
            Self::Kafka(log) => log.check().await,
        }
    }

    /// Every record of a topic from its beginning, partition by partition.
    pub async fn read_all(&self, topic: &str) -> Result<Vec<LoggedRecord>, LogError> {
        match self {
            Self::Embedded(log) => log.read_all(topic).await,
            Self::Kafka(log) => log.read_all(topic).await,
        }
    }

    /// Joins a consumer group on the topics, resuming from the group's committed offsets.
    pub async fn consumer(&self, group: &str, topics: &[&str]) -> Result<Consumer, LogError> {
        let inner = match self {
            Self::Embedded(log) => Member::Embedded(log.consumer(group, topics)?),
            Self::Kafka(log) => Member::Kafka(log.consumer(group, topics)?),
        };
        Ok(Consumer {
            inner,
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            gauges: self.lag_gauges(),
            measured: None,
        })
    }

    /// The consumer-lag gauges every consumer of this log (and of its clones) reports into.
    pub fn lag_gauges(&self) -> LagGauges {
        match self {
            Self::Embedded(log) => log.lag_gauges(),
            Self::Kafka(log) => log.lag_gauges(),
        }
    }

    /// Waits for in-flight writes before shutdown.
    pub async fn flush(&self, timeout: Duration) -> Result<(), LogError> {
        match self {
            Self::Embedded(_) => Ok(()),
            Self::Kafka(log) => log.flush(timeout).await,
        }
    }
}

/// One member of a consumer group.
pub struct Consumer {
    inner: Member,
    group: String,
    topics: Vec<String>,
    gauges: LagGauges,
    /// When [`Consumer::report_lag`] last measured.
    measured: Option<tokio::time::Instant>,
}

enum Member {
    Embedded(embedded::EmbeddedConsumer),
    Kafka(kafka::KafkaConsumer),
}

impl Consumer {
    /// Up to `max` records, waiting at most `wait` for the first.
    pub async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<LoggedRecord>, LogError> {
        match &mut self.inner {
            Member::Embedded(c) => c.poll(max, wait).await,
            Member::Kafka(c) => c.poll(max, wait).await,
        }
    }

    /// Stores the group's position past these records; call only once their effects are durable.
    pub async fn commit(&mut self, records: &[LoggedRecord]) -> Result<(), LogError> {
        match &mut self.inner {
            Member::Embedded(c) => c.commit(records).await,
            Member::Kafka(c) => c.commit(records).await,
        }
    }

    /// How many records the group has not committed yet on the partitions this member holds, per topic it
    /// consumes (0 for a topic it holds no partition of): the high watermark less the committed offset, or less
    /// the low watermark where the group never committed. Each call asks the log (on Kafka a round trip per
    /// partition); consumer loops call [`Consumer::report_lag`] instead.
    pub async fn lag(&self) -> Result<Vec<(String, i64)>, LogError> {
        let held = match &self.inner {
            Member::Embedded(c) => c.lag(&self.group).await?,
            Member::Kafka(c) => c.lag(lag::TIMEOUT).await?,
        };
        Ok(lag::per_topic(&self.topics, held))
    }

    /// Measures [`Consumer::lag`] into `dingguard_consumer_lag_records` at most once every [`LAG_EVERY`], within a
    /// bounded time, so a consumer loop may call it after every poll. A measurement that fails is logged and
    /// leaves the gauges as they were: the lag is for watching, never a reason to stop consuming.
    pub async fn report_lag(&mut self) {
        let now = tokio::time::Instant::now();
        if self.measured.is_some_and(|at| now < at + LAG_EVERY) {
            return;
        }
        self.measured = Some(now);
        match tokio::time::timeout(lag::TIMEOUT, self.lag()).await {
            Ok(Ok(lag)) => {
                for (topic, records) in lag {
                    self.gauges.set(&self.group, &topic, records);
                }
            }
            Ok(Err(error)) => tracing::warn!(%error, group = %self.group, "consumer lag not measured"),
            Err(_) => tracing::warn!(group = %self.group, timeout = ?lag::TIMEOUT, "consumer lag not measured in time"),
        }
    }
}

/// The position after the last of `records` in each topic partition: what a consumer group commits.
pub(crate) fn next_positions(records: &[LoggedRecord]) -> Vec<(String, i32, i64)> {
    let mut next: std::collections::HashMap<(&str, i32), i64> = std::collections::HashMap::new();
    for r in records {
        let entry = next.entry((r.topic.as_str(), r.partition)).or_insert(r.offset + 1);
        *entry = (*entry).max(r.offset + 1);
    }
    next.into_iter().map(|((t, p), o)| (t.to_owned(), p, o)).collect()
}

/// Kafka's default partitioner (murmur2 of the key, sign bit cleared), so both back ends place a key alike.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    let positive = murmur2(key) & 0x7fff_ffff;
    i32::try_from(positive % u32::try_from(partitions.max(1)).expect("positive")).expect("fits")
}

fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h = SEED ^ u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Values from Kafka's own Utils.murmur2 test.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58897971);
        assert_eq!(murmur2(b"abc") as i32, 479470107);
        assert!((0..4).contains(&partition_for(b"corp/user/u1", 4)));
    }
}
