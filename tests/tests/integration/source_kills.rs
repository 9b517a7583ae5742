//! The pollers killed with SIGKILL exactly where a crash could lose or double a record: after DingTalk answered
//! and before anything was written, half-way through writing a page, and after the page was written but before
//! the checkpoint (or the failed-push spool) moved. The process stops at each point (a debug-build drill) and is
//! killed there; after the last restart every item is in `dingguard.events` once, and the stand-in's record of
//! calls shows DingTalk was never asked faster than the pollers' pace.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Result, ensure};
use dingguard_dingtalk_standin::StandIn;
use dingguard_tests::process::{Service, deployment_env, dump_until};
use serde_json::{Value, json};

const FAILED: &str = "/call_back/get_call_back_failed_result";
const AUDIT: &str = "/v1.0/exclusive/fileAuditLogs";

fn envs(dir: &std::path::Path, standin: &StandIn, source: &str) -> Vec<(&'static str, String)> {
    let config = dir.join("dingguard.toml");
    std::fs::write(&config, "[sources.file_audit]\nevery_secs = 5\ncorp_id = \"dingkill\"\n").unwrap();
    let mut envs = deployment_env(dir, ["killtoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingkill"]);
    envs.extend([
        ("DINGGUARD_CONFIG", config.display().to_string()),
        ("DINGGUARD_SOURCES", source.to_owned()),
        ("DINGGUARD_FAILED_PUSH_EVERY_SECS", "10".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingkillapp".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "kill-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", standin.url()),
        ("DINGGUARD_DINGTALK_OAPI_URL", standin.url()),
    ]);
    envs
}

/// Runs the receiver with `source` until the drill stops it at each point in turn, killing it there each time.
async fn kill_at_each(envs: &[(&'static str, String)], source: &str, points: &[&str]) -> Result<()> {
    for point in points {
        let mut with_drill = envs.to_vec();
        with_drill.push(("DINGGUARD_DRILL_STOP_AT", format!("{source}:{point}")));
        let mut service = Service::start(&["receiver"], &with_drill).await?;
        service.wait_for_output(&format!("drill: stopped at {source}:{point}"), Duration::from_secs(20)).await?;
        service.kill().await;
    }
    Ok(())
}

/// Starts the receiver for good and waits for `count` records of `origin`; every id once.
async fn all_once(envs: &[(&'static str, String)], origin: &str, count: usize) -> Result<Vec<Value>> {
    let _service = Service::start(&["receiver"], envs).await?;
    let of = |records: &[Value]| records.iter().filter(|r| r["headers"]["source"] == origin).count();
    let records = dump_until("dingguard.events", envs, Duration::from_secs(30), |r| of(r) >= count).await?;
    let mut ids: HashMap<String, usize> = HashMap::new();
    for record in records.iter().filter(|r| r["headers"]["source"] == origin) {
        *ids.entry(record["headers"]["ce_id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    ensure!(of(&records) == count, "{} records from {origin}, expected {count}", of(&records));
    ensure!(ids.len() == count && ids.values().all(|n| *n == 1), "a record twice among {count}");
    Ok(records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_push_poller_killed_anywhere_loses_and_doubles_nothing() -> Result<()> {
    let standin = StandIn::start("dingkillapp", "kill-secret").await?;
    standin.park_failed((0..450).map(|i| {
        let event = json!({"EventType": "user_leave_org", "TimeStamp": (1_764_540_000_000i64 + i).to_string(),
            "UserId": [format!("user_gone_{i}")], "CorpId": "dingkill"});
        json!({"call_back_tag": "user_leave_org", "event_time": 1_764_540_000_000i64 + i,
            "user_leave_org": {"corpid": "dingkill", "callbackData": event.to_string()}})
    }));
    let dir = tempfile::tempdir()?;
    let envs = envs(dir.path(), &standin, "failed-push");
    kill_at_each(&envs, "failed-push", &["before-write", "mid-page", "after-write"]).await?;
    // Two answers were taken from DingTalk (and cleared there) by processes that were then killed.
    assert_eq!(standin.failed_waiting(), 50, "the third answer still waits");
    let before_last = standin.calls_to(FAILED).len();
    all_once(&envs, "failed-push", 450).await?;
    assert_eq!(standin.failed_waiting(), 0);
    let calls = standin.calls_to(FAILED);
    for pair in calls[before_last..].windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(950), "asked faster than once a second");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_poller_killed_anywhere_loses_and_doubles_nothing() -> Result<()> {
    let standin = StandIn::start("dingkillapp", "kill-secret").await?;
    let now = dingguard_tests::now_ms();
    // 1,234 records over three days, one in seven a preview (not an event of ours): three pages of 500.
    standin.add_audit_records((0..1234i64).map(|i| {
        let action = if i % 7 == 0 { 3 } else if i % 2 == 0 { 2 } else { 32 };
        json!({"action": action, "userId": format!("user{}", i % 40), "bizId": format!("file{i:05}"),
            "resource": format!("report-{i}.xlsx"), "targetSpaceId": "space_fin", "gmtCreate": now - 72 * 3_600_000 + i * 200_000})
    }));
    let downloads = (0..1234).filter(|i| i % 7 != 0).count();
    let dir = tempfile::tempdir()?;
    let envs = envs(dir.path(), &standin, "file-audit");
    kill_at_each(&envs, "file-audit", &["before-write", "mid-page", "after-write"]).await?;
    let before_last = standin.calls_to(AUDIT).len();
    all_once(&envs, "file-audit", downloads).await?;
    let calls = standin.calls_to(AUDIT);
    for pair in calls[before_last..].windows(2) {
        assert!(
            // Spaced when sent; arrivals may be a little closer by one call's latency.
            pair[1].at - pair[0].at >= Duration::from_millis(180),
            "paged faster than five a second: {:?}",
            calls[before_last..].windows(2).map(|p| p[1].at - p[0].at).collect::<Vec<_>>()
        );
    }
    Ok(())
}
