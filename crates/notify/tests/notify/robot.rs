use std::collections::BTreeSet;

use dingguard_model::Clock;
use dingguard_notify::{
    Delivered, Notifier, NotifyError, RetryPolicy, RobotConfig, RobotFailure, RobotNotifier, Secret,
    deliver_with_retry, deliver_with_retry_using,
};

use crate::standin::robot::{RobotStandIn, SECRET, TOKEN};
use crate::standin::{RecordingSleeper, alert, clock, shared};

fn config(standin: &RobotStandIn) -> RobotConfig {
    let mut config = RobotConfig::new(Secret::new(TOKEN), Secret::new(SECRET));
    config.base_url = standin.url.clone();
    config
}

/// Every alert id the stand-in received, individually or in a digest.
fn ids_received(standin: &RobotStandIn, total: usize) -> BTreeSet<String> {
    let texts: Vec<String> = standin.accepted().into_iter().map(|r| r.text).collect();
    (0..total).map(|i| alert(i).id).filter(|id| texts.iter().any(|t| t.contains(&format!("`{id}`")))).collect()
}

#[tokio::test]
async fn twenty_five_alerts_in_a_minute_become_twenty_messages_and_a_digest() {
    let clock = clock();
    let standin = RobotStandIn::start(clock.clone()).await;
    let robot = RobotNotifier::new(config(&standin), shared(&clock)).unwrap();
    let policy = RetryPolicy::default();

    let mut outcomes = Vec::new();
    for i in 0..25 {
        clock.advance_ms(1_000);
        outcomes.push(deliver_with_retry(&robot, &alert(i), &policy).await.unwrap());
    }
    assert!(outcomes[..20].iter().all(|o| *o == Delivered::Sent { receipt: None }));
    assert_eq!(outcomes[20..], [1, 2, 3, 4, 5].map(|pending| Delivered::Queued { pending }));
    assert_eq!(standin.accepted().len(), 20);
    assert_eq!(robot.pending(), 5);

    // Capacity returns when the first message of the burst leaves the window, not before.
    clock.advance_ms(35_999);
    assert_eq!(robot.flush().await.unwrap(), None);
    assert_eq!(robot.next_capacity_ms(), clock.now_ms() + 1);
    clock.advance_ms(1);
    assert_eq!(robot.flush().await.unwrap(), Some(Delivered::InDigest { alerts: 5 }));

    let accepted = standin.accepted();
    assert_eq!(accepted.len(), 21);
    let digest = &accepted[20];
    assert!(digest.title.starts_with("5 alerts since "), "{}", digest.title);
    for i in 20..25 {
        let n = alert(i);
        assert!(
            digest.text.contains(&format!("**{}** [{}]", n.severity, dingguard_notify::inert(&n.title))),
            "{}",
            digest.text
        );
    }
    assert_eq!(ids_received(&standin, 25).len(), 25, "no alert lost");
    assert!(standin.log.lock().refusals.is_empty(), "never over DingTalk's limit");
    assert_eq!(accepted[3].msg_uuid, alert(3).id);
    let stats = robot.stats().snapshot();
    assert_eq!((stats.successes, stats.deferred, stats.failures), (21, 5, 0));
    assert_eq!(robot.pending(), 0);
}

#[tokio::test]
async fn an_alert_after_the_burst_rides_along_with_the_held_ones() {
    let clock = clock();
    let standin = RobotStandIn::start(clock.clone()).await;
    let robot = RobotNotifier::new(config(&standin), shared(&clock)).unwrap();
    for i in 0..23 {
        robot.send(&alert(i)).await.unwrap();
    }
    clock.advance_ms(60_000);
    assert_eq!(robot.send(&alert(23)).await.unwrap(), Delivered::InDigest { alerts: 4 });
    assert_eq!(robot.send(&alert(24)).await.unwrap(), Delivered::Sent { receipt: None });
    assert_eq!(ids_received(&standin, 25).len(), 25);
}

