//! Outcomes on the approvals topic, through the outbox so they are published exactly when the change commits.

use bytes::Bytes;
use dingguard_model::{Record, header};
use dingguard_store::{AlertTx, StoreError};
use serde_json::{Value, json};

pub(crate) const CHANNEL: &str = "approvals-topic";

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
    let payload = json!({ "id": id, "type": format!("dingguard.approval.{kind}"), "request_id": request_id,
        "time_ms": at_ms, "data": data });
    tx.enqueue(&id, CHANNEL, &payload.to_string(), at_ms).await
}

pub(crate) fn record_for(payload: &str) -> Option<Record> {
    let event: Value = serde_json::from_str(payload).ok()?;
    let text = |k: &str| event.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let time_ms = event.get("time_ms").and_then(Value::as_i64)?;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(time_ms) * 1_000_000)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()?;
    Some(Record {
        key: text("request_id"),
        headers: vec![
            (header::SPECVERSION.into(), "1.0".into()),
            (header::ID.into(), text("id")),
            (header::SOURCE.into(), "/dingguard/approver".into()),
            (header::TYPE.into(), text("type")),
            (header::TIME.into(), time),
            (header::SUBJECT.into(), text("request_id")),
            (header::CONTENT_TYPE.into(), "application/json".into()),
        ],
        value: Bytes::from(event.get("data").map(Value::to_string).unwrap_or_default()),
    })
}
