//! The alerter killed with SIGKILL mid-stream and restarted: every alert raised once, published once and
//! notified once (by idempotency key), nothing lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_simulator::load::{self, LoadPlan, Target};
use dingguard_simulator::{Signer, random_id};
use dingguard_tests::app::metric_in;
use dingguard_tests::now_ms;
use dingguard_tests::process::{Service, deployment_env, value_json};
use dingguard_tests::standin::WebhookStandIn;
use serde_json::{Value, json};

const TOKEN: &str = "killtoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dingkillapp";
const EVENTS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerter_killed_mid_stream_loses_and_repeats_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let hook = WebhookStandIn::start().await?;
    let config = dir.path().join("dingguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify.webhooks]]\nname = \"soc\"\nurl = \"{}\"\nsecret = \"{}\"\nmin_severity = \"low\"\n",
            hook.url(),
            hook.secret
        ),
    )?;
    let mut envs = deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    envs.push(("DINGGUARD_CONFIG", config.display().to_string()));
    // Small batches: many commits, so the kill lands between them.
    envs.push(("DINGGUARD_ALERTER_BATCH", "5".to_owned()));

    // Every event adds an outsider to a different group: one alert each.
    let receiver = Service::start(&["receiver"], &envs).await?;
    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = now_ms();
    let callbacks: Vec<_> = (0..EVENTS)
        .map(|i| {
            let event = json!({"EventType": "chat_add_member", "EventTime": now, "CorpId": "dingkillcorp",
                "eventId": random_id("kill"), "chatId": format!("chat{i:04}"), "operator": "user_sales_lead",
                "userId": [format!("ext_guest_{i}")]});
            signer.sign(&event, now as u64)
        })
        .collect();
    let plan = LoadPlan { concurrency: 8, rate: None, duration: None, verify_replies: true };
    let report = load::run(
        Target::parse(&receiver.url("/dingtalk/callback"))?,
        Arc::new(callbacks),
        signer,
        plan,
        Arc::default(),
    )
    .await;
    ensure!(report.succeeded == EVENTS as u64, "only {} callbacks accepted", report.succeeded);

    let mut alerter = Service::start(&["alerter"], &envs).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = reqwest::get(alerter.url("/metrics")).await?.text().await?;
        let processed = metric_in(&text, r#"dingguard_alerter_events_total{outcome="processed"}"#);
        if processed >= 50.0 {
            ensure!(processed < EVENTS as f64, "the alerter finished before it could be killed ({processed})");
            break;
        }
        ensure!(Instant::now() < deadline, "alerter never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    alerter.kill().await;

    let restarted = Service::start(&["alerter"], &envs).await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let alerts = loop {
        let alerts = alert_records(&envs).await?;
        let distinct: BTreeSet<String> = hook.deliveries().into_iter().map(|(id, _)| id).collect();
        if alerts.len() >= EVENTS && distinct.len() >= EVENTS {
            break alerts;
        }
        ensure!(
            Instant::now() < deadline,
            "after restart: {} alert records, {} distinct notifications of {EVENTS}",
            alerts.len(),
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(restarted);

    let ids: BTreeSet<&str> = alerts.iter().filter_map(|a| a["id"].as_str()).collect();
    assert_eq!(alerts.len(), EVENTS, "the alerts topic holds each alert exactly once");
    assert_eq!(ids.len(), EVENTS);
    let groups: BTreeSet<&str> = alerts.iter().filter_map(|a| a["message"].as_str()).collect();
    assert_eq!(groups.len(), EVENTS, "one alert per group, none folded into another");

    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for (id, body) in hook.deliveries() {
        *per_id.entry(id).or_default() += 1;
        assert_eq!(body["severity"], "medium", "{body}");
    }
    assert_eq!(per_id.len(), EVENTS, "every alert notified");
    let redelivered: usize = per_id.values().map(|n| n - 1).sum();
    // A send in flight at the kill may repeat under the same webhook-id, which receivers drop; never more.
    assert!(redelivered <= 5, "{redelivered} notifications repeated");
    assert_eq!(hook.refused(), 0);
    Ok(())
}

async fn alert_records(envs: &[(&'static str, String)]) -> Result<Vec<Value>> {
    Ok(dingguard_tests::process::dump("dingguard.alerts", envs).await?.iter().map(value_json).collect())
}

/// On Kafka, an alerter SIGKILLed and started again must not wait out its dead self's session before judging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_alerter_on_kafka_does_not_wait_for_its_ghost() -> Result<()> {
    let broker = dingguard_tests::broker::Broker::start().await?;
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    envs.push(("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()));
    // The replica's stable name, as a StatefulSet gives each pod.
    envs.push(("DINGGUARD_INSTANCE_ID", "alerter-0".to_owned()));
    let receiver = Service::start(&["receiver"], &envs).await?;
    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let push = async |chat: &str| -> Result<()> {
        let now = now_ms();
        let event = json!({"EventType": "chat_add_member", "EventTime": now, "CorpId": "dingghost",
            "eventId": random_id("ghost"), "chatId": chat, "operator": "user_sales_lead",
            "userId": [format!("ext_{chat}")]});
        let report = load::send_all(
            Target::parse(&receiver.url("/dingtalk/callback"))?,
            vec![signer.sign(&event, now as u64)],
            signer.clone(),
        )
        .await;
        ensure!(report.non_success == 0, "callback refused");
        Ok(())
    };
    let alerted = async |chat: &str, within: Duration| -> Result<Duration> {
        let started = Instant::now();
        loop {
            let alerts = alert_records(&envs).await?;
            if alerts.iter().any(|a| a["message"].as_str().is_some_and(|m| m.contains(&format!("ext_{chat}")))) {
                return Ok(started.elapsed());
            }
            ensure!(started.elapsed() < within, "no alert for {chat} within {within:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };

    let mut alerter = Service::start(&["alerter"], &envs).await?;
    push("first").await?;
    let first = alerted("first", Duration::from_secs(60)).await?;
    eprintln!("a fresh alerter judged its first event after {first:?}");
    alerter.kill().await;
    let restarted = Service::start(&["alerter"], &envs).await?;
    push("second").await?;
    // A rejoin that waited for the ghost's session (10 s here, librdkafka's 45 s by default) would take that much
    // longer than a first join.
    let took = alerted("second", Duration::from_secs(60)).await?;
    eprintln!("a restarted alerter judged a new event {took:?} after it started");
    ensure!(took < first + Duration::from_secs(5), "the restart took {took:?} against {first:?} for a first join");
    drop(restarted);
    Ok(())
}
