//! `dingguard dlq list|redrive`: the records the alerter could not judge, and their way back. A redrive puts each
//! dead letter back on the topic it came from, with its own key and headers, under an id of its own
//! (`<ce_id>~redrive<attempts>`, so consumers that dropped the first copy by `ce_id` judge it) and with its count
//! of failures, so one that fails again goes back to the dead-letter topic with one more. What was replayed is kept
//! in the store and on the audit chain with who ran it; a second redrive replays only what the first did not.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use dingguard::app::open_log;
use dingguard::config::{Config, ProcessEnv};
use dingguard_eventlog::LoggedRecord;
use dingguard_model::header::{self, dlq};
use dingguard_model::{Clock, Record, SystemClock};
use dingguard_store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

const OWNER: &str = "dlq";
const REDRIVEN: &str = "redriven";

/// Where a dead letter sits on the dead-letter topic: what a redrive remembers.
fn position(record: &LoggedRecord) -> String {
    format!("{}:{}", record.partition, record.offset)
}

fn summary(record: &LoggedRecord) -> serde_json::Value {
    let h = |name: &str| record.header(name).unwrap_or_default();
    json!({
        "ce_id": h(header::ID), "type": h(dlq::ORIGINAL_TYPE), "error": h(dlq::ERROR),
        "attempts": h(dlq::ATTEMPTS).parse::<u32>().unwrap_or(1), "failed_at": h(dlq::FAILED_AT),
        "service": h(dlq::SERVICE), "consumer": h(dlq::CONSUMER),
        "origin": {"topic": h(dlq::ORIGIN_TOPIC), "partition": h(dlq::ORIGIN_PARTITION),
            "offset": h(dlq::ORIGIN_OFFSET), "key": h(dlq::ORIGIN_KEY)},
        "dlq": {"partition": record.partition, "offset": record.offset},
    })
}

fn matches(record: &LoggedRecord, filter: Option<&str>) -> bool {
    filter.is_none_or(|f| {
        [header::ID, dlq::ORIGINAL_TYPE, dlq::ERROR]
            .iter()
            .any(|name| record.header(name).is_some_and(|v| v.contains(f)))
    })
}

/// Prints every dead letter as a JSON line.
pub async fn list(config_file: Option<&Path>, filter: Option<&str>) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    let log = open_log(&config.backend)?;
    let records = log.read_all(&config.topics.dlq).await.context("cannot read the dead-letter topic")?;
    let shown: Vec<&LoggedRecord> = records.iter().filter(|r| matches(r, filter)).collect();
    for record in &shown {
        println!("{}", summary(record));
    }
    eprintln!("{} dead letter(s) on {}", shown.len(), config.topics.dlq);
    Ok(())
}

/// The record a dead letter was, put back as it came, under its redrive id.
fn replay(record: &LoggedRecord, known_topics: &[&str]) -> Result<(String, Record)> {
    let id = record.header(header::ID).context("a dead letter without a ce_id")?;
    let topic = record.header(dlq::ORIGIN_TOPIC).unwrap_or_default();
    if !known_topics.contains(&topic) {
        bail!("dead letter {id} came from {topic:?}, not a topic of this deployment; not replayed");
    }
    let attempts: u32 = record.header(dlq::ATTEMPTS).and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut headers: Vec<(String, String)> =
        record.header(dlq::ORIGIN_HEADERS).and_then(|h| serde_json::from_str(h).ok()).unwrap_or_default();
    if headers.is_empty() {
        // A dead letter from before origin headers were kept: its type is all that is known.
        headers.push((header::SPECVERSION.into(), "1.0".into()));
        headers.push((header::TYPE.into(), record.header(dlq::ORIGINAL_TYPE).unwrap_or("dingtalk.unknown").into()));
    }
    let replayed_id = format!("{id}~redrive{attempts}");
    headers.retain(|(k, _)| k != header::ID && k != dlq::ATTEMPTS && k != dlq::REDRIVEN_FROM);
    headers.push((header::ID.into(), replayed_id.clone()));
    headers.push((dlq::ATTEMPTS.into(), attempts.to_string()));
    headers.push((dlq::REDRIVEN_FROM.into(), id.to_owned()));
    let key = record.header(dlq::ORIGIN_KEY).filter(|k| !k.is_empty()).unwrap_or(id).to_owned();
    Ok((topic.to_owned(), Record { key, headers, value: Bytes::copy_from_slice(&record.value) }))
}

/// Replays the dead letters not replayed yet (those matching `filter`), with a progress bar.
pub async fn redrive(config_file: Option<&Path>, filter: Option<&str>) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    let log = open_log(&config.backend)?;
    let store = Store::open(&config.store).await.context("cannot open the state store")?;
    let done: HashSet<String> = store
        .load_keyed_state(OWNER)
        .await?
        .into_iter()
        .filter(|row| row.kind == REDRIVEN)
        .map(|row| row.key)
        .collect();
    let records = log.read_all(&config.topics.dlq).await.context("cannot read the dead-letter topic")?;
    let chosen: Vec<&LoggedRecord> = records.iter().filter(|r| matches(r, filter)).collect();
    let due: Vec<&LoggedRecord> = chosen.iter().copied().filter(|r| !done.contains(&position(r))).collect();
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let bar = ProgressBar::new(due.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut replayed = 0;
    let mut refused = Vec::new();
    for record in &due {
        let (topic, again) = match replay(record, &[&config.topics.events]) {
            Ok(replay) => replay,
            Err(error) => {
                refused.push(error.to_string());
                bar.inc(1);
                continue;
            }
        };
        let id = record.header(header::ID).unwrap_or_default().to_owned();
        let replayed_id = again.ce_id().unwrap_or_default().to_owned();
        log.append(&topic, again).await.with_context(|| format!("cannot put {id} back on {topic}"))?;
        // Remembered only once it is back on its topic: killed before this, a second run replays it under the
        // same id, which the log and every consumer drop.
        let now = SystemClock.now_ms();
        let details = json!({"replayed_as": replayed_id, "topic": topic, "dlq": position(record),
            "error": record.header(dlq::ERROR).unwrap_or_default()});
        let mut tx = store.begin().await?;
        tx.put_state(OWNER, REDRIVEN, &position(record), &details.to_string(), now).await?;
        tx.append_audit(&format!("operator:{operator}"), "redrove dead letter", &id, details, now).await?;
        tx.commit().await?;
        replayed += 1;
        bar.inc(1);
        bar.set_message(id);
    }
    bar.finish_and_clear();
    log.flush(std::time::Duration::from_secs(10)).await.context("the event log did not confirm the replays")?;
    for reason in &refused {
        eprintln!("{reason}");
    }
    println!(
        "redrove {replayed} of {} dead letter(s); {} replayed before, {} refused",
        chosen.len(),
        chosen.len() - due.len(),
        refused.len()
    );
    Ok(())
}
