//! Judged as it happened: one history of DingTalk events — built here from DingTalk's documented formats, not by
//! the simulator — sent to one deployment in the order things happened and to another in a late order (as the
//! failed-push list, a file-audit-log poller or a catch-up delivers them). Both must raise the same alerts, and the
//! right ones: directory facts, grants and sequences are judged as of each event's own time.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dingguard_dingtalk::callback_record;
use dingguard_model::{AppName, Clock, ManualClock, SystemClock};
use dingguard_store::{AlertFilter, Store, StoreConfig};
use dingguard_tests::approvals::{DPO, HEAD, REQUESTER, spawn_approvals};
use dingguard_tests::deployment::Deployment;
use dingguard_tests::work_standin::WorkStandIn;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One step of the history: a callback.
#[derive(Clone)]
enum Step {
    Push(Value),
}

fn download(id: &str, at: i64, user: &str, file: &str, name: &str) -> Value {
    json!({"EventType": "file_download", "eventId": id, "EventTime": at, "CorpId": "dingdemo", "userId": user,
        "fileId": file, "fileName": name, "spaceId": "space_sales", "action": 2, "source": "fileAuditLogs"})
}

/// The most recent Wednesday 10:00 in Macau at least a week before now, as the history's start.
fn wednesday_morning() -> i64 {
    let now = dingguard_tests::now_ms();
    let macau = now + 8 * HOUR;
    // 1970-01-01 was a Thursday: day 6 of a week that starts on Friday is a Wednesday.
    let day = macau.div_euclid(DAY);
    let wednesday = day - (day - 6).rem_euclid(7) - 7;
    wednesday * DAY + 10 * HOUR - 8 * HOUR
}

/// The history, each case in the order it happened, and the late arrival order of each case's steps.
fn history() -> Vec<(&'static str, Vec<Step>, Vec<usize>)> {
    let t = wednesday_morning();
    vec![
        // A download on Wednesday by someone who leaves on Friday; the download's record arrives after the leave.
        (
            "leaver",
            vec![
                Step::Push(download("et-leaver-dl", t, "user_sales_temp", "et-f1", "confidential-prices.xlsx")),
                Step::Push(
                    json!({"EventType": "user_leave_org", "eventId": "et-leaver-left", "EventTime": t + 2 * DAY,
                    "CorpId": "dingdemo", "userId": ["user_sales_temp"]}),
                ),
            ],
            vec![1, 0],
        ),
        // A download dated before the `left_at` the directory file records for a leaver, and one after it.
        (
            "file-leaver",
            vec![
                Step::Push(download("et-former-before", 1_769_700_000_000, "user_sales_former", "et-f2", "notes.txt")),
                Step::Push(download("et-former-after", 1_769_900_000_000, "user_sales_former", "et-f3", "notes.txt")),
            ],
            vec![1, 0],
        ),
        // EventTime in seconds, at 10:30 on a Wednesday in Macau: inside office hours, not January 1970.
        (
            "seconds",
            vec![Step::Push(download(
                "et-seconds",
                (t + HOUR / 2) / 1000,
                "user_fin_accountant",
                "et-f6",
                "confidential-c.xlsx",
            ))],
            vec![0],
        ),
        // A group named by chatId when the outsider joins and by openConversationId in the download.
        (
            "alias",
            vec![
                Step::Push(
                    json!({"EventType": "chat_add_member", "eventId": "et-alias-join", "timeStamp": t + 6 * DAY,
                    "chatId": "chat_et_alias", "openConversationId": "cid_et_alias", "corpId": "dingdemo",
                    "operator": "user_sales_lead", "operatorUnionId": "iiUnionSalesLead3x",
                    "userId": ["ext_et_guest"], "unionId": ["iiGuestUnion"]}),
                ),
                Step::Push(
                    json!({"EventType": "file_download", "eventId": "et-alias-dl", "EventTime": t + 6 * DAY + 20 * 60_000,
                    "CorpId": "dingdemo", "userId": "user_sales_rep", "fileId": "et-f7", "fileName": "pipeline.xlsx",
                    "openConversationId": "cid_et_alias"}),
                ),
            ],
            vec![1, 0],
        ),
        // Members named only by unionId: one the directory knows, one it does not.
        (
            "union",
            vec![Step::Push(json!({"EventType": "chat_add_member", "eventId": "et-union", "timeStamp": t + 7 * DAY,
                "chatId": "chat_et_union", "corpId": "dingdemo", "operatorUnionId": "iiUnionSalesLead3x",
                "unionId": ["iiUnionHrClerk8Qf", "iiOutsiderUnion42"]}))],
            vec![0],
        ),
        // One DLP detection with files from two senders.
        (
            "dlp",
            vec![Step::Push(json!({"EventType": "org_file_send_check", "eventId": "et-dlp", "EventTime": t + 7 * DAY,
                "CorpId": "dingdemo", "fileRecords": [
                    {"openCid": "cid1", "fileName": "客戶名單.xlsx", "requestId": "dlpId1", "userId": "user_sales_rep"},
                    {"openCid": "cid2", "fileName": "payroll.xlsx", "requestId": "dlpId2", "userId": "user_hr_clerk"}]}))],
            vec![0],
        ),
    ]
}

