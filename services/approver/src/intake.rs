//! Requests that arrive as `file_download_request` callbacks: a consumer group on the events topic, one request per
//! callback `ce_id` however often the callback is delivered.

use std::time::Duration;

use dingguard_events::{EventKind, normalise};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::error::ApproverError;
use crate::requests::open_request;
use crate::view::FileRef;

const GROUP: &str = "dingguard-approver";

pub(crate) async fn run(shared: &Shared, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        if let Err(error) = consume(shared, &shutdown).await {
            tracing::error!(%error, "approval intake failed; resuming from the last committed offsets");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn consume(shared: &Shared, shutdown: &CancellationToken) -> Result<(), dingguard_eventlog::LogError> {
    let mut consumer = shared.log.consumer(GROUP, &[&shared.topics.events]).await?;
    loop {
        let records = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            polled = consumer.poll(200, Duration::from_millis(500)) => polled?,
        };
        if records.is_empty() {
            continue;
        }
        for record in &records {
            if record.header("ce_type") != Some("dingtalk.file_download_request") {
                continue;
            }
            let Some(ce_id) = record.header("ce_id") else { continue };
            let now = shared.clock.now_ms();
            let events = match normalise("file_download_request", ce_id, &record.value, &shared.directory, now) {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, ce_id, "download request callback cannot be read; skipped");
                    continue;
                }
            };
            for event in events {
                let EventKind::DownloadRequested { user, file_id, file_name, space_id, reason, .. } = event.kind else {
                    continue;
                };
                let file = FileRef { name: file_name.unwrap_or_else(|| file_id.clone()), id: file_id, space: space_id };
                let reason = reason.unwrap_or_else(|| "(no reason given)".into());
                match open_request(shared, "dingtalk", &user, file, reason, Some(ce_id.to_owned())).await {
                    Ok(_) => {}
                    // A refusal is final for this callback; the audit already says why where it matters.
                    Err(error @ (ApproverError::Invalid(_) | ApproverError::Approval(_))) => {
                        tracing::warn!(%error, ce_id, "download request callback refused");
                    }
                    Err(error) => {
                        tracing::error!(%error, ce_id, "download request not recorded; it will be retried");
                        return Err(dingguard_eventlog::LogError::Unavailable(error.to_string()));
                    }
                }
            }
        }
        consumer.commit(&records).await?;
    }
}
