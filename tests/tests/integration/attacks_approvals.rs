//! Attacks on dual approval, each as its attacker would run it: a requester who describes a sensitive file as
//! harmless, an admin who would fill both slots, a caller who reuses someone else's idempotency key, and an
//! employee who floods the approvers. Each one is refused, and nothing it tried changed anything else.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dingguard_approver::RequestLimits;
use dingguard_dingtalk::callback_record;
use dingguard_model::{AppName, CeId, Clock, ManualClock, SystemClock};
use dingguard_simulator::random_id;
use dingguard_store::{Store, StoreConfig};
use dingguard_tests::approvals::{
    ApprovalApp, DPO, HEAD, PASSWORD, REQUESTER, STRANGER, spawn_approvals, spawn_approvals_limited,
};
use dingguard_tests::browser::Browser;
use dingguard_tests::deployment::{Deployment, rules_of};
use dingguard_tests::work_standin::WorkStandIn;
use serde_json::{Value, json};

const ADMIN: &str = "user_it_admin";

fn download(user: &str, file_id: &str, name: &str, space: &str) -> Value {
    json!({"EventType": "file_download", "EventTime": dingguard_tests::now_ms(), "CorpId": "dingdemo",
        "eventId": random_id("dl"), "userId": user, "fileId": file_id, "fileName": name, "spaceId": space, "action": 2})
}

async fn sqlite_app(limits: Option<RequestLimits>) -> Result<(ApprovalApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let (clock, work) = (ManualClock::new(SystemClock.now_ms()), Arc::new(WorkStandIn::start().await));
    let app = match limits {
        Some(limits) => spawn_approvals_limited(store, clock, work, limits).await?,
        None => spawn_approvals(store, clock, work).await?,
    };
    Ok((app, dir))
}

/// 1a. The file was seen downloaded under its real name: the requester's harmless description of the same file id
/// does not make it harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dingguard_has_seen_is_judged_by_what_it_saw_not_by_the_requesters_description() -> Result<()> {
    let d = Deployment::start(&[]).await?;
    d.push(&[download("user_hr_officer", "f-salaries", "confidential-salaries-2026.xlsx", "space_hr")]).await?;
    d.alerts_until(|a| rules_of(a).contains(&"sensitive_download_without_grant")).await?;

    let clerk = d.token(REQUESTER).await?;
    let lie =
        json!({"file": {"id": "f-salaries", "name": "team-lunch-menu.pdf", "space": "public"}, "reason": "lunch"});
    let (status, created) = d.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(lie)).await?;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "pending", "a file known to be sensitive needs both approvals: {created}");
    assert_eq!(created["sensitive"], true);
    assert!(created["granted_until_ms"].is_null(), "{created}");
    Ok(())
}

/// 1b. The file was never seen: the lie gets a grant, but the grant covers only the file as described. The real
/// download names it otherwise, and is both ungranted and a grant mismatch; a download that matches is covered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_covers_only_the_file_it_was_decided_on() -> Result<()> {
    let d = Deployment::start(&[]).await?;
    let clerk = d.token(REQUESTER).await?;
    let lie = json!({"file": {"id": "f-new", "name": "team-lunch-menu.pdf", "space": "public"}, "reason": "lunch"});
    let (status, created) = d.call(&clerk, reqwest::Method::POST, "/api/v1/download-requests", Some(lie)).await?;
    assert_eq!((status, created["status"].as_str()), (201, Some("granted")), "{created}");

    d.push(&[
        download(REQUESTER, "f-new", "team-lunch-menu.pdf", "public"),
        download(REQUESTER, "f-new", "confidential-salaries-2026.xlsx", "space_hr"),
    ])
    .await?;
    let alerts = d.alerts_until(|a| rules_of(a).contains(&"grant_file_mismatch")).await?;
    let of = |rule: &str| alerts.iter().filter(|a| a["rule"] == rule).collect::<Vec<_>>();
    let mismatch = of("grant_file_mismatch");
    assert_eq!(mismatch.len(), 1, "{alerts:?}");
    let message = mismatch[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("confidential-salaries-2026.xlsx") && message.contains(REQUESTER), "{message}");
    let ungranted = of("sensitive_download_without_grant");
    assert_eq!(ungranted.len(), 1, "the real file was taken without a grant for it: {alerts:?}");
    assert!(ungranted[0]["message"].as_str().unwrap_or_default().contains("confidential-salaries-2026.xlsx"));
    Ok(())
}

