//! The directory from DingTalk behind the approver: 2,000 people in 100 departments synced from the stand-in's
//! address book, an overlay file naming only the DPO, and approvals routed to the head DingTalk names. A new
//! head and a leaver, seen through address-book events between syncs, change the routing at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use dingguard_approver::RequestLimits;
use dingguard_dingtalk::{EventHeader, callback_ce_id, callback_record};
use dingguard_dingtalk_api::{ApiConfig, DingTalkApi};
use dingguard_dingtalk_standin::StandIn;
use dingguard_directory::Directory;
use dingguard_model::{AppName, Clock, ManualClock, Secret, SystemClock};
use dingguard_sources::{DirectorySettings, DirectorySync};
use dingguard_store::{Store, StoreConfig};
use dingguard_tests::approvals::{ApprovalApp, spawn_approvals_with};
use dingguard_tests::work_standin::WorkStandIn;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What DingTalk does not know: who the DPO is.
const OVERLAY: &str = "organisation: dingdir\nusers:\n  - {id: user_dpo, name: Data Protection Officer, roles: [dpo]}\ndpos: [user_dpo]\n";

/// Who the department-head slot of a new request by `requester` names.
async fn head_slot(app: &ApprovalApp, requester: &str) -> Result<Vec<String>> {
    let id = app.request_sensitive(requester, &format!("f-{}", dingguard_tests::now_ms())).await?;
    let view = app.read(&id).await?;
    let slot = view["slots"].as_array().context("slots")?.iter().find(|s| s["role"] == "dept_head").cloned();
    Ok(slot
        .map(|s| s["eligible"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

async fn until_head(app: &ApprovalApp, requester: &str, head: &str, within: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if let Ok(heads) = head_slot(app, requester).await
            && heads == [head]
        {
            return Ok(started.elapsed());
        }
        ensure!(started.elapsed() < within, "requests by {requester} never routed to {head} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes a DingTalk push as the receiver would.
async fn pushed(app: &ApprovalApp, event: Value) -> Result<()> {
    let bytes = serde_json::to_vec(&event)?;
    let header = EventHeader::parse(&bytes)?;
    let id = callback_ce_id(&header, &bytes);
    let record = callback_record(&AppName::default_app(), &id, &header, Bytes::from(bytes), SystemClock.now_ms());
    app.log.append(&app.topics.events, record).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_route_to_the_head_dingtalk_names_and_follow_its_events_at_once() -> Result<()> {
    let standin = StandIn::start("dingdirapp", "dir-secret").await?;
    let company = standin.generate_company(100, 2_000);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let work = Arc::new(WorkStandIn::start().await);
    let limits = RequestLimits { max_open_per_requester: 1000, max_per_hour: 10_000 };
    let app = spawn_approvals_with(
        store,
        ManualClock::new(SystemClock.now_ms()),
        work,
        limits,
        Directory::from_yaml(OVERLAY)?,
    )
    .await?;

    let mut config = ApiConfig::new("dingdirapp", Secret::new("dir-secret".to_owned()));
    config.api_url = standin.url();
    config.oapi_url = standin.url();
    let api = Arc::new(DingTalkApi::new(config, Arc::new(SystemClock))?);
    let settings = DirectorySettings {
        app: AppName::default_app(),
        topic: app.topics.events.clone(),
        corp_id: Some("dingdir".into()),
        every: Duration::from_secs(3600),
        min_interval: Duration::from_millis(25),
        state: dir.path().join("directory-sync.json"),
    };
    let sync = DirectorySync::new(api, app.log.clone(), Arc::new(SystemClock), settings);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let started = Instant::now();
    tokio::spawn(async move { sync.run(stop).await });

    // user00150 is in department 150, headed by its first person.
    let head = company.heads[&150].clone();
    assert_eq!(head, "user00050");
    let first = until_head(&app, "user00150", &head, Duration::from_secs(30)).await?;
    eprintln!("2,000 people synced and routed on in {:?}", started.elapsed().max(first));

    // A new head, as DingTalk's event says (it names only the department).
    standin.set_department_heads(150, &["user00250"]);
    pushed(
        &app,
        json!({"EventType": "org_dept_modify", "eventId": "e-dept-150", "CorpId": "dingdir",
        "EventTime": SystemClock.now_ms(), "deptId": [150]}),
    )
    .await?;
    let took = until_head(&app, "user00150", "user00250", Duration::from_secs(5)).await?;
    eprintln!("a new head routed to {took:?} after the event");

    // Someone who can post signed callbacks claims a department head of their own with our sync's event type:
    // only the directory source's records are believed, so the routing stays.
    pushed(
        &app,
        json!({"EventType": "directory_department", "eventId": "e-forged", "CorpId": "dingdir",
        "EventTime": SystemClock.now_ms(), "deptId": "150", "deptManagerUserid": "user00999"}),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(head_slot(&app, "user00150").await?, ["user00250"], "a pushed directory claim changed the routing");

    // The new head leaves: the head of the parent department (113, headed by user00013) approves instead.
    pushed(
        &app,
        json!({"EventType": "user_leave_org", "eventId": "e-left-250", "CorpId": "dingdir",
        "EventTime": SystemClock.now_ms(), "userId": ["user00250"]}),
    )
    .await?;
    until_head(&app, "user00150", "user00013", Duration::from_secs(5)).await?;
    shutdown.cancel();
    Ok(())
}
