//! What the alerter and the approver remember stays proportional to the people and groups it is about, not to
//! the events that told them: a backlog of address-book events leaves the saved state flat.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use dingguard_simulator::random_id;
use dingguard_tests::app::metric_in;
use dingguard_tests::deployment::Deployment;
use serde_json::{Value, json};

const PEOPLE: usize = 20;

fn modification(i: usize, at: i64) -> Value {
    let user = format!("user_backlog_{:02}", i % PEOPLE);
    json!({"EventType": "user_modify_org", "EventTime": at, "CorpId": "dingdemo", "eventId": random_id("mod"),
        "userId": [user], "diffInfo": {"userid": user, "prev": {"name": format!("name {}", i.saturating_sub(PEOPLE))},
        "curr": {"name": format!("name {i}")}}})
}

/// (rows, bytes) of what `owner` keeps, in either layout.
fn saved_state(data_dir: &str, owner: &str) -> Result<(i64, i64)> {
    let db = rusqlite::Connection::open(format!("{data_dir}/state.db"))?;
    // A store without the table (an older layout) keeps everything in its whole-state rows.
    let (rows, bytes): (i64, i64) = db
        .query_row("SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM keyed_state WHERE owner = ?1", [owner], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or((0, 0));
    let whole: i64 = db
        .query_row(
            "SELECT COALESCE(SUM(LENGTH(state)), 0) FROM engine_state WHERE name LIKE ?1",
            [format!("{owner}%")],
            |r| r.get(0),
        )
        .unwrap_or(0);
    Ok((rows, bytes + whole))
}

async fn processed(d: &Deployment) -> Result<f64> {
    let text = reqwest::get(d.url("/metrics")).await?.text().await?;
    Ok(metric_in(&text, r#"dingguard_alerter_events_total{outcome="processed"}"#))
}

async fn push_and_settle(d: &Deployment, from: usize, to: usize, start_ms: i64) -> Result<()> {
    let events: Vec<Value> = (from..to).map(|i| modification(i, start_ms + i as i64)).collect();
    for chunk in events.chunks(500) {
        d.push(chunk).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed(d).await? < to as f64 {
        ensure!(Instant::now() < deadline, "alerter processed {} of {to}", processed(d).await?);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The approver reads the same events in its own group; give it the same chance.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_address_book_events_leaves_the_saved_state_flat() -> Result<()> {
    let d = Deployment::start(&[]).await?;
    let data_dir = d.envs.iter().find(|(k, _)| *k == "DINGGUARD_DATA_DIR").context("data dir")?.1.clone();
    let start = dingguard_tests::now_ms() - 3_600_000;
    push_and_settle(&d, 0, 1_500, start).await?;
    let (alerter_rows, alerter_first) = saved_state(&data_dir, "alerter")?;
    let (_, approver_first) = saved_state(&data_dir, "approver")?;
    push_and_settle(&d, 1_500, 3_000, start).await?;
    let (alerter_rows_after, alerter_second) = saved_state(&data_dir, "alerter")?;
    let (_, approver_second) = saved_state(&data_dir, "approver")?;
    assert!(
        alerter_rows_after <= (PEOPLE as i64) * 2 && alerter_rows_after == alerter_rows,
        "{alerter_rows} → {alerter_rows_after}"
    );
    assert!(
        alerter_second <= alerter_first + alerter_first / 10,
        "alerter state grew with the events: {alerter_first} → {alerter_second} bytes"
    );
    assert!(
        approver_second <= approver_first + approver_first / 10,
        "approver state grew with the events: {approver_first} → {approver_second} bytes"
    );
    Ok(())
}
