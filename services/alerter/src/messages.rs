//! What the alerter queues in the outbox for its relay: written by the pipeline in the transaction that judged
//! the event, read back by the relay to publish. Both sides use these types, so neither reads the other by key.

use dingguard_model::Severity;
use serde::{Deserialize, Serialize};

/// An alert raised, as the alerts topic carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRaised {
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub pdpa: Vec<String>,
    pub pdpa_note: String,
    pub corp_id: Option<String>,
    /// The grouping key of a threshold or sequence rule.
    pub key: Option<String>,
    pub count: u64,
    pub event_id: String,
    pub event_ids: Vec<String>,
    pub event_type: String,
    pub occurred_at_ms: i64,
    pub raised_at_ms: i64,
    /// Judged later than the history it needs reaches back: see `event.late`.
    #[serde(default)]
    pub late: bool,
}

/// An event that cannot be judged, with where it came from, for the dead-letter topic and `dlq redrive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub ce_id: String,
    pub ce_type: Option<String>,
    pub origin_topic: String,
    pub origin_partition: i32,
    pub origin_offset: i64,
    pub consumer: String,
    pub error: String,
    /// The record's bytes, as text.
    pub value: String,
    /// The record's key and headers, so a redrive puts it back as it was.
    #[serde(default)]
    pub origin_key: Option<String>,
    #[serde(default)]
    pub origin_headers: Vec<(String, String)>,
    #[serde(default)]
    pub failed_at_ms: i64,
    /// How many times it was judged and failed: one, plus one for every redrive that failed again.
    #[serde(default)]
    pub attempts: u32,
}
