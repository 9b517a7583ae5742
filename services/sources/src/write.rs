//! What every source does with what it fetched: write it to the log as a push would have been written, and fetch
//! again on a schedule.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use dingguard_dingtalk::{EventHeader, callback_ce_id, callback_record};
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Origin, Record};
use tokio_util::sync::CancellationToken;

use crate::{PollReport, SourceError};

/// Where a source's events go.
pub(crate) struct Sink<'a> {
    pub log: &'a EventLog,
    pub topic: &'a str,
    pub app: &'a AppName,
}

impl Sink<'_> {
    /// Writes one event's JSON as the record of the same shape, `ce_id` and key as its push, marked with
    /// `origin`; true when the log took it as new.
    pub async fn write(
        &self,
        event: Vec<u8>,
        received_ms: i64,
        origin: Origin,
        shutdown: &CancellationToken,
    ) -> Result<bool, SourceError> {
        write_record(self.log, self.topic, event_record(self.app, event, received_ms, origin), shutdown).await
    }
}

/// The record of one fetched event: the shape, `ce_id` and key of its push, marked with `origin`.
pub(crate) fn event_record(app: &AppName, event: Vec<u8>, received_ms: i64, origin: Origin) -> Record {
    let header = EventHeader::parse(&event).unwrap_or_default();
    let id = callback_ce_id(&header, &event);
    callback_record(app, &id, &header, Bytes::from(event), received_ms).with_origin(origin)
}

/// A pass at once, then one every `every`, until `shutdown`. A failed pass is logged and the next one runs as
/// planned.
pub(crate) async fn repeat<F, Fut>(name: &'static str, every: Duration, shutdown: &CancellationToken, pass: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<PollReport, SourceError>>,
{
    loop {
        match pass().await {
            Ok(report) if report.items > 0 => tracing::info!(source = name, ?report, "source pass done"),
            Ok(_) => {}
            Err(error) => tracing::warn!(source = name, %error, "source pass failed; next pass as planned"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// Appends until the log takes it; true when it was new. What a source fetched may not be fetched again (the
/// failed list is cleared as it is read), so a failed write is retried, not skipped.
pub(crate) async fn write_record(
    log: &EventLog,
    topic: &str,
    record: Record,
    shutdown: &CancellationToken,
) -> Result<bool, SourceError> {
    let mut wait = Duration::from_millis(100);
    loop {
        match log.append(topic, record.clone()).await {
            Ok(appended) => return Ok(!appended.duplicate),
            Err(error) => {
                tracing::warn!(%error, "fetched record not written yet; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return Err(SourceError::Stopped),
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
