//! The whole approval flow in a real headless Chromium: each approver opens the link from their DingTalk work
//! notification, signs in, approves; the inbox empties and the grant shows on the request page.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dingguard_model::{Clock, ManualClock, SystemClock};
use dingguard_store::{Store, StoreConfig};
use dingguard_tests::approvals::{ApprovalApp, DPO, HEAD, PASSWORD, REQUESTER, spawn_approvals};
use dingguard_tests::webdriver::Browser;
use dingguard_tests::work_standin::WorkStandIn;

const WAIT: Duration = Duration::from_secs(10);

/// Opens `user`'s link from their notification, signs in on the page it leads to, and approves.
async fn approve_from_notification(browser: &Browser, app: &ApprovalApp, user: &str, id: &str) -> Result<()> {
    let link = app.work.sent_to(user).first().and_then(|s| s.link()).context("no link in the notification")?;
    browser.goto(&link).await?;
    browser.wait_for("form.login", WAIT).await.context("the link asks for sign-in first")?;
    browser.type_into(&browser.find("form.login input[name=user_id]").await?, user).await?;
    browser.type_into(&browser.find("form.login input[name=password]").await?, PASSWORD).await?;
    browser.click(&browser.find("form.login button[type=submit]").await?).await?;
    browser.wait_for("form#decide", WAIT).await.context("after sign-in the link opens the request")?;
    assert!(browser.url().await?.ends_with(&format!("/approvals/{id}")), "{}", browser.url().await?);
    browser.type_into(&browser.find("form#decide textarea[name=comment]").await?, "checked the purpose").await?;
    browser.click(&browser.find("form#decide button[value=approve]").await?).await?;
    // The page after the decision has no form for them any more; the one before it may still be showing.
    let deadline = std::time::Instant::now() + WAIT;
    while browser.try_find("form#decide").await?.is_some() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "{user}'s decision page still offers the form");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decisions = browser.text(&browser.wait_for("#decisions", WAIT).await?).await?;
    assert!(decisions.contains("checked the purpose"), "{decisions}");
    Ok(())
}

async fn sign_out(browser: &Browser) -> Result<()> {
    browser.click(&browser.find("form[action='/logout'] button").await?).await?;
    browser.wait_for("form.login", WAIT).await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_approvers_approve_from_their_links_and_the_grant_shows() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&StoreConfig::Sqlite(dir.path().join("state.db"))).await?;
    let work = Arc::new(WorkStandIn::start().await);
    let app = spawn_approvals(store, ManualClock::new(SystemClock.now_ms()), work).await?;
    let id = app.request_sensitive(REQUESTER, "f-browser").await?;
    app.until("both notified", || !app.work.sent_to(DPO).is_empty() && !app.work.sent_to(HEAD).is_empty()).await?;

    let browser = Browser::launch().await?;
    approve_from_notification(&browser, &app, DPO, &id).await?;
    let status = browser.text(&browser.find("#status").await?).await?;
    assert_eq!(status, "pending", "one approval is not enough");
    browser.goto(&app.url("/approvals")).await?;
    browser.wait_for("#inbox-empty", WAIT).await.context("the DPO's inbox is empty")?;
    sign_out(&browser).await?;

    approve_from_notification(&browser, &app, HEAD, &id).await?;
    let grant = browser.wait_for("#grant", WAIT).await.context("the grant shows on the request page")?;
    let text = browser.text(&grant).await?;
    assert!(text.contains(REQUESTER) && text.contains("may download"), "{text}");
    assert_eq!(browser.text(&browser.find("#status").await?).await?, "granted");
    browser.goto(&app.url("/approvals")).await?;
    browser.wait_for("#inbox-empty", WAIT).await.context("the head's inbox is empty")?;

    app.until_event(&id, "dingguard.approval.granted").await?;
    app.until("the requester is told", || !app.work.sent_to(REQUESTER).is_empty()).await?;
    Ok(())
}
