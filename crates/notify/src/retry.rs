//! Retries with capped exponential backoff and full jitter, and the per-notifier counters callers export.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;

use crate::{BoxFuture, Delivered, Notification, Notifier, NotifyError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    /// Attempts in all, the first included; 0 is treated as 1.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::from_millis(200), cap: Duration::from_secs(30), max_attempts: 5 }
    }
}

impl RetryPolicy {
    /// The longest wait before retry number `retry` (0 for the first retry): `min(cap, base · 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        self.base.saturating_mul(2u32.saturating_pow(retry)).min(self.cap)
    }

    /// Full jitter: uniform over `[0, ceiling]`, so many notifiers failing together do not retry in step.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.gen_range(0..=ceiling))
    }
}

/// Waiting as a dependency, so tests can record the backoff instead of sleeping through it.
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Counters for one notifier. A delivery is one call of [`deliver_with_retry`] (or one robot digest flush);
/// it makes one or more attempts and ends as a success, a deferral (held for a digest) or a failure.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    attempts: AtomicU64,
    successes: AtomicU64,
    deferred: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub attempts: u64,
    pub successes: u64,
    pub deferred: u64,
    pub failures: u64,
    /// Failed deliveries since the last success: a notifier that keeps failing shows here first.
    pub consecutive_failures: u64,
    pub last_error: Option<String>,
}

impl DeliveryStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            attempts: self.attempts.load(Ordering::Relaxed),
            successes: self.successes.load(Ordering::Relaxed),
            deferred: self.deferred.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive_failures.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }

    pub(crate) fn record_attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_outcome(&self, delivered: &Delivered) {
        if let Delivered::Queued { .. } = delivered {
            self.deferred.fetch_add(1, Ordering::Relaxed);
        } else {
            self.successes.fetch_add(1, Ordering::Relaxed);
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_failure(&self, error: &NotifyError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(error.to_string());
    }
}

/// Sends with retries, waiting on the tokio timer.
pub async fn deliver_with_retry<N: Notifier + ?Sized>(
    notifier: &N,
    notification: &Notification,
    policy: &RetryPolicy,
) -> Result<Delivered, NotifyError> {
    deliver_with_retry_using(notifier, notification, policy, &TokioSleeper).await
}

/// Sends with retries. Every notifier passes the notification id on as an idempotency key, so an attempt that
/// timed out after the far end took it does not make a second alert.
pub async fn deliver_with_retry_using<N: Notifier + ?Sized>(
    notifier: &N,
    notification: &Notification,
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
) -> Result<Delivered, NotifyError> {
    let max_attempts = policy.max_attempts.max(1);
    let stats = notifier.stats();
    let mut attempt = 1;
    loop {
        stats.record_attempt();
        match notifier.send(notification).await {
            Ok(delivered) => {
                stats.record_outcome(&delivered);
                return Ok(delivered);
            }
            Err(error) if error.is_retryable() && attempt < max_attempts => {
                let wait = policy.delay(attempt - 1, &mut rand::thread_rng());
                tracing::warn!(notifier = notifier.name(), id = %notification.id, attempt, ?wait, %error, "retrying");
                sleeper.sleep(wait).await;
                attempt += 1;
            }
            Err(error) => {
                stats.record_failure(&error);
                tracing::error!(notifier = notifier.name(), id = %notification.id, attempt, %error, "giving up");
                return Err(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.ceiling(0), Duration::from_millis(200));
        assert_eq!(policy.ceiling(1), Duration::from_millis(400));
        assert_eq!(policy.ceiling(7), Duration::from_millis(25_600));
        assert_eq!(policy.ceiling(8), Duration::from_secs(30));
        assert_eq!(policy.ceiling(60), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_the_ceiling() {
        let policy = RetryPolicy::default();
        let mut rng = rand::thread_rng();
        for retry in 0..12 {
            for _ in 0..50 {
                assert!(policy.delay(retry, &mut rng) <= policy.ceiling(retry));
            }
        }
        let zero = RetryPolicy { base: Duration::ZERO, ..policy };
        assert_eq!(zero.delay(3, &mut rng), Duration::ZERO);
    }

    #[test]
    fn stats_track_streaks_of_failure() {
        let stats = DeliveryStats::default();
        stats.record_failure(&NotifyError::HttpStatus { status: 503 });
        stats.record_failure(&NotifyError::HttpStatus { status: 502 });
        let snap = stats.snapshot();
        assert_eq!((snap.failures, snap.consecutive_failures), (2, 2));
        assert_eq!(snap.last_error.as_deref(), Some("far end answered HTTP 502"));
        stats.record_outcome(&Delivered::Queued { pending: 1 });
        assert_eq!(stats.snapshot().consecutive_failures, 2);
        stats.record_outcome(&Delivered::Sent { receipt: None });
        let snap = stats.snapshot();
        assert_eq!((snap.successes, snap.deferred, snap.consecutive_failures), (1, 1, 0));
    }
}
