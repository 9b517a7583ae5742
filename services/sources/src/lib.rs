//! Sources that fetch DingTalk's events rather than wait for a push. Each writes what it fetched to the event
//! log as records of the same shape, `ce_id`, key and dedup as an HTTP push, with its own `source` header, so
//! nothing downstream needs to know more.

mod directory;
mod drill;
mod failed_push;
mod file_audit;
mod state_file;
mod stream;
mod write;

pub use directory::{DirectorySettings, DirectorySync, SyncReport};
pub use failed_push::{FailedPush, FailedPushSettings, MAX_CALLS_PER_PASS, PollReport};
pub use file_audit::{Checkpoint, FileAudit, FileAuditSettings, MAX_PAGES_PER_PASS};
pub use stream::{StreamConnector, StreamError, StreamMetrics, StreamSettings};

use dingguard_dingtalk_api::ApiError;
use dingguard_eventlog::LogError;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    DingTalk(#[from] ApiError),
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("stopped before what was fetched was written")]
    Stopped,
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}
