//! `[sources]` and DingTalk's server API credentials: which events dingguard fetches from DingTalk instead of
//! waiting for a push, and how it signs in to fetch them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use dingguard_dingtalk_api::ApiConfig;
use dingguard_model::Secret;
use serde::Deserialize;

use super::{Env, parse_env, secret};

/// Every source a configuration may name.
const SOURCES: [&str; 4] = ["failed-push", "stream", "file-audit", "directory"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalkApiSection {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub api_url: Option<String>,
    pub oapi_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    #[serde(default)]
    pub enabled: Vec<String>,
    #[serde(default)]
    pub failed_push: FailedPushSection,
    #[serde(default)]
    pub file_audit: FileAuditSection,
    #[serde(default)]
    pub stream: StreamSection,
    #[serde(default)]
    pub directory: DirectorySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    /// How often the whole address book is read (default 3600 s); address-book events keep it current between.
    pub every_secs: Option<u64>,
    /// The least time between two address-book calls (default 25 ms, 40 a second).
    pub min_interval_ms: Option<u64>,
    /// The organisation, for the records' keys.
    pub corp_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub every: Duration,
    pub min_interval: Duration,
    pub corp_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// Connections held open at once (default 1).
    pub connections: Option<usize>,
    /// Seconds without a frame before a WebSocket ping (default 120).
    pub keepalive_idle_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub connections: usize,
    pub keepalive_idle: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuditSection {
    /// How often the audit log is read (default 60 s).
    pub every_secs: Option<u64>,
    /// How far back a first start reads (default 7 days).
    pub backfill_days: Option<u64>,
    /// Records per page (default and most 500).
    pub page_size: Option<usize>,
    /// The organisation whose log it is, for the records' keys.
    pub corp_id: Option<String>,
    /// How far before its checkpoint each pass reads again, for records DingTalk indexed late (default 600 s).
    pub overlap_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct FileAuditConfig {
    pub every: Duration,
    pub overlap: Duration,
    pub backfill: Duration,
    pub page_size: usize,
    pub corp_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedPushSection {
    /// How often the failed-push list is read (default 300 s; DingTalk parks an event 3–5 minutes after its last
    /// retry).
    pub every_secs: Option<u64>,
    /// The least time between two calls (default 1000 ms).
    pub min_interval_ms: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct FailedPushConfig {
    pub every: Duration,
    pub min_interval: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct SourcesConfig {
    /// Set when a source needs DingTalk's API.
    pub api: Option<ApiConfig>,
    pub failed_push: Option<FailedPushConfig>,
    pub file_audit: Option<FileAuditConfig>,
    pub stream: Option<StreamConfig>,
    pub directory: Option<DirectoryConfig>,
}

pub fn sources(api: DingTalkApiSection, section: SourcesSection, env: &dyn Env) -> Result<SourcesConfig> {
    let names: Vec<String> = match env.var("DINGGUARD_SOURCES") {
        Some(list) => list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        None => section.enabled,
    };
    for name in &names {
        if !SOURCES.contains(&name.as_str()) {
            bail!(
                "unknown source {name:?} in DINGGUARD_SOURCES / [sources] enabled; the sources are {}",
                SOURCES.join(", ")
            )
        }
    }
    if names.is_empty() {
        return Ok(SourcesConfig::default());
    }
    let client_id = env.var("DINGGUARD_DINGTALK_CLIENT_ID").or(api.client_id).filter(|s| !s.trim().is_empty());
    let client_secret = match secret(env, "DINGGUARD_DINGTALK_CLIENT_SECRET")? {
        Some(secret) => Some(secret),
        None => Secret::from_value_or_file(
            "[dingtalk.api] client_secret",
            api.client_secret,
            api.client_secret_file.as_deref(),
        )?,
    };
    let (Some(client_id), Some(client_secret)) = (client_id, client_secret) else {
        bail!(
            "the sources {} call DingTalk's API: set DINGGUARD_DINGTALK_CLIENT_ID and DINGGUARD_DINGTALK_CLIENT_SECRET \
             (or _FILE), or client_id and client_secret in [dingtalk.api]",
            names.join(", ")
        )
    };
    let mut config = ApiConfig::new(client_id, client_secret);
    if let Some(url) = env.var("DINGGUARD_DINGTALK_API_URL").or(api.api_url) {
        config.api_url = url;
    }
    if let Some(url) = env.var("DINGGUARD_DINGTALK_OAPI_URL").or(api.oapi_url) {
        config.oapi_url = url;
    }
    let failed_push = names.iter().any(|n| n == "failed-push").then(|| -> Result<FailedPushConfig> {
        let every = parse_env::<u64>(env, "DINGGUARD_FAILED_PUSH_EVERY_SECS")?
            .or(section.failed_push.every_secs)
            .unwrap_or(300);
        let min_interval = section.failed_push.min_interval_ms.unwrap_or(1000);
        if !(10..=86_400).contains(&every) {
            bail!("failed-push every_secs {every} must be between 10 s and a day");
        }
        if !(50..=60_000).contains(&min_interval) {
            bail!("failed-push min_interval_ms {min_interval} must be between 50 ms and a minute");
        }
        Ok(FailedPushConfig { every: Duration::from_secs(every), min_interval: Duration::from_millis(min_interval) })
    });
    let audit = section.file_audit;
    let file_audit = names.iter().any(|n| n == "file-audit").then(|| -> Result<FileAuditConfig> {
        let every = audit.every_secs.unwrap_or(60);
        let days = audit.backfill_days.unwrap_or(7);
        let page_size = audit.page_size.unwrap_or(500);
        if !(5..=86_400).contains(&every) {
            bail!("file-audit every_secs {every} must be between 5 s and a day");
        }
        if days > 365 {
            bail!("file-audit backfill_days {days} must be at most 365");
        }
        if !(1..=500).contains(&page_size) {
            bail!("file-audit page_size {page_size} must be between 1 and 500, DingTalk's most");
        }
        let overlap = audit.overlap_secs.unwrap_or(600);
        if overlap > 86_400 {
            bail!("file-audit overlap_secs {overlap} must be at most a day");
        }
        Ok(FileAuditConfig {
            overlap: Duration::from_secs(overlap),
            every: Duration::from_secs(every),
            backfill: Duration::from_secs(days * 86_400),
            page_size,
            corp_id: audit.corp_id,
        })
    });
    let stream_section = section.stream;
    let stream = names.iter().any(|n| n == "stream").then(|| -> Result<StreamConfig> {
        let connections =
            parse_env::<usize>(env, "DINGGUARD_STREAM_CONNECTIONS")?.or(stream_section.connections).unwrap_or(1);
        let idle = stream_section.keepalive_idle_secs.unwrap_or(120);
        if !(1..=16).contains(&connections) {
            bail!("stream connections {connections} (DINGGUARD_STREAM_CONNECTIONS) must be between 1 and 16");
        }
        if !(5..=3_600).contains(&idle) {
            bail!("stream keepalive_idle_secs {idle} must be between 5 s and an hour");
        }
        Ok(StreamConfig { connections, keepalive_idle: Duration::from_secs(idle) })
    });
    let dir_section = section.directory;
    let directory = names.iter().any(|n| n == "directory").then(|| -> Result<DirectoryConfig> {
        let every = dir_section.every_secs.unwrap_or(3_600);
        let min_interval = dir_section.min_interval_ms.unwrap_or(25);
        if !(60..=7 * 86_400).contains(&every) {
            bail!("directory every_secs {every} must be between a minute and a week");
        }
        if !(10..=10_000).contains(&min_interval) {
            bail!("directory min_interval_ms {min_interval} must be between 10 ms and 10 s");
        }
        Ok(DirectoryConfig {
            every: Duration::from_secs(every),
            min_interval: Duration::from_millis(min_interval),
            corp_id: dir_section.corp_id,
        })
    });
    Ok(SourcesConfig {
        directory: directory.transpose()?,
        api: Some(config),
        failed_push: failed_push.transpose()?,
        file_audit: file_audit.transpose()?,
        stream: stream.transpose()?,
    })
}
