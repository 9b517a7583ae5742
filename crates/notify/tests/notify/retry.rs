use std::collections::VecDeque;
use std::time::Duration;

use dingguard_notify::{
    BoxFuture, Delivered, DeliveryStats, Notification, Notifier, NotifyError, RetryPolicy, deliver_with_retry_using,
};
use parking_lot::Mutex;

use crate::standin::{RecordingSleeper, alert};

/// Answers from a script, so the policy can be tested without a network.
struct Scripted {
    script: Mutex<VecDeque<Result<Delivered, NotifyError>>>,
    stats: DeliveryStats,
}

impl Scripted {
    fn new(script: impl IntoIterator<Item = Result<Delivered, NotifyError>>) -> Self {
        Self { script: Mutex::new(script.into_iter().collect()), stats: DeliveryStats::default() }
    }
}

impl Notifier for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn send<'a>(&'a self, _: &'a Notification) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        let next = self.script.lock().pop_front().expect("script long enough");
        Box::pin(async move { next })
    }

    fn stats(&self) -> &DeliveryStats {
        &self.stats
    }
}

fn unavailable() -> Result<Delivered, NotifyError> {
    Err(NotifyError::HttpStatus { status: 503 })
}

#[tokio::test]
async fn retryable_errors_stop_at_max_attempts_with_growing_ceilings() {
    let notifier = Scripted::new((0..4).map(|_| unavailable()));
    let policy = RetryPolicy { base: Duration::from_millis(200), cap: Duration::from_millis(500), max_attempts: 4 };
    let sleeper = RecordingSleeper::default();
    let error = deliver_with_retry_using(&notifier, &alert(0), &policy, &sleeper).await.unwrap_err();
    assert!(matches!(error, NotifyError::HttpStatus { status: 503 }));
    let waits = sleeper.0.lock().clone();
    assert_eq!(waits.len(), 3);
    for (retry, wait) in (0..).zip(&waits) {
        assert!(*wait <= policy.ceiling(retry), "{wait:?} over {:?}", policy.ceiling(retry));
    }
    assert_eq!(policy.ceiling(2), Duration::from_millis(500));
    let stats = notifier.stats().snapshot();
    assert_eq!((stats.attempts, stats.failures, stats.consecutive_failures), (4, 1, 1));
    assert_eq!(stats.last_error.as_deref(), Some("far end answered HTTP 503"));
}

#[tokio::test]
async fn permanent_errors_end_at_once_and_a_success_ends_the_failure_streak() {
    let notifier = Scripted::new([
        Err(NotifyError::HttpStatus { status: 400 }),
        Err(NotifyError::InvalidNotification("x")),
        unavailable(),
        Ok(Delivered::Sent { receipt: None }),
    ]);
    let sleeper = RecordingSleeper::default();
    let policy = RetryPolicy { base: Duration::ZERO, ..RetryPolicy::default() };
    // Held as a trait object, as the service holds its configured notifiers.
    let boxed: Box<dyn Notifier> = Box::new(notifier);
    for _ in 0..2 {
        deliver_with_retry_using(boxed.as_ref(), &alert(0), &policy, &sleeper).await.unwrap_err();
    }
    assert_eq!(boxed.stats().snapshot().consecutive_failures, 2);
    deliver_with_retry_using(boxed.as_ref(), &alert(0), &policy, &sleeper).await.unwrap();
    let stats = boxed.stats().snapshot();
    assert_eq!((stats.attempts, stats.successes, stats.failures, stats.consecutive_failures), (4, 1, 2, 0));
    assert_eq!(*sleeper.0.lock(), [Duration::ZERO]);
}
