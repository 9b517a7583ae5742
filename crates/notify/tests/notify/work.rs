use dingguard_notify::{
    Delivered, Notification, Notifier, NotifyError, RetryPolicy, Secret, WorkConfig, WorkNotifier, deliver_with_retry,
};

use crate::standin::work::{AGENT_ID, APP_KEY, APP_SECRET, WorkStandIn};
use crate::standin::{alert, clock, shared};

fn notifier(standin: &WorkStandIn, clock: &dingguard_model::ManualClock) -> WorkNotifier {
    let mut config = WorkConfig::new(APP_KEY, Secret::new(APP_SECRET), AGENT_ID);
    config.base_url = standin.url.clone();
    WorkNotifier::new(config, shared(clock)).unwrap()
}

#[tokio::test]
async fn an_action_card_reaches_the_listed_users_with_the_alert_id_in_its_text() {
    let clock = clock();
    let standin = WorkStandIn::start().await;
    let work = notifier(&standin, &clock);
    let outcome = work.send(&alert(4)).await.unwrap();
    assert_eq!(outcome, Delivered::Sent { receipt: Some("701".to_owned()) });

    let sent = standin.sends();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].agent_id, sent[0].userid_list.as_str()), (AGENT_ID, "u1,u2"));
    let card = &sent[0].msg["action_card"];
    assert_eq!(sent[0].msg["msgtype"], "action_card");
    assert_eq!(card["single_title"], "查看详情");
    assert_eq!(card["single_url"], "https://dingguard.example/alerts/alert-004");
    assert!(card["markdown"].as_str().unwrap().contains("`alert-004`"));

    let plain = work.send(&Notification { link: None, ..alert(5) }).await.unwrap();
    assert_eq!(plain, Delivered::Sent { receipt: Some("702".to_owned()) });
    let msg = &standin.sends()[1].msg;
    assert_eq!(msg["msgtype"], "markdown");
    assert!(msg["markdown"]["text"].as_str().unwrap().contains("`alert-005`"));
}

#[tokio::test]
async fn the_token_is_cached_until_shortly_before_it_expires() {
    let clock = clock();
    let standin = WorkStandIn::start().await;
    let work = notifier(&standin, &clock);
    for i in 0..3 {
        work.send(&alert(i)).await.unwrap();
    }
    assert_eq!(standin.log.lock().token_requests, 1);
    clock.advance_ms(6_899_999);
    work.send(&alert(3)).await.unwrap();
    assert_eq!(standin.log.lock().token_requests, 1);
    clock.advance_ms(1);
    work.send(&alert(4)).await.unwrap();
    assert_eq!(standin.log.lock().token_requests, 2);
    assert_eq!(standin.sends().last().unwrap().token, "tok-2");
}

#[tokio::test]
async fn a_refused_token_is_replaced_and_the_send_tried_once_more() {
    let clock = clock();
    let standin = WorkStandIn::start().await;
    let work = notifier(&standin, &clock);
    work.send(&alert(0)).await.unwrap();
    standin.revoke_all();
    let outcome = deliver_with_retry(&work, &alert(1), &RetryPolicy::default()).await.unwrap();
    assert!(matches!(outcome, Delivered::Sent { .. }));
    let log = standin.log.lock();
    assert_eq!((log.token_requests, log.refused_tokens, log.sends.len()), (2, 1, 2));
    assert_eq!(log.sends[1].token, "tok-2");
    assert_eq!(work.stats().snapshot().attempts, 1, "the refresh is part of one attempt");
}

#[tokio::test]
async fn a_token_refused_again_after_refresh_is_an_error_not_a_loop() {
    let clock = clock();
    let standin = WorkStandIn::start().await;
    standin.log.lock().refuse_every_token = true;
    let work = notifier(&standin, &clock);
    let error = deliver_with_retry(&work, &alert(0), &RetryPolicy::default()).await.unwrap_err();
    assert!(matches!(error, NotifyError::DingTalk { errcode: 40014, .. }), "{error}");
    let log = standin.log.lock();
    assert_eq!((log.token_requests, log.refused_tokens), (2, 2));
}

#[tokio::test]
async fn a_wrong_app_secret_is_not_retried() {
    let clock = clock();
    let standin = WorkStandIn::start().await;
    let mut config = WorkConfig::new(APP_KEY, Secret::new("wrong"), AGENT_ID);
    config.base_url = standin.url.clone();
    let work = WorkNotifier::new(config, shared(&clock)).unwrap();
    let error = deliver_with_retry(&work, &alert(0), &RetryPolicy::default()).await.unwrap_err();
    assert!(matches!(error, NotifyError::DingTalk { api: "gettoken", errcode: 40089, .. }), "{error}");
    assert!(!error.to_string().contains("wrong"), "no secret in the message: {error}");
    assert_eq!(standin.log.lock().token_requests, 1);
}

#[tokio::test]
async fn recipients_beyond_one_hundred_go_in_a_second_call() {
    let clock = clock();
    let standin = WorkStandIn::start().await;
    let work = notifier(&standin, &clock);
    let recipients: Vec<String> = (0..150).map(|i| format!("user{i}")).collect();
    let outcome = work.send(&Notification { recipients, ..alert(9) }).await.unwrap();
    assert_eq!(outcome, Delivered::Sent { receipt: Some("701,702".to_owned()) });
    let sent = standin.sends();
    assert_eq!(sent[0].userid_list.split(',').count(), 100);
    assert_eq!(sent[1].userid_list.split(',').count(), 50);
    assert!(sent[1].userid_list.starts_with("user100,"));

    let none = work.send(&Notification { recipients: vec![], ..alert(10) }).await.unwrap_err();
    assert!(matches!(none, NotifyError::InvalidNotification(_)));
}
