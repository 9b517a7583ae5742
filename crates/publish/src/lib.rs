//! Publishes an outbox channel to a topic. Each item becomes one record under its own `ce_id`, so a re-send after
//! a crash is a duplicate consumers drop. All records of a pass are in flight at once so the log commits them
//! together, entering the log in the order they were queued, so the topic keeps the order of each entity's
//! changes; only what the log confirmed is marked delivered. Notification channels go out the same
//! way through a notifier ([`notify_due`]).

mod notify;

pub use notify::{Delivery, notify_due, retry_at};

/// How long an outbox item taken for sending is this sender's alone. Longer than a pass takes (sends are bounded
/// well under it), so two replicas never send one item; after it, an item whose sender died is sent by another.
pub const LEASE_MS: i64 = 60_000;

use dingguard_eventlog::EventLog;
use dingguard_model::Record;
use dingguard_store::{Channel, Store, StoreError};
use serde::de::DeserializeOwned;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub published: usize,
    pub failed: usize,
}

/// One pass over the due items of `channel`; `record_for` turns an item's message into its record, or `None` for
/// one that can never be published (parked for good, not retried), as is an item that is not a `T`.
pub async fn publish_due<T: DeserializeOwned>(
    store: &Store,
    log: &EventLog,
    channel: &Channel,
    topic: &str,
    now_ms: i64,
    record_for: impl Fn(T) -> Option<Record>,
) -> Result<Pass, StoreError> {
    let mut pass = Pass::default();
    let mut items = Vec::new();
    let mut appends = Vec::new();
    for item in store.claim_due(channel, now_ms, 200, now_ms + LEASE_MS).await? {
        let Some(record) = item.message::<T>().and_then(&record_for) else {
            store.failed(&item.id, "payload cannot become a record", i64::MAX).await?;
            pass.failed += 1;
            continue;
        };
        appends.push(log.append(topic, record));
        items.push(item);
    }
    // Polled first in queue order by this one task: each append enters the log's queue (the embedded writer's
    // channel, librdkafka's partition queue) on its first poll, so records of one key keep their order while the
    // whole pass is in flight at once and commits together.
    let results = futures_util::future::join_all(appends).await;
    let mut delivered = Vec::new();
    for (item, result) in items.into_iter().zip(results) {
        match result {
            Ok(_) => delivered.push(item.id),
            Err(error) => {
                pass.failed += 1;
                let backoff = 500i64.saturating_mul(1 << item.attempts.clamp(0, 10)).min(60_000);
                store.failed(&item.id, &error.to_string(), now_ms + backoff).await?;
            }
        }
    }
    store.delivered_many(&delivered, now_ms).await?;
    pass.published = delivered.len();
    Ok(pass)
}
