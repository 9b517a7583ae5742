use dingguard_notify::{
    Delivered, Notifier, NotifyError, RetryPolicy, WebhookConfig, WebhookNotifier, WebhookSecret,
    deliver_with_retry_using,
};

use crate::standin::hook::HookStandIn;
use crate::standin::{RecordingSleeper, alert, clock, shared};

fn notifier(url: &str, secret: &str, clock: &dingguard_model::ManualClock) -> WebhookNotifier {
    let config = WebhookConfig::new(url, WebhookSecret::parse(secret).unwrap());
    WebhookNotifier::new(config, shared(clock)).unwrap()
}

#[tokio::test]
async fn the_receiver_verifies_what_was_sent() {
    let clock = clock();
    let secret = WebhookSecret::generate();
    let receiver = HookStandIn::start(&secret, clock.clone()).await;
    let hook = notifier(&receiver.url, &secret, &clock);
    assert_eq!(hook.send(&alert(3)).await.unwrap(), Delivered::Sent { receipt: None });

    let log = receiver.log.lock();
    let (headers, body) = &log.accepted[0];
    assert_eq!(headers["webhook-id"], "alert-003");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["id"], "alert-003");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["link"], "https://dingguard.example/alerts/alert-003");
    assert!(body.get("recipients").is_none(), "DingTalk user ids stay inside");
}

#[tokio::test]
async fn two_503s_then_success() {
    let clock = clock();
    let secret = WebhookSecret::generate();
    let receiver = HookStandIn::start(&secret, clock.clone()).await;
    receiver.log.lock().unavailable_for = 2;
    let hook = notifier(&receiver.url, &secret, &clock);
    let sleeper = RecordingSleeper::default();
    let outcome = deliver_with_retry_using(&hook, &alert(1), &RetryPolicy::default(), &sleeper).await.unwrap();
    assert_eq!(outcome, Delivered::Sent { receipt: None });
    assert_eq!(sleeper.0.lock().len(), 2);
    let log = receiver.log.lock();
    assert_eq!((log.requests, log.accepted.len()), (3, 1));
    let stats = hook.stats().snapshot();
    assert_eq!((stats.attempts, stats.successes, stats.failures, stats.consecutive_failures), (3, 1, 0, 0));
}

#[tokio::test]
async fn a_wrong_key_or_a_stale_clock_is_refused_and_not_retried() {
    let clock = clock();
    let secret = WebhookSecret::generate();
    let receiver = HookStandIn::start(&secret, clock.clone()).await;
    let wrong_key = notifier(&receiver.url, &WebhookSecret::generate(), &clock);
    let stale = crate::standin::clock();
    stale.advance_ms(-301_000);
    let stale_clock = notifier(&receiver.url, &secret, &stale);
    let sleeper = RecordingSleeper::default();
    for hook in [wrong_key, stale_clock] {
        let error = deliver_with_retry_using(&hook, &alert(0), &RetryPolicy::default(), &sleeper).await.unwrap_err();
        assert!(matches!(error, NotifyError::HttpStatus { status: 401 }), "{error}");
        assert_eq!(hook.stats().snapshot().attempts, 1);
    }
    assert!(sleeper.0.lock().is_empty());
    let log = receiver.log.lock();
    assert_eq!(log.rejected[0], "no webhook signature matches");
    assert!(log.rejected[1].contains("more than 300 s"), "{}", log.rejected[1]);
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let clock = clock();
    let secret = WebhookSecret::generate();
    let receiver = HookStandIn::start(&secret, clock.clone()).await;
    let key = WebhookSecret::parse(&secret).unwrap();
    let timestamp = dingguard_model::Clock::now_ms(&clock) / 1000;
    let signature = dingguard_notify::webhook_sign(&key, "alert-1", timestamp, br#"{"id":"alert-1"}"#);
    dingguard_notify::install_crypto_provider();
    let response = reqwest::Client::new()
        .post(&receiver.url)
        .header("webhook-id", "alert-1")
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(r#"{"id":"alert-1","severity":"low"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(receiver.log.lock().rejected, ["no webhook signature matches"]);
}
