//! `dingguard serve` with the sources that fetch from DingTalk: the failed-push list and the file audit log of the
//! DingTalk stand-in, read at start-up, each event in `dingguard.events` once with its `source`.

use std::time::Duration;

use anyhow::Result;
use dingguard_dingtalk_standin::StandIn;
use dingguard_tests::process::{Service, deployment_env, dump_until, value_json};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_failed_push_list_and_the_audit_log_into_the_log() -> Result<()> {
    let standin = StandIn::start("dingsourcesapp", "sources-app-secret").await?;
    standin.park_failed((0..250).map(|i| {
        let event = json!({"EventType": "user_leave_org", "TimeStamp": (1_764_540_000_000i64 + i).to_string(),
            "UserId": [format!("user_gone_{i}")], "CorpId": "dingstandin"});
        json!({"call_back_tag": "user_leave_org", "event_time": 1_764_540_000_000i64 + i,
            "user_leave_org": {"corpid": "dingstandin", "callbackData": event.to_string()}})
    }));
    let now = dingguard_tests::now_ms();
    standin.add_audit_records((0..30).map(|i| {
        json!({"action": 2, "userId": "user_fin_accountant", "bizId": format!("file{i}"), "resource": "q.xlsx",
            "gmtCreate": now - 3_600_000 + i})
    }));
    let dir = tempfile::tempdir()?;
    let mut envs =
        deployment_env(dir.path(), ["sourcestoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingsrc"]);
    envs.extend([
        ("DINGGUARD_SOURCES", "failed-push,file-audit".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingsourcesapp".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "sources-app-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", standin.url()),
        ("DINGGUARD_DINGTALK_OAPI_URL", standin.url()),
    ]);
    let service = Service::start(&["serve"], &envs).await?;
    let from_list =
        |records: &[serde_json::Value]| records.iter().filter(|r| r["headers"]["source"] == "failed-push").count();
    let from_audit =
        |records: &[serde_json::Value]| records.iter().filter(|r| r["headers"]["source"] == "file-audit").count();
    let records =
        dump_until("dingguard.events", &envs, Duration::from_secs(20), |r| from_list(r) >= 250 && from_audit(r) >= 30)
            .await?;
    assert_eq!(from_list(&records), 250, "every parked event, once");
    assert_eq!(from_audit(&records), 30, "every download in the audit log, once");
    assert_eq!(standin.failed_waiting(), 0);
    assert_eq!(standin.calls_to("/call_back/get_call_back_failed_result").len(), 2, "200 and 50: two calls");
    drop(service);
    Ok(())
}

/// `dingguard standin` as a demo would run it, and `dingguard serve` pointed at it with the lines it prints: the
/// download burst only the audit log knows and the outsider added while dingguard was down both raise their alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_standin_gives_serve_a_tenants_alerts() -> Result<()> {
    let standin = Service::start(&["standin", "--listen", "127.0.0.1:0"], &[]).await?;
    let url = standin.url("");
    assert!(standin.banner.contains("DINGGUARD_SOURCES=stream,failed-push,file-audit"), "{}", standin.banner);
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), ["demotoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingdemo"]);
    envs.extend([
        ("DINGGUARD_SOURCES", "stream,failed-push,file-audit".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingstandindemo".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "standin-demo-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", url.clone()),
        ("DINGGUARD_DINGTALK_OAPI_URL", url),
    ]);
    let _serve = Service::start(&["serve"], &envs).await?;
    let rules = |records: &[serde_json::Value]| -> Vec<String> {
        records.iter().filter_map(|r| value_json(r)["rule"].as_str().map(str::to_owned)).collect()
    };
    let wanted = ["bulk_download", "external_member_added"];
    let alerts = dump_until("dingguard.alerts", &envs, Duration::from_secs(30), |r| {
        let rules = rules(r);
        wanted.iter().all(|w| rules.iter().any(|r| r == w))
    })
    .await?;
    let raised = rules(&alerts);
    for rule in wanted {
        assert!(raised.iter().any(|r| r == rule), "{rule} not raised: {raised:?}");
    }
    // The outsider pushed over Stream raised one of its own.
    let groups = |records: &[serde_json::Value]| {
        records.iter().filter(|r| value_json(r).to_string().contains("chatdemo0002")).count()
    };
    let alerts = dump_until("dingguard.alerts", &envs, Duration::from_secs(20), |r| groups(r) > 0).await?;
    assert!(groups(&alerts) > 0, "no alert for the group of the Stream push");
    Ok(())
}

/// `dingguard stream` alone, with three connections, against the stand-in: what it pushes is in the log once,
/// marked as from Stream, and the process reports its connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dingguard_stream_writes_what_the_standin_pushes() -> Result<()> {
    let standin = StandIn::start("dingstreamcli", "stream-cli-secret").await?;
    standin.push_stream_events((0..500).map(|i| {
        json!({"EventType": "chat_add_member", "eventId": format!("cli{i:04}"), "CorpId": "dingcli",
            "EventTime": 1_764_540_000_000i64 + i, "chatId": format!("chat{}", i % 7), "userId": ["ext1"]})
    }));
    let dir = tempfile::tempdir()?;
    let mut envs =
        deployment_env(dir.path(), ["streamtoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingcli"]);
    envs.extend([
        ("DINGGUARD_SOURCES", "stream".to_owned()),
        ("DINGGUARD_STREAM_CONNECTIONS", "3".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingstreamcli".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "stream-cli-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", standin.url()),
    ]);
    let service = Service::start(&["stream"], &envs).await?;
    let from_stream =
        |records: &[serde_json::Value]| records.iter().filter(|r| r["headers"]["source"] == "stream").count();
    let records = dump_until("dingguard.events", &envs, Duration::from_secs(20), |r| from_stream(r) >= 500).await?;
    assert_eq!(from_stream(&records), 500);
    assert_eq!(records.len(), 500);
    let metrics = reqwest::get(service.url("/metrics")).await?.text().await?;
    assert!(metrics.contains("dingguard_stream_connections 3"), "{metrics}");
    assert_eq!(standin.stream_stats().events_acked, 500);

    // Without the source configured it says what to set.
    let mut bare = envs.clone();
    bare.retain(|(k, _)| *k != "DINGGUARD_SOURCES");
    let out = std::process::Command::new(dingguard_tests::process::dingguard_bin()?)
        .arg("stream")
        .envs(bare.iter().map(|(k, v)| (*k, v.as_str())))
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("DINGGUARD_SOURCES=stream"), "{err}");
    Ok(())
}
