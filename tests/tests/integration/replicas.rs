//! Every service in two replicas on one Kafka-protocol broker and the machine's PostgreSQL — two receivers, two
//! alerters, two approvers — with one of each SIGKILLed under load: every callback DingTalk had acknowledged is
//! judged once (one alert per outsider, each notified once), every download request is opened once and notified
//! to its approvers, and a decision sent to both approver replicas at once is taken once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_eventlog::{EventLog, KafkaLog, KafkaOptions};
use dingguard_simulator::{SignedCallback, Signer, random_id};
use dingguard_store::AlertFilter;
use dingguard_tests::app::metric_in;
use dingguard_tests::process::{Service, deployment_env, run};
use dingguard_tests::standin::WebhookStandIn;
use dingguard_tests::work_standin::{AGENT_ID, APP_KEY as WORK_APP, APP_SECRET, WorkStandIn};
use parking_lot::Mutex;
use serde_json::{Value, json};

const TOKEN: &str = "replicatoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dingreplicas";
const OUTSIDERS: usize = 300;
const REQUESTS: usize = 30;
const DPO: &str = "user_dpo";
const HEAD: &str = "user_hr_manager";

/// Posts each callback to receiver `i % 2`; one that is not acknowledged goes to the other, as DingTalk retries.
/// The event ids acknowledged, in the order they were.
async fn send_all(urls: [String; 2], callbacks: Vec<SignedCallback>, acked: Arc<Mutex<Vec<String>>>) {
    use futures_util::StreamExt;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    futures_util::stream::iter(callbacks.into_iter().enumerate())
        .for_each_concurrent(8, |(i, callback)| {
            let (http, urls, acked) = (http.clone(), urls.clone(), acked.clone());
            async move {
                for attempt in 0..20 {
                    let url = &urls[(i + attempt) % 2];
                    let reply = http
                        .post(format!("{url}/dingtalk/callback?{}", callback.query))
                        .header("content-type", "application/json")
                        .body(callback.body.clone())
                        .send()
                        .await;
                    if reply.is_ok_and(|r| r.status().is_success()) {
                        acked.lock().push(callback.event_id.clone().unwrap_or_default());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
        .await;
}

/// The approvals topic as a consumer group reads it from the start: (type, subject, value) of each record. The
/// product's readers are groups; a one-off partition read of a topic the killed replica was writing to sometimes
/// misses records on the test broker that every group sees.
async fn approval_records(log: &EventLog) -> Result<Vec<(String, String, Value)>> {
    let mut consumer = log.consumer(&random_id("check"), &["dingguard.approvals"]).await?;
    let mut out = Vec::new();
    let mut quiet = 0;
    // Joining a new group takes the broker a while; then the read ends once nothing more comes for 2 s.
    let joining = Instant::now() + Duration::from_secs(30);
    while quiet < 4 {
        let records = consumer.poll(500, Duration::from_millis(500)).await?;
        let joined = !out.is_empty() || Instant::now() > joining;
        quiet = if records.is_empty() && joined { quiet + 1 } else { 0 };
        for r in records {
            let value = serde_json::from_slice(&r.value).unwrap_or_default();
            let (kind, subject) = (r.header("ce_type").unwrap_or_default(), r.header("ce_subject").unwrap_or_default());
            out.push((kind.to_owned(), subject.to_owned(), value));
        }
    }
    Ok(out)
}

async fn metric(service: &Service, name: &str) -> f64 {
    match reqwest::get(service.url("/metrics")).await {
        Ok(reply) => metric_in(&reply.text().await.unwrap_or_default(), name),
        Err(_) => 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_every_service_lose_one_each_and_process_every_acknowledged_callback_once() -> Result<()> {
    let broker = dingguard_tests::broker::Broker::start().await?;
    let (store, db_url, _db) = dingguard_tests::pg::fresh_postgres_url().await;
    let hook = WebhookStandIn::start().await?;
    let work = WorkStandIn::start().await;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("dingguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify.webhooks]]\nname = \"soc\"\nurl = \"{}\"\nsecret = \"{}\"\nmin_severity = \"low\"\n\
             [notify.work]\napp_key = \"{WORK_APP}\"\napp_secret = \"{APP_SECRET}\"\nagent_id = {AGENT_ID}\n\
             base_url = \"{}\"\n",
            hook.url(),
            hook.secret,
            work.url
        ),
    )?;
    let mut envs = deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    envs.extend([
        ("DINGGUARD_CONFIG", config.display().to_string()),
        ("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()),
        ("DINGGUARD_DATABASE_URL", db_url),
        ("DINGGUARD_LOG_PARTITIONS", "4".to_owned()),
        // Small batches: the kills land between commits.
        ("DINGGUARD_ALERTER_BATCH", "5".to_owned()),
        ("DINGGUARD_APPROVER_MAX_OPEN_PER_REQUESTER", "1000".to_owned()),
        ("DINGGUARD_APPROVER_MAX_REQUESTS_PER_HOUR", "1000".to_owned()),
    ]);
    let replica = |service: &str, i: usize| {
        let mut envs = envs.clone();
        envs.push(("DINGGUARD_INSTANCE_ID", format!("{service}-{i}")));
        envs
    };
    let mut receivers = [Service::start(&["receiver"], &envs).await?, Service::start(&["receiver"], &envs).await?];
    let mut alerters = [
        Service::start(&["alerter"], &replica("alerter", 0)).await?,
        Service::start(&["alerter"], &replica("alerter", 1)).await?,
    ];
    let mut approvers = [
        Service::start(&["approver"], &replica("approver", 0)).await?,
        Service::start(&["approver"], &replica("approver", 1)).await?,
    ];

    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = dingguard_tests::now_ms();
    let mut callbacks = Vec::new();
    for i in 0..OUTSIDERS {
        let event = json!({"EventType": "chat_add_member", "EventTime": now, "CorpId": "dingreplicas",
            "eventId": random_id("join"), "chatId": format!("chat{i:04}"), "operator": "user_sales_lead",
            "userId": [format!("ext_guest_{i}")]});
        callbacks.push(signer.sign(&event, now as u64));
        if i % (OUTSIDERS / REQUESTS) == 0 {
            let event = json!({"EventType": "file_download_request", "EventTime": now, "CorpId": "dingdemo",
                "eventId": random_id("req"), "requestId": random_id("r"), "userId": "user_hr_clerk",
                "fileId": format!("file{i:04}"), "fileName": format!("身份證-scans-{i}.zip"), "spaceId": "space_hr",
                "reason": "annual audit of staff records", "timeStamp": now});
            callbacks.push(signer.sign(&event, now as u64));
        }
    }
    let total = callbacks.len();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let sending = tokio::spawn(send_all([receivers[0].url(""), receivers[1].url("")], callbacks, acked.clone()));

    // One of each, SIGKILLed while the load is on: a receiver, then an alerter and an approver mid-batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().len() < total / 3 {
        ensure!(Instant::now() < deadline, "the receivers never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    receivers[0].kill().await;
    let killed_at = Arc::new(AtomicUsize::new(0));
    while metric(&alerters[0], r#"dingguard_alerter_events_total{outcome="processed"}"#).await < 20.0 {
        ensure!(Instant::now() < deadline, "the first alerter never judged anything");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    alerters[0].kill().await;
    approvers[0].kill().await;
    killed_at.store(acked.lock().len(), Ordering::Relaxed);
    // Its orchestrator starts the alerter again under its name (a StatefulSet's pod), and it takes back its
    // partitions from where its last committed batch left them, while the load is still on.
    alerters[0] = Service::start(&["alerter"], &replica("alerter", 0)).await?;
    sending.await?;
    let acked: Vec<String> = acked.lock().clone();
    ensure!(acked.len() == total, "{} of {total} callbacks acknowledged in the end", acked.len());

    // The killed approver comes back, as its orchestrator would restart it: decisions go to both replicas.
    approvers[0] = Service::start(&["approver"], &replica("approver", 0)).await?;

    // Alerts: one per outsider's group, each notified once.
    let deadline = Instant::now() + Duration::from_secs(120);
    let alerts = loop {
        let alerts = store.alerts(&AlertFilter { limit: Some(10_000), ..AlertFilter::default() }).await?;
        let notified: BTreeSet<String> = hook.deliveries().into_iter().map(|(id, _)| id).collect();
        if alerts.len() >= OUTSIDERS && notified.len() >= OUTSIDERS {
            break alerts;
        }
        ensure!(
            Instant::now() < deadline,
            "{} alerts and {} notified of {OUTSIDERS} (killed after {} acknowledged)",
            alerts.len(),
            notified.len(),
            killed_at.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let alerts =
        store.alerts(&AlertFilter { limit: Some(10_000), ..AlertFilter::default() }).await?.len().max(alerts.len());
    assert_eq!(alerts, OUTSIDERS, "one alert per outsider's group, none twice");
    let mut per_alert: BTreeMap<String, usize> = BTreeMap::new();
    for (id, _) in hook.deliveries() {
        *per_alert.entry(id).or_default() += 1;
    }
    assert_eq!(per_alert.len(), OUTSIDERS, "every alert notified");
    let repeated: usize = per_alert.values().map(|n| n - 1).sum();
    // A send in flight at the alerter's kill may go again under the same webhook-id, which receivers drop.
    assert!(repeated <= 5, "{repeated} notifications repeated");
    let judged = metric(&alerters[1], r#"dingguard_alerter_events_total{outcome="processed"}"#).await;
    assert!(judged > 0.0, "the surviving alerter took over the killed one's partitions");

    // Requests: one per callback, whichever replica read it, each announced to its two approvers.
    let envs0 = replica("approver", 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = EventLog::Kafka(KafkaLog::connect(KafkaOptions::new(broker.bootstrap()))?);
    let requests: BTreeMap<String, String> = loop {
        let records = approval_records(&log).await?;
        let requested: Vec<&(String, String, Value)> =
            records.iter().filter(|(kind, _, _)| kind == "dingguard.approval.requested").collect();
        if requested.len() >= REQUESTS || Instant::now() > deadline {
            // The request's id is the record's subject.
            let by_file: BTreeMap<String, String> = requested
                .iter()
                .filter_map(|(_, subject, value)| Some((value["file"]["id"].as_str()?.to_owned(), subject.clone())))
                .collect();
            assert_eq!(requested.len(), by_file.len(), "a request was opened twice or without an id");
            break by_file;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (stored, _) = store.open_requests_of("user_hr_clerk").await?;
    assert_eq!(stored, REQUESTS as i64, "every download request opened once in the store");
    assert_eq!(
        requests.len(),
        REQUESTS,
        "every download request on the approvals topic once: {:?}",
        requests.keys().collect::<Vec<_>>()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let announced = |user: &str, id: &str| work.sent_to(user).iter().filter(|s| mentions(s, id)).count();
        let missing: Vec<&String> =
            requests.values().filter(|id| announced(DPO, id) == 0 || announced(HEAD, id) == 0).collect();
        if missing.is_empty() {
            let repeats: usize = requests
                .values()
                .map(|id| announced(DPO, id).saturating_sub(1) + announced(HEAD, id).saturating_sub(1))
                .sum();
            assert!(repeats <= 3, "{repeats} approval notices repeated");
            break;
        }
        ensure!(Instant::now() < deadline, "requests never announced to their approvers: {missing:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Decisions: the same approval sent to both replicas at once is taken by one.
    let token = async |user: &str| -> Result<String> {
        let (ok, out, err) = run(&["users", "token", user], &envs0).await?;
        ensure!(ok, "{err}");
        Ok(out.trim().to_owned())
    };
    let (dpo, head) = (token(DPO).await?, token(HEAD).await?);
    let http = reqwest::Client::new();
    let decide = async |replica: usize, token: &str, id: &str| -> Result<(u16, Value)> {
        let url = approvers[replica].url(&format!("/api/v1/download-requests/{id}/decisions"));
        let body = json!({"decision": "approve", "comment": "checked"});
        dingguard_tests::call_json(&http, url, token, reqwest::Method::POST, Some(body)).await
    };
    for id in requests.values() {
        for token in [&dpo, &head] {
            let (a, b) = tokio::join!(decide(0, token, id), decide(1, token, id));
            let statuses = [a?.0, b?.0];
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "one of two identical decisions is taken: {statuses:?} for {id}"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let granted = loop {
        let mut granted: BTreeMap<String, usize> = BTreeMap::new();
        for (_, subject, _) in
            approval_records(&log).await?.iter().filter(|(k, _, _)| k == "dingguard.approval.granted")
        {
            *granted.entry(subject.clone()).or_default() += 1;
        }
        if granted.len() >= REQUESTS || Instant::now() > deadline {
            break granted;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(granted.len(), REQUESTS, "every request granted");
    assert!(granted.values().all(|n| *n == 1), "a grant announced twice: {granted:?}");
    let (ok, out, err) = run(&["audit", "verify"], &envs0).await?;
    assert!(ok && out.contains("intact"), "{out}{err}");
    drop((receivers, alerters));
    Ok(())
}

/// Whether a work notice is about request `id`.
fn mentions(sent: &dingguard_tests::work_standin::Sent, id: &str) -> bool {
    sent.link().is_some_and(|l| l.contains(id)) || sent.text().contains(id)
}
