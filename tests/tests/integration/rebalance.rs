//! A second alerter replica joins mid-stream on Kafka and PostgreSQL: the partitions are split between the two,
//! and the threshold and sequence rules fire exactly as one alerter would have fired them — the 10,000-event
//! threshold check of the rule engine's tests, and a sequence whose two steps are keyed apart (an outsider
//! joining is a group's record, a download its user's), so they are read by different replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_simulator::load::{self, LoadPlan, Target};
use dingguard_simulator::{SignedCallback, Signer, random_id};
use dingguard_store::{AlertFilter, Store};
use dingguard_tests::app::metric_in;
use dingguard_tests::process::{Service, deployment_env};
use serde_json::json;

const TOKEN: &str = "rebalancetoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dingrebalance";
const THRESHOLD: u32 = 15;
const GROUPS: usize = 100;
/// Groups of the hundred whose files are downloaded after the outsider joined.
const DOWNLOADED_GROUPS: usize = 50;

const RULES: &str = r#"
- rule: many_downloads
  description: Many downloads by one person within an hour.
  when: [file_downloaded]
  severity: medium
  output: "{actor.id} downloaded {count} files"
  threshold: { count: 15, window: 1h, key: "{actor.id}" }

- rule: outsider_then_download
  description: An outsider joined a group and a file was downloaded from it soon after.
  when: [members_added, file_downloaded]
  severity: high
  output: "group {group.id}: download by {actor.id} after an outsider joined"
  sequence:
    first: event.type = members_added and members.external_count > 0
    then: event.type = file_downloaded
    key: "{group.id}"
    within: 1h
    alert_per: first
"#;

/// The engine test's schedule: user k downloads (k % 20) + 1 times, interleaved, 10,000 in all.
fn schedule() -> Vec<String> {
    let mut schedule = Vec::new();
    for k in 0..1000u32 {
        for _ in 0..(k % 20) + 1 {
            schedule.push(format!("user{k}"));
        }
    }
    schedule.truncate(10_000);
    let mut rng_state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..schedule.len()).rev() {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        schedule.swap(i, (rng_state % (i as u64 + 1)) as usize);
    }
    schedule
}

async fn send(receiver: &Service, signer: &Signer, callbacks: Vec<SignedCallback>) -> Result<()> {
    let count = callbacks.len() as u64;
    let plan = LoadPlan { concurrency: 8, rate: None, duration: None, verify_replies: true };
    let report = load::run(
        Target::parse(&receiver.url("/dingtalk/callback"))?,
        Arc::new(callbacks),
        signer.clone(),
        plan,
        Arc::default(),
    )
    .await;
    ensure!(report.succeeded == count, "only {} of {count} callbacks accepted", report.succeeded);
    Ok(())
}

