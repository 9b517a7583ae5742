//! Delivers the outbox: alert records to the alerts topic, each under its alert id so a re-send after a crash is
//! a duplicate consumers drop by `ce_id`.

use std::sync::Arc;

use bytes::Bytes;
use dingguard_model::{Record, header};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::metrics::{NotifierLabels, Outcome};

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
        for route in &shared.settings.routes {
            if let Err(error) = notify_due(&shared, route).await {
                tracing::warn!(%error, notifier = route.notifier.name(), "notification pass failed; retrying");
            }
            if let Some(robot) = &route.robot {
                if let Err(error) = robot.flush().await {
                    tracing::warn!(%error, notifier = route.notifier.name(), "robot digest not sent yet");
                }
            }
        }
    }
}

fn record_for(payload: &str) -> Option<Record> {
    let alert: serde_json::Value = serde_json::from_str(payload).ok()?;
    let text = |k: &str| alert.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let id = text("id");
    let corp = text("corp_id");
    let raised = alert.get("raised_at_ms").and_then(serde_json::Value::as_i64).unwrap_or_default();
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(raised) * 1_000_000)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(Record {
        key: format!("{corp}/rule/{}", text("rule")),
        headers: vec![
            (header::SPECVERSION.into(), "1.0".into()),
            (header::ID.into(), id),
            (header::SOURCE.into(), "/dingguard/alerter".into()),
            (header::TYPE.into(), "dingguard.alert.raised".into()),
            (header::TIME.into(), time),
            (header::SUBJECT.into(), text("rule")),
            (header::CORPID.into(), corp),
            ("causationid".into(), text("event_id")),
            (header::CONTENT_TYPE.into(), "application/json".into()),
        ],
        value: Bytes::from(payload.to_owned()),
    })
}

/// Delivers due notifications of one route. A refusal that a retry cannot mend is recorded and not retried.
async fn notify_due(shared: &Shared, route: &crate::Route) -> Result<(), dingguard_store::StoreError> {
    let channel = route.channel();
    let now = shared.clock.now_ms();
    for item in shared.store.due(&channel, now, 50).await? {
        let Ok(note) = serde_json::from_str::<dingguard_notify::Notification>(&item.payload) else {
            shared.store.failed(&item.id, "payload is not a notification", i64::MAX).await?;
            continue;
        };
        let label =
            |outcome: &str| NotifierLabels { notifier: route.notifier.name().to_owned(), outcome: outcome.into() };
        match route.notifier.send(&note).await {
            Ok(_) => {
                shared.store.delivered(&item.id, now).await?;
                shared.metrics.notified.get_or_create(&label("ok")).inc();
            }
            Err(error) => {
                shared.metrics.notified.get_or_create(&label("failed")).inc();
                let retry_at = if error.is_retryable() {
                    now + 1_000i64.saturating_mul(1 << item.attempts.clamp(0, 8)).min(300_000)
                } else {
                    tracing::error!(%error, notifier = route.notifier.name(), item = %item.id, "notification refused for good");
                    i64::MAX
                };
                shared.store.failed(&item.id, &error.to_string(), retry_at).await?;
                if error.is_retryable() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

async fn deliver_due(shared: &Shared) -> Result<(), dingguard_store::StoreError> {
    loop {
        let now = shared.clock.now_ms();
        let due = shared.store.due("alerts-topic", now, 100).await?;
        if due.is_empty() {
            return Ok(());
        }
        for item in due {
            let Some(record) = record_for(&item.payload) else {
                shared.store.failed(&item.id, "payload is not an alert", i64::MAX).await?;
                continue;
            };
            match shared.log.append(&shared.topics.alerts, record).await {
                Ok(_) => {
                    shared.store.delivered(&item.id, now).await?;
                    shared.metrics.published.get_or_create(&Outcome { outcome: "ok".into() }).inc();
                }
                Err(error) => {
                    shared.metrics.published.get_or_create(&Outcome { outcome: "failed".into() }).inc();
                    let backoff = 500i64.saturating_mul(1 << item.attempts.clamp(0, 10));
                    shared.store.failed(&item.id, &error.to_string(), now + backoff.min(60_000)).await?;
                    return Ok(());
                }
            }
        }
    }
}