/// 2. An admin cannot have sign-in links for the DPO or the head (or anyone who holds a role) sent, never sees a
/// link at all, and every issuance and refusal is on the audit chain under the admin's name. A decision records
/// how its decider got in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_admin_can_fill_an_approval_slot_by_signing_in_as_its_approver() -> Result<()> {
    let (app, _dir) = sqlite_app(None).await?;
    let mut admin = Browser::new(app.url(""));
    assert_eq!(admin.sign_in(ADMIN, PASSWORD).await?.status, 303);
    for target in [DPO, HEAD, "user_hr_officer", "user_ops"] {
        let refused = admin.post_json("/api/v1/sign-in-links", &json!({ "user_id": target })).await?;
        assert_eq!(refused.status, 403, "{target}: {}", refused.body);
        assert!(!refused.body.contains("/login/link/"), "{}", refused.body);
    }
    let sent = admin.post_json("/api/v1/sign-in-links", &json!({ "user_id": STRANGER })).await?;
    assert_eq!(sent.status, 202, "{}", sent.body);
    assert!(
        !sent.body.contains("/login/link/") && sent.json()["url"].is_null(),
        "never back to the caller: {}",
        sent.body
    );
    app.until("the link reaches its owner", || !app.work.sent_to(STRANGER).is_empty()).await?;
    let to_owner = app.work.sent_to(STRANGER);
    assert_eq!(to_owner.len(), 1);
    assert!(to_owner[0].link().unwrap_or_default().contains("/login/link/"));
    assert!(
        app.work.sent_to(ADMIN).is_empty() && app.work.sent_to(DPO).is_empty() && app.work.sent_to(HEAD).is_empty()
    );

    let chain = app.store.audit_entries().await?;
    let by_admin: Vec<(&str, &str)> =
        chain.iter().filter(|e| e.actor == ADMIN).map(|e| (e.action.as_str(), e.subject.as_str())).collect();
    for target in [DPO, HEAD, "user_hr_officer", "user_ops"] {
        assert!(by_admin.contains(&("refused sign-in link", target)), "{by_admin:?}");
    }
    assert!(by_admin.contains(&("issued sign-in link", STRANGER)), "{by_admin:?}");

    // The DPO decides in a session of their own, and the decision says how they got in.
    let id = app.request_sensitive(REQUESTER, "f-audit").await?;
    let mut dpo = Browser::new(app.url(""));
    dpo.sign_in(DPO, PASSWORD).await?;
    let page = dpo.get(&format!("/approvals/{id}")).await?;
    let csrf = dingguard_tests::browser::csrf_in(&page.body).context("decision form")?;
    let decided =
        dpo.post_form(&format!("/approvals/{id}/decision"), &[("csrf", &csrf), ("decision", "approve")]).await?;
    assert_eq!(decided.status, 303, "{}", decided.body);
    let chain = app.store.audit_entries().await?;
    let approval = chain.iter().find(|e| e.subject == id && e.action == "approved").context("approval audited")?;
    assert_eq!((approval.actor.as_str(), approval.details["via"].as_str()), (DPO, Some("password")));
    assert_eq!(app.read(&id).await?["decisions"][0]["via"], "password");
    Ok(())
}

