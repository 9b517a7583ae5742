//! Delivers an outbox channel of notifications through one notifier. Each item is marked delivered only after
//! the far end accepted it; a refusal that a retry cannot mend is parked for good and logged.

use dingguard_notify::{Notification, Notifier, NotifyError};
use dingguard_store::{Channel, Store, StoreError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
}

/// When to try a notification again: doubling from a second up to five minutes, or never (`i64::MAX`) for a
/// refusal that a retry cannot mend.
pub fn retry_at(error: &NotifyError, attempts: i64, now_ms: i64) -> i64 {
    if error.is_retryable() {
        now_ms + 1_000i64.saturating_mul(1 << attempts.clamp(0, 8)).min(300_000)
    } else {
        i64::MAX
    }
}

/// One pass over the due notifications of `channel`. A retryable failure ends the pass: the far end is likely
/// down for the items behind it too.
pub async fn notify_due(
    store: &Store,
    channel: &Channel,
    notifier: &dyn Notifier,
    now_ms: i64,
) -> Result<Delivery, StoreError> {
    let mut pass = Delivery::default();
    let started = std::time::Instant::now();
    let mut items = store.claim_due(channel, now_ms, 50, now_ms + crate::LEASE_MS).await?.into_iter();
    while let Some(item) = items.next() {
        // Well inside the lease, or another replica may take what this one is still sending.
        if started.elapsed() > std::time::Duration::from_millis(crate::LEASE_MS as u64 / 2) {
            let rest: Vec<String> = std::iter::once(item.id).chain(items.map(|i| i.id)).collect();
            store.release(&rest, now_ms).await?;
            break;
        }
        let Some(note) = item.message::<Notification>() else {
            store.failed(&item.id, "payload is not a notification", i64::MAX).await?;
            pass.failed += 1;
            continue;
        };
        match notifier.send(&note).await {
            Ok(_) => {
                store.delivered(&item.id, now_ms).await?;
                pass.sent += 1;
            }
            Err(error) => {
                pass.failed += 1;
                let retry_at = retry_at(&error, item.attempts, now_ms);
                if retry_at == i64::MAX {
                    tracing::error!(%error, notifier = notifier.name(), item = %item.id, "notification refused for good");
                }
                store.failed(&item.id, &error.to_string(), retry_at).await?;
                if error.is_retryable() {
                    // The rest go back to the queue as they were, for the next pass.
                    let rest: Vec<String> = items.map(|i| i.id).collect();
                    store.release(&rest, now_ms).await?;
                    break;
                }
            }
        }
    }
    Ok(pass)
}
