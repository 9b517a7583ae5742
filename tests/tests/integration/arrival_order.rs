//! One fixed history — outsiders joining groups, downloads (some from a group named by its other id), a grant,
//! downloads before, during and after it, people leaving before and after their downloads, a DLP detection — read in
//! every order proptest can think of. Judged as it happened, every order raises the same alerts.

use std::collections::BTreeSet;

use bytes::Bytes;
use dingguard_alerter::{Classification, Evaluator, Grants};
use dingguard_dingtalk::callback_record;
use dingguard_directory::{DEMO_YAML, Directory};
use dingguard_eventlog::LoggedRecord;
use dingguard_model::AppName;
use dingguard_store::{FileFact, Grant};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Wednesday 2026-11-18 10:00 in Macau.
const T: i64 = 1_795_442_400_000;

fn download(id: &str, at: i64, user: &str, file: &str, name: &str, group: Option<(&str, &str)>) -> Value {
    let mut event = json!({"EventType": "file_download", "eventId": id, "EventTime": at, "CorpId": "dingdemo",
        "userId": user, "fileId": file, "fileName": name, "spaceId": "space_hr", "action": 2});
    if let Some((key, group)) = group {
        event[key] = json!(group);
    }
    event
}

fn history() -> Vec<Value> {
    vec![
        json!({"EventType": "chat_add_member", "eventId": "ao-join", "timeStamp": T, "chatId": "chat_ao",
            "openConversationId": "cid_ao", "corpId": "dingdemo", "operator": "user_sales_lead",
            "userId": ["ext_ao_guest"]}),
        download(
            "ao-dl-group-1",
            T + 10 * 60_000,
            "user_sales_rep",
            "ao-f1",
            "pipeline.xlsx",
            Some(("openConversationId", "cid_ao")),
        ),
        download(
            "ao-dl-group-2",
            T + 30 * 60_000,
            "user_sales_lead",
            "ao-f2",
            "forecast.xlsx",
            Some(("chatId", "chat_ao")),
        ),
        download(
            "ao-dl-group-early",
            T - 10 * 60_000,
            "user_sales_rep",
            "ao-f3",
            "before.xlsx",
            Some(("chatId", "chat_ao")),
        ),
        json!({"EventType": "chat_add_member", "eventId": "ao-join-2", "timeStamp": T + DAY, "chatId": "chat_ao2",
            "corpId": "dingdemo", "operatorUnionId": "iiUnionSalesLead3x", "unionId": ["iiAoOutsider"]}),
        // A leaver: sensitive downloads before leaving, one after.
        download("ao-leaver-1", T + DAY, "user_sales_temp", "ao-f4", "confidential-a.xlsx", None),
        download("ao-leaver-2", T + 2 * DAY, "user_sales_temp", "ao-f5", "confidential-b.xlsx", None),
        json!({"EventType": "user_leave_org", "eventId": "ao-left", "EventTime": T + 3 * DAY, "CorpId": "dingdemo",
            "userId": ["user_sales_temp"]}),
        download("ao-leaver-after", T + 4 * DAY, "user_sales_temp", "ao-f6", "notes.txt", None),
        // A grant for user_hr_clerk's confidential file, in force for a day from T + 5 d.
        download("ao-grant-before", T + 5 * DAY - HOUR, "user_hr_clerk", "ao-f7", "confidential-c.xlsx", None),
        download("ao-grant-during", T + 5 * DAY + HOUR, "user_hr_clerk", "ao-f7", "confidential-c.xlsx", None),
        download("ao-grant-after", T + 6 * DAY + HOUR, "user_hr_clerk", "ao-f7", "confidential-c.xlsx", None),
        json!({"EventType": "org_file_send_check", "eventId": "ao-dlp", "EventTime": T + 6 * DAY, "CorpId": "dingdemo",
            "fileRecords": [{"fileName": "客戶名單.xlsx", "userId": "user_sales_rep"},
                            {"fileName": "payroll.xlsx", "userId": "user_hr_clerk"}]}),
    ]
}

fn grants() -> Grants {
    Grants::new(vec![Grant {
        request_id: "ao-request".into(),
        user_id: "user_hr_clerk".into(),
        file_id: "ao-f7".into(),
        granted_at_ms: T + 5 * DAY,
        expires_at_ms: T + 6 * DAY,
        facts: vec![FileFact { name: Some("confidential-c.xlsx".into()), space: Some("space_hr".into()) }],
    }])
}

fn record(event: &Value, received_ms: i64) -> LoggedRecord {
    let raw = serde_json::to_vec(event).expect("JSON");
    let header = dingguard_dingtalk::EventHeader::parse(&raw).expect("a DingTalk event");
    let record = callback_record(
        &AppName::default_app(),
        &dingguard_dingtalk::callback_ce_id(&header, &raw),
        &header,
        Bytes::from(raw),
        received_ms,
    );
    LoggedRecord {
        topic: "dingguard.events".into(),
        partition: 0,
        offset: 0,
        key: None,
        headers: record.headers,
        value: record.value,
    }
}

/// The alerts `order` raises: each by rule and the event it is about (what its id is made of).
fn alerts_in(order: &[usize]) -> BTreeSet<(String, String)> {
    let rules =
        dingguard_alerter::rules_source::load(&[dingguard_tests::workspace_root().join("rules")]).expect("pack");
    let mut evaluator = Evaluator::new(rules, Directory::from_yaml(DEMO_YAML).expect("demo"), Classification::demo())
        .with_grants(grants());
    let events = history();
    // Everything is read a week after it happened, in the order given.
    let now = T + 14 * DAY;
    let mut out = BTreeSet::new();
    for &i in order {
        for m in evaluator.matches(&record(&events[i], now), now).expect("every event is readable") {
            out.insert((m.rule, m.identity));
        }
    }
    out
}

#[test]
fn every_arrival_order_of_one_history_raises_the_same_alerts() {
    let n = history().len();
    let on_time: Vec<usize> = (0..n).collect();
    let expected = alerts_in(&on_time);
    let rules: BTreeSet<&str> = expected.iter().map(|(r, _)| r.as_str()).collect();
    for rule in [
        "external_member_added",
        "external_member_then_download",
        "leaver_downloaded_sensitive_files",
        "download_by_departed_user",
        "sensitive_download_without_grant",
        "dlp_file_send_detected",
    ] {
        assert!(rules.contains(rule), "the history must exercise {rule}: {expected:#?}");
    }
    let about = |rule: &str| expected.iter().filter(|(r, _)| r == rule).map(|(_, id)| id.as_str()).collect::<Vec<_>>();
    assert_eq!(about("download_by_departed_user"), ["ao-leaver-after"], "only the download after leaving");
    assert_eq!(about("leaver_downloaded_sensitive_files"), ["ao-left"], "one alert for the departure");
    assert_eq!(about("external_member_then_download"), ["ao-join"], "one alert for the join, not for ao-join-2");
    let ungranted = about("sensitive_download_without_grant");
    assert!(ungranted.contains(&"ao-grant-before") && ungranted.contains(&"ao-grant-after"), "{ungranted:?}");
    assert!(!ungranted.contains(&"ao-grant-during"), "the download inside the grant is covered: {ungranted:?}");

    let cases = std::env::var("DINGGUARD_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    runner
        .run(&Just(on_time.clone()).prop_shuffle(), |order| {
            prop_assert_eq!(&alerts_in(&order), &expected, "order {:?}", order);
            Ok(())
        })
        .unwrap();
}
