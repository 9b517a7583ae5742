//! The file audit log poller. It pages forward from its checkpoint, the last record it wrote, and stores the
//! checkpoint only after the page's records are in the log: killed at any point, it reads again from the last
//! record it knows is written, and a record read twice is one event (its id is made from the record). A first
//! start reaches back `backfill`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dingguard_dingtalk::audit_log::{AuditPage, event_of};
use dingguard_dingtalk_api::DingTalkApi;
use dingguard_eventlog::EventLog;
use dingguard_model::{AppName, Clock, Origin};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::write::{Sink, repeat};
use crate::{PollReport, SourceError};

const PATH: &str = "/v1.0/exclusive/fileAuditLogs";

/// Pages one pass reads at most: the next pass goes on from the checkpoint.
pub const MAX_PAGES_PER_PASS: usize = 200;
/// Pages of the overlap before the checkpoint one pass reads again at most.
pub const MAX_OVERLAP_PAGES: usize = 4;

#[derive(Debug, Clone)]
pub struct FileAuditSettings {
    pub app: AppName,
    /// The organisation the log is of, for the records' keys; the records do not say.
    pub corp_id: Option<String>,
    pub topic: String,
    /// Records asked for per page, at most 500.
    pub page_size: usize,
    /// How far back a first start reads.
    pub backfill: Duration,
    pub every: Duration,
    /// How far before its checkpoint each pass reads again, for records DingTalk indexed late.
    pub overlap: Duration,
    pub min_interval: Duration,
    /// Where the checkpoint is kept.
    pub checkpoint: PathBuf,
}

/// The last record written: the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub gmt_create: i64,
    pub biz_id: String,
}

pub struct FileAudit {
    api: Arc<DingTalkApi>,
    log: EventLog,
    clock: Arc<dyn Clock>,
    settings: FileAuditSettings,
}

impl FileAudit {
    pub fn new(api: Arc<DingTalkApi>, log: EventLog, clock: Arc<dyn Clock>, settings: FileAuditSettings) -> Self {
        Self { api, log, clock, settings }
    }

    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, SourceError> {
        crate::state_file::read(&self.settings.checkpoint)
    }

    /// Pages from the checkpoint (or `backfill` ago) up to now.
    pub async fn poll(&self, shutdown: &CancellationToken) -> Result<PollReport, SourceError> {
        let backfill_ms = i64::try_from(self.settings.backfill.as_millis()).unwrap_or(i64::MAX);
        let start = self.clock.now_ms().saturating_sub(backfill_ms);
        self.pass(&self.settings.checkpoint, start, shutdown, &|_, _| {}).await
    }

    /// Reads the log from `since_ms` up to now, on demand, whatever the poller's checkpoint says; the log drops
    /// what it already holds. Its own checkpoint lets an interrupted backfill from the same point go on where it
    /// stopped. `progress` hears the totals and the time reached after every page.
    pub async fn backfill(
        &self,
        since_ms: i64,
        shutdown: &CancellationToken,
        progress: &(dyn Fn(&PollReport, i64) + Sync),
    ) -> Result<PollReport, SourceError> {
        let path = self.settings.checkpoint.with_extension(format!("backfill-{since_ms}"));
        let mut total = PollReport::default();
        loop {
            let report = self.pass(&path, since_ms, shutdown, &|r, at| progress(&total.plus(r), at)).await?;
            total = total.plus(&report);
            if report.calls < MAX_PAGES_PER_PASS {
                break;
            }
        }
        let _ = std::fs::remove_file(&path);
        Ok(total)
    }

    /// One pass from the checkpoint at `path` (or `start` without one) up to now.
    async fn pass(
        &self,
        path: &std::path::Path,
        start: i64,
        shutdown: &CancellationToken,
        progress: &(dyn Fn(&PollReport, i64) + Sync),
    ) -> Result<PollReport, SourceError> {
        let mut report = PollReport::default();
        let now = self.clock.now_ms();
        // DingTalk may index a record after later ones were read: each pass reads again the `overlap` before its
        // checkpoint (what the log holds already is dropped there), for at most a few pages, then goes on from the
        // checkpoint itself.
        let saved: Option<Checkpoint> = crate::state_file::read(path)?;
        let overlap_ms = i64::try_from(self.settings.overlap.as_millis()).unwrap_or(i64::MAX);
        let start = saved.as_ref().map_or(start, |c| c.gmt_create.saturating_sub(overlap_ms));
        let mut cursor: Option<Checkpoint> = if overlap_ms > 0 { None } else { saved.clone() };
        let mut overlap_pages = 0;
        let size = self.settings.page_size.clamp(1, dingguard_dingtalk::audit_log::MAX_PAGE);
        loop {
            let began = tokio::time::Instant::now();
            let mut query =
                vec![("startDate", start.to_string()), ("endDate", now.to_string()), ("pageSize", size.to_string())];
            if let Some(c) = &cursor {
                query.push(("nextGmtCreate", c.gmt_create.to_string()));
                query.push(("nextBizId", c.biz_id.clone()));
            }
            let page: AuditPage = self.api.call(Method::GET, PATH, &query, None).await?;
            report.calls += 1;
            report.items += page.list.len();
            crate::drill::stop_at("file-audit", "before-write").await;
            for (n, record) in page.list.iter().enumerate() {
                if n == page.list.len() / 2 && n > 0 {
                    crate::drill::stop_at("file-audit", "mid-page").await;
                }
                let Some(bytes) = event_of(record, self.settings.corp_id.as_deref()) else { continue };
                let sink = Sink { log: &self.log, topic: &self.settings.topic, app: &self.settings.app };
                if sink.write(bytes, now, Origin::FileAudit, shutdown).await? {
                    report.written += 1;
                } else {
                    report.duplicates += 1;
                }
            }
            crate::drill::stop_at("file-audit", "after-write").await;
            // Only now that the page is in the log does the next start move past it.
            let moved = match page.list.last().and_then(|r| r.cursor()) {
                Some((gmt_create, biz_id)) => {
                    let next = Checkpoint { gmt_create, biz_id };
                    // A page that does not move the cursor forward would be asked for again and again.
                    let forward =
                        cursor.as_ref().is_none_or(|c| (next.gmt_create, &next.biz_id) > (c.gmt_create, &c.biz_id));
                    if forward {
                        let past_saved =
                            saved.as_ref().is_none_or(|c| (next.gmt_create, &next.biz_id) > (c.gmt_create, &c.biz_id));
                        if past_saved {
                            crate::state_file::replace(path, &serde_json::to_vec(&next).unwrap_or_default())?;
                            progress(&report, next.gmt_create);
                            cursor = Some(next);
                        } else {
                            overlap_pages += 1;
                            // An overlap too busy to reread in a few pages goes on from the checkpoint instead.
                            cursor = if overlap_pages >= MAX_OVERLAP_PAGES { saved.clone() } else { Some(next) };
                        }
                    }
                    forward
                }
                None => false,
            };
            if page.list.len() < size || !moved || report.calls >= MAX_PAGES_PER_PASS {
                return Ok(report);
            }
            tokio::time::sleep_until(began + self.settings.min_interval).await;
        }
    }

    pub async fn run(&self, shutdown: CancellationToken) {
        repeat("file-audit", self.settings.every, &shutdown, || self.poll(&shutdown)).await;
    }
}
