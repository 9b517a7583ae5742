//! The security team's live page in a real headless Chromium, against the built binary: an alert raised by a
//! simulated DingTalk callback appears on the open page without a reload.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dingguard_simulator::load::{self, Target};
use dingguard_simulator::{Scenario, ScenarioContext, Signer};
use dingguard_tests::now_ms;
use dingguard_tests::process::Service;
use dingguard_tests::webdriver::Browser;

const TOKEN: &str = "livetoken";
const AES: &str = "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus";
const APP_KEY: &str = "dinglivepage";

/// `… (demo sign-in: user X password Y)` from the banner.
fn demo_sign_in(banner: &str) -> Result<(String, String)> {
    let line = banner.lines().find(|l| l.contains("demo sign-in")).context("no demo sign-in in the banner")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let after = |key: &str| {
        words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).map(|w| w.trim_end_matches(')').to_owned())
    };
    Ok((after("user").context("user")?, after("password").context("password")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_from_a_simulated_callback_appears_on_the_open_page() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let envs = dingguard_tests::process::deployment_env(dir.path(), [TOKEN, AES, APP_KEY]);
    let service = Service::start(&["serve"], &envs).await?;
    let (user, password) = demo_sign_in(&service.banner)?;

    let browser = Browser::launch().await?;
    browser.goto(&service.url("/login")).await?;
    browser.type_into(&browser.find("input[name=user_id]").await?, &user).await?;
    browser.type_into(&browser.find("input[name=password]").await?, &password).await?;
    browser.click(&browser.find("form.login button[type=submit]").await?).await?;
    browser.wait_for("table#alerts", Duration::from_secs(10)).await?;
    browser.wait_for("#live[data-live=open]", Duration::from_secs(10)).await.context("the live feed connects")?;
    browser.execute("window.dgMarker = 'no reload'; return true;").await?;

    let signer = Signer::from_credentials(TOKEN, AES, APP_KEY)?;
    let now = now_ms();
    let callbacks: Vec<_> = Scenario::ExternalMember
        .events(&ScenarioContext::new("dingdemocorp0000", now))
        .iter()
        .map(|e| signer.sign(e, now as u64))
        .collect();
    let report = load::send_all(Target::parse(&service.url("/dingtalk/callback"))?, callbacks, signer).await;
    ensure!(report.non_success == 0, "the callback was refused");

    let row = browser
        .wait_for("tr[data-alert-id^=alr_]", Duration::from_secs(15))
        .await
        .context("the alert did not appear on the open page")?;
    let text = browser.text(&row).await?;
    assert!(text.contains("external_member_added"), "{text}");
    assert!(text.contains("medium"), "{text}");
    assert_eq!(browser.execute("return window.dgMarker;").await?, "no reload");
    Ok(())
}
