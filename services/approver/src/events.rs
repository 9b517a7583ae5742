//! Outcomes on the approvals topic, through the outbox so they are published exactly when the change commits.

use bytes::Bytes;
use dingguard_model::{Record, header};
use dingguard_store::{AlertTx, Channel, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An approval outcome as queued for the approvals topic: its record's id, type, subject and time, and the
/// record's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub request_id: String,
    pub time_ms: i64,
    pub data: Value,
}

/// Queues `dingguard.approval.<kind>` for the request, inside the caller's transaction.
pub(crate) async fn enqueue(
    tx: &mut AlertTx<'_>,
    kind: &str,
    request_id: &str,
    version: i64,
    data: Value,
    at_ms: i64,
) -> Result<(), StoreError> {
    let id = format!("{request_id}:{version}:{kind}");
    let event = ApprovalEvent {
        id: id.clone(),
        kind: format!("dingguard.approval.{kind}"),
        request_id: request_id.to_owned(),
        time_ms: at_ms,
        data,
    };
    tx.enqueue(&id, &Channel::ApprovalsTopic, &event, at_ms).await
}

pub(crate) fn record_for(event: ApprovalEvent) -> Option<Record> {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.time_ms) * 1_000_000)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(Record {
        key: event.request_id.clone(),
        headers: vec![
            (header::SPECVERSION.into(), "1.0".into()),
            (header::ID.into(), event.id),
            (header::SOURCE.into(), "/dingguard/approver".into()),
            (header::TYPE.into(), event.kind),
            (header::TIME.into(), time),
            (header::SUBJECT.into(), event.request_id),
            (header::CONTENT_TYPE.into(), "application/json".into()),
        ],
        value: Bytes::from(event.data.to_string()),
    })
}
