//! The alerter's throughput: events/s through normalise, enrichment, 55 rules and the store, against the raw
//! consumer rate of the same embedded log (poll and commit, nothing else), measured in one run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use dingguard_alerter::Classification;
use dingguard_dingtalk::EventHeader;
use dingguard_dingtalk::callback_record;
use dingguard_eventlog::{EmbeddedLog, EmbeddedOptions, EventLog, LoggedRecord};
use dingguard_model::{AppName, SystemClock, TopicPrefix, Topics};
use dingguard_simulator::{Scenario, ScenarioContext};

pub struct AlerterFigures {
    pub events: usize,
    pub rules: usize,
    pub raw_per_s: f64,
    /// Consume, normalise, enrich and evaluate every rule: the measure.
    pub evaluate_per_s: f64,
    /// The whole alerter: the above plus the exactly-once store transaction per batch and the relay.
    pub alerter_per_s: f64,
    /// Normalise, enrich and evaluate alone, over records already in memory: the work the consumer adds.
    pub evaluate_us: f64,
}

/// Microseconds per record to normalise, enrich and evaluate `records`, best of `passes` fresh evaluators.
pub fn evaluate_in_memory(records: &[LoggedRecord], rules_dir: &Path, passes: usize) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..passes {
        let set = dingguard_alerter::rules_source::load(std::slice::from_ref(&rules_dir.to_path_buf()))?;
        let directory = dingguard_directory::Directory::from_yaml(dingguard_directory::DEMO_YAML)?;
        let mut evaluator = dingguard_alerter::Evaluator::new(set, directory, Classification::demo());
        let now = dingguard_tests::now_ms();
        let started = Instant::now();
        for record in records {
            std::hint::black_box(evaluator.evaluate(record, now).unwrap_or(0));
        }
        best = best.min(started.elapsed().as_secs_f64() * 1e6 / records.len() as f64);
    }
    Ok(best)
}

/// A realistic mix: mostly ordinary days, some alert-raising scenarios.
async fn fill(log: &EventLog, topics: &Topics, events: usize) -> Result<usize> {
    let app = AppName::default_app();
    let mix = [
        Scenario::BenignDay,
        Scenario::BenignDay,
        Scenario::BenignDay,
        Scenario::ExternalMember,
        Scenario::FileDownload,
        Scenario::AddressBook,
        Scenario::ExternalThenDownload,
    ];
    let mut written = 0;
    let now = dingguard_tests::now_ms();
    while written < events {
        for scenario in mix {
            for event in scenario.events(&ScenarioContext::new("dingbenchcorp", now)) {
                let raw = serde_json::to_vec(&event)?;
                let header = EventHeader::parse(&raw)?;
                let id = dingguard_dingtalk::callback_ce_id(&header, &raw);
                log.append(&topics.events, callback_record(&app, &id, &header, Bytes::from(raw), now)).await?;
                written += 1;
            }
        }
    }
    Ok(written)
}

/// The shipped pack five times over under other names: 55 rules.
fn rules(dir: &Path) -> Result<usize> {
    let pack = std::fs::read_to_string(dingguard_tests::workspace_root().join("rules/pdpa-macau.yaml"))?;
    let names: Vec<String> = pack
        .lines()
        .filter_map(|l| {
            l.strip_prefix("- rule: ").or_else(|| l.strip_prefix("- list: ")).or_else(|| l.strip_prefix("- macro: "))
        })
        .map(str::to_owned)
        .collect();
    for copy in 0..5 {
        let mut text = pack.clone();
        for name in &names {
            text = text.replace(&format!(": {name}\n"), &format!(": {name}_{copy}\n"));
            text = text.replace(&format!("({name})"), &format!("({name}_{copy})"));
            text = text.replace(&format!("{name} and"), &format!("{name}_{copy} and"));
        }
        std::fs::write(dir.join(format!("pack-{copy}.yaml")), text)?;
    }
    Ok(names.len())
}

pub async fn run(events: usize) -> Result<AlerterFigures> {
    let dir = tempfile::tempdir()?;
    let log = EventLog::Embedded(EmbeddedLog::open(dir.path().join("eventlog.db"), EmbeddedOptions::default())?);
    let topics = Topics::new(&TopicPrefix::default());
    log.ensure_topics(&topics.all()).await?;
    eprintln!("alerter: writing {events} events to an embedded log ...");
    let events = fill(&log, &topics, events).await?;

    let started = Instant::now();
    let mut raw = log.consumer("bench-raw", &[&topics.events]).await?;
    let mut seen = Vec::with_capacity(events);
    while seen.len() < events {
        let batch = raw.poll(200, Duration::from_millis(500)).await?;
        ensure!(!batch.is_empty(), "raw consumer stalled at {}", seen.len());
        raw.commit(&batch).await?;
        seen.extend(batch);
    }
    let raw_per_s = events as f64 / started.elapsed().as_secs_f64();
    drop(raw);

    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir)?;
    rules(&rules_dir)?;
    let passes = std::env::var("BENCH_EVALUATE_PASSES").ok().and_then(|p| p.parse().ok()).unwrap_or(3);
    let evaluate_us = evaluate_in_memory(&seen, &rules_dir, passes)?;
    drop(seen);

    let set = dingguard_alerter::rules_source::load(std::slice::from_ref(&rules_dir))?;
    let directory = dingguard_directory::Directory::from_yaml(dingguard_directory::DEMO_YAML)?;
    let mut evaluator = dingguard_alerter::Evaluator::new(set, directory, Classification::demo());
    let started = Instant::now();
    let mut consumer = log.consumer("bench-evaluate", &[&topics.events]).await?;
    let (mut seen, mut matches) = (0, 0);
    while seen < events {
        let batch = consumer.poll(200, Duration::from_millis(500)).await?;
        ensure!(!batch.is_empty(), "evaluating consumer stalled at {seen}");
        let now = dingguard_tests::now_ms();
        for record in &batch {
            matches += evaluator.evaluate(record, now).unwrap_or(0);
        }
        seen += batch.len();
        consumer.commit(&batch).await?;
    }
    let evaluate_per_s = events as f64 / started.elapsed().as_secs_f64();
    ensure!(matches > 0, "the benchmark's events raised no alert; the rules were not exercised");
    drop(consumer);
    // The whole alerter as `dingguard alerter` runs it, built by the composition root over the same log.
    let mut config = dingguard::config::Config::for_data_dir(dir.path())?;
    config.alerting.rule_paths = Some(vec![rules_dir]);
    config.alerting.classification = Classification::demo();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let parts = dingguard::app::Parts { clock: Some(Arc::new(SystemClock)), log: Some(log.clone()), store: None };
    let app = dingguard::app::build(&config, dingguard::app::Mode::Alerter, listener, None, parts).await?;
    let (registry, shutdown) = (app.registry.clone(), app.shutdown.clone());
    let metric = |text: &str, name: &str| -> f64 {
        text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    let rule_count = metric(&text, "dingguard_rules_loaded") as usize;
    let started = Instant::now();
    let task = tokio::spawn(app.run());
    loop {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        let done = metric(&text, "dingguard_alerter_events_total");
        if done >= events as f64 {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(300), "alerter stalled at {done} of {events}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let alerter_per_s = events as f64 / started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = task.await;
    Ok(AlerterFigures { events, rules: rule_count, raw_per_s, evaluate_per_s, alerter_per_s, evaluate_us })
}
