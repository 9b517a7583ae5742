//! Dual approval through the built binary's JSON API: the DPO and the requester's department head must both
//! approve; every refusal changes nothing; outcomes reach the approvals topic and the audit chain.

use anyhow::{Context, Result, ensure};
use std::time::Duration;

use dingguard_tests::process::{Service, ce_type, dump, dump_until, run, value_json};
use serde_json::{Value, json};

const TOKEN: &str = "approvaltoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dingapprovals";

struct Api {
    service: Service,
    envs: Vec<(&'static str, String)>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&'static str, &str)]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut envs = dingguard_tests::process::deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
        envs.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let service = Service::start(&["serve"], &envs).await?;
        Ok(Self { service, envs, http: reqwest::Client::new(), _dir: dir })
    }

    async fn token(&self, user: &str) -> Result<String> {
        let (ok, out, err) = run(&["users", "token", user], &self.envs).await?;
        ensure!(ok, "{err}");
        Ok(out.trim().to_owned())
    }

    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, self.service.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn decide(&self, token: &str, id: &str, decision: &str) -> Result<(u16, Value)> {
        let body = json!({"decision": decision, "comment": "checked"});
        self.call(token, reqwest::Method::POST, &format!("/api/v1/download-requests/{id}/decisions"), Some(body)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_approvers_must_approve_and_every_refusal_changes_nothing() -> Result<()> {
    let api = Api::start().await?;
    let (ok, users, _) = run(&["users", "list"], &api.envs).await?;
    assert!(ok && users.lines().any(|u| u == "user_dpo") && users.lines().any(|u| u == "user_hr_clerk"), "{users}");
    let clerk = api.token("user_hr_clerk").await?;
    let dpo = api.token("user_dpo").await?;
    let head = api.token("user_hr_manager").await?;
    let stranger = api.token("user_sales_rep").await?;

    let body =
        json!({"file": {"id": "f-ids-1", "name": "身份證-scans.zip", "space": "space_hr"}, "reason": "annual audit"});
    let (status, created) = api.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().unwrap().to_owned();
    let slots = created["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    assert!(slots[0]["eligible"].as_array().unwrap().contains(&json!("user_dpo")), "{created}");
    assert!(slots[1]["eligible"].as_array().unwrap().contains(&json!("user_hr_manager")), "{created}");

    // Refusals, each leaving the request as it was.
    assert_eq!(api.decide(&clerk, &id, "approve").await?.0, 403, "the requester approving their own request");
    assert_eq!(api.decide(&stranger, &id, "approve").await?.0, 403, "a stranger deciding");
    assert_eq!(api.decide("not-a-token", &id, "approve").await?.0, 401);
    assert_eq!(api.decide(&dpo, &id, "maybe").await?.0, 422);
    let (status, _) =
        api.call(&stranger, reqwest::Method::GET, &format!("/api/v1/download-requests/{id}"), None).await?;
    assert_eq!(status, 404, "strangers learn nothing");
    let (_, unchanged) =
        api.call(&clerk, reqwest::Method::GET, &format!("/api/v1/download-requests/{id}"), None).await?;
    assert_eq!(unchanged["decisions"], json!([]));

    let (status, after_dpo) = api.decide(&dpo, &id, "approve").await?;
    assert_eq!(status, 200, "{after_dpo}");
    assert_eq!(after_dpo["status"], "pending", "one approval is not enough");
    assert_eq!(api.decide(&dpo, &id, "approve").await?.0, 409, "one person fills at most one slot");
    let (status, granted) = api.decide(&head, &id, "approve").await?;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["status"], "granted");
    assert!(granted["granted_until_ms"].as_i64().is_some());
    assert_eq!(api.decide(&head, &id, "reject").await?.0, 409, "a finished request takes no more decisions");

    // A rejection by either approver rejects.
    let body = json!({"file": {"id": "f-pay-2", "name": "confidential-payroll.xlsx"}, "reason": "month end"});
    let (_, second) = api.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    let second_id = second["id"].as_str().unwrap().to_owned();
    let (status, rejected) = api.decide(&head, &second_id, "reject").await?;
    assert_eq!((status, rejected["status"].as_str()), (200, Some("rejected")), "{rejected}");

    // A file that is not sensitive is granted at once, and the grant is recorded.
    let body = json!({"file": {"id": "f-menu", "name": "canteen-menu.pdf"}, "reason": "lunch"});
    let (status, plain) = api.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    assert_eq!((status, plain["status"].as_str()), (201, Some("granted")), "{plain}");

    // Outcomes on the approvals topic and in an intact audit chain.
    let records = dump_until("dingguard.approvals", &api.envs, Duration::from_secs(10), |records| {
        records.iter().filter(|r| ce_type(r).ends_with("granted")).count() >= 2
    })
    .await?;
    let types: Vec<&str> = records.iter().map(ce_type).collect();
    for expected in [
        "dingguard.approval.requested",
        "dingguard.approval.decided",
        "dingguard.approval.granted",
        "dingguard.approval.rejected",
    ] {
        assert!(types.contains(&expected), "{expected} missing from {types:?}");
    }
    let (ok, out, err) = run(&["audit", "verify"], &api.envs).await?;
    assert!(ok, "{err}");
    assert!(out.contains("intact"), "{out}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_download_raises_no_alert_and_an_ungranted_one_does() -> Result<()> {
    use dingguard_simulator::load::{self, Target};
    use dingguard_simulator::{Signer, random_id};

    let api = Api::start().await?;
    let clerk = api.token("user_hr_clerk").await?;
    let body = json!({"file": {"id": "f-hr-77", "name": "hr-contracts.zip"}, "reason": "renewals"});
    let (_, created) = api.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    let id = created["id"].as_str().unwrap().to_owned();
    api.decide(&api.token("user_dpo").await?, &id, "approve").await?;
    let (_, granted) = api.decide(&api.token("user_hr_manager").await?, &id, "approve").await?;
    assert_eq!(granted["status"], "granted");

    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = dingguard_tests::now_ms();
    let download = |user: &str| {
        json!({"EventType": "file_download", "EventTime": now, "CorpId": "dingdemo", "eventId": random_id("dl"),
            "userId": user, "fileId": "f-hr-77", "fileName": "hr-contracts.zip", "action": 2})
    };
    let callbacks =
        vec![signer.sign(&download("user_hr_clerk"), now as u64), signer.sign(&download("user_sales_rep"), now as u64)];
    let report = load::send_all(Target::parse(&api.service.url("/dingtalk/callback"))?, callbacks, signer).await;
    ensure!(report.non_success == 0, "callbacks refused");

    let ungranted_alerts = |records: &[Value]| -> Vec<Value> {
        records.iter().map(value_json).filter(|a| a["rule"] == "sensitive_download_without_grant").collect()
    };
    dump_until("dingguard.alerts", &api.envs, Duration::from_secs(15), |r| !ungranted_alerts(r).is_empty()).await?;
    // Give the granted download time to be judged too, then look again: it must have raised nothing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ungranted = ungranted_alerts(&dump("dingguard.alerts", &api.envs).await?);
    assert_eq!(ungranted.len(), 1, "{ungranted:?}");
    let message = ungranted[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("user_sales_rep") && !message.contains("user_hr_clerk"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_request_callback_opens_one_request_however_often_it_arrives() -> Result<()> {
    use dingguard_simulator::load::{self, Target};
    use dingguard_simulator::{Scenario, ScenarioContext, Signer};

    let api = Api::start().await?;
    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = dingguard_tests::now_ms();
    let event = Scenario::DownloadRequest.events(&ScenarioContext::new("dingdemo", now)).remove(0);
    // DingTalk retried: the same event three times, re-encrypted each time.
    let callbacks: Vec<_> = (0..3).map(|_| signer.sign(&event, now as u64)).collect();
    let report = load::send_all(Target::parse(&api.service.url("/dingtalk/callback"))?, callbacks, signer).await;
    ensure!(report.non_success == 0, "callbacks refused");

    let is_requested = |r: &&Value| ce_type(r) == "dingguard.approval.requested";
    dump_until("dingguard.approvals", &api.envs, Duration::from_secs(15), |r| r.iter().any(|x| is_requested(&x)))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let records = dump("dingguard.approvals", &api.envs).await?;
    let requested: Vec<Value> = records.iter().filter(is_requested).map(value_json).collect();
    assert_eq!(requested.len(), 1, "one request for one callback: {requested:?}");
    assert_eq!(requested[0]["requester"], "user_hr_clerk");
    assert_eq!(requested[0]["file"]["name"], "身份證-scans.zip");
    assert_eq!(requested[0]["sensitive"], true);
    Ok(())
}

/// The approver is killed after deciding but before its events went out (its publishing pass is an hour away):
/// after a restart each event is published exactly once, and the request is not decided again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_decision_survive_sigkill_and_are_published_once() -> Result<()> {
    let mut api = Api::start_with(&[("DINGGUARD_APPROVER_TICK_MS", "3600000")]).await?;
    let clerk = api.token("user_hr_clerk").await?;
    let dpo = api.token("user_dpo").await?;
    let head = api.token("user_hr_manager").await?;
    let body = json!({"file": {"id": "f-kill", "name": "hr-review.pdf"}, "reason": "restructuring"});
    let (_, created) = api.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    let id = created["id"].as_str().context("no id")?.to_owned();
    assert_eq!(api.decide(&dpo, &id, "approve").await?.0, 200);
    let (status, granted) = api.decide(&head, &id, "approve").await?;
    assert_eq!((status, granted["status"].as_str()), (200, Some("granted")), "{granted}");
    assert!(dump("dingguard.approvals", &api.envs).await?.is_empty(), "killed before anything was published");
    api.service.kill().await;

    let mut envs = api.envs.clone();
    envs.push(("DINGGUARD_APPROVER_TICK_MS", "100".into()));
    let restarted = Service::start(&["serve"], &envs).await?;
    let expected = ["requested", "decided", "decided", "granted"].map(|k| format!("dingguard.approval.{k}"));
    let records =
        dump_until("dingguard.approvals", &envs, Duration::from_secs(15), |r| r.len() >= expected.len()).await?;
    // Another pass or two must not add anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let records_after = dump("dingguard.approvals", &envs).await?;
    assert_eq!(records_after.len(), records.len(), "published once");
    let types: Vec<&str> = records_after.iter().map(ce_type).collect();
    assert_eq!(types, expected, "each event once, in order: {records_after:#?}");
    let ids: std::collections::BTreeSet<&str> =
        records_after.iter().filter_map(|r| r["headers"]["ce_id"].as_str()).collect();
    assert_eq!(ids.len(), records_after.len(), "distinct ce_ids");

    let again = reqwest::Client::new()
        .post(restarted.url(&format!("/api/v1/download-requests/{id}/decisions")))
        .bearer_auth(&head)
        .json(&json!({"decision": "reject"}))
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 409, "a granted request takes no more decisions");
    let read: Value = reqwest::Client::new()
        .get(restarted.url(&format!("/api/v1/download-requests/{id}")))
        .bearer_auth(&dpo)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(read["decisions"].as_array().map(Vec::len), Some(2), "{read}");
    let (ok, out, err) = run(&["audit", "verify"], &envs).await?;
    assert!(ok && out.contains("intact"), "{out} {err}");
    Ok(())
}

/// A DingTalk OA approval of the configured process starting is a download request: the form names the file and
/// the reason, the approvers are notified; other processes and forms without a file open nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oa_approval_of_the_configured_process_opens_one_request() -> Result<()> {
    use dingguard_simulator::load::{self, Target};
    use dingguard_simulator::{Signer, random_id};
    use dingguard_tests::work_standin::{AGENT_ID, APP_KEY as WORK_APP, APP_SECRET, WorkStandIn};

    let work = WorkStandIn::start().await;
    work.add_instance(
        "proc-1",
        "user_hr_clerk",
        "Download: payroll",
        &[("File ID", "f-payroll-9"), ("File name", "confidential-payroll-2026.xlsx"), ("Reason", "tax filing")],
    );
    work.add_instance("proc-2", "user_hr_clerk", "Download: nothing named", &[("Reason", "forgot the file")]);
    work.add_instance("proc-3", "user_hr_clerk", "Leave", &[("File ID", "f-other")]);
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(
        config.path(),
        format!(
            "[notify.work]\napp_key = \"{WORK_APP}\"\napp_secret = \"{APP_SECRET}\"\nagent_id = {AGENT_ID}\n\
             base_url = \"{url}\"\n[approver.oa]\nprocess_codes = [\"PROC-DOWNLOAD\"]\nbase_url = \"{url}\"\n",
            url = work.url
        ),
    )?;
    let api = Api::start_with(&[("DINGGUARD_CONFIG", config.path().to_str().context("path")?)]).await?;

    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = dingguard_tests::now_ms();
    let start = |instance: &str, code: &str| {
        serde_json::json!({"EventType": "bpms_instance_change", "EventTime": now, "CorpId": "dingdemo",
            "eventId": random_id("ev"), "processInstanceId": instance, "processCode": code, "type": "start",
            "staffId": "user_hr_clerk", "title": "Download", "createTime": now})
    };
    let first = start("proc-1", "PROC-DOWNLOAD");
    let events = [
        first.clone(),
        first,
        start("proc-1", "PROC-DOWNLOAD"),
        start("proc-2", "PROC-DOWNLOAD"),
        start("proc-3", "PROC-LEAVE"),
    ];
    let callbacks: Vec<_> = events.iter().map(|e| signer.sign(e, now as u64)).collect();
    let report = load::send_all(Target::parse(&api.service.url("/dingtalk/callback"))?, callbacks, signer).await;
    ensure!(report.non_success == 0, "callbacks refused");

    let is_requested = |r: &&Value| ce_type(r) == "dingguard.approval.requested";
    dump_until("dingguard.approvals", &api.envs, Duration::from_secs(15), |r| r.iter().any(|x| is_requested(&x)))
        .await?;
    let notified = || !work.sent_to("user_dpo").is_empty() && !work.sent_to("user_hr_manager").is_empty();
    dingguard_tests::eventually("both approvers notified", Duration::from_secs(10), notified).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requested: Vec<Value> =
        dump("dingguard.approvals", &api.envs).await?.iter().filter(is_requested).map(value_json).collect();
    assert_eq!(requested.len(), 1, "one request for the instance, none for the others: {requested:?}");
    assert_eq!(requested[0]["requester"], "user_hr_clerk");
    assert_eq!(requested[0]["file"]["id"], "f-payroll-9");
    assert_eq!(requested[0]["file"]["name"], "confidential-payroll-2026.xlsx");
    assert_eq!(requested[0]["reason"], "tax filing");
    assert!(work.sent_to("user_dpo")[0].text().contains("confidential-payroll-2026.xlsx"));
    assert!(work.log.lock().instance_reads >= 2, "the forms were read from DingTalk");
    let (ok, out, err) = run(&["audit", "export"], &api.envs).await?;
    assert!(ok, "{err}");
    assert!(out.contains("oa:proc-2") && out.contains("unroutable"), "the form without a file is on record: {out}");
    Ok(())
}
