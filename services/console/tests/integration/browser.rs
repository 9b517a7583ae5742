//! The alert list in a real headless Chromium: sign in through the form, keep the list open, and an alert the
//! alerter writes to the store appears on it without a reload.

use std::time::Duration;

use crate::common::{PASSWORD, SECURITY, spawn_app};
use dingguard_model::{Clock, SystemClock};
use dingguard_tests::webdriver::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_alert_appears_on_the_open_page_without_a_reload() {
    let app = spawn_app().await;
    let now = SystemClock.now_ms();
    app.raise("alr_earlier", "bulk_download", "medium", now - 60_000).await;
    let browser = Browser::launch().await.unwrap_or_else(|e| panic!("{e:#}"));

    browser.goto(&app.url("/login")).await.unwrap();
    let user = browser.find("input[name=user_id]").await.unwrap();
    browser.type_into(&user, SECURITY).await.unwrap();
    let password = browser.find("input[name=password]").await.unwrap();
    browser.type_into(&password, PASSWORD).await.unwrap();
    browser.click(&browser.find("form.login button[type=submit]").await.unwrap()).await.unwrap();
    browser.wait_for("table#alerts", Duration::from_secs(10)).await.unwrap();
    assert!(browser.url().await.unwrap().ends_with("/alerts"));
    browser.find("tr[data-alert-id=alr_earlier]").await.expect("alerts already raised are listed");
    browser.wait_for("#live[data-live=open]", Duration::from_secs(10)).await.expect("the live feed connects");

    // A reload would wipe this.
    browser.execute("window.dgMarker = 'no reload'; return true;").await.unwrap();
    let id = format!("alr_live_{:08x}", rand::random::<u32>());
    app.raise(&id, "external_member_then_download", "critical", SystemClock.now_ms()).await;

    let row = browser
        .wait_for(&format!("tr[data-alert-id={id}]"), Duration::from_secs(10))
        .await
        .expect("the new alert shows on the open page");
    let text = browser.text(&row).await.unwrap();
    assert!(text.contains("external_member_then_download") && text.contains("critical"), "{text}");
    assert!(text.contains("open"), "{text}");
    assert_eq!(browser.execute("return window.dgMarker;").await.unwrap(), "no reload");
    assert_eq!(app.metric("dingguard_console_sse_clients").await, 1.0);
}
