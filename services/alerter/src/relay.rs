//! Delivers the outbox: alert records to the alerts topic, each under its alert id so a re-send after a crash is
//! a duplicate consumers drop by `ce_id`.

use std::sync::Arc;

use bytes::Bytes;
use dingguard_model::{Record, header};
use dingguard_store::Channel;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::messages::{AlertRaised, DeadLetter};
use crate::metrics::{NotifierLabels, Outcome};
use dingguard_model::header::dlq;

pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = shared.relay_wake.notified() => {}
            () = tokio::time::sleep(shared.settings.relay_interval) => {}
        }
        if let Err(error) = deliver_due(&shared).await {
            tracing::warn!(%error, "alert relay pass failed; retrying");
        }
        if let Err(error) = dead_letters_due(&shared).await {
            tracing::warn!(%error, "dead-letter relay pass failed; retrying");
        }
        for route in &shared.settings.routes {
            let pass = match &route.robot {
                Some(robot) => robot_due(&shared, route, robot).await,
                None => notify_due(&shared, route).await,
            };
            if let Err(error) = pass {
                tracing::warn!(%error, notifier = route.notifier.name(), "notification pass failed; retrying");
            }
        }
    }
}

fn record_for(alert: AlertRaised) -> Option<Record> {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(alert.raised_at_ms) * 1_000_000)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    let corp = alert.corp_id.clone().unwrap_or_default();
    let value = serde_json::to_vec(&alert).ok()?;
    Some(Record {
        key: format!("{corp}/rule/{}", alert.rule),
        headers: vec![
            (header::SPECVERSION.into(), "1.0".into()),
            (header::ID.into(), alert.id),
            (header::SOURCE.into(), "/dingguard/alerter".into()),
            (header::TYPE.into(), "dingguard.alert.raised".into()),
            (header::TIME.into(), time),
            (header::SUBJECT.into(), alert.rule),
            (header::CORPID.into(), corp),
            ("causationid".into(), alert.event_id),
            (header::CONTENT_TYPE.into(), "application/json".into()),
        ],
        value: Bytes::from(value),
    })
}

/// A robot takes 20 messages a minute. The outbox is the queue: whatever is due goes out as one message (a
/// digest when several wait) whenever the budget allows, and only what was posted is marked delivered, so
/// nothing waits in memory where a crash could lose it.
async fn robot_due(
    shared: &Shared,
    route: &crate::Route,
    robot: &dingguard_notify::RobotNotifier,
) -> Result<(), dingguard_store::StoreError> {
    let channel = route.channel();
    let label = |outcome: &str| NotifierLabels { notifier: route.notifier.name().to_owned(), outcome: outcome.into() };
    loop {
        let now = shared.clock.now_ms();
        let due = shared.store.claim_due(&channel, now, 200, now + dingguard_publish::LEASE_MS).await?;
        let notes: Vec<(String, dingguard_notify::Notification)> =
            due.iter().filter_map(|item| item.message().map(|n| (item.id.clone(), n))).collect();
        if notes.is_empty() {
            return Ok(());
        }
        // Alerts go one by one while the minute's budget covers the backlog; beyond it, one digest carries all.
        let take = if notes.len() <= robot.remaining_budget() { 1 } else { notes.len() };
        let untaken: Vec<String> = notes.iter().skip(take).map(|(id, _)| id.clone()).collect();
        shared.store.release(&untaken, now).await?;
        let batch: Vec<dingguard_notify::Notification> = notes.iter().take(take).map(|(_, n)| n.clone()).collect();
        match robot.send_batch(&batch).await {
            Ok(sent) => {
                let ids: Vec<String> = notes.iter().take(sent).map(|(id, _)| id.clone()).collect();
                shared.store.delivered_many(&ids, now).await?;
                let unsent: Vec<String> = notes.iter().take(take).skip(sent).map(|(id, _)| id.clone()).collect();
                shared.store.release(&unsent, now).await?;
                if sent == 0 {
                    return Ok(());
                }
                shared.metrics.notified.get_or_create(&label("ok")).inc_by(sent as u64);
            }
            Err(error) => {
                shared.metrics.notified.get_or_create(&label("failed")).inc();
                let attempts = due.first().map_or(0, |d| d.attempts);
                let retry_at = dingguard_publish::retry_at(&error, attempts, now);
                if retry_at == i64::MAX {
                    tracing::error!(%error, notifier = route.notifier.name(), "robot refused the alerts for good");
                }
                for (id, _) in notes.iter().take(take) {
                    shared.store.failed(id, &error.to_string(), retry_at).await?;
                }
                return Ok(());
            }
        }
    }
}

