//! A record on the event log, in CloudEvents' Kafka binary mode: the value is the event data and the attributes
//! travel as `ce_*` headers.

use bytes::Bytes;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Header names, spelled as the CloudEvents Kafka binding spells them.
pub mod header {
    pub const SPECVERSION: &str = "ce_specversion";
    pub const ID: &str = "ce_id";
    pub const SOURCE: &str = "ce_source";
    pub const TYPE: &str = "ce_type";
    pub const TIME: &str = "ce_time";
    pub const SUBJECT: &str = "ce_subject";
    pub const CORPID: &str = "corpid";
    pub const CONTENT_TYPE: &str = "content-type";
    /// `received` when the payload stated no believable time and `ce_time` is when the event reached us.
    pub const TIME_SOURCE: &str = "timesource";
    /// How the event reached us: [`crate::Origin`].
    pub const ORIGIN: &str = "source";

    /// Dead letters: where the record came from and why it was parked, for `dingguard dlq`.
    pub mod dlq {
        pub const ORIGIN_TOPIC: &str = "dlq_origin_topic";
        pub const ORIGIN_PARTITION: &str = "dlq_origin_partition";
        pub const ORIGIN_OFFSET: &str = "dlq_origin_offset";
        pub const ORIGIN_KEY: &str = "dlq_origin_key";
        /// The record's own headers, as a JSON list of pairs.
        pub const ORIGIN_HEADERS: &str = "dlq_origin_headers";
        pub const CONSUMER: &str = "dlq_consumer";
        pub const SERVICE: &str = "dlq_service";
        pub const ERROR: &str = "dlq_error";
        pub const FAILED_AT: &str = "dlq_failed_at";
        /// How many times it failed; a redriven record carries the count so a second failure adds to it.
        pub const ATTEMPTS: &str = "dlq_attempts";
        pub const ORIGINAL_TYPE: &str = "dlq_original_type";
        /// On a redriven record: the dead letter's `ce_id` it was replayed from.
        pub const REDRIVEN_FROM: &str = "dlq_redriven_from";
    }
}

/// How an event reached dingguard. Nothing downstream needs to know more than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// DingTalk's HTTP push.
    Push,
    /// DingTalk's Stream mode.
    Stream,
    /// DingTalk's list of pushes that failed, read back.
    FailedPush,
    /// The Exclusive DingTalk file audit log, polled.
    FileAudit,
    /// DingTalk's address book, synced.
    Directory,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Stream => "stream",
            Self::FailedPush => "failed-push",
            Self::FileAudit => "file-audit",
            Self::Directory => "directory",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The entity whose events must stay in order; the log partitions by it.
    pub key: String,
    pub headers: Vec<(String, String)>,
    pub value: Bytes,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn ce_id(&self) -> Option<&str> {
        self.header(header::ID)
    }

    /// Says how the event reached us, in place of what was said before.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.headers.retain(|(k, _)| k != header::ORIGIN);
        self.headers.push((header::ORIGIN.to_owned(), origin.as_str().to_owned()));
        self
    }
}

/// Milliseconds since the epoch as RFC 3339. A time RFC 3339 cannot write (before year 0 or after 9999) is
/// written as the epoch rather than failing: callers pass times already judged plausible.
pub fn rfc3339_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// An RFC 3339 time (a record's `ce_time`) as milliseconds since the epoch.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}
