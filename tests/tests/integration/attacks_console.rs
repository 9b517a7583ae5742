//! Attacks on the console's sign-in and pages: a live feed kept open after access ended, guessing that would lock
//! the real user out, a sign-in page that would tell by its timing who works here, and alerts so large they would
//! make pages of megabytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dingguard_dingtalk::callback_record;
use dingguard_model::{AppName, CeId, Clock, ManualClock, SystemClock};
use dingguard_store::{AlertEvent, NewAlert, Store, StoreConfig};
use dingguard_tests::approvals::{ApprovalApp, PASSWORD, STRANGER, spawn_approvals};
use dingguard_tests::browser::Browser;
use dingguard_tests::work_standin::WorkStandIn;
use serde_json::json;

const SECURITY: &str = "user_ops";

async fn sqlite_app() -> Result<(ApprovalApp, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let clock = ManualClock::new(SystemClock.now_ms());
    let app = spawn_approvals(store, clock, Arc::new(WorkStandIn::start().await)).await?;
    Ok((app, dir))
}

/// Opens the live feed as `browser` and returns a reader of its body.
async fn open_feed(app: &ApprovalApp, browser: &Browser) -> Result<reqwest::Response> {
    let cookie = format!("dg_session={}", browser.session.as_deref().context("signed in")?);
    let response = reqwest::Client::new().get(app.url("/alerts/stream")).header("cookie", cookie).send().await?;
    anyhow::ensure!(response.status() == 200, "feed refused: {}", response.status());
    Ok(response)
}

/// Reads the feed until it ends; how long that took, or `None` if it was still open after `limit`.
async fn ends_within(mut feed: reqwest::Response, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        match tokio::time::timeout_at((started + limit).into(), feed.chunk()).await {
            Err(_) => return None,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return Some(started.elapsed()),
        }
    }
}

/// 5. Signing out ends every open feed of that session, and leaving the company ends the person's feeds, within
/// seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_ends_with_the_session_and_with_the_persons_membership() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let mut browser = Browser::new(app.url(""));
    assert_eq!(browser.sign_in(SECURITY, PASSWORD).await?.status, 303);
    let feed = open_feed(&app, &browser).await?;
    assert_eq!(browser.sign_out().await?.status, 303);
    let ended = ends_within(feed, Duration::from_secs(8)).await;
    assert!(ended.is_some(), "a feed opened before signing out kept streaming");

    let mut browser = Browser::new(app.url(""));
    browser.sign_in(SECURITY, PASSWORD).await?;
    let feed = open_feed(&app, &browser).await?;
    let leave = json!({"EventType": "user_leave_org", "eventId": "leave-ops-1", "CorpId": "dingdemo",
        "EventTime": dingguard_tests::now_ms(), "userId": [SECURITY]});
    let header = dingguard_dingtalk::EventHeader::parse(leave.to_string().as_bytes())?;
    let record = callback_record(
        &AppName::default_app(),
        &CeId::parse("leave-ops-1")?,
        &header,
        leave.to_string().into(),
        dingguard_tests::now_ms(),
    );
    app.log.append(&app.topics.events, record).await?;
    let ended = ends_within(feed, Duration::from_secs(10)).await;
    assert!(ended.is_some(), "the feed of someone who left kept streaming");
    assert_eq!(browser.get("/alerts").await?.status, 403, "and their pages are closed too");
    Ok(())
}

/// 9. A stranger who hammers a user's id slows down strangers, not the user at their own browser; guesses spread
/// over many ids from one address are slowed all the same; and nothing is a lock-out for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_cannot_lock_the_real_user_out_and_spreading_guesses_does_not_escape_the_throttle() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let mut real = Browser::new(app.url(""));
    assert_eq!(real.sign_in(SECURITY, PASSWORD).await?.status, 303);
    real.sign_out().await?;
    assert!(real.device.is_some(), "the browser is remembered");

    let mut attacker = Browser::new(app.url(""));
    let mut held = 0;
    for _ in 0..30 {
        match attacker.post_form("/login", &[("user_id", SECURITY), ("password", "guess")]).await?.status {
            401 => {}
            429 => held += 1,
            other => anyhow::bail!("unexpected {other}"),
        }
    }
    assert!(held >= 20, "guesses past the allowance wait: {held} held");
    let stolen = attacker.post_form("/login", &[("user_id", SECURITY), ("password", PASSWORD)]).await?;
    assert_eq!(stolen.status, 429, "even the right password waits on a browser that never signed the user in");
    assert_eq!(real.sign_in(SECURITY, PASSWORD).await?.status, 303, "the real user at their own browser gets in");

    let mut spreader = Browser::new(app.url(""));
    let mut first_held = None;
    for i in 0..60 {
        let page = spreader.post_form("/login", &[("user_id", &format!("user_guess_{i}")), ("password", "x")]).await?;
        if page.status == 429 {
            let wait: u64 = page.retry_after.as_deref().context("429 without Retry-After")?.parse()?;
            assert!(wait >= 1);
            first_held.get_or_insert(i);
        }
    }
    let first_held = first_held.context("guesses over sixty ids from one address were never slowed")?;
    assert!(first_held <= 25, "slowed only after {first_held} ids");

    // Waiting out the back-off is enough: no lock-out lasts.
    app.clock.advance_ms(16 * 60 * 1000);
    let mut later = Browser::new(app.url(""));
    assert_eq!(later.sign_in(SECURITY, PASSWORD).await?.status, 303);
    Ok(())
}

