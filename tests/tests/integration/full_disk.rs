//! A full disk under the embedded log, the SQLite store and the process's own log file: while full, callbacks
//! get a fast 503 and `/readyz` fails; once space is free, the same process accepts again within seconds and the
//! alerter's store writes resume where they paused, skipping nothing.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_simulator::random_id;
use dingguard_tests::deployment::{Deployment, rules_of};
use dingguard_tests::disk::{Tmpfs, cannot_mount};
use serde_json::{Value, json};

/// DingTalk counts a push not answered within this as failed.
const DINGTALK_DEADLINE: Duration = Duration::from_millis(1500);

fn outsider_joins(chat: &str) -> Value {
    json!({"EventType": "chat_add_member", "eventId": random_id("disk"), "EventTime": dingguard_tests::now_ms(),
        "CorpId": "dingdemo", "chatId": chat, "operator": "user_sales_lead", "userId": [format!("ext_{chat}")]})
}

async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Result<bool>) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(started.elapsed());
        }
        ensure!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_disk_with_the_process_log_on_it_fails_fast_and_recovers_without_restart() -> Result<()> {
    if let Some(reason) = cannot_mount() {
        eprintln!("SKIPPED full_disk_with_the_process_log_on_it_fails_fast_and_recovers_without_restart: {reason}");
        return Ok(());
    }
    let disk = Tmpfs::mount(24)?;
    let data = disk.path().join("data");
    let log_file = disk.path().join("dingguard.log");
    let extra = [("DINGGUARD_READINESS_INTERVAL_MS", "100".to_owned()), ("RUST_LOG", "info".to_owned())];
    let d = Deployment::start_in(&data, &extra, Some(&log_file)).await?;
    let (status, _) = d.push_one(&outsider_joins("before")).await?;
    ensure!(status == 200, "a callback before the disk filled got {status}");

    let filler = disk.fill()?;
    // Until the probe has seen it, a callback may still fit in space SQLite had in hand; none may be slow, and
    // once `/readyz` fails every one is refused.
    let noticed = until("/readyz to fail on a full disk", Duration::from_secs(10), async || {
        let (_, took) = d.push_one(&outsider_joins("filling")).await?;
        ensure!(took < DINGTALK_DEADLINE, "a reply on a full disk took {took:?}");
        Ok(d.readyz().await? == 503)
    })
    .await?;
    eprintln!("readiness failed {noticed:?} after the disk filled");
    // Long enough for many failed writes of the process's own log lines to the same full disk.
    for _ in 0..20 {
        let (status, took) = d.push_one(&outsider_joins("full")).await?;
        ensure!(status == 503, "a callback on a full disk got {status}");
        ensure!(took < Duration::from_millis(500), "a refusal on a full disk took {took:?}");
        ensure!(d.readyz().await? == 503, "/readyz passed on a full disk");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::fs::remove_file(&filler)?;
    let recovered = until("callbacks to be accepted once space is free", Duration::from_secs(10), async || {
        Ok(d.readyz().await? == 200 && d.push_one(&outsider_joins("after")).await?.0 == 200)
    })
    .await?;
    eprintln!("accepting again {recovered:?} after space was freed");
    let alerts =
        d.alerts_until(|a| a.iter().any(|a| a["message"].as_str().is_some_and(|m| m.contains("ext_after")))).await?;
    ensure!(
        alerts.iter().any(|a| a["message"].as_str().is_some_and(|m| m.contains("ext_after"))),
        "no alert for the callback after recovery: {:?}",
        rules_of(&alerts)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_store_pauses_the_alerter_and_skips_nothing() -> Result<()> {
    if let Some(reason) = cannot_mount() {
        eprintln!("SKIPPED a_full_store_pauses_the_alerter_and_skips_nothing: {reason}");
        return Ok(());
    }
    // The store alone on the small disk: the log keeps taking callbacks the alerter cannot yet record.
    let disk = Tmpfs::mount(16)?;
    let data = tempfile::tempdir()?;
    let store = format!("sqlite:{}", disk.path().join("state.db").display());
    let d = Deployment::start_in(data.path(), &[("DINGGUARD_DATABASE_URL", store)], None).await?;
    let (status, _) = d.push_one(&outsider_joins("warmup")).await?;
    ensure!(status == 200, "warm-up callback got {status}");
    d.alerts_until(|a| !a.is_empty()).await?;

    let filler = disk.fill()?;
    let chats: Vec<String> = (0..30).map(|i| format!("paused{i:02}")).collect();
    for chat in &chats {
        let (status, _) = d.push_one(&outsider_joins(chat)).await?;
        ensure!(status == 200, "the log is not full, yet a callback got {status}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = d.alerts().await?.len();

    std::fs::remove_file(&filler)?;
    let mentions = |alerts: &[Value], chat: &str| {
        alerts.iter().filter(|a| a["message"].as_str().is_some_and(|m| m.contains(&format!("ext_{chat}")))).count()
    };
    let alerts = d.alerts_until(|a| chats.iter().all(|c| mentions(a, c) > 0)).await?;
    for chat in &chats {
        ensure!(mentions(&alerts, chat) == 1, "{chat}: {} alerts, want exactly one", mentions(&alerts, chat));
    }
    eprintln!("{during} alerts while the store was full, {} after", alerts.len());
    Ok(())
}
