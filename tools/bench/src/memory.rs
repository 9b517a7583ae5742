//! Memory and steadiness: the receiver's resident memory across a million distinct callbacks, and the alerter
//! catching up on a backlog of address-book events — its rate slice by slice and its memory as it goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use dingguard_dingtalk::EventHeader;
use dingguard_dingtalk::callback_record;
use dingguard_eventlog::{Durability, EmbeddedLog, EmbeddedOptions, EventLog};
use dingguard_model::{AppName, TopicPrefix, Topics};
use dingguard_simulator::load::{self, LoadPlan, Target};
use dingguard_simulator::{SignedCallback, Signer};
use serde_json::{Value, json};

use crate::{dingguard, start};

/// Resident memory now (not the high-water mark), in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

pub struct ReceiverMemory {
    /// (callbacks accepted so far, resident MiB then)
    pub samples: Vec<(u64, f64)>,
    pub peak_mib: f64,
    pub non_success: u64,
}

/// Sends `callbacks` (all distinct) to a fresh embedded receiver in tenths, reading its memory after each.
pub async fn receiver(callbacks: Arc<Vec<SignedCallback>>, signer: &Signer) -> Result<ReceiverMemory> {
    let dir = tempfile::tempdir()?;
    let server = start(dingguard(&["receiver"], &[("DINGGUARD_DATA_DIR", dir.path().display().to_string())])).await?;
    let pid = server.child.id().unwrap_or_default();
    let target = Target::parse(&server.url)?;
    let slice = callbacks.len().div_ceil(10).max(1);
    let (mut samples, mut sent, mut non_success) = (Vec::new(), 0u64, 0u64);
    eprintln!("receiver memory: {} distinct callbacks in slices of {slice} ...", callbacks.len());
    for chunk in callbacks.chunks(slice) {
        let plan = LoadPlan { concurrency: 64, rate: None, duration: None, verify_replies: false };
        let report = load::run(target.clone(), Arc::new(chunk.to_vec()), signer.clone(), plan, Arc::default()).await;
        sent += report.succeeded;
        non_success += report.non_success;
        samples.push((sent, rss_mib(pid)));
    }
    Ok(ReceiverMemory { samples, peak_mib: crate::peak_rss_mib(pid), non_success })
}

pub struct Backlog {
    pub events: usize,
    pub people: usize,
    /// Events per second over each fifth of the backlog, in order.
    pub slice_rates: Vec<f64>,
    /// Resident MiB at the end of each fifth.
    pub slice_rss: Vec<f64>,
    pub peak_mib: f64,
}

/// One of a stream of address-book changes among `people` employees and 200 departments.
fn address_book_event(i: usize, people: usize, at: i64) -> Value {
    let user = format!("user_bench_{:05}", i % people);
    let id = format!("ab-{i}");
    match i % 10 {
        0 => json!({"EventType": "user_add_org", "EventTime": at, "CorpId": "dingbench", "eventId": id,
            "userId": [user]}),
        1 => json!({"EventType": "org_dept_modify", "EventTime": at, "CorpId": "dingbench", "eventId": id,
            "deptId": [format!("{}", 1000 + i % 200)]}),
        9 => json!({"EventType": "user_leave_org", "EventTime": at, "CorpId": "dingbench", "eventId": id,
            "userId": [user]}),
        _ => json!({"EventType": "user_modify_org", "EventTime": at, "CorpId": "dingbench", "eventId": id,
            "userId": [user], "diffInfo": {"userid": user, "prev": {"name": format!("name {}", i.saturating_sub(people))},
            "curr": {"name": format!("name {i}"), "title": format!("title {}", i % 37)}}}),
    }
}

async fn metric_sum(url: &str, prefix: &str) -> Result<f64> {
    let text = reqwest::get(url).await?.text().await?;
    Ok(text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum())
}

/// Writes `events` address-book changes among `people` employees to an embedded log, then lets `dingguard alerter`
/// catch up on them. With more events than people × the directory's per-person history, memory must level off.
pub async fn address_book_backlog(events: usize, people: usize) -> Result<Backlog> {
    let dir = tempfile::tempdir()?;
    let topics = Topics::new(&TopicPrefix::default());
    {
        let options = EmbeddedOptions { durability: Durability::Normal, ..EmbeddedOptions::default() };
        let log = EventLog::Embedded(EmbeddedLog::open(dir.path().join("eventlog.db"), options)?);
        log.ensure_topics(&topics.all()).await?;
        eprintln!("alerter backlog: writing {events} address-book events ...");
        let app = AppName::default_app();
        let start_ms = dingguard_tests::now_ms() - events as i64 * 10;
        let people = people.max(1);
        for from in (0..events).step_by(2000) {
            let writes = (from..(from + 2000).min(events)).map(|i| {
                let (log, topics, app) = (&log, &topics, &app);
                async move {
                    let at = start_ms + i as i64 * 10;
                    let raw = serde_json::to_vec(&address_book_event(i, people, at))?;
                    let header = EventHeader::parse(&raw)?;
                    let id = dingguard_dingtalk::callback_ce_id(&header, &raw);
                    log.append(&topics.events, callback_record(app, &id, &header, Bytes::from(raw), at)).await?;
                    anyhow::Ok(())
                }
            });
            for written in futures_util::future::join_all(writes).await {
                written?;
            }
        }
        log.flush(Duration::from_secs(5)).await?;
    }
    let rules = dingguard_tests::workspace_root().join("rules").display().to_string();
    let server = start(dingguard(
        &["alerter"],
        &[("DINGGUARD_DATA_DIR", dir.path().display().to_string()), ("DINGGUARD_RULES", rules)],
    ))
    .await?;
    let pid = server.child.id().unwrap_or_default();
    let metrics = server.url.replace("/dingtalk/callback", "/metrics");
    let slice = events.div_ceil(5);
    let (mut slice_rates, mut slice_rss) = (Vec::new(), Vec::new());
    let started = Instant::now();
    let (mut mark_at, mut mark_done) = (started, 0.0);
    loop {
        let done = metric_sum(&metrics, "dingguard_alerter_events_total").await?;
        if done >= mark_done + slice as f64 || done >= events as f64 {
            let now = Instant::now();
            slice_rates.push((done - mark_done) / now.duration_since(mark_at).as_secs_f64());
            slice_rss.push(rss_mib(pid));
            (mark_at, mark_done) = (now, done);
        }
        if done >= events as f64 {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(900), "the alerter stalled at {done} of {events}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Backlog { events, people, slice_rates, slice_rss, peak_mib: crate::peak_rss_mib(pid) })
}
