//! The scaling curve: callbacks/s with one and with two receiver processes on one Kafka-protocol broker, the load
//! split evenly between them, in one run. On a two-core machine the broker, the load generator and the receivers
//! share the cores, so the ratio says what a second replica costs or buys here, not on a cluster.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use dingguard_simulator::load::{self, LoadPlan, Target};
use dingguard_simulator::{SignedCallback, Signer};
use dingguard_tests::broker::Broker;

pub struct ScalingFigures {
    /// Callbacks/s with this many receivers, in order: 1, 2.
    pub receivers: Vec<(usize, f64, u64)>,
}

pub async fn run(callbacks: Arc<Vec<SignedCallback>>, signer: &Signer, seconds: u64) -> Result<ScalingFigures> {
    let broker = Broker::start().await?;
    let mut figures = ScalingFigures { receivers: Vec::new() };
    let per_run = callbacks.len() / 3;
    for (run, count) in [1usize, 2].into_iter().enumerate() {
        // Each run loads callbacks the broker has not seen, so no run is helped by the last one's dedup.
        let slice = &callbacks[run * per_run..(run + 1) * per_run];
        let mut servers = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..count {
            let dir = tempfile::tempdir()?;
            let envs = [
                ("DINGGUARD_DATA_DIR", dir.path().display().to_string()),
                ("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()),
            ];
            servers.push(crate::start(crate::dingguard(&["receiver"], &envs)).await?);
            dirs.push(dir);
        }
        let share = slice.len() / count;
        let concurrency = 128 / count;
        let loads = servers.iter().enumerate().map(|(i, server)| {
            let target = Target::parse(&server.url).expect("a receiver URL");
            let part = Arc::new(slice[i * share..(i + 1) * share].to_vec());
            let plan = LoadPlan {
                concurrency,
                rate: None,
                duration: Some(Duration::from_secs(seconds)),
                verify_replies: false,
            };
            load::run(target, part, signer.clone(), plan, Arc::default())
        });
        let reports = futures_util::future::join_all(loads).await;
        let per_s: f64 = reports.iter().map(|r| r.throughput()).sum();
        let non_success: u64 = reports.iter().map(|r| r.non_success).sum();
        eprintln!("scaling: {count} receiver(s) {per_s:.0} callbacks/s");
        figures.receivers.push((count, per_s, non_success));
        drop(servers);
    }
    Ok(figures)
}

pub fn print(f: &ScalingFigures) {
    let one = f.receivers.first().map_or(f64::NAN, |r| r.1);
    for (count, per_s, non_success) in &f.receivers {
        println!(
            "scaling, receivers on Kafka (Tansu): {count} process(es) {per_s:.0} callbacks/s = {:.2} x one; {non_success} non-success",
            per_s / one
        );
    }
}

/// Alerter events/s with one and with two `dingguard alerter` processes in one consumer group on Kafka, sharing a
/// PostgreSQL store: the same backlog of ordinary events preloaded for each, timed from the first event processed
/// to the last (the group's join is not the alerters' speed).
pub async fn alerters(events: usize) -> Result<Vec<(usize, f64)>> {
    use bytes::Bytes;
    use dingguard_dingtalk::{EventHeader, callback_ce_id, callback_record};
    use dingguard_eventlog::{EventLog, KafkaLog, KafkaOptions};
    use dingguard_model::AppName;

    let broker = Broker::start().await?;
    let mut options = KafkaOptions::new(broker.bootstrap());
    options.partitions = 6;
    let log = EventLog::Kafka(KafkaLog::connect(options)?);
    let now = dingguard_tests::now_ms();
    let mut out = Vec::new();
    for count in [1usize, 2] {
        let prefix = format!("scale{count}");
        let topic = format!("{prefix}.events");
        log.ensure_topics(&[
            &topic,
            &format!("{prefix}.alerts"),
            &format!("{prefix}.approvals"),
            &format!("{prefix}.dlq"),
        ])
        .await?;
        for chunk in (0..events).collect::<Vec<_>>().chunks(2_000) {
            let appends = chunk.iter().map(|i| {
                let event = serde_json::json!({"EventType": "chat_add_member", "eventId": format!("{prefix}-{i}"),
                    "EventTime": now, "CorpId": "dingscale", "chatId": format!("project{:04}", i % 1_000),
                    "operator": "user_sales_lead", "userId": ["user_hr_clerk"]});
                let bytes = serde_json::to_vec(&event).expect("json");
                let header = EventHeader::parse(&bytes).expect("an event");
                let id = callback_ce_id(&header, &bytes);
                let record = callback_record(&AppName::default_app(), &id, &header, Bytes::from(bytes), now);
                log.append(&topic, record)
            });
            for result in futures_util::future::join_all(appends).await {
                result?;
            }
        }
        let (db, _database) = dingguard_tests::pg::fresh_database().await;
        let mut servers = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..count {
            let dir = tempfile::tempdir()?;
            let envs = [
                ("DINGGUARD_DATA_DIR", dir.path().display().to_string()),
                ("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()),
                ("DINGGUARD_TOPIC_PREFIX", prefix.clone()),
                ("DINGGUARD_DATABASE_URL", db.clone()),
                ("DINGGUARD_INSTANCE_ID", format!("alerter-{i}")),
                ("DINGGUARD_RULES", dingguard_tests::workspace_root().join("rules").display().to_string()),
            ];
            servers.push(crate::start(crate::dingguard(&["alerter"], &envs)).await?);
            dirs.push(dir);
        }
        let metrics: Vec<String> = servers.iter().map(|s| s.url.replace("/dingtalk/callback", "/metrics")).collect();
        let processed = || async {
            let mut total = 0.0;
            for url in &metrics {
                let text = reqwest::get(url).await.ok()?.text().await.ok()?;
                total += text
                    .lines()
                    .find(|l| l.starts_with(r#"dingguard_alerter_events_total{outcome="processed"}"#))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
            Some(total)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(600);
        let mut first = None;
        loop {
            let done = processed().await.unwrap_or(0.0);
            if done > 0.0 && first.is_none() {
                first = Some((std::time::Instant::now(), done));
            }
            if done >= events as f64 {
                break;
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "{count} alerter(s) processed {done} of {events}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (at, already) = first.unwrap_or((std::time::Instant::now(), 0.0));
        let per_s = (events as f64 - already) / at.elapsed().as_secs_f64().max(0.001);
        eprintln!("scaling: {count} alerter(s) {per_s:.0} events/s");
        out.push((count, per_s));
        drop(servers);
    }
    Ok(out)
}

pub fn print_alerters(figures: &[(usize, f64)]) {
    let one = figures.first().map_or(f64::NAN, |f| f.1);
    for (count, per_s) in figures {
        println!(
            "scaling, alerters on Kafka (Tansu) + PostgreSQL: {count} process(es) {per_s:.0} events/s = {:.2} x one",
            per_s / one
        );
    }
}