async fn play(d: &Deployment, steps: &[Step]) -> Result<()> {
    for Step::Push(event) in steps {
        d.push(std::slice::from_ref(event)).await?;
    }
    Ok(())
}

/// Plays `steps` into a fresh deployment, then a last event, and returns its alerts once that one is judged.
async fn alerts_after(steps: &[Step]) -> Result<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let d = Deployment::start_in(dir.path(), &[], None).await?;
    play(&d, steps).await?;
    let last = json!({"EventType": "org_admin_add", "eventId": "et-last", "EventTime": dingguard_tests::now_ms(),
        "CorpId": "dingdemo", "userId": ["user_et_last"]});
    d.push(&[last]).await?;
    let mentions_last = |a: &Value| a["message"].as_str().is_some_and(|m| m.contains("user_et_last"));
    let alerts = d.alerts_until(|a| a.iter().any(mentions_last)).await?;
    ensure!(alerts.iter().any(mentions_last), "the last event was not judged within 20 s");
    Ok(alerts.into_iter().filter(|a| !mentions_last(a)).collect())
}

/// What an alert is, independent of when it was published: its id (rule and the event it is about) and rule.
fn identities(alerts: &[Value]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| (a["id"].as_str().unwrap_or_default().to_owned(), a["rule"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn about<'a>(alerts: &'a [Value], rule: &str, text: &str) -> Vec<&'a Value> {
    alerts.iter().filter(|a| a["rule"] == rule && a["message"].as_str().is_some_and(|m| m.contains(text))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_on_time_arrivals_raise_the_same_right_alerts() -> Result<()> {
    let cases = history();
    let on_time: Vec<Step> = cases.iter().flat_map(|(_, steps, _)| steps.clone()).collect();
    let late: Vec<Step> = cases.iter().flat_map(|(_, steps, order)| order.iter().map(|&i| steps[i].clone())).collect();
    let (on_time, late) = tokio::try_join!(alerts_after(&on_time), alerts_after(&late))?;
    assert_eq!(identities(&on_time), identities(&late), "on time: {on_time:#?}\nlate: {late:#?}");

    for alerts in [&on_time, &late] {
        // leaver: not a departed user's download; the leaver alert names the file.
        assert!(about(alerts, "download_by_departed_user", "user_sales_temp").is_empty(), "{alerts:#?}");
        let leaver = about(alerts, "leaver_downloaded_sensitive_files", "user_sales_temp");
        assert_eq!(leaver.len(), 1, "{alerts:#?}");
        assert!(leaver[0]["message"].as_str().context("text")?.contains("confidential-prices.xlsx"), "{leaver:?}");
        // file-leaver: before left_at they were still here; after it they had gone.
        let departed = about(alerts, "download_by_listed_leaver", "user_sales_former");
        assert_eq!(departed.len(), 1, "only the download after left_at: {alerts:#?}");
        // Ten months old: judged, and marked as judged past the history kept for it.
        assert_eq!(departed[0]["late"], true, "{departed:?}");
        assert!(alerts.iter().filter(|a| a["rule"] == "dlp_file_send_detected").all(|a| a["late"] == false));
        // seconds: 10:30 on a Wednesday is office hours.
        assert!(about(alerts, "after_hours_sensitive_download", "confidential-c.xlsx").is_empty(), "{alerts:#?}");
        // alias: one group under both ids; the alert names the outsider, who added them and who downloaded.
        let sequence = about(alerts, "external_member_then_download", "pipeline.xlsx");
        assert_eq!(sequence.len(), 1, "{alerts:#?}");
        let text = sequence[0]["message"].as_str().context("text")?;
        for who in ["ext_et_guest", "user_sales_lead", "user_sales_rep"] {
            assert!(text.contains(who), "{who} missing from {text}");
        }
        // union: the unknown unionId is an outsider; the known one is the person it names, not an outsider.
        let union = about(alerts, "external_member_added", "iiOutsiderUnion42");
        assert_eq!(union.len(), 1, "{alerts:#?}");
        let text = union[0]["message"].as_str().context("text")?;
        assert!(!text.contains("iiUnionHrClerk8Qf") && !text.contains("user_hr_clerk"), "{text}");
        // dlp: both senders named.
        let dlp = about(alerts, "dlp_file_send_detected", "user_sales_rep");
        assert_eq!(dlp.len(), 1, "{alerts:#?}");
        assert!(dlp[0]["message"].as_str().context("text")?.contains("user_hr_clerk"), "{dlp:?}");
    }
    Ok(())
}

/// Grants are judged as of the download, with a clock the test moves: a grant obtained after a download does not
/// cover it, and a download made while a grant was in force is covered however long after the grant expired it is
/// judged. Played twice — judging each download as it happens, and judging both days later — with the same alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_cover_what_happened_while_they_were_in_force_whenever_it_is_judged() -> Result<()> {
    let mut outcomes = Vec::new();
    for late in [false, true] {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
        let clock = ManualClock::new(SystemClock.now_ms());
        let app = spawn_approvals(store.clone(), clock.clone(), Arc::new(WorkStandIn::start().await)).await?;
        // The alerter as `dingguard alerter` runs it, over the approver's store and log, on the same clock.
        let mut config = dingguard::config::Config::for_data_dir(dir.path())?;
        config.alerting.rule_paths = Some(vec![dingguard_tests::workspace_root().join("rules")]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let parts = dingguard::app::Parts {
            clock: Some(Arc::new(clock.clone())),
            log: Some(app.log.clone()),
            store: Some(store.clone()),
        };
        let alerter = dingguard::app::build(&config, dingguard::app::Mode::Alerter, listener, None, parts).await?;
        let stop = alerter.shutdown.clone();
        let task = tokio::spawn(alerter.run());

        let granted_at = clock.now_ms();
        let download = |id: &str, at: i64| {
            json!({"EventType": "file_download", "eventId": id, "EventTime": at, "CorpId": "dingdemo",
                "userId": REQUESTER, "fileId": "f-grant-time", "fileName": "confidential-salaries.xlsx",
                "spaceId": "space_hr", "action": 2})
        };
        let before = download("gt-before", granted_at - 2 * HOUR);
        let during = download("gt-during", granted_at + HOUR);
        let append = async |event: &Value| -> Result<()> {
            let raw = serde_json::to_vec(event)?;
            let header = dingguard_dingtalk::EventHeader::parse(&raw)?;
            let record = callback_record(
                &AppName::default_app(),
                &dingguard_dingtalk::callback_ce_id(&header, &raw),
                &header,
                Bytes::from(raw),
                clock.now_ms(),
            );
            app.log.append(&app.topics.events, record).await?;
            Ok(())
        };
        if !late {
            // On time: the first download is judged before anyone asked for a grant.
            clock.set(granted_at - 2 * HOUR);
            append(&before).await?;
            settle(&store, 1).await?;
            clock.set(granted_at);
        }
        let id = app.request_sensitive(REQUESTER, "f-grant-time").await?;
        app.decide(DPO, &id, "approve").await?;
        let (status, granted) = app.decide(HEAD, &id, "approve").await?;
        ensure!(status == 200 && granted["status"] == "granted", "{status} {granted}");
        if late {
            // Late: both downloads reach the alerter two days on, long after the 24-hour grant expired.
            clock.set(granted_at + 2 * DAY);
            append(&before).await?;
        } else {
            clock.set(granted_at + HOUR);
        }
        append(&during).await?;
        settle(&store, 2).await?;
        let alerts = store.alerts(&AlertFilter::default()).await?;
        stop.cancel();
        let _ = task.await;
        let ungranted: BTreeSet<(String, String)> = alerts
            .iter()
            .filter(|a| a.rule == "sensitive_download_without_grant")
            .map(|a| (a.id.clone(), a.rule.clone()))
            .collect();
        outcomes.push(ungranted);
    }
    assert_eq!(outcomes[0], outcomes[1], "on time and late differ");
    assert_eq!(outcomes[0].len(), 1, "only the download before the grant: {:?}", outcomes[0]);
    Ok(())
}

/// Waits until the alerter has claimed `events` events.
async fn settle(store: &Store, events: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let judged = store.processed_count("alerter").await?;
        if judged >= events as i64 {
            // The batch that claimed them has committed its alerts with them.
            return Ok(());
        }
        ensure!(std::time::Instant::now() < deadline, "the alerter judged {judged} of {events} events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