async fn create_with_key(app: &ApprovalApp, user: &str, key: &str, file: &str) -> Result<(u16, Value)> {
    let token = app.token(user).await?;
    let body = json!({"file": {"id": file, "name": format!("{file}.xlsx")}, "reason": format!("{user} needs it")});
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/download-requests"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// 4. Another caller's idempotency key names the other caller's own request, never the first one's; and no caller
/// can claim the id under which a callback will open its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_belongs_to_its_caller_and_callback_ids_cannot_be_claimed() -> Result<()> {
    let (app, _dir) = sqlite_app(None).await?;
    let (status, mine) = create_with_key(&app, REQUESTER, "key-1", "f-mine").await?;
    assert_eq!(status, 201, "{mine}");
    let (status, theirs) = create_with_key(&app, STRANGER, "key-1", "f-theirs").await?;
    assert_eq!(status, 201, "the same key from someone else is a new request: {theirs}");
    assert_ne!(theirs["id"], mine["id"]);
    assert_eq!((theirs["requester"].as_str(), theirs["file"]["id"].as_str()), (Some(STRANGER), Some("f-theirs")));
    assert!(!theirs.to_string().contains("f-mine") && !theirs.to_string().contains(REQUESTER), "{theirs}");
    let (status, again) = create_with_key(&app, STRANGER, "key-1", "f-theirs").await?;
    assert_eq!((status, &again["id"]), (200, &theirs["id"]), "a retry of one's own call gets one's own request");
    let (status, reuse) = create_with_key(&app, REQUESTER, "key-1", "f-other").await?;
    assert_eq!(status, 422, "a key reused for a different request: {reuse}");

    // The stranger takes the callback's event id, in both spellings a source could have, before it arrives.
    let ce_id = random_id("dlreq");
    for key in [ce_id.clone(), format!("cb:{ce_id}")] {
        assert_eq!(create_with_key(&app, STRANGER, &key, "f-bait").await?.0, 201);
    }
    let event = json!({"EventType": "file_download_request", "eventId": ce_id, "EventTime": dingguard_tests::now_ms(),
        "CorpId": "dingdemo", "requestId": "gw-77", "userId": REQUESTER, "fileId": "f-gateway",
        "fileName": "身份證-scans.zip", "reason": "onboarding"});
    let header = dingguard_dingtalk::EventHeader::parse(event.to_string().as_bytes())?;
    let record = callback_record(
        &AppName::default_app(),
        &CeId::parse(&ce_id)?,
        &header,
        event.to_string().into(),
        dingguard_tests::now_ms(),
    );
    app.log.append(&app.topics.events, record).await?;
    let mut opened = None;
    for _ in 0..200 {
        opened = app.store.request_by_source(&format!("cb:{ce_id}")).await?;
        if opened.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let opened = opened.context("the callback opened no request of its own")?;
    assert_eq!((opened.requester.as_str(), opened.file_id.as_str()), (REQUESTER, "f-gateway"));
    Ok(())
}

/// 6. One employee's thousand requests: a handful are opened, the rest are refused with when to try again, the
/// approvers hear of a handful, and a colleague's real request stays in the DPO's inbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_employee_cannot_flood_the_approvers() -> Result<()> {
    let (app, _dir) = sqlite_app(Some(RequestLimits::default())).await?;
    let token = app.token(STRANGER).await?;
    let http = reqwest::Client::new();
    let mut created = 0;
    let mut refused = Vec::new();
    for i in 0..1000 {
        let body =
            json!({"file": {"id": format!("f-flood-{i}"), "name": "confidential-flood.xlsx"}, "reason": "flood"});
        let response = http.post(app.url("/api/v1/download-requests")).bearer_auth(&token).json(&body).send().await?;
        match response.status().as_u16() {
            201 => created += 1,
            429 => refused.push(response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned)),
            other => anyhow::bail!("request {i}: {other} {}", response.text().await?),
        }
    }
    let limit = RequestLimits::default().max_open_per_requester as usize;
    assert_eq!(created, limit, "only so many may be open at once");
    assert_eq!(refused.len(), 1000 - limit);
    assert!(refused.iter().all(|r| r.as_deref().and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s > 0)));

    let real = app.request_sensitive(REQUESTER, "f-real").await?;
    let mut dpo = Browser::new(app.url(""));
    dpo.sign_in(DPO, PASSWORD).await?;
    let inbox = dpo.get("/approvals").await?;
    assert!(inbox.body.contains(&format!(r#"data-request-id="{real}""#)), "the real request is in view");
    app.until("the DPO hears of the real request", || {
        app.work.sent_to(DPO).iter().any(|s| s.text().contains("year-end review"))
    })
    .await?;
    let to_dpo = app.work.sent_to(DPO).len();
    ensure!(to_dpo <= limit + 1, "the DPO got {to_dpo} messages");
    Ok(())
}
