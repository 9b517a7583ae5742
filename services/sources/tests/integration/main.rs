//! The sources against the DingTalk stand-in, writing to a real embedded log: the failed-push list here, the file
//! audit log in `file_audit`.

mod common;
mod directory;
mod file_audit;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use dingguard_dingtalk_api::ApiError;
use dingguard_dingtalk_standin::{Fault, StandIn};
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, SystemClock, header};
use dingguard_sources::{FailedPush, FailedPushSettings, SourceError};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TOPIC, api, embedded_log, pushed};
const PATH: &str = "/call_back/get_call_back_failed_result";

fn leaver(i: usize) -> Value {
    json!({"EventType": "user_leave_org", "TimeStamp": (1_764_540_000_000i64 + i as i64).to_string(),
        "UserId": [format!("user{i:04}")], "CorpId": "dingstandin"})
}

fn parked(i: usize) -> Value {
    if i.is_multiple_of(10) {
        json!({"call_back_tag": "bpms_instance_change", "event_time": 1_764_540_000_000i64 + i as i64,
            "bpms_instance_change": {"corpid": "dingstandin",
                "bpmsCallBackData": {"processInstanceId": format!("proc{i}"), "type": "start", "staffId": "user0001"}}})
    } else {
        json!({"call_back_tag": "user_leave_org", "event_time": 1_764_540_000_000i64 + i as i64,
            "user_leave_org": {"corpid": "dingstandin", "callbackData": leaver(i).to_string()}})
    }
}

async fn setup() -> (StandIn, FailedPush, EventLog, tempfile::TempDir) {
    let standin = StandIn::start("dingapp", "app-secret").await.unwrap();
    let api = api(&standin, "dingapp", "app-secret", Arc::new(SystemClock));
    let dir = tempfile::tempdir().unwrap();
    let log = embedded_log(dir.path()).await;
    let settings = FailedPushSettings {
        app: AppName::default_app(),
        topic: TOPIC.into(),
        min_interval: Duration::from_millis(100),
        every: Duration::from_secs(60),
        spool: dir.path().join("failed-push.spool"),
    };
    let source = FailedPush::new(api, log.clone(), Arc::new(SystemClock), settings);
    (standin, source, log, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_parked_event_reaches_the_log_once_and_the_list_is_read_at_its_pace() {
    let (standin, source, log, _dir) = setup().await;
    // One of them did arrive by push after all.
    pushed(&log, &leaver(7), 0).await;

    standin.park_failed((0..450).map(parked));
    let report = source.poll(&CancellationToken::new()).await.unwrap();
    assert_eq!((report.calls, report.items, report.written, report.duplicates), (3, 450, 449, 1), "{report:?}");
    assert_eq!(standin.failed_waiting(), 0);
    let records = log.read_all(TOPIC).await.unwrap();
    assert_eq!(records.len(), 450, "449 read back and the one pushed");
    let from_list = records.iter().filter(|r| r.header(header::ORIGIN) == Some("failed-push")).count();
    assert_eq!(from_list, 449);
    assert!(records.iter().any(|r| r.header(header::ORIGIN) == Some("push")));
    let approvals = records.iter().filter(|r| r.header(header::TYPE) == Some("dingtalk.bpms_instance_change")).count();
    assert_eq!(approvals, 45);
    let calls = standin.calls_to(PATH);
    for pair in calls.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(100), "called faster than allowed");
    }

    // Nothing waits: one call, nothing written.
    let again = source.poll(&CancellationToken::new()).await.unwrap();
    assert_eq!((again.calls, again.items, again.written), (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_without_an_event_is_counted_and_the_rest_go_on() {
    let (standin, source, log, _dir) = setup().await;
    standin.park_failed([parked(1), json!({"call_back_tag": "user_add_org"}), json!({"nothing": 1}), parked(2)]);
    let report = source.poll(&CancellationToken::new()).await.unwrap();
    assert_eq!((report.items, report.written, report.unreadable), (4, 2, 2), "{report:?}");
    assert_eq!(log.read_all(TOPIC).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_says_what_the_app_lacks_and_takes_nothing_off_the_list() {
    let (standin, source, _log, _dir) = setup().await;
    standin.park_failed((0..5).map(parked));
    standin.fail_next(PATH, [Fault::NoPermission("qyapi_callback_failed_list".into())]);
    let error = source.poll(&CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(&error, SourceError::DingTalk(ApiError::MissingPermission { scopes, .. }) if scopes == &["qyapi_callback_failed_list"]),
        "{error}"
    );
    assert_eq!(standin.failed_waiting(), 5);
    standin.fail_next(PATH, [Fault::Throttle]);
    assert_eq!(source.poll(&CancellationToken::new()).await.unwrap().written, 5, "a throttled call is retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_that_says_more_and_gives_nothing_ends_the_pass() {
    let (standin, source, _log, _dir) = setup().await;
    standin.fail_next(PATH, vec![Fault::EmptyButMore; 50]);
    let report = source.poll(&CancellationToken::new()).await.unwrap();
    assert_eq!((report.calls, report.items), (1, 0), "{report:?}");
}
