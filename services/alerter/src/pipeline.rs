//! The consumer loop and what one batch does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dingguard_eventlog::LoggedRecord;
use dingguard_rules::Match;
use dingguard_store::{AlertEvent, AlertTx, Channel, FileFact, NewAlert, Recorded, StoreError};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::enrich::Grants;
use crate::judge::{Judged, judge};
use crate::messages::{AlertRaised, DeadLetter};
use crate::metrics::{KindLabels, RuleLabels};
use crate::state::{AlerterState, Saved};

const CONSUMER: &str = "alerter";
/// How often a replica takes in the state rows the others wrote, between batches.
const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Batches judged again in a row because another replica kept changing their rows, before starting over.
const MAX_STALE_RETRIES: u32 = 20;
/// How long after a grant expired a late download is still judged against it: as long as an event may be late
/// and still be judged fully.
pub(crate) const GRANT_LOOKBACK_MS: i64 = dingguard_events::LATE_AFTER_MS;
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] dingguard_eventlog::LogError),
}

/// Runs until shutdown; after any failure it starts over from the committed state and offsets.
pub(crate) async fn consume(shared: Arc<Shared>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match run_once(&shared, &shutdown).await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, "alerter batch failed; resuming from the last committed batch");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn run_once(shared: &Shared, shutdown: &CancellationToken) -> Result<(), BatchError> {
    let mut version = shared.rules_version.load(Ordering::Acquire);
    let mut state = AlerterState::load(shared).await?;
    let mut consumer = shared.log.consumer(&shared.settings.consumer_group, &[&shared.topics.events]).await?;
    let mut refreshed = Instant::now();
    loop {
        let records = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            polled = consumer.poll(shared.settings.batch, Duration::from_millis(500)) => polled?,
        };
        consumer.report_lag().await;
        let current = shared.rules_version.load(Ordering::Acquire);
        if current != version {
            state.engine.replace_rules(shared.rules.read().clone());
            version = current;
        }
        if refreshed.elapsed() >= REFRESH_EVERY {
            let taken = state.refresh(shared).await?;
            if taken > 0 {
                tracing::debug!(rows = taken, "took in state other replicas wrote");
            }
            refreshed = Instant::now();
        }
        if records.is_empty() {
            continue;
        }
        let mut attempt = 0;
        let tally = loop {
            match judge_batch(shared, &records, &mut state).await? {
                Ok(tally) => break tally,
                Err((kind, key)) => {
                    // Another replica changed a row this batch counted on: judge the whole batch again on what is
                    // stored now, so nothing is counted from a stale copy and nothing twice.
                    attempt += 1;
                    shared.metrics.state_conflicts.inc();
                    tracing::info!(kind, key, attempt, "state changed by another replica; judging the batch again");
                    if attempt >= MAX_STALE_RETRIES {
                        return Err(BatchError::Store(StoreError::Conflict(format!(
                            "alerter state {kind} {key:?} kept changing under {attempt} attempts"
                        ))));
                    }
                    state = AlerterState::load(shared).await?;
                }
            }
        };
        consumer.commit(&records).await?;
        tally.apply(&shared.metrics);
        shared.relay_wake.notify_one();
    }
}

/// Judges a batch and commits its effects in one transaction; the row that went stale, with nothing committed.
async fn judge_batch(
    shared: &Shared,
    records: &[LoggedRecord],
    state: &mut AlerterState,
) -> Result<Result<Tally, (&'static str, String)>, BatchError> {
    // Grants made by the approval router: a download they covered when it happened is not "without a grant".
    let grants = Grants::new(shared.store.grants_after(shared.clock.now_ms() - GRANT_LOOKBACK_MS).await?);
    let mut tx = shared.store.begin().await?;
    let mut tally = Tally::default();
    for record in records {
        process(shared, &mut tx, record, state, &grants, &mut tally).await?;
    }
    match state.save(&mut tx, shared.clock.now_ms()).await? {
        Saved::Done => {}
        Saved::Stale { kind, key } => return Ok(Err((kind, key))),
    }
    tx.commit().await?;
    Ok(Ok(tally))
}

/// What a batch did, counted in the metrics only once it is committed: a batch judged again counts once.
#[derive(Default)]
struct Tally {
    events: Vec<&'static str>,
    raised: Vec<RuleLabels>,
    folded: u64,
    suppressed: Vec<&'static str>,
}

impl Tally {
    fn apply(self, metrics: &crate::metrics::AlerterMetrics) {
        for outcome in self.events {
            metrics.event(outcome);
        }
        for labels in &self.raised {
            metrics.raised.get_or_create(labels).inc();
        }
        metrics.folded.inc_by(self.folded);
        for kind in self.suppressed {
            metrics.suppressed.get_or_create(&KindLabels { kind: kind.into() }).inc();
        }
    }
}

