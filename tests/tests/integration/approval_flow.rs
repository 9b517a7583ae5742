//! Dual approval in-process with a controllable clock and the DingTalk work-notification stand-in: who is told
//! what and when, decision links, CSRF, and two replicas on one PostgreSQL database.

use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use dingguard_model::{Clock, ManualClock, SystemClock};
use dingguard_store::{Store, StoreConfig};
use dingguard_tests::approvals::{
    ApprovalApp, DPO, DPO_DEPUTY, HEAD, HEAD_DEPUTY, PASSWORD, REQUESTER, STRANGER, spawn_approvals,
};
use dingguard_tests::work_standin::WorkStandIn;

const HOUR: i64 = 3_600_000;

async fn sqlite_app() -> Result<(ApprovalApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let work = Arc::new(WorkStandIn::start().await);
    Ok((spawn_approvals(store, ManualClock::new(SystemClock.now_ms()), work).await?, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_approvers_are_notified_with_their_own_link_and_the_requester_hears_the_outcome() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let id = app.request_sensitive(REQUESTER, "f-salaries").await?;
    app.until("both approvers notified", || !app.work.sent_to(DPO).is_empty() && !app.work.sent_to(HEAD).is_empty())
        .await?;
    let (to_dpo, to_head) = (app.work.sent_to(DPO), app.work.sent_to(HEAD));
    assert_eq!((to_dpo.len(), to_head.len()), (1, 1), "one message each");
    for sent in [&to_dpo[0], &to_head[0]] {
        assert_eq!(sent.msg["msgtype"], "action_card");
        let text = sent.text();
        assert!(text.contains("confidential-salaries.xlsx") && text.contains("year-end review"), "{text}");
        assert!(text.contains(REQUESTER), "{text}");
        assert!(sent.link().unwrap().starts_with(&app.url("/approvals/open/")), "{:?}", sent.link());
    }
    assert_ne!(to_dpo[0].link(), to_head[0].link(), "each approver gets a link of their own");
    assert!(app.work.sent_to(REQUESTER).is_empty(), "nothing to tell the requester yet");

    let (status, after_dpo) = app.decide(DPO, &id, "approve").await?;
    assert_eq!((status, after_dpo["status"].as_str()), (200, Some("pending")), "{after_dpo}");
    let (status, granted) = app.decide(HEAD, &id, "approve").await?;
    assert_eq!((status, granted["status"].as_str()), (200, Some("granted")), "{granted}");
    let events = app.until_event(&id, "dingguard.approval.granted").await?;
    assert_eq!(
        events,
        ["requested", "decided", "decided", "granted"].map(|k| format!("dingguard.approval.{k}")),
        "in order, once each"
    );
    app.until("the requester is told", || !app.work.sent_to(REQUESTER).is_empty()).await?;
    let told = app.work.sent_to(REQUESTER);
    assert!(told[0].text().contains("**granted**"), "{}", told[0].text());
    assert_eq!(told[0].link(), Some(app.url(&format!("/approvals/{id}"))));

    // A rejection by either approver rejects, and the requester hears that too.
    let second = app.request_sensitive(REQUESTER, "f-ids").await?;
    let (status, rejected) = app.decide(HEAD, &second, "reject").await?;
    assert_eq!((status, rejected["status"].as_str()), (200, Some("rejected")), "{rejected}");
    app.until_event(&second, "dingguard.approval.rejected").await?;
    app.until("the requester hears of the rejection", || app.work.sent_to(REQUESTER).len() == 2).await?;
    assert!(app.work.sent_to(REQUESTER)[1].text().contains("**rejected**"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_escalation_and_expiry_happen_at_their_times() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let start = app.clock.now_ms();
    let id = app.request_sensitive(REQUESTER, "f-payroll").await?;
    app.until("first notifications", || app.work.sent_to(HEAD).len() == 1).await?;
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(200));

    // 4 h before expiry, not a millisecond earlier: a reminder to both approvers.
    app.clock.set(start + 20 * HOUR - 1);
    settle().await;
    assert_eq!(app.work.sent_to(DPO).len(), 1, "no reminder before 20 h");
    app.clock.set(start + 20 * HOUR);
    app.until("the first reminder", || app.work.sent_to(DPO).len() == 2 && app.work.sent_to(HEAD).len() == 2).await?;
    assert!(app.work.sent_to(DPO)[1].text().contains("Still waiting"), "{}", app.work.sent_to(DPO)[1].text());
    app.until_event(&id, "dingguard.approval.reminded").await?;

    // The DPO decides; 2 h before expiry the head's slot, still open, goes to the head's deputy as well.
    assert_eq!(app.decide(DPO, &id, "approve").await?.0, 200);
    app.clock.set(start + 22 * HOUR - 1);
    settle().await;
    assert!(app.work.sent_to(HEAD_DEPUTY).is_empty(), "no escalation before 22 h");
    app.clock.set(start + 22 * HOUR);
    app.until("escalation to the deputy", || app.work.sent_to(HEAD_DEPUTY).len() == 1).await?;
    assert!(app.work.sent_to(HEAD_DEPUTY)[0].text().contains("has not decided"));
    assert!(app.work.sent_to(DPO_DEPUTY).is_empty(), "the DPO's slot is filled: nothing to escalate");
    let request = app.read(&id).await?;
    assert_eq!(request["slots"][1]["escalated"], true, "{request}");

    // 1 h before: the second reminder goes to whoever can still fill the open slot, not to the DPO.
    app.clock.set(start + 23 * HOUR);
    app.until("the second reminder", || app.work.sent_to(HEAD).len() == 3 && app.work.sent_to(HEAD_DEPUTY).len() == 2)
        .await?;
    assert_eq!(app.work.sent_to(DPO).len(), 2, "the DPO already decided");

    // At 24 h the request expires; the requester is told and a decision now is refused and changes nothing.
    app.clock.set(start + 24 * HOUR);
    app.until_event(&id, "dingguard.approval.expired").await?;
    app.until("the requester hears of the expiry", || !app.work.sent_to(REQUESTER).is_empty()).await?;
    assert!(app.work.sent_to(REQUESTER)[0].text().contains("**expired**"));
    let (status, refused) = app.decide(HEAD, &id, "approve").await?;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("Expired"), "{refused}");
    let after = app.read(&id).await?;
    assert_eq!((after["status"].as_str(), after["decisions"].as_array().map(Vec::len)), (Some("expired"), Some(1)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_after_expiry_is_refused_even_before_the_deadline_pass_runs() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let start = app.clock.now_ms();
    let id = app.request_sensitive(REQUESTER, "f-late").await?;
    // Stop the background pass from marking it expired first: decide in the same instant the clock moves.
    app.clock.set(start + 24 * HOUR + 1);
    let (status, refused) = app.decide(DPO, &id, "approve").await?;
    assert!(status == 410 || status == 409, "{status} {refused}");
    assert!(refused["error"].as_str().unwrap().contains("xpired"), "{refused}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_never_double_decide() -> Result<()> {
    let (store_a, url, _db) = dingguard_tests::pg::fresh_postgres_url().await;
    let store_b =
        Store::open(&StoreConfig::Postgres { url: dingguard_model::Secret::new(url), max_connections: 4 }).await?;
    let clock = ManualClock::new(SystemClock.now_ms());
    let work = Arc::new(WorkStandIn::start().await);
    let a = spawn_approvals(store_a, clock.clone(), work.clone()).await?;
    let b = spawn_approvals(store_b, clock.clone(), work.clone()).await?;

    for round in 0..20 {
        let id = a.request_sensitive(REQUESTER, &format!("f-race-{round}")).await?;
        // The same approver through both replicas at once, and the other approver rejecting at the same time.
        let (x, y, z) =
            tokio::join!(a.decide(DPO, &id, "approve"), b.decide(DPO, &id, "approve"), b.decide(HEAD, &id, "reject"));
        let statuses = [x?.0, y?.0, z?.0];
        let request = b.read(&id).await?;
        let decisions = request["decisions"].as_array().context("decisions")?;
        let by_dpo = decisions.iter().filter(|d| d["user"] == DPO).count();
        assert!(by_dpo <= 1, "round {round}: the DPO decided twice: {request}");
        assert_eq!(
            decisions.len(),
            statuses.iter().filter(|s| **s == 200).count(),
            "round {round}: every 200 is one recorded decision and nothing else is: {statuses:?} {request}"
        );
        ensure!(statuses.iter().all(|s| *s == 200 || *s == 409), "round {round}: {statuses:?}");
        let audit = a.store.audit_entries().await?;
        let decided = audit.iter().filter(|e| e.subject == id && (e.action == "approved" || e.action == "rejected"));
        assert_eq!(decided.count(), decisions.len(), "round {round}: the audit matches the decisions");
    }
    Ok(())
}

async fn metrics(app: &ApprovalApp) -> Result<String> {
    Ok(reqwest::get(app.url("/metrics")).await?.text().await?)
}

async fn metric(app: &ApprovalApp, selector: &str) -> Result<f64> {
    Ok(dingguard_tests::app::metric_in(&metrics(app).await?, selector))
}

/// Waits until the gauge read from the store every tick shows `want`.
async fn until_gauge(app: &ApprovalApp, name: &str, want: f64) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = metric(app, &format!("{name} ")).await?;
        if now == want {
            return Ok(());
        }
        ensure!(std::time::Instant::now() < deadline, "{name} stayed {now}, not {want}");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_expiries_are_counted_with_their_time_and_open_requests_are_gauged() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let text = metrics(&app).await?;
    for family in [
        "dingguard_approvals_open gauge",
        "dingguard_approvals_expiring_soon gauge",
        "dingguard_approval_decisions counter",
        "dingguard_approval_decision_seconds histogram",
        "dingguard_audit_chain_checks counter",
        "dingguard_audit_chain_verified_entries gauge",
        "dingguard_consumer_lag_records gauge",
    ] {
        assert!(text.contains(&format!("# TYPE {family}")), "no {family} in {text}");
    }
    let decided = |outcome: &str| format!("dingguard_approval_decisions_total{{outcome=\"{outcome}\"}}");
    assert_eq!(metric(&app, &decided("granted")).await?, 0.0);

    let start = app.clock.now_ms();
    let granted = app.request_sensitive(REQUESTER, "f-metrics-granted").await?;
    let expiring = app.request_sensitive(REQUESTER, "f-metrics-expiring").await?;
    until_gauge(&app, "dingguard_approvals_open", 2.0).await?;
    assert_eq!(metric(&app, "dingguard_approvals_expiring_soon ").await?, 0.0);

    // Two hours on, both approvers approve the first: one decision, taking 7,200 s, in the 7,200 s bucket.
    app.clock.set(start + 2 * HOUR);
    assert_eq!(app.decide(DPO, &granted, "approve").await?.0, 200);
    assert_eq!(metric(&app, &decided("granted")).await?, 0.0, "one approval of two decides nothing");
    assert_eq!(app.decide(HEAD, &granted, "approve").await?.0, 200);
    assert_eq!(metric(&app, &decided("granted")).await?, 1.0);
    assert_eq!(metric(&app, "dingguard_approval_decision_seconds_count").await?, 1.0);
    assert_eq!(metric(&app, "dingguard_approval_decision_seconds_sum").await?, 7200.0);
    assert_eq!(metric(&app, r#"dingguard_approval_decision_seconds_bucket{le="3600.0"}"#).await?, 0.0);
    assert_eq!(metric(&app, r#"dingguard_approval_decision_seconds_bucket{le="7200.0"}"#).await?, 1.0);
    until_gauge(&app, "dingguard_approvals_open", 1.0).await?;

    // The other, undecided, comes within the hour of its expiry, then expires.
    app.clock.set(start + 23 * HOUR + 30 * 60_000);
    until_gauge(&app, "dingguard_approvals_expiring_soon", 1.0).await?;
    app.clock.set(start + 24 * HOUR + 1);
    app.until_event(&expiring, "dingguard.approval.expired").await?;
    until_gauge(&app, "dingguard_approvals_open", 0.0).await?;
    until_gauge(&app, "dingguard_approvals_expiring_soon", 0.0).await?;
    assert_eq!(metric(&app, &decided("expired")).await?, 1.0);
    assert_eq!(metric(&app, &decided("rejected")).await?, 0.0);
    assert_eq!(metric(&app, "dingguard_approval_decision_seconds_count").await?, 2.0);

    // A rejection is counted under its own outcome.
    let rejected = app.request_sensitive(REQUESTER, "f-metrics-rejected").await?;
    assert_eq!(app.decide(HEAD, &rejected, "reject").await?.0, 200);
    assert_eq!(metric(&app, &decided("rejected")).await?, 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_gauge_the_requests_the_others_opened() -> Result<()> {
    let (store_a, url, _db) = dingguard_tests::pg::fresh_postgres_url().await;
    let store_b =
        Store::open(&StoreConfig::Postgres { url: dingguard_model::Secret::new(url), max_connections: 4 }).await?;
    let clock = ManualClock::new(SystemClock.now_ms());
    let work = Arc::new(WorkStandIn::start().await);
    let a = spawn_approvals(store_a, clock.clone(), work.clone()).await?;
    let b = spawn_approvals(store_b, clock.clone(), work.clone()).await?;
    a.request_sensitive(REQUESTER, "f-replica-1").await?;
    a.request_sensitive(REQUESTER, "f-replica-2").await?;
    until_gauge(&b, "dingguard_approvals_open", 2.0).await?;
    until_gauge(&a, "dingguard_approvals_open", 2.0).await?;
    Ok(())
}

/// A browser-like client: keeps the session cookie, reads the CSRF token off pages, follows nothing itself.
struct Browser<'a> {
    app: &'a ApprovalApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a ApprovalApp) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { app, http, cookie: None }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, Option<String>, String)> {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await?;
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok((response.status().as_u16(), location, response.text().await?))
    }

    async fn get(&self, path: &str) -> Result<(u16, Option<String>, String)> {
        self.send(self.http.get(self.app.url(path))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<(u16, Option<String>, String)> {
        self.send(self.http.post(self.app.url(path)).form(form)).await
    }

    async fn sign_in(&mut self, user: &str, next: &str) -> Result<String> {
        let response = self
            .http
            .post(self.app.url("/login"))
            .form(&[("user_id", user), ("password", PASSWORD), ("next", next)])
            .send()
            .await?;
        let cookie = response.headers().get("set-cookie").context("no session cookie")?.to_str()?;
        self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        Ok(response.headers().get("location").context("no redirect")?.to_str()?.to_owned())
    }
}

fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    page[at..].split('"').next().unwrap().to_owned()
}

fn path_of(app: &ApprovalApp, link: &str) -> String {
    link.strip_prefix(&app.url("")).expect("a link to this server").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_links_open_once_for_their_own_approver_and_forms_need_the_csrf_token() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let id = app.request_sensitive(REQUESTER, "f-link").await?;
    app.until("notifications", || !app.work.sent_to(DPO).is_empty() && !app.work.sent_to(HEAD).is_empty()).await?;
    let dpo_link = path_of(&app, &app.work.sent_to(DPO)[0].link().unwrap());
    let head_link = path_of(&app, &app.work.sent_to(HEAD)[0].link().unwrap());

    // Not signed in: through the sign-in page and back; a link preview without a session uses nothing up.
    let mut dpo = Browser::new(&app);
    let (status, location, _) = dpo.get(&dpo_link).await?;
    assert_eq!(status, 303);
    let to_login = location.unwrap();
    assert!(
        to_login.starts_with("/login?next=%2Fapprovals%2Fopen%2F")
            || to_login.starts_with("/login?next=/approvals/open/"),
        "{to_login}"
    );
    let back = dpo.sign_in(DPO, &dpo_link).await?;
    assert_eq!(back, dpo_link, "signing in returns to the link");
    let (status, location, _) = dpo.get(&dpo_link).await?;
    assert_eq!((status, location.as_deref()), (303, Some(format!("/approvals/{id}").as_str())));

    // Used once: the same link again, a forged one, and someone else's are all refused and change nothing.
    let (status, _, page) = dpo.get(&dpo_link).await?;
    assert_eq!(status, 410, "reused link");
    assert!(page.contains("already used"), "{page}");
    assert_eq!(dpo.get("/approvals/open/forged-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await?.0, 410, "forged link");
    assert_eq!(dpo.get(&head_link).await?.0, 410, "the head's link is not the DPO's");
    let mut head = Browser::new(&app);
    head.sign_in(HEAD, "").await?;
    let (status, location, _) = head.get(&head_link).await?;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some(format!("/approvals/{id}").as_str())),
        "still good for its owner"
    );

    // The decision form: without the session's CSRF token nothing happens.
    let (status, _, page) = dpo.get(&format!("/approvals/{id}")).await?;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="decide""#), "the DPO may decide: {page}");
    let decision = format!("/approvals/{id}/decision");
    let (status, _, refused) = dpo.post(&decision, &[("decision", "approve"), ("comment", "ok")]).await?;
    assert_eq!(status, 403, "missing CSRF token");
    assert!(refused.contains("CSRF"), "{refused}");
    let (status, _, _) = dpo.post(&decision, &[("decision", "approve"), ("csrf", "guess")]).await?;
    assert_eq!(status, 403, "wrong CSRF token");
    assert_eq!(app.read(&id).await?["decisions"].as_array().unwrap().len(), 0, "nothing changed");

    // The requester sees their request but has no form, and approving through the form is refused.
    let mut requester = Browser::new(&app);
    requester.sign_in(REQUESTER, "").await?;
    let (status, _, page) = requester.get(&format!("/approvals/{id}")).await?;
    assert_eq!(status, 200);
    assert!(!page.contains(r#"id="decide""#), "{page}");
    let csrf = csrf_of(&page);
    let (status, _, refused) = requester.post(&decision, &[("decision", "approve"), ("csrf", &csrf)]).await?;
    assert_eq!(status, 403, "the requester approving their own request");
    assert!(refused.contains("own request"), "{refused}");
    let mut stranger = Browser::new(&app);
    stranger.sign_in(STRANGER, "").await?;
    assert_eq!(stranger.get(&format!("/approvals/{id}")).await?.0, 404, "strangers learn nothing");

    let csrf = csrf_of(&dpo.get(&format!("/approvals/{id}")).await?.2);
    let (status, location, _) =
        dpo.post(&decision, &[("decision", "approve"), ("comment", "fine"), ("csrf", &csrf)]).await?;
    assert_eq!((status, location.as_deref()), (303, Some(format!("/approvals/{id}").as_str())));
    let (status, _, refused) = dpo.post(&decision, &[("decision", "approve"), ("csrf", &csrf)]).await?;
    assert_eq!(status, 409, "one person fills at most one slot");
    assert!(refused.contains("at most one slot"), "{refused}");
    let request = app.read(&id).await?;
    assert_eq!((request["status"].as_str(), request["decisions"].as_array().unwrap().len()), (Some("pending"), 1));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_links_arrive_by_dingtalk_message_and_say_nothing_about_who_exists() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let anyone = Browser::new(&app);
    let (status, _, page) = anyone.get("/login").await?;
    assert_eq!(status, 200);
    assert!(page.contains(r#"action="/login/dingtalk""#), "the sign-in page offers a link by DingTalk: {page}");

    let (status, _, known) = anyone.post("/login/dingtalk", &[("user_id", "user_ops")]).await?;
    let (_, _, unknown) = anyone.post("/login/dingtalk", &[("user_id", "user_nobody")]).await?;
    assert_eq!(status, 200);
    assert_eq!(known.replace("user_ops", "X"), unknown.replace("user_nobody", "X"), "the same answer either way");
    app.until("the link arrives", || !app.work.sent_to("user_ops").is_empty()).await?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(app.work.sent_to("user_nobody").is_empty());
    let link = app.work.sent_to("user_ops")[0].link().context("a link")?;
    let path = path_of(&app, &link);
    assert!(path.starts_with("/login/link/"), "{path}");

    let (status, _, page) = anyone.get(&path).await?;
    assert_eq!(status, 200, "opening only shows a button: link previews must not use it up");
    assert!(page.contains("signs you in once"), "{page}");
    let (status, location, _) = anyone.post(&path, &[]).await?;
    assert_eq!((status, location.as_deref()), (303, Some("/alerts")), "signed in to the security console");
    assert_eq!(anyone.post(&path, &[]).await?.0, 410, "used once");

    // Asking again and again does not flood anyone's DingTalk.
    for _ in 0..5 {
        anyone.post("/login/dingtalk", &[("user_id", "user_gm")]).await?;
    }
    app.until("the first links arrive", || app.work.sent_to("user_gm").len() >= 3).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.work.sent_to("user_gm").len(), 3, "three links per user id in 15 minutes");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_away_approvers_delegate_is_asked_and_decides_in_their_place_until_the_delegation_ends() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let now = app.clock.now_ms();
    let head = app.token(HEAD).await?;
    let away = serde_json::json!({"delegate": "user_gm", "until_ms": now + 48 * HOUR});
    let (status, set) = app.call(&head, reqwest::Method::PUT, "/api/v1/delegation", Some(away)).await?;
    assert_eq!(status, 200, "{set}");
    let (status, _) = app
        .call(
            &head,
            reqwest::Method::PUT,
            "/api/v1/delegation",
            Some(serde_json::json!({"delegate": HEAD, "until_ms": now + HOUR})),
        )
        .await?;
    assert_eq!(status, 422, "nobody delegates to themselves");

    let id = app.request_sensitive(REQUESTER, "f-away").await?;
    app.until("the delegate is asked", || !app.work.sent_to("user_gm").is_empty()).await?;
    assert!(app.work.sent_to("user_gm")[0].text().contains("in place of"), "{}", app.work.sent_to("user_gm")[0].text());
    let (status, after) = app.decide("user_gm", &id, "approve").await?;
    assert_eq!((status, after["status"].as_str()), (200, Some("pending")), "{after}");
    assert_eq!(after["decisions"][0]["on_behalf_of"], HEAD, "{after}");
    assert_eq!(app.decide(HEAD, &id, "approve").await?.0, 409, "the head's slot is filled by their delegate");
    let (status, granted) = app.decide(DPO, &id, "approve").await?;
    assert_eq!((status, granted["status"].as_str()), (200, Some("granted")), "{granted}");

    // After the delegation ends the delegate is a stranger to new requests again.
    app.clock.set(now + 48 * HOUR);
    let later = app.request_sensitive(REQUESTER, "f-back").await?;
    assert_eq!(app.decide("user_gm", &later, "approve").await?.0, 403);

    // The requester can never approve their own request, not even as someone's delegate.
    let to_requester = serde_json::json!({"delegate": REQUESTER, "until_ms": now + 72 * HOUR});
    assert_eq!(app.call(&head, reqwest::Method::PUT, "/api/v1/delegation", Some(to_requester)).await?.0, 200);
    let (status, refused) = app.decide(REQUESTER, &later, "approve").await?;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(app.read(&later).await?["decisions"], serde_json::json!([]));
    assert_eq!(app.call(&head, reqwest::Method::DELETE, "/api/v1/delegation", None).await?.0, 204);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_who_leaves_the_company_can_no_longer_decide() -> Result<()> {
    use dingguard_dingtalk::callback_record;
    use dingguard_model::AppName;
    let (app, _dir) = sqlite_app().await?;
    let id = app.request_sensitive(REQUESTER, "f-leaver").await?;
    let head = app.token(HEAD).await?;
    let mut pages = Browser::new(&app);
    pages.sign_in(HEAD, "").await?;
    assert_eq!(pages.get("/approvals").await?.0, 200);

    // DingTalk reports the head leaving; the approver reads it from the events topic like the alerter does.
    let now = app.clock.now_ms();
    let raw = serde_json::to_vec(&serde_json::json!({"EventType": "user_leave_org", "EventTime": now,
        "CorpId": "dingdemo", "eventId": "leave-1", "UserId": [HEAD], "TimeStamp": now.to_string()}))?;
    let header = dingguard_dingtalk::EventHeader::parse(&raw)?;
    let record = callback_record(
        &AppName::default_app(),
        &dingguard_dingtalk::callback_ce_id(&header, &raw),
        &header,
        raw.into(),
        now,
    );
    app.log.append(&app.topics.events, record).await?;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let path = format!("/api/v1/download-requests/{id}");
    while app.call(&head, reqwest::Method::GET, &path, None).await?.0 == 200 {
        ensure!(std::time::Instant::now() < deadline, "the leave was never applied");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = serde_json::json!({"decision": "approve"});
    let (status, reply) = app.call(&head, reqwest::Method::POST, &format!("{path}/decisions"), Some(body)).await?;
    assert_eq!(status, 403, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("not an active member"), "{reply}");
    assert_eq!(pages.get("/approvals").await?.0, 403, "the pages refuse the leaver's session too");
    assert_eq!(app.read(&id).await?["decisions"], serde_json::json!([]), "nothing changed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_can_approve_is_flagged_at_once() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    // The general manager heads the top department: nobody else is a head of theirs, and they cannot approve
    // their own request.
    let token = app.token("user_gm").await?;
    let body = serde_json::json!({"file": {"id": "f-gm", "name": "confidential-board.pdf"}, "reason": "board pack"});
    let (status, refused) = app.call(&token, reqwest::Method::POST, "/api/v1/download-requests", Some(body)).await?;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("no eligible approver"), "{refused}");
    app.until("the requester is told", || !app.work.sent_to("user_gm").is_empty()).await?;
    let told = &app.work.sent_to("user_gm")[0];
    assert!(told.text().contains("cannot be decided"), "{}", told.text());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut records = app.log.read_all(&app.topics.approvals).await?;
    while !records.iter().any(|r| r.header("ce_type") == Some("dingguard.approval.unroutable")) {
        ensure!(std::time::Instant::now() < deadline, "no unroutable event on the approvals topic");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        records = app.log.read_all(&app.topics.approvals).await?;
    }
    let audit = app.store.audit_entries().await?;
    assert!(audit.iter().any(|e| e.action == "unroutable" && e.actor == "user_gm"), "on the audit chain");
    Ok(())
}