async fn processed(alerter: &Service) -> Result<f64> {
    let text = reqwest::get(alerter.url("/metrics")).await?.text().await?;
    Ok(metric_in(&text, r#"dingguard_alerter_events_total{outcome="processed"}"#))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_joining_mid_stream_leaves_every_threshold_and_sequence_exact() -> Result<()> {
    let broker = dingguard_tests::broker::Broker::start().await?;
    let (store, db_url, _db) = dingguard_tests::pg::fresh_postgres_url().await;
    let dir = tempfile::tempdir()?;
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules)?;
    std::fs::write(rules.join("rebalance.yaml"), RULES)?;
    let mut envs = deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    envs.retain(|(k, _)| *k != "DINGGUARD_RULES");
    envs.extend([
        ("DINGGUARD_RULES", rules.display().to_string()),
        ("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()),
        ("DINGGUARD_DATABASE_URL", db_url),
        ("DINGGUARD_LOG_PARTITIONS", "6".to_owned()),
        // Small batches: the join lands between many of them.
        ("DINGGUARD_ALERTER_BATCH", "25".to_owned()),
    ]);
    let replica = |i: usize| {
        let mut envs = envs.clone();
        envs.push(("DINGGUARD_INSTANCE_ID", format!("alerter-{i}")));
        envs
    };

    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = dingguard_tests::now_ms();
    let base = now - 30 * 60_000;
    let sign = |event: serde_json::Value| signer.sign(&event, now as u64);
    let mut callbacks: Vec<SignedCallback> = (0..GROUPS)
        .map(|g| {
            sign(json!({"EventType": "chat_add_member", "EventTime": base, "CorpId": "dingrebalance",
                "eventId": random_id("join"), "chatId": format!("grp{g:03}"), "operator": "user_sales_lead",
                "userId": [format!("ext_guest_{g}")]}))
        })
        .collect();
    let downloads = schedule();
    for (i, user) in downloads.iter().enumerate() {
        callbacks.push(sign(json!({"EventType": "file_download", "EventTime": base + 60_000 + i as i64 * 100,
            "CorpId": "dingrebalance", "eventId": random_id("dl"), "userId": user, "fileId": format!("f{i}"),
            "fileName": format!("report-{i}.xlsx"), "action": 2})));
        // Now and then a download from one of the groups, by someone who downloads nothing else.
        if i % 100 == 7 && i / 100 < DOWNLOADED_GROUPS {
            let g = i / 100;
            callbacks.push(sign(json!({"EventType": "file_download", "EventTime": base + 120_000 + i as i64 * 100,
                "CorpId": "dingrebalance", "eventId": random_id("gdl"), "userId": format!("member{g}"),
                "chatId": format!("grp{g:03}"), "fileId": format!("g{g}"), "fileName": "minutes.docx",
                "action": 2})));
        }
    }
    let total = callbacks.len();
    let second_half = callbacks.split_off(total / 2);

    let receiver = Service::start(&["receiver"], &envs).await?;
    let first = Service::start(&["alerter"], &replica(0)).await?;
    send(&receiver, &signer, callbacks).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed(&first).await? < 1_000.0 {
        ensure!(Instant::now() < deadline, "the first alerter never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The second replica joins while the first is mid-stream, and the rest of the events arrive meanwhile.
    let second = Service::start(&["alerter"], &replica(1)).await?;
    send(&receiver, &signer, second_half).await?;

    let deadline = Instant::now() + Duration::from_secs(240);
    let (a, b) = loop {
        let (a, b) = (processed(&first).await?, processed(&second).await?);
        if a + b >= total as f64 {
            break (a, b);
        }
        ensure!(Instant::now() < deadline, "only {} of {total} events judged ({a} + {b})", a + b);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    ensure!(a > 0.0 && b > 0.0, "both replicas judged events: {a} and {b}");
    assert_eq!(a + b, total as f64, "no event judged twice");

    let alerts = store_alerts(&store).await?;
    let mut per_user: BTreeMap<&str, u32> = BTreeMap::new();
    for user in &downloads {
        *per_user.entry(user.as_str()).or_default() += 1;
    }
    let expected: BTreeSet<String> =
        per_user.iter().filter(|(_, n)| **n >= THRESHOLD).map(|(u, _)| format!("{u} downloaded 15 files")).collect();
    let fired: Vec<&str> =
        alerts.iter().filter(|(rule, _)| rule == "many_downloads").map(|(_, message)| message.as_str()).collect();
    let fired_set: BTreeSet<String> = fired.iter().map(|m| (*m).to_owned()).collect();
    assert_eq!(fired.len(), fired_set.len(), "a threshold fired twice for one person");
    assert_eq!(fired_set, expected, "exactly the people with 15 or more downloads, once each");

    let sequences: BTreeSet<&str> =
        alerts.iter().filter(|(rule, _)| rule == "outsider_then_download").map(|(_, m)| m.as_str()).collect();
    let expected: BTreeSet<String> = (0..DOWNLOADED_GROUPS)
        .map(|g| format!("group grp{g:03}: download by member{g} after an outsider joined"))
        .collect();
    assert_eq!(
        sequences.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>(),
        expected,
        "one alert per group with a download after the outsider"
    );
    assert_eq!(alerts.len(), fired.len() + sequences.len(), "nothing else, nothing twice");
    Ok(())
}

/// Every alert in the store as (rule, message), once the count has been steady for a moment.
async fn store_alerts(store: &Store) -> Result<Vec<(String, String)>> {
    let filter = AlertFilter { limit: Some(100_000), ..AlertFilter::default() };
    let mut last = usize::MAX;
    loop {
        let alerts = store.alerts(&filter).await?;
        if alerts.len() == last {
            return Ok(alerts.into_iter().map(|a| (a.rule, a.message)).collect());
        }
        last = alerts.len();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
