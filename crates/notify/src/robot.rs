//! DingTalk custom group robot (https://open.dingtalk.com/document/development/custom-robots-send-group-messages): signed URL, markdown messages, and a per-minute
//! budget that folds the overflow into digests instead of dropping it.

use std::sync::Arc;
use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use dingguard_model::Clock;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;

use crate::http::{self, DingReply};
use crate::{
    BoxFuture, DINGTALK_OAPI, Delivered, DeliveryStats, Notification, Notifier, NotifyError, RobotFailure, Secret,
};

mod queue;

use queue::{DigestBatch, RobotState};

/// DingTalk's documented limit per robot.
pub const ROBOT_PER_MINUTE: usize = 20;

#[derive(Debug, Clone)]
pub struct RobotConfig {
    pub name: String,
    pub base_url: String,
    pub access_token: Secret,
    /// The `SEC…` signing secret.
    pub secret: Secret,
    /// Messages per rolling minute; only lower it (several services sharing one robot), never raise it.
    pub per_minute: usize,
    /// A robot protected by keywords refuses any message without one; it is appended when missing.
    pub keyword: Option<String>,
    pub timeout: Duration,
}

impl RobotConfig {
    pub fn new(access_token: Secret, secret: Secret) -> Self {
        Self {
            name: "dingtalk-robot".to_owned(),
            base_url: DINGTALK_OAPI.to_owned(),
            access_token,
            secret,
            per_minute: ROBOT_PER_MINUTE,
            keyword: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `base64(HMAC-SHA256(key = secret, msg = timestamp + "\n" + secret))`, before URL encoding.
pub fn robot_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Alerts over the per-minute budget are held and go out as one digest when capacity returns: on the next
/// [`Notifier::send`], or on [`RobotNotifier::flush`], which the caller runs periodically so a quiet spell after a
/// burst does not strand the held alerts.
pub struct RobotNotifier {
    config: RobotConfig,
    endpoint: Url,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    state: Mutex<RobotState>,
    stats: DeliveryStats,
}

impl RobotNotifier {
    pub fn new(config: RobotConfig, clock: Arc<dyn Clock>) -> Result<Self, NotifyError> {
        if config.per_minute == 0 {
            return Err(NotifyError::InvalidConfig("robot per_minute must be at least 1".to_owned()));
        }
        if config.access_token.expose().is_empty() || config.secret.expose().is_empty() {
            return Err(NotifyError::InvalidConfig("robot access token and secret must be set".to_owned()));
        }
        let endpoint = http::endpoint(&config.base_url, "robot/send")?;
        let client = http::client(config.timeout)?;
        let state = Mutex::new(RobotState::new(config.per_minute));
        Ok(Self { config, endpoint, client, clock, state, stats: DeliveryStats::default() })
    }

    /// Alerts waiting for a digest.
    pub fn pending(&self) -> usize {
        self.state.lock().pending_len()
    }

    /// When the next message may go out, in ms since the epoch; the caller can schedule [`Self::flush`] for then.
    pub fn next_capacity_ms(&self) -> i64 {
        let now = self.clock.now_ms();
        self.state.lock().next_capacity_ms(now)
    }

    /// Sends one digest of held alerts if any are held and the budget allows. `Ok(None)`: nothing to send yet.
    /// A failed digest puts its alerts back at the head of the queue.
    pub async fn flush(&self) -> Result<Option<Delivered>, NotifyError> {
        let now = self.clock.now_ms();
        let batch = {
            let mut state = self.state.lock();
            if state.pending_len() == 0 || !state.has_capacity(now) {
                return Ok(None);
            }
            state.reserve(now);
            state.take_batch()
        };
        self.stats.record_attempt();
        let alerts = batch.len();
        match self.post_digest(&batch, now).await {
            Ok(()) => {
                let delivered = Delivered::InDigest { alerts };
                self.stats.record_outcome(&delivered);
                Ok(Some(delivered))
            }
            Err(error) => {
                self.requeue(batch, &error, now);
                self.stats.record_failure(&error);
                Err(error)
            }
        }
    }

    /// Messages the robot may still send in the current minute.
    pub fn remaining_budget(&self) -> usize {
        let now = self.clock.now_ms();
        self.state.lock().remaining(now)
    }

    /// Posts the front of `items` as one message (a digest when there are several) if the budget allows, and says
    /// how many went out: 0 when the robot is at its limit. For callers whose queue is durable (an outbox), so
    /// nothing waits in this process's memory.
    pub async fn send_batch(&self, items: &[Notification]) -> Result<usize, NotifyError> {
        if items.is_empty() {
            return Ok(0);
        }
        for n in items {
            n.validate()?;
        }
        let now = self.clock.now_ms();
        {
            let mut state = self.state.lock();
            if !state.has_capacity(now) {
                return Ok(0);
            }
            state.reserve(now);
        }
        self.stats.record_attempt();
        let (result, sent) = if items.len() == 1 {
            let (title, text) = queue::render_single(&items[0]);
            (self.post(&title, text, &items[0].id, now).await, 1)
        } else {
            let batch = queue::batch_of(items, now);
            let count = batch.len();
            (self.post_digest(&batch, now).await, count)
        };
        match result {
            Ok(()) => {
                let delivered =
                    if sent == 1 { Delivered::Sent { receipt: None } } else { Delivered::InDigest { alerts: sent } };
                self.stats.record_outcome(&delivered);
                Ok(sent)
            }
            Err(error) => {
                if error.is_robot_throttled() {
                    self.state.lock().block(now);
                }
                self.stats.record_failure(&error);
                Err(error)
            }
        }
    }

    async fn send_one(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        n.validate()?;
        let now = self.clock.now_ms();
        let digest = {
            let mut state = self.state.lock();
            if !state.has_capacity(now) {
                state.enqueue(n.clone(), now);
                tracing::info!(robot = %self.config.name, id = %n.id, pending = state.pending_len(), "held for digest");
                return Ok(Delivered::Queued { pending: state.pending_len() });
            }
            state.reserve(now);
            // With alerts already held, the new one joins them: one message instead of two, and no overtaking.
            (state.pending_len() > 0).then(|| {
                let seq = state.enqueue(n.clone(), now);
                (seq, state.take_batch())
            })
        };
        let Some((seq, batch)) = digest else {
            let (title, text) = queue::render_single(n);
            return match self.post(&title, text, &n.id, now).await {
                Ok(()) => Ok(Delivered::Sent { receipt: None }),
                Err(error) if error.is_robot_throttled() => {
                    let mut state = self.state.lock();
                    state.block(now);
                    state.enqueue_front(n.clone(), now);
                    Ok(Delivered::Queued { pending: state.pending_len() })
                }
                Err(error) => Err(error),
            };
        };
        let (alerts, included) = (batch.len(), batch.contains(seq));
        match self.post_digest(&batch, now).await {
            Ok(()) if included => Ok(Delivered::InDigest { alerts }),
            Ok(()) => Ok(Delivered::Queued { pending: self.pending() }),
            Err(error) => {
                let throttled = error.is_robot_throttled();
                self.requeue(batch, &error, now);
                if throttled {
                    return Ok(Delivered::Queued { pending: self.pending() });
                }
                // The caller gets the error for this alert and may retry it; the others stay held.
                self.state.lock().remove(seq);
                Err(error)
            }
        }
    }

    fn requeue(&self, batch: DigestBatch, error: &NotifyError, now: i64) {
        let mut state = self.state.lock();
        state.restore(batch);
        if error.is_robot_throttled() {
            state.block(now);
        }
        tracing::warn!(robot = %self.config.name, pending = state.pending_len(), %error, "digest not sent");
    }

    async fn post_digest(&self, batch: &DigestBatch, now: i64) -> Result<(), NotifyError> {
        let (title, text, uuid) = batch.render(self.config.per_minute);
        self.post(&title, text, &uuid, now).await
    }

    async fn post(&self, title: &str, mut text: String, uuid: &str, now: i64) -> Result<(), NotifyError> {
        if let Some(keyword) = self.config.keyword.as_deref().filter(|k| !text.contains(k)) {
            text = format!("{text}\n\n{keyword}");
        }
        let body = json!({
            "msgtype": "markdown",
            "markdown": { "title": title, "text": text },
            "msgUuid": uuid,
        });
        let reply: DingReply = http::send_json(self.client.post(self.signed_url(now)).json(&body)).await?;
        if reply.errcode == 0 {
            return Ok(());
        }
        let failure = RobotFailure::from_code(reply.errcode);
        Err(NotifyError::Robot { failure, code: reply.errcode, errmsg: reply.errmsg })
    }

    fn signed_url(&self, now: i64) -> Url {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("access_token", self.config.access_token.expose())
            .append_pair("timestamp", &now.to_string())
            .append_pair("sign", &robot_sign(self.config.secret.expose(), now));
        url
    }
}

impl Notifier for RobotNotifier {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<Delivered, NotifyError>> {
        Box::pin(self.send_one(notification))
    }

    fn stats(&self) -> &DeliveryStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use dingguard_model::ManualClock;

    use super::*;

    #[test]
    fn signature_matches_the_reference_vector() {
        assert_eq!(
            robot_sign("SECexample0123456789", 1_700_000_000_000),
            "figG6qqCA/lRh0hsGCW2zNtNV5znkAFut5BI0zKhqnQ="
        );
    }

    #[test]
    fn the_signed_url_carries_token_timestamp_and_encoded_sign() {
        let mut config = RobotConfig::new(Secret::new("tok123"), Secret::new("SECexample0123456789"));
        config.base_url = "http://127.0.0.1:9".to_owned();
        let robot = RobotNotifier::new(config, Arc::new(ManualClock::new(0))).unwrap();
        let url = robot.signed_url(1_700_000_000_000);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/robot/send?access_token=tok123&timestamp=1700000000000\
             &sign=figG6qqCA%2FlRh0hsGCW2zNtNV5znkAFut5BI0zKhqnQ%3D"
        );
        assert!(!format!("{:?}", robot.config).contains("SECexample"));
    }

    #[test]
    fn misconfiguration_fails_at_start_up() {
        let clock = Arc::new(ManualClock::new(0));
        let mut config = RobotConfig::new(Secret::new("t"), Secret::new("s"));
        config.per_minute = 0;
        assert!(RobotNotifier::new(config.clone(), clock.clone()).is_err());
        config.per_minute = 20;
        config.base_url = "oapi.dingtalk.com".to_owned();
        assert!(RobotNotifier::new(config, clock).is_err());
    }
}
