//! Reconciliation with DingTalk's failed-push list. DingTalk clears the list as it returns it, so what one call
//! returned is kept in a spool file (synced) before anything else, then written to the log, and only then is the
//! spool removed and the next call made. Killed at any point after the answer arrived, the next start writes the
//! spool first; the log drops what it already holds. A write that fails is retried, not skipped: the list will not
//! give it back. Calls are spaced so the poller never asks faster than `min_interval`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dingguard_dingtalk::failed::{FailedList, event_of};
use dingguard_dingtalk_api::DingTalkApi;
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Clock, Origin};
use reqwest::Method;
use tokio_util::sync::CancellationToken;

use crate::SourceError;
use crate::write::{Sink, repeat};

const PATH: &str = "/call_back/get_call_back_failed_result";

/// Answers one pass reads at most (200 items each): a list that never ends waits for the next pass.
pub const MAX_CALLS_PER_PASS: usize = 500;

#[derive(Debug, Clone)]
pub struct FailedPushSettings {
    /// The app whose pushes these were: its records carry its name, as a push to its callback path does.
    pub app: AppName,
    /// The topic of DingTalk's events.
    pub topic: String,
    /// The least time between two calls to DingTalk.
    pub min_interval: Duration,
    /// How often a pass runs.
    pub every: Duration,
    /// Where an answer is kept until its items are in the log.
    pub spool: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Calls made to DingTalk.
    pub calls: usize,
    /// Items DingTalk returned.
    pub items: usize,
    /// Records the log took as new.
    pub written: usize,
    /// Records the log already held (the push's copy arrived after all).
    pub duplicates: usize,
    /// Items that carried no event to write.
    pub unreadable: usize,
}

impl PollReport {
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            calls: self.calls + other.calls,
            items: self.items + other.items,
            written: self.written + other.written,
            duplicates: self.duplicates + other.duplicates,
            unreadable: self.unreadable + other.unreadable,
        }
    }
}

pub struct FailedPush {
    api: Arc<DingTalkApi>,
    log: EventLog,
    clock: Arc<dyn Clock>,
    settings: FailedPushSettings,
}

impl FailedPush {
    pub fn new(api: Arc<DingTalkApi>, log: EventLog, clock: Arc<dyn Clock>, settings: FailedPushSettings) -> Self {
        Self { api, log, clock, settings }
    }

    /// Reads the list until DingTalk says it has no more, writing each answer before asking for the next.
    pub async fn poll(&self, shutdown: &CancellationToken) -> Result<PollReport, SourceError> {
        let mut report = PollReport::default();
        // An answer a killed process read and may not have written.
        if let Some(items) = self.spooled()? {
            self.write_items(&items, &mut report, shutdown).await?;
            self.unspool()?;
        }
        loop {
            let started = tokio::time::Instant::now();
            let list: FailedList = self.api.oapi(Method::GET, PATH, &[], None).await?;
            report.calls += 1;
            report.items += list.failed_list.len();
            // DingTalk has cleared these: if the spool cannot be written, they still go to the log first, and the
            // pass then fails with why.
            let spooled = if list.failed_list.is_empty() { Ok(()) } else { self.spool(&list.failed_list) };
            crate::drill::stop_at("failed-push", "before-write").await;
            self.write_items(&list.failed_list, &mut report, shutdown).await?;
            spooled?;
            crate::drill::stop_at("failed-push", "after-write").await;
            self.unspool()?;
            // An empty answer that says there is more, or a pass that has read enough, ends here: the next pass
            // goes on, so a list that misbehaves costs calls at the pace allowed and no more.
            if !list.has_more || list.failed_list.is_empty() || report.calls >= MAX_CALLS_PER_PASS {
                return Ok(report);
            }
            tokio::time::sleep_until(started + self.settings.min_interval).await;
        }
    }

    async fn write_items(
        &self,
        items: &[serde_json::Value],
        report: &mut PollReport,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        for (n, item) in items.iter().enumerate() {
            if n == items.len() / 2 && n > 0 {
                crate::drill::stop_at("failed-push", "mid-page").await;
            }
            let bytes = match event_of(item) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(%error, "failed-push item without an event; skipped");
                    report.unreadable += 1;
                    continue;
                }
            };
            let sink = Sink { log: &self.log, topic: &self.settings.topic, app: &self.settings.app };
            if sink.write(bytes, self.clock.now_ms(), Origin::FailedPush, shutdown).await? {
                report.written += 1;
            } else {
                report.duplicates += 1;
            }
        }
        Ok(())
    }

    fn spooled(&self) -> Result<Option<Vec<serde_json::Value>>, SourceError> {
        crate::state_file::read(&self.settings.spool)
    }

    fn spool(&self, items: &[serde_json::Value]) -> Result<(), SourceError> {
        crate::state_file::replace(&self.settings.spool, &serde_json::to_vec(items).unwrap_or_default())
    }

    fn unspool(&self) -> Result<(), SourceError> {
        match std::fs::remove_file(&self.settings.spool) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SourceError::Checkpoint(format!("cannot remove {}: {e}", self.settings.spool.display()))),
        }
    }

    /// A pass at once, then one every `every`, until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        repeat("failed-push", self.settings.every, &shutdown, || self.poll(&shutdown)).await;
    }
}
