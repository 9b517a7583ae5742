//! No secret in a log line or a metric: `dingguard serve` run at `debug` with every kind of credential it holds —
//! DingTalk's token and AES key, a robot's token and secret, a webhook key, the database URL's password — and made
//! to use them all (a callback decrypted, an alert sent to the robot and the webhook).

use std::time::Duration;

use anyhow::{Result, ensure};
use dingguard_simulator::random_id;
use dingguard_tests::deployment::{AES, Deployment, TOKEN};
use dingguard_tests::pg::fresh_postgres_url;
use dingguard_tests::standin::{RobotStandIn, WebhookStandIn};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_or_the_metrics() -> Result<()> {
    let robot = RobotStandIn::start().await?;
    let hook = WebhookStandIn::start().await?;
    let (_store, url, _db) = fresh_postgres_url().await;
    // Trust authentication ignores the password, so the URL may carry one to be kept out of sight.
    let password = "MARKdbPassword";
    let url = url.replacen("postgres@", &format!("postgres:{password}@"), 1);
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("dingguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify.robots]]\nname = \"soc\"\naccess_token = \"{}\"\nsecret = \"{}\"\nbase_url = \"{}\"\n\
             min_severity = \"low\"\n[[notify.webhooks]]\nname = \"siem\"\nurl = \"{}\"\nsecret = \"{}\"\n\
             min_severity = \"low\"\n",
            robot.access_token,
            robot.secret,
            robot.base_url(),
            hook.url(),
            hook.secret
        ),
    )?;
    let log = dir.path().join("stderr.log");
    let d = Deployment::start_in(
        dir.path(),
        &[
            ("DINGGUARD_CONFIG", config.display().to_string()),
            ("DINGGUARD_DATABASE_URL", url),
            ("RUST_LOG", "debug".into()),
        ],
        Some(&log),
    )
    .await?;
    d.push(&[
        json!({"EventType": "chat_add_member", "eventId": random_id("secret"), "EventTime": dingguard_tests::now_ms(),
        "CorpId": "dingdemo", "chatId": "chat_secret", "operator": "user_sales_lead", "userId": ["ext_secret"]}),
    ])
    .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while robot.messages().is_empty() || hook.deliveries().is_empty() {
        ensure!(std::time::Instant::now() < deadline, "the alert reached neither the robot nor the webhook");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = reqwest::get(d.url("/metrics")).await?.text().await?;
    let stderr = std::fs::read_to_string(&log)?;
    ensure!(stderr.lines().count() > 20, "debug logging wrote almost nothing; nothing was tested");
    let webhook_key = hook.secret.trim_start_matches("whsec_");
    for (what, secret) in [
        ("the DingTalk token", TOKEN),
        ("the EncodingAESKey", AES),
        ("the robot's access token", robot.access_token.as_str()),
        ("the robot's secret", robot.secret.as_str()),
        ("the webhook key", webhook_key),
        ("the database password", password),
    ] {
        ensure!(!stderr.contains(secret), "{what} is in the log");
        ensure!(!metrics.contains(secret), "{what} is in /metrics");
    }
    Ok(())
}
