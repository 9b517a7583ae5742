//! `dingguard serve` with the sources that fetch from DingTalk: the failed-push list and the file audit log of the
//! DingTalk stand-in, read at start-up, each event in `dingguard.events` once with its `source`.

use std::time::Duration;

use anyhow::{Context, Result};
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
    // The notification settings it wrote: its robot and work-notification receivers.
    let config = standin
        .banner
        .split_whitespace()
        .find_map(|w| w.strip_prefix("DINGGUARD_CONFIG="))
        .map(str::to_owned)
        .context("no DINGGUARD_CONFIG in the banner")?;
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), ["demotoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingdemo"]);
    envs.extend([
        ("DINGGUARD_CONFIG", config),
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
    // And the stand-in's security group robot shows them.
    standin.wait_for_output("[security group robot]", Duration::from_secs(20)).await?;
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

/// A download only the file audit log knows, polled after the leave that followed it, raises what the same
/// download posted by a gateway raises, judged at the time it happened: a leaver's download, not a departed
/// user's. An external share link and an export in the audit log raise alerts of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_log_download_is_judged_like_a_gateways_at_its_own_time() -> Result<()> {
    use dingguard_tests::deployment::{Deployment, rules_of};
    const DAY: i64 = 86_400_000;
    let t = dingguard_tests::now_ms() - 3 * DAY;
    let leave = json!({"EventType": "user_leave_org", "eventId": "src-left", "EventTime": t + 2 * DAY,
        "CorpId": "dingsrc", "userId": ["user_sales_temp"]});
    let gateway_download = json!({"EventType": "file_download", "eventId": "src-gw-dl", "EventTime": t,
        "CorpId": "dingsrc", "userId": "user_sales_temp", "fileId": "src-f1", "fileName": "confidential-prices.xlsx",
        "spaceId": "space_sales", "action": 2, "source": "gateway"});
    let judged = |alerts: &[serde_json::Value]| {
        let mut rules: Vec<String> = rules_of(alerts).into_iter().map(str::to_owned).collect();
        rules.sort();
        rules.dedup();
        rules
    };

    // The gateway's deployment: the download, then the leave, each pushed.
    let gateway = Deployment::start(&[]).await?;
    gateway.push(&[gateway_download, leave.clone()]).await?;
    let by_gateway = gateway.alerts_until(|a| rules_of(a).contains(&"leaver_downloaded_sensitive_files")).await?;

    // The audit log's: the leave pushed first; the download, a share link and an export read from the audit
    // log afterwards.
    let standin = StandIn::start("dingsrcaudit", "src-audit-secret").await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("dingguard.toml");
    std::fs::write(&config, "[sources.file_audit]\nevery_secs = 5\ncorp_id = \"dingsrc\"\n")?;
    let audit = Deployment::start(&[
        ("DINGGUARD_CONFIG", config.display().to_string()),
        ("DINGGUARD_SOURCES", "file-audit".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingsrcaudit".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "src-audit-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", standin.url()),
    ])
    .await?;
    // In the log (the push's 200 says so) before the download is read, under the same key: the alerter sees
    // the leave first.
    audit.push(&[leave]).await?;
    let record = |action: i64, file: &str, name: &str, at: i64| {
        json!({"action": action, "userId": "user_sales_temp", "bizId": file, "resource": name,
            "targetSpaceId": "space_sales", "platform": 2, "ipAddress": "10.9.8.7", "gmtCreate": at,
            "receiverName": "outside viewer"})
    };
    standin.add_audit_records([
        record(2, "src-f1", "confidential-prices.xlsx", t),
        record(5, "src-f2", "pricing-model.xlsx", t + 60_000),
        record(12, "src-f3", "customer-list", t + 120_000),
    ]);
    let by_audit = audit
        .alerts_until(|a| {
            let r = rules_of(a);
            ["leaver_downloaded_sensitive_files", "external_share_link_created", "document_exported"]
                .iter()
                .all(|w| r.contains(w))
        })
        .await?;
    let download_rules: Vec<String> = judged(&by_audit)
        .into_iter()
        .filter(|r| !["external_share_link_created", "document_exported"].contains(&r.as_str()))
        .collect();
    assert_eq!(download_rules, judged(&by_gateway), "the same download, the same alerts");
    assert!(download_rules.contains(&"leaver_downloaded_sensitive_files".to_owned()), "{download_rules:?}");
    assert!(!download_rules.contains(&"download_by_departed_user".to_owned()), "downloaded before leaving");
    let rules = judged(&by_audit);
    assert!(rules.contains(&"external_share_link_created".to_owned()), "{rules:?}");
    assert!(rules.contains(&"document_exported".to_owned()), "{rules:?}");
    Ok(())
}

/// `dingguard sources backfill --since`: reads days the first start did not reach, writes each record once
/// however often it is run, and refuses a point it cannot read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_reads_back_to_a_point_once() -> Result<()> {
    use dingguard_tests::process::run;
    let standin = StandIn::start("dingbackfill", "backfill-secret").await?;
    let now = dingguard_tests::now_ms();
    // Ten to nine days ago: before the seven days a first start reads.
    standin.add_audit_records((0..120i64).map(|i| {
        json!({"action": 2, "userId": "user_fin_accountant", "bizId": format!("old{i}"), "resource": "ledger.xlsx",
            "gmtCreate": now - 10 * 86_400_000 + i * 600_000})
    }));
    let dir = tempfile::tempdir()?;
    let mut envs =
        deployment_env(dir.path(), ["backfilltoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingbf"]);
    envs.extend([
        ("DINGGUARD_SOURCES", "file-audit".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_ID", "dingbackfill".to_owned()),
        ("DINGGUARD_DINGTALK_CLIENT_SECRET", "backfill-secret".to_owned()),
        ("DINGGUARD_DINGTALK_API_URL", standin.url()),
    ]);
    let (ok, out, err) = run(&["sources", "backfill", "--since", "12d"], &envs).await?;
    assert!(ok, "{err}");
    assert!(out.contains("120 events written, 0 already in the log"), "{out}");
    let (ok, out, err) = run(&["sources", "backfill", "--since", "12d"], &envs).await?;
    assert!(ok, "{err}");
    assert!(out.contains("0 events written, 120 already in the log"), "{out}");
    let records = dingguard_tests::process::dump("dingguard.events", &envs).await?;
    assert_eq!(records.iter().filter(|r| r["headers"]["source"] == "file-audit").count(), 120);
    let (ok, _, err) = run(&["sources", "backfill", "--since", "last tuesday"], &envs).await?;
    assert!(!ok && err.contains("is not a date"), "{err}");
    let mut bare = envs.clone();
    bare.retain(|(k, _)| *k != "DINGGUARD_SOURCES");
    let (ok, _, err) = run(&["sources", "backfill", "--since", "12d"], &bare).await?;
    assert!(!ok && err.contains("DINGGUARD_SOURCES=file-audit"), "{err}");
    Ok(())
}
