//! Events that once broke the pipeline, pushed to the built binary: a time no calendar can print, and a member list
//! so long that quadratic handling held up every event behind it.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_simulator::random_id;
use dingguard_tests::deployment::{Deployment, rules_of};
use dingguard_tests::process::dump;
use serde_json::{Value, json};

async fn post_signed(d: &Deployment, signed: &dingguard_simulator::SignedCallback) -> Result<u16> {
    let reply = reqwest::Client::new()
        .post(format!("{}?{}", d.url("/dingtalk/callback"), signed.query))
        .header("content-type", "application/json")
        .body(signed.body.clone())
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    Ok(reply.status().as_u16())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_time_no_calendar_can_print_is_stored_once_and_its_retry_succeeds() -> Result<()> {
    let d = Deployment::start(&[]).await?;
    let odd_times = [json!(-100_000_000_000_000_i64), json!("-200000000000000"), json!(-62_000_000_000_001_i64)];
    let mut ids = Vec::new();
    for time in odd_times {
        let id = random_id("negtime");
        let event = json!({"EventType": "chat_add_member", "eventId": id, "EventTime": time, "CorpId": "dingdemo",
            "chatId": "chat_negative", "operator": "user_sales_lead", "userId": ["ext_negative"]});
        let signed = Deployment::signer().sign(&event, dingguard_tests::now_ms() as u64);
        ensure!(post_signed(&d, &signed).await? == 200, "EventTime {time} was refused");
        // DingTalk retries a push it did not hear back from; the retry must be answered, not left claimed.
        ensure!(post_signed(&d, &signed).await? == 200, "the retry of EventTime {time} was refused");
        ids.push(id);
    }
    let records = dump("dingguard.events", &d.envs).await?;
    for id in &ids {
        let copies = records.iter().filter(|r| r["headers"]["ce_id"] == id.as_str()).count();
        ensure!(copies == 1, "{id} is in the log {copies} times");
        let record = records.iter().find(|r| r["headers"]["ce_id"] == id.as_str()).expect("counted above");
        ensure!(record["headers"]["timesource"] == "received", "an impossible time was not marked: {record}");
    }
    // And the alerter judged them (at the time they were received) rather than parking them.
    let alerts = d.alerts_until(|a| !a.is_empty()).await?;
    ensure!(rules_of(&alerts).contains(&"external_member_added"), "{:?}", rules_of(&alerts));
    Ok(())
}

fn members_event(chat: &str, count: usize) -> Value {
    let members: Vec<String> = (0..count).map(|i| format!("x{i}")).collect();
    json!({"EventType": "chat_add_member", "eventId": random_id("members"), "EventTime": dingguard_tests::now_ms(),
        "CorpId": "dingdemo", "chatId": chat, "operator": "user_sales_lead", "userId": members})
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_thousand_members_in_one_event_hold_up_nothing_behind_it() -> Result<()> {
    // A body of a few MiB: the operator raised the limit, which must not open a way to stall the pipeline.
    let d = Deployment::start(&[("DINGGUARD_MAX_BODY_BYTES", (8 * 1024 * 1024).to_string())]).await?;
    let started = Instant::now();
    d.push(&[members_event("chat_crowd", 200_000)]).await?;
    let behind = json!({"EventType": "chat_add_member", "eventId": random_id("behind"),
        "EventTime": dingguard_tests::now_ms(), "CorpId": "dingdemo", "chatId": "chat_behind",
        "operator": "user_sales_lead", "userId": ["ext_behind"]});
    d.push(&[behind]).await?;
    let mentions =
        |alerts: &[Value], what: &str| alerts.iter().any(|a| a["message"].as_str().is_some_and(|m| m.contains(what)));
    let alerts = d.alerts_until(|a| mentions(a, "ext_behind") && mentions(a, "200000 outsider(s)")).await?;
    ensure!(mentions(&alerts, "200000 outsider(s)"), "the crowd was not judged: {:?}", rules_of(&alerts));
    ensure!(mentions(&alerts, "ext_behind"), "the event behind the crowd was not judged within 20 s");
    eprintln!("both judged {:?} after the pushes began", started.elapsed());
    let crowd = alerts
        .iter()
        .find(|a| a["message"].as_str().is_some_and(|m| m.contains("200000 outsider(s)")))
        .expect("found above");
    let message = crowd["message"].as_str().unwrap_or_default();
    ensure!(message.len() <= 2048 + 3, "the alert text is {} bytes", message.len());
    Ok(())
}
