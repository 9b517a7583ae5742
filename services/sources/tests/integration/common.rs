//! What the sources' tests share: the stand-in's API as an app sees it, an embedded log, and a push written the
//! way the receiver writes it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dingguard_dingtalk::{EventHeader, callback_ce_id, callback_record};
use dingguard_dingtalk_api::{ApiConfig, Backoff, DingTalkApi};
use dingguard_dingtalk_standin::StandIn;
use dingguard_eventlog::{EmbeddedLog, EmbeddedOptions, EventLog};
use dingguard_model::{AppName, Clock, Secret};
use serde_json::Value;

pub const TOPIC: &str = "dingguard.events";

/// A client of the stand-in's new and legacy APIs as the app `id`, retrying briefly, on `clock`.
pub fn api(standin: &StandIn, id: &str, secret: &str, clock: Arc<dyn Clock>) -> Arc<DingTalkApi> {
    let mut config = ApiConfig::new(id, Secret::new(secret.to_owned()));
    config.api_url = standin.url();
    config.oapi_url = standin.url();
    config.backoff = Backoff { attempts: 3, first: Duration::from_millis(20), max: Duration::from_millis(100) };
    Arc::new(DingTalkApi::new(config, clock).unwrap())
}

/// An embedded log at `dir/eventlog.db` with the events topic.
pub async fn embedded_log(dir: &Path) -> EventLog {
    let log = EventLog::Embedded(EmbeddedLog::open(dir.join("eventlog.db"), EmbeddedOptions::default()).unwrap());
    log.ensure_topics(&[TOPIC]).await.unwrap();
    log
}

/// Appends `event` as the receiver writes a push of it, received at `received_ms`.
pub async fn pushed(log: &EventLog, event: &Value, received_ms: i64) {
    let bytes = serde_json::to_vec(event).unwrap();
    let header = EventHeader::parse(&bytes).unwrap();
    let id = callback_ce_id(&header, &bytes);
    let record = callback_record(&AppName::default_app(), &id, &header, Bytes::from(bytes), received_ms);
    log.append(TOPIC, record).await.unwrap();
}
