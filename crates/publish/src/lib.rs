//! Publishes an outbox channel to a topic. Each item becomes one record under its own `ce_id`, so a re-send after
//! a crash is a duplicate consumers drop. Records of different keys are in flight at once so the log commits them
//! together; records of one key go one after another, in the order they were queued, so the topic keeps the order
//! of each entity's changes; only what the log confirmed is marked delivered. Notification channels go out the same
//! way through a notifier ([`notify_due`]).

mod notify;

pub use notify::{Delivery, notify_due, retry_at};

use dingguard_eventlog::EventLog;
use dingguard_model::Record;
use dingguard_store::{OutboxItem, Store, StoreError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub published: usize,
    pub failed: usize,
}

/// One pass over the due items of `channel`; `record_for` turns an item's payload into its record, or `None` for
/// a payload that can never be published (parked for good, not retried). When a record of a key fails, the ones
/// queued after it under the same key wait with it, so a retry cannot overtake them.
pub async fn publish_due(
    store: &Store,
    log: &EventLog,
    channel: &str,
    topic: &str,
    now_ms: i64,
    record_for: impl Fn(&str) -> Option<Record>,
) -> Result<Pass, StoreError> {
    let mut pass = Pass::default();
    let mut by_key: Vec<(String, Vec<(OutboxItem, Record)>)> = Vec::new();
    for item in store.due(channel, now_ms, 200).await? {
        let Some(record) = record_for(&item.payload) else {
            store.failed(&item.id, "payload cannot become a record", i64::MAX).await?;
            pass.failed += 1;
            continue;
        };
        match by_key.iter_mut().find(|(key, _)| *key == record.key) {
            Some((_, queue)) => queue.push((item, record)),
            None => by_key.push((record.key.clone(), vec![(item, record)])),
        }
    }
    let mut appends = tokio::task::JoinSet::new();
    for (_, queue) in by_key {
        let (log, topic) = (log.clone(), topic.to_owned());
        appends.spawn(async move {
            let mut delivered = Vec::new();
            let mut items = queue.into_iter();
            for (item, record) in items.by_ref() {
                if let Err(error) = log.append(&topic, record).await {
                    let held: Vec<OutboxItem> = items.map(|(held, _)| held).collect();
                    return (delivered, Some((item, error.to_string(), held)));
                }
                delivered.push(item.id);
            }
            (delivered, None)
        });
    }
    let mut delivered = Vec::new();
    while let Some(joined) = appends.join_next().await {
        let Ok((done, failure)) = joined else { continue };
        delivered.extend(done);
        if let Some((item, error, held)) = failure {
            let backoff = 500i64.saturating_mul(1 << item.attempts.clamp(0, 10)).min(60_000);
            store.failed(&item.id, &error, now_ms + backoff).await?;
            pass.failed += 1;
            for later in held {
                store.failed(&later.id, "waiting behind an earlier record of the same key", now_ms + backoff).await?;
            }
        }
    }
    store.delivered_many(&delivered, now_ms).await?;
    pass.published = delivered.len();
    Ok(pass)
}
