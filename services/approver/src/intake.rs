//! Requests that arrive as callbacks: `file_download_request` (one request per callback `ce_id`) and DingTalk OA
//! approvals of a configured process started (`bpms_instance_change`, one request per instance). A consumer group
//! on the events topic; offsets are committed only once every request of a batch is recorded.

use std::time::Duration;

use dingguard_events::EventKind;
use tokio_util::sync::CancellationToken;

use crate::error::ApproverError;
use crate::requests::{Source, open_request};
use crate::view::FileRef;
use crate::{Shared, address_book};

const GROUP: &str = "dingguard-approver";
/// How often a replica takes in the directory rows the others saved, and how far before the last time it reads
/// again (a transaction commits a little after the time on its rows; replicas' clocks differ a little).
const REFRESH_EVERY: Duration = Duration::from_secs(1);
const REFRESH_OVERLAP_MS: i64 = 10_000;

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
    let unavailable = |e: dingguard_store::StoreError| dingguard_eventlog::LogError::Unavailable(e.to_string());
    let mut refreshed_ms = shared.clock.now_ms();
    let mut moved_whole_state = address_book::restore(shared).await.map_err(unavailable)?;
    let mut consumer = shared.log.consumer(GROUP, &[&shared.topics.events]).await?;
    let mut refreshed = std::time::Instant::now();
    loop {
        let records = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            polled = consumer.poll(200, Duration::from_millis(500)) => polled?,
        };
        consumer.report_lag().await;
        if refreshed.elapsed() >= REFRESH_EVERY {
            let started_ms = shared.clock.now_ms();
            address_book::refresh(shared, refreshed_ms - REFRESH_OVERLAP_MS).await.map_err(unavailable)?;
            (refreshed, refreshed_ms) = (std::time::Instant::now(), started_ms);
        }
        if records.is_empty() {
            continue;
        }
        let mut directory_changed = false;
        for record in &records {
            let Some(ce_id) = record.header("ce_id") else { continue };
            let stated = record.header("ce_type").and_then(|t| t.strip_prefix("dingtalk.")).unwrap_or_default();
            let event_type = dingguard_events::believed_type(stated, record.header(dingguard_model::header::ORIGIN));
            let received = record.time_ms().unwrap_or_else(|| shared.clock.now_ms());
            directory_changed |= address_book::absorb(shared, event_type, ce_id, &record.value, received);
            let outcome = match record.header("ce_type") {
                Some("dingtalk.file_download_request") => download_request(shared, ce_id, &record.value).await,
                Some("dingtalk.bpms_instance_change") => oa_instance(shared, ce_id, &record.value).await,
                _ => continue,
            };
            match outcome {
                Ok(()) => {}
                // A refusal is final for this callback; the audit already says why where it matters.
                Err(
                    error @ (ApproverError::Invalid(_) | ApproverError::Approval(_) | ApproverError::TooMany { .. }),
                ) => {
                    tracing::warn!(%error, ce_id, "download request callback refused");
                }
                Err(error) => {
                    tracing::error!(%error, ce_id, "download request not recorded; it will be retried");
                    return Err(dingguard_eventlog::LogError::Unavailable(error.to_string()));
                }
            }
        }
        if directory_changed || moved_whole_state {
            address_book::persist(shared, moved_whole_state).await.map_err(unavailable)?;
            moved_whole_state = false;
        }
        consumer.commit(&records).await?;
    }
}

async fn download_request(shared: &Shared, ce_id: &str, value: &[u8]) -> Result<(), ApproverError> {
    let now = shared.clock.now_ms();
    let events = match crate::normalise("file_download_request", ce_id, value, &shared.directory(), now) {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, ce_id, "download request callback cannot be read; skipped");
            return Ok(());
        }
    };
    for event in events {
        let EventKind::DownloadRequested { user, file_id, file_name, space_id, reason, .. } = event.kind else {
            continue;
        };
        let name = file_name.unwrap_or_else(|| file_id.clone());
        let file = FileRef { name, id: file_id, space: space_id, folder: None, labels: Vec::new() };
        let reason = reason.unwrap_or_else(|| "(no reason given)".into());
        let refused =
            match open_request(shared, "dingtalk", &user, file, reason, Some(Source::Callback(ce_id.to_owned()))).await
            {
                Err(error @ ApproverError::TooMany { .. }) => error,
                other => {
                    other?;
                    continue;
                }
            };
        // Over the requester's limits: nothing is opened, and the refusal is on the record for the DPO.
        let details = serde_json::json!({"requester": user, "error": refused.to_string()});
        shared.store.append_audit("dingtalk", "refused", &format!("cb:{ce_id}"), details, now).await?;
        return Err(refused);
    }
    Ok(())
}

/// A DingTalk OA approval started for one of the configured process codes: its form names the file and the
/// reason. One request per instance, however often DingTalk reports the start.
async fn oa_instance(shared: &Shared, ce_id: &str, value: &[u8]) -> Result<(), ApproverError> {
    let Some(oa) = &shared.settings.oa else { return Ok(()) };
    let now = shared.clock.now_ms();
    let events = match crate::normalise("bpms_instance_change", ce_id, value, &shared.directory(), now) {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, ce_id, "OA approval callback cannot be read; skipped");
            return Ok(());
        }
    };
    for event in events {
        let EventKind::ApprovalInstanceChanged { instance_id, process_code, originator, change_type, .. } = event.kind
        else {
            continue;
        };
        let configured = process_code.as_ref().is_some_and(|code| oa.process_codes.contains(code));
        if change_type.as_deref() != Some("start") || !configured {
            continue;
        }
        let instance = oa.client.instance(&instance_id).await.map_err(|error| {
            if error.is_retryable() {
                ApproverError::Upstream(error.to_string())
            } else {
                ApproverError::Invalid(format!("OA instance {instance_id} cannot be read: {error}"))
            }
        })?;
        let requester = originator.unwrap_or_else(|| instance.originator.clone());
        let Some(file_id) = instance.field(&oa.fields.file_id) else {
            let details = serde_json::json!({"instance": instance_id, "requester": requester,
                "error": format!("the form has no {:?}", oa.fields.file_id)});
            shared.store.append_audit("dingtalk-oa", "unroutable", &format!("oa:{instance_id}"), details, now).await?;
            return Err(ApproverError::Invalid(format!("OA instance {instance_id} names no file")));
        };
        let file = FileRef {
            id: file_id.to_owned(),
            name: instance.field(&oa.fields.file_name).unwrap_or(file_id).to_owned(),
            space: instance.field(&oa.fields.space).map(str::to_owned),
            folder: None,
            labels: Vec::new(),
        };
        let reason = instance.field(&oa.fields.reason).unwrap_or(&instance.title).to_owned();
        open_request(shared, "dingtalk-oa", &requester, file, reason, Some(Source::Oa(instance_id))).await?;
    }
    Ok(())
}
