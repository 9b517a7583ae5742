//! The directory sync against the stand-in's address book: 2,000 people in 100 departments in seconds, at the
//! pace allowed; a second sync writes nothing; what changed between two syncs is written, and nothing else; an
//! address-book event makes the department it names be read again at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dingguard_dingtalk_standin::StandIn;
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, SystemClock, header};
use dingguard_sources::{DirectorySettings, DirectorySync};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TOPIC, api, embedded_log, pushed};

async fn setup() -> (StandIn, DirectorySync, EventLog, tempfile::TempDir) {
    let standin = StandIn::start("dingdirapp", "dir-secret").await.unwrap();
    let api = api(&standin, "dingdirapp", "dir-secret", Arc::new(SystemClock));
    let dir = tempfile::tempdir().unwrap();
    let log = embedded_log(dir.path()).await;
    let settings = DirectorySettings {
        app: AppName::default_app(),
        topic: TOPIC.into(),
        corp_id: Some("dingdir".into()),
        every: Duration::from_secs(3600),
        min_interval: Duration::from_millis(25),
        state: dir.path().join("directory-sync.json"),
    };
    (standin, DirectorySync::new(api, log.clone(), Arc::new(SystemClock), settings), log, dir)
}

async fn of_type(log: &EventLog, kind: &str) -> Vec<Value> {
    let records = log.read_all(TOPIC).await.unwrap();
    records
        .iter()
        .filter(|r| r.header(header::TYPE) == Some(kind))
        .map(|r| serde_json::from_slice(&r.value).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_people_sync_in_seconds_and_only_changes_are_written_again() {
    let (standin, sync, log, _dir) = setup().await;
    let company = standin.generate_company(100, 2_000);
    standin.set_admins(&[("user00000", 1)]);
    standin.user_leaves("user01999", 1_764_000_000_000);
    let started = Instant::now();
    let report = sync.sync(&CancellationToken::new()).await.unwrap();
    let took = started.elapsed();
    eprintln!("directory sync of 2,000 people and 101 departments: {took:?}, {} calls", report.calls);
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_eq!((report.departments, report.users, report.leavers, report.admins), (101, 1_999, 1, 1), "{report:?}");
    let users = of_type(&log, "dingtalk.directory_user").await;
    let departments = of_type(&log, "dingtalk.directory_department").await;
    assert_eq!((users.len(), departments.len()), (2_000, 101));
    let dept = departments.iter().find(|d| d["deptId"] == "150").unwrap();
    assert_eq!(dept["deptManagerUserid"], company.heads[&150].as_str());
    assert_eq!(dept["parentId"], "113");
    let leaver = users.iter().find(|u| u["userId"] == "user01999").unwrap();
    // The last working day is worked: gone from the end of it.
    assert_eq!((leaver["active"].as_bool(), leaver["leftAtMs"].as_i64()), (Some(false), Some(1_764_086_400_000)));
    assert_eq!(users.iter().find(|u| u["userId"] == "user00000").unwrap()["orgAdmin"], true);
    // Never faster than the pace: calls sent 25 ms apart at least, arriving no closer than one call's latency
    // allows, and 40 a second at most over the whole sync.
    let calls = standin.calls_to("/topapi/v2/user/list");
    assert!(calls.len() >= 100, "paged by department");
    for pair in calls.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(10), "called faster than allowed");
    }
    let span = calls.last().unwrap().at - calls.first().unwrap().at;
    let least = Duration::from_millis(25) * (calls.len() as u32 - 1);
    assert!(span + Duration::from_millis(20) >= least, "{} calls in {span:?}", calls.len());

    // Nothing changed: nothing written.
    let again = sync.sync(&CancellationToken::new()).await.unwrap();
    assert_eq!(again.written, 0, "{again:?}");

    // A new head, a leaver and a new admin: three records and the admin's org_admin_add.
    standin.set_department_heads(150, &["user00250"]);
    standin.user_leaves("user00777", 1_764_100_000_000);
    standin.set_admins(&[("user00000", 1), ("user00042", 2)]);
    let changed = sync.sync(&CancellationToken::new()).await.unwrap();
    // Dept 150, the leaver, user00042 (now an admin), and the admin event. The old head of 150 is unchanged.
    assert_eq!(changed.written, 4, "{changed:?}");
    let admins = of_type(&log, "dingtalk.org_admin_add").await;
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0]["userId"], json!(["user00042"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_book_event_has_its_department_read_again_at_once() {
    let (standin, sync, log, _dir) = setup().await;
    standin.generate_company(20, 200);
    let sync = Arc::new(sync);
    let shutdown = CancellationToken::new();
    let running = sync.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move { running.run(stop).await });
    let deadline = Instant::now() + Duration::from_secs(20);
    while of_type(&log, "dingtalk.directory_department").await.len() < 21 {
        assert!(Instant::now() < deadline, "the first sync did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    standin.set_department_heads(105, &["user00045"]);
    // As the receiver writes DingTalk's push of the change: only the department's id.
    let change = json!({"EventType": "org_dept_modify", "eventId": "dept-mod-1",
        "CorpId": "dingdir", "EventTime": 1_764_540_000_000i64, "deptId": [105]});
    pushed(&log, &change, dingguard_model::Clock::now_ms(&SystemClock)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let departments = of_type(&log, "dingtalk.directory_department").await;
        if let Some(d) = departments.iter().find(|d| d["deptId"] == "105" && d["deptManagerUserid"] == "user00045") {
            assert_eq!(d["EventTime"], 1_764_540_000_000i64, "dated when the change happened");
            break;
        }
        assert!(Instant::now() < deadline, "the department was not read again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
}