#[tokio::test]
async fn a_server_side_throttle_holds_alerts_for_ten_minutes_instead_of_dropping_them() {
    let clock = clock();
    let standin = RobotStandIn::start(clock.clone()).await;
    // A budget above DingTalk's, as when another service posts through the same robot.
    let robot = RobotNotifier::new(RobotConfig { per_minute: 30, ..config(&standin) }, shared(&clock)).unwrap();
    let mut outcomes = Vec::new();
    for i in 0..25 {
        outcomes.push(robot.send(&alert(i)).await.unwrap());
    }
    assert_eq!(outcomes[20], Delivered::Queued { pending: 1 });
    assert_eq!(standin.log.lock().refusals, [410100], "held after the first refusal, not hammered");
    assert_eq!(robot.pending(), 5);

    clock.advance_ms(599_999);
    assert_eq!(robot.flush().await.unwrap(), None);
    clock.advance_ms(1);
    assert_eq!(robot.flush().await.unwrap(), Some(Delivered::InDigest { alerts: 5 }));
    let digest = standin.accepted().pop().unwrap();
    let first = digest.text.find("`alert-020`").unwrap();
    assert!(first < digest.text.find("`alert-024`").unwrap(), "the refused alert leads the digest");
    assert_eq!(ids_received(&standin, 25).len(), 25);
}

#[tokio::test]
async fn a_bad_token_is_not_retried() {
    let clock = clock();
    let standin = RobotStandIn::start(clock.clone()).await;
    let config = RobotConfig { access_token: Secret::new("revoked"), ..config(&standin) };
    let robot = RobotNotifier::new(config, shared(&clock)).unwrap();
    let sleeper = RecordingSleeper::default();
    let error = deliver_with_retry_using(&robot, &alert(0), &RetryPolicy::default(), &sleeper).await.unwrap_err();
    assert!(matches!(error, NotifyError::Robot { failure: RobotFailure::BadToken, code: 400101, .. }), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(standin.log.lock().requests, 1);
    assert!(sleeper.0.lock().is_empty());
    let stats = robot.stats().snapshot();
    assert_eq!((stats.attempts, stats.failures, stats.consecutive_failures), (1, 1, 1));
    assert!(stats.last_error.unwrap().contains("400101"));
}

#[tokio::test]
async fn a_wrong_secret_or_a_skewed_clock_fails_the_signature_check() {
    let clock = clock();
    let standin = RobotStandIn::start(clock.clone()).await;
    let wrong = RobotNotifier::new(RobotConfig { secret: Secret::new("SECwrong"), ..config(&standin) }, shared(&clock));
    let skewed = crate::standin::clock();
    skewed.advance_ms(3_600_001);
    let late = RobotNotifier::new(config(&standin), shared(&skewed)).unwrap();
    for robot in [wrong.unwrap(), late] {
        let error = robot.send(&alert(0)).await.unwrap_err();
        assert!(matches!(error, NotifyError::Robot { failure: RobotFailure::SecurityCheck, .. }), "{error}");
        assert!(!error.is_retryable());
        assert!(!error.to_string().contains("SEC"), "no secret in the message: {error}");
    }
    assert!(standin.accepted().is_empty());
}

#[tokio::test]
async fn two_503s_then_success() {
    let clock = clock();
    let standin = RobotStandIn::start(clock.clone()).await;
    standin.log.lock().fail_with.extend([503, 503]);
    let robot = RobotNotifier::new(config(&standin), shared(&clock)).unwrap();
    let sleeper = RecordingSleeper::default();
    let policy = RetryPolicy::default();
    let outcome = deliver_with_retry_using(&robot, &alert(7), &policy, &sleeper).await.unwrap();
    assert_eq!(outcome, Delivered::Sent { receipt: None });
    let waits = sleeper.0.lock().clone();
    assert_eq!(waits.len(), 2);
    assert!(waits[0] <= policy.ceiling(0) && waits[1] <= policy.ceiling(1), "{waits:?}");
    assert_eq!(standin.accepted().len(), 1);
    let stats = robot.stats().snapshot();
    assert_eq!((stats.attempts, stats.successes, stats.failures), (3, 1, 0));
}

#[tokio::test]
async fn an_unreachable_robot_is_retryable_and_its_url_stays_out_of_the_error() {
    let clock = clock();
    let mut config = RobotConfig::new(Secret::new(TOKEN), Secret::new(SECRET));
    // Bound then dropped, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.base_url = format!("http://127.0.0.1:{port}");
    let robot = RobotNotifier::new(config, shared(&clock)).unwrap();
    let error = robot.send(&alert(0)).await.unwrap_err();
    assert!(matches!(error, NotifyError::Transport(_)) && error.is_retryable(), "{error}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(TOKEN) && !shown.contains("sign="), "{shown}");
}