/// 10. Asking for a sign-in link answers at once and the same way for a colleague's id and for an id nobody has,
/// even when the store is stuck: nothing about the id is looked up before the answer. The link still reaches
/// the colleague once the store is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_link_page_answers_before_it_looks_anything_up() -> Result<()> {
    let (app, dir) = sqlite_app().await?;
    let lock = rusqlite::Connection::open(dir.path().join("state.db"))?;
    lock.execute_batch("BEGIN EXCLUSIVE")?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let mut bodies = Vec::new();
    for user in [STRANGER, "user_nobody_at_all"] {
        let started = Instant::now();
        let page = http.post(app.url("/login/dingtalk")).form(&[("user_id", user)]).send().await;
        let page = page.with_context(|| format!("{user}: no answer while the store was busy"))?;
        assert_eq!(page.status(), 200, "{user}");
        assert!(started.elapsed() < Duration::from_secs(1), "{user}: {:?}", started.elapsed());
        bodies.push(page.text().await?.replace(user, "<id>"));
    }
    assert_eq!(bodies[0], bodies[1], "the same answer whether or not the id exists");
    lock.execute_batch("ROLLBACK")?;
    app.until("the colleague's link", || !app.work.sent_to(STRANGER).is_empty()).await?;
    assert!(app.work.sent_to("user_nobody_at_all").is_empty());
    Ok(())
}

/// 11. An alert about twenty thousand outsiders: the detail page shows a page of them and says how many there
/// are, the list and the API stay small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_with_a_huge_list_makes_pages_of_bounded_size() -> Result<()> {
    let (app, _dir) = sqlite_app().await?;
    let ids: Vec<String> = (0..20_000).map(|i| format!("ext_outsider_{i:05}")).collect();
    let now = app.clock.now_ms();
    let alert = NewAlert {
        id: "alr_huge".into(),
        rule: "external_member_added".into(),
        severity: dingguard_model::Severity::Medium,
        message: "ext_outsider_00000, … and 19990 more added to group g1".into(),
        pdpa: vec!["15".into()],
        corp_id: Some("dingdemo".into()),
        dedup: None,
        event: AlertEvent {
            ce_id: "ce-huge".into(),
            event_type: "members_added".into(),
            occurred_at_ms: now,
            fields: json!({"members.external_ids": ids, "members.external_count": 20_000, "group.id": "g1"}),
        },
        at_ms: now,
        recorded_at_ms: now,
    };
    let mut tx = app.store.begin().await?;
    tx.record(&alert).await?;
    tx.commit().await?;

    let mut security = Browser::new(app.url(""));
    security.sign_in(SECURITY, PASSWORD).await?;
    let detail = security.get("/alerts/alr_huge").await?;
    assert_eq!(detail.status, 200);
    assert!(detail.body.len() < 64 * 1024, "detail page is {} bytes", detail.body.len());
    assert!(detail.body.contains("1–100 of 20000"), "says how many there are");
    assert!(detail.body.contains("ext_outsider_00099") && !detail.body.contains("ext_outsider_00100"));
    let second = security.get("/alerts/alr_huge?page=1&items=2").await?;
    assert!(second.body.contains("ext_outsider_00100") && second.body.contains("101–200 of 20000"));
    let list = security.get("/alerts").await?;
    assert!(list.body.len() < 16 * 1024, "list page is {} bytes", list.body.len());
    Ok(())
}