async fn process(
    shared: &Shared,
    tx: &mut AlertTx<'_>,
    record: &LoggedRecord,
    state: &mut AlerterState,
    grants: &Grants,
    tally: &mut Tally,
) -> Result<(), BatchError> {
    let Some(ce_id) = record.header("ce_id") else {
        tally.events.push("invalid");
        tracing::warn!(partition = record.partition, offset = record.offset, "record without ce_id skipped");
        return Ok(());
    };
    let now = shared.clock.now_ms();
    if !tx.claim_event(CONSUMER, ce_id, now).await? {
        tally.events.push("duplicate");
        return Ok(());
    }
    // A panic while judging one event is that event's fault: it goes to the dead-letter topic like one that
    // cannot be read, and the batch goes on.
    let judging = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        judge(
            record,
            ce_id,
            record.time_ms().unwrap_or(now),
            now,
            &mut state.directory,
            &mut state.groups,
            &mut state.titles,
            &mut state.engine,
            &shared.classification,
            grants,
        )
    }));
    let failure = match judging {
        Ok(Ok(judged)) => Ok(judged),
        Ok(Err(error)) => Err(error.to_string()),
        Err(payload) => {
            dingguard_telemetry::panicked("alerter", payload.as_ref());
            Err(format!("judging the event panicked: {}", dingguard_telemetry::panic_message(payload.as_ref())))
        }
    };
    let judged = match failure {
        Ok(judged) => judged,
        Err(error) => {
            // Poison: parked on the dead-letter topic with where it came from, for `dlq redrive` once fixed.
            tally.events.push("dead_lettered");
            tracing::warn!(%error, ce_id, "event cannot be judged; sent to the dead-letter topic");
            let parked = DeadLetter {
                ce_id: ce_id.to_owned(),
                ce_type: record.header("ce_type").map(str::to_owned),
                origin_topic: record.topic.clone(),
                origin_partition: record.partition,
                origin_offset: record.offset,
                consumer: CONSUMER.to_owned(),
                error,
                value: String::from_utf8_lossy(&record.value).into_owned(),
                origin_key: record.key.clone(),
                origin_headers: record.headers.clone(),
                failed_at_ms: now,
                attempts: record
                    .header(dingguard_model::header::dlq::ATTEMPTS)
                    .and_then(|a| a.parse::<u32>().ok())
                    .unwrap_or(0)
                    .saturating_add(1),
            };
            tx.enqueue(&format!("{ce_id}:dlq"), &Channel::DeadLetters, &parked, now).await?;
            return Ok(());
        }
    };
    tally.events.push("processed");
    for Judged { event, fields, outcome } in judged {
        // What the download said of the file is what dingguard knows of it; a requester's description of the same
        // file id is then judged against it.
        if let dingguard_events::EventKind::FileDownloaded { file_id, file_name, space_id, .. } = &event.kind {
            let fact = FileFact { name: file_name.clone(), space: space_id.clone() };
            tx.record_file_fact(file_id, &fact, "download", event.occurred_at_ms).await?;
        }
        for s in &outcome.suppressed {
            tx.count_suppressed(&s.rule, "exception", &s.exception, event.occurred_at_ms).await?;
            tally.suppressed.push("exception");
        }
        for m in &outcome.matches {
            let alert = new_alert(m, &event.id, event.kind.name(), &fields, event.corp_id.clone(), now);
            match tx.record(&alert).await? {
                Recorded::Created(id) => {
                    tally.raised.push(RuleLabels { rule: m.rule.clone(), severity: m.severity.as_str().into() });
                    tx.enqueue(&format!("{id}:topic"), &Channel::AlertsTopic, &raised(&alert, m, now), now).await?;
                    for route in shared.settings.routes.iter().filter(|r| m.severity >= r.min_severity) {
                        let note =
                            crate::notifiers::notification(&alert, route, shared.settings.console_url.as_deref());
                        let channel = route.channel();
                        tx.enqueue(&format!("{id}:{}", channel.name()), &channel, &note, now).await?;
                    }
                    tracing::info!(alert = %id, rule = %m.rule, severity = m.severity.as_str(), "alert raised");
                }
                Recorded::Folded { .. } => {
                    tally.folded += 1;
                }
                Recorded::Silenced { .. } => {
                    tally.suppressed.push("silence");
                }
            }
        }
    }
    Ok(())
}

/// The alert id is a digest of the rule and the match's identity (the event, or a sequence's first step), so
/// replaying the events can only find the alert they made before, in whichever order they are read.
fn new_alert(
    m: &Match,
    event_id: &str,
    event_type: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
    corp_id: Option<String>,
    recorded_at_ms: i64,
) -> NewAlert {
    let digest = Sha256::digest(format!("{}\u{1f}{}", m.rule, m.identity).as_bytes());
    let mut fields = fields.clone();
    fields.insert("alert.event_ids".into(), serde_json::json!(m.event_ids));
    let at_ms = m.at_ms;
    NewAlert {
        id: dingguard_model::AlertId::with_suffix(&hex::encode(digest)[..24]).into(),
        rule: m.rule.clone(),
        severity: m.severity,
        message: m.message.clone(),
        pdpa: m.pdpa.clone(),
        corp_id,
        dedup: m.dedup.clone(),
        event: AlertEvent {
            ce_id: event_id.into(),
            event_type: event_type.into(),
            occurred_at_ms: at_ms,
            fields: serde_json::Value::Object(fields),
        },
        at_ms,
        recorded_at_ms,
    }
}

fn raised(alert: &NewAlert, m: &Match, raised_at_ms: i64) -> AlertRaised {
    AlertRaised {
        id: alert.id.clone(),
        rule: alert.rule.clone(),
        severity: alert.severity,
        message: alert.message.clone(),
        pdpa: alert.pdpa.clone(),
        pdpa_note: "may implicate the listed articles of Macau's Personal Data Protection Act (Law 8/2005)".into(),
        corp_id: alert.corp_id.clone(),
        key: m.key.clone(),
        count: m.count,
        event_id: alert.event.ce_id.clone(),
        event_ids: m.event_ids.clone(),
        event_type: alert.event.event_type.clone(),
        occurred_at_ms: alert.at_ms,
        raised_at_ms,
        late: alert.event.fields.get("event.late").and_then(serde_json::Value::as_bool).unwrap_or(false),
    }
}
