//! End-to-end latency: from sending a callback that should raise an alert to the alert reaching the security
//! group's robot (a local stand-in), while ordinary traffic runs at 1,000 callbacks/s through `dingguard serve`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dingguard_simulator::load::{self, LoadPlan, Target};
use dingguard_simulator::{Signer, random_id};
use dingguard_tests::standin::RobotStandIn;
use serde_json::json;
use tokio::process::Command;

pub struct LatencyFigures {
    pub rate: u32,
    pub background_sent: u64,
    pub background_non_success: u64,
    pub alerts: usize,
    pub delivered: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

pub async fn run(signer: Signer, command: Command, rate: u32, seconds: u64) -> Result<LatencyFigures> {
    let mut command = command;
    let robot = RobotStandIn::start().await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("dingguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[notify.robots]]\nname = \"security-group\"\naccess_token = \"{}\"\nsecret = \"{}\"\nbase_url = \"{}\"\nmin_severity = \"medium\"\n",
            robot.access_token,
            robot.secret,
            robot.base_url()
        ),
    )?;
    command
        .env("DINGGUARD_CONFIG", &config)
        .env("DINGGUARD_DATA_DIR", dir.path())
        .env("DINGGUARD_RULES", dingguard_tests::workspace_root().join("rules"));
    let server = crate::start(command).await?;
    let target = Target::parse(&server.url)?;

    let now = dingguard_tests::now_ms();
    // Colleagues joining project groups: ordinary traffic that the rules look at but must not alert on.
    let colleagues =
        ["user_sales_rep", "user_hr_clerk", "user_fin_accountant", "user_it_admin", "user_ops", "user_legal_counsel"];
    let background: Vec<_> = (0..(rate as u64 * seconds))
        .map(|i| {
            let event = json!({"EventType": "chat_add_member", "EventTime": now, "CorpId": "dinglatency",
                "eventId": random_id("bg"), "chatId": format!("project{:05}", i % 20_000), "operator": "user_sales_lead",
                "userId": [colleagues[(i % colleagues.len() as u64) as usize]]});
            signer.sign(&event, now as u64)
        })
        .collect();
    let plan = LoadPlan {
        concurrency: 32,
        rate: Some(rate),
        duration: Some(Duration::from_secs(seconds)),
        verify_replies: false,
    };
    let load_task = tokio::spawn(load::run(target.clone(), Arc::new(background), signer.clone(), plan, Arc::default()));

    // One alert-raising callback a second: under the robot's 20 a minute, so none waits for a digest.
    let mut sent_at: HashMap<String, i64> = HashMap::new();
    let alerts = (seconds.saturating_sub(2)).min(18) as usize;
    for _ in 0..alerts {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let group = random_id("latency");
        let event = json!({"EventType": "chat_add_member", "EventTime": dingguard_tests::now_ms(), "CorpId": "dinglatency",
            "eventId": random_id(""), "chatId": group, "operator": "user_sales_lead", "userId": ["ext_visitor"]});
        let callback = signer.sign(&event, dingguard_tests::now_ms() as u64);
        sent_at.insert(group, dingguard_tests::now_ms());
        load::send_all(target.clone(), vec![callback], signer.clone()).await;
    }
    let report = load_task.await.context("background load")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut latencies = Vec::new();
    loop {
        latencies.clear();
        for message in robot.messages() {
            if let Some((group, sent)) = sent_at.iter().find(|(g, _)| message.text.contains(g.as_str())) {
                let _ = group;
                latencies.push((message.received_at_ms - sent) as f64);
            }
        }
        if latencies.len() >= sent_at.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    latencies.sort_by(f64::total_cmp);
    if latencies.len() < sent_at.len() {
        eprintln!(
            "latency: robot got {} messages, refused {}; first: {:?}",
            robot.messages().len(),
            robot.refused(),
            robot.messages().first().map(|m| m.text.chars().take(200).collect::<String>())
        );
    }
    Ok(LatencyFigures {
        rate,
        background_sent: report.sent,
        background_non_success: report.non_success,
        alerts: sent_at.len(),
        delivered: latencies.len(),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
    })
}