/// Delivers due notifications of one route. A refusal that a retry cannot mend is recorded and not retried.
async fn notify_due(shared: &Shared, route: &crate::Route) -> Result<(), dingguard_store::StoreError> {
    let now = shared.clock.now_ms();
    let pass = dingguard_publish::notify_due(&shared.store, &route.channel(), route.notifier.as_ref(), now).await?;
    let label = |outcome: &str| NotifierLabels { notifier: route.notifier.name().to_owned(), outcome: outcome.into() };
    shared.metrics.notified.get_or_create(&label("ok")).inc_by(pass.sent as u64);
    shared.metrics.notified.get_or_create(&label("failed")).inc_by(pass.failed as u64);
    Ok(())
}

/// The dead-letter record of a parked event: its own `ce_id`, its origin in the headers, its bytes unchanged.
fn dead_letter_record(parked: DeadLetter) -> Option<Record> {
    let mut headers = vec![
        (header::SPECVERSION.into(), "1.0".into()),
        (header::ID.into(), parked.ce_id.clone()),
        (header::SOURCE.into(), "/dingguard/alerter".into()),
        (header::TYPE.into(), "dingguard.deadletter".into()),
        (dlq::ORIGIN_TOPIC.into(), parked.origin_topic),
        (dlq::ORIGIN_PARTITION.into(), parked.origin_partition.to_string()),
        (dlq::ORIGIN_OFFSET.into(), parked.origin_offset.to_string()),
        (dlq::CONSUMER.into(), parked.consumer),
        (dlq::SERVICE.into(), "alerter".into()),
        (dlq::ERROR.into(), parked.error),
        (dlq::FAILED_AT.into(), dingguard_model::rfc3339_ms(parked.failed_at_ms)),
        (dlq::ATTEMPTS.into(), parked.attempts.max(1).to_string()),
        (dlq::ORIGIN_KEY.into(), parked.origin_key.unwrap_or_default()),
        (dlq::ORIGIN_HEADERS.into(), serde_json::to_string(&parked.origin_headers).unwrap_or_default()),
    ];
    headers.push((dlq::ORIGINAL_TYPE.into(), parked.ce_type.unwrap_or_default()));
    headers.push((header::CONTENT_TYPE.into(), "application/json".into()));
    Some(Record { key: parked.ce_id, headers, value: Bytes::from(parked.value) })
}

async fn dead_letters_due(shared: &Shared) -> Result<(), dingguard_store::StoreError> {
    let now = shared.clock.now_ms();
    dingguard_publish::publish_due(
        &shared.store,
        &shared.log,
        &Channel::DeadLetters,
        &shared.topics.dlq,
        now,
        dead_letter_record,
    )
    .await?;
    Ok(())
}

async fn deliver_due(shared: &Shared) -> Result<(), dingguard_store::StoreError> {
    loop {
        let now = shared.clock.now_ms();
        let pass = dingguard_publish::publish_due(
            &shared.store,
            &shared.log,
            &Channel::AlertsTopic,
            &shared.topics.alerts,
            now,
            record_for,
        )
        .await?;
        let count =
            |outcome: &str| shared.metrics.published.get_or_create(&Outcome { outcome: outcome.into() }).clone();
        count("ok").inc_by(pass.published as u64);
        count("failed").inc_by(pass.failed as u64);
        if pass.published == 0 || pass.failed > 0 {
            return Ok(());
        }
    }
}
