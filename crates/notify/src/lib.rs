//! Outbound alert delivery (DingTalk robots, work notifications; Standard Webhooks).
//!
//! Three [`Notifier`]s: a DingTalk custom group robot ([`RobotNotifier`]) that stays under the robot's
//! per-minute limit by folding the overflow into digests, DingTalk work notifications ([`WorkNotifier`]) and a
//! webhook signed per the Standard Webhooks spec ([`WebhookNotifier`], with [`verify`] for the receiving side).
//! [`deliver_with_retry`] retries only what can succeed on retry and keeps per-notifier [`DeliveryStats`].

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

mod error;
mod http;
mod markdown;
mod oa;
mod retry;
mod robot;
mod secret;
mod webhook;
mod work;

pub use error::{NotifyError, RobotFailure};
pub use http::install_crypto_provider;
pub use markdown::{Markdown, inert};
pub use oa::{DINGTALK_API, OaClient, OaConfig, OaInstance};
pub use retry::{
    DeliveryStats, RetryPolicy, Sleeper, StatsSnapshot, TokioSleeper, deliver_with_retry, deliver_with_retry_using,
};
pub use robot::{ROBOT_PER_MINUTE, RobotConfig, RobotNotifier, robot_sign};
pub use secret::{Secret, WebhookSecret};
pub use webhook::{WEBHOOK_TOLERANCE_SECS, WebhookConfig, WebhookNotifier, sign as webhook_sign, verify};
pub use work::{WorkConfig, WorkNotifier};

/// Where DingTalk's legacy (`oapi`) endpoints live; tests point the notifiers at a local stand-in instead.
pub const DINGTALK_OAPI: &str = "https://oapi.dingtalk.com";

/// A future that can be stored behind `dyn Notifier`, so the service can hold a list of mixed notifiers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One alert to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Unique per alert; every notifier passes it on as an idempotency key, so a retry is never a second alert.
    pub id: String,
    pub title: String,
    pub severity: String,
    /// Built with [`Markdown`], so outside text in it is inert.
    pub markdown: Markdown,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// DingTalk user ids, used only by work notifications.
    #[serde(default)]
    pub recipients: Vec<String>,
}

impl Notification {
    /// The id travels in a URL-safe JSON field and an HTTP header, so it is held to visible ASCII.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let id_ok = (1..=128).contains(&self.id.len()) && self.id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(NotifyError::InvalidNotification("id must be 1 to 128 visible ASCII characters"));
        }
        if self.title.trim().is_empty() {
            return Err(NotifyError::InvalidNotification("title must not be empty"));
        }
        Ok(())
    }
}

/// What became of a notification the far end did not refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Accepted on its own; `receipt` is whatever the far end returned to trace it (work notifications: task ids).
    Sent { receipt: Option<String> },
    /// Accepted as one line of a digest that carried `alerts` alerts in all.
    InDigest { alerts: usize },
    /// Held, not lost: the robot is at its rate limit and the alert waits for the next digest.
    Queued { pending: usize },
}

/// An outbound channel for alerts.
pub trait Notifier: Send + Sync {
    /// The configured name, used in logs and metric labels.
    fn name(&self) -> &str;

    /// One attempt; [`deliver_with_retry`] decides whether to try again.
    fn send<'a>(&'a self, notification: &'a Notification) -> BoxFuture<'a, Result<Delivered, NotifyError>>;

    /// Counters kept by [`deliver_with_retry`] (and by robot digest flushes) for the caller to export.
    fn stats(&self) -> &DeliveryStats;
}

/// Cuts `text` to at most `max` bytes without splitting a character.
fn truncate_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A title or severity inside our own markdown structure: disarmed, on one line, and cut to `max` bytes.
fn one_line(text: &str, max: usize) -> String {
    let flat = inert(text);
    let cut = truncate_bytes(flat.trim(), max);
    if cut.len() < flat.trim().len() { format!("{cut}…") } else { cut.to_owned() }
}

/// A link that cannot break out of markdown's `(…)` nor point anywhere but the web or the DingTalk client.
fn is_plain_url(link: &str) -> bool {
    (link.starts_with("https://") || link.starts_with("http://") || link.starts_with("dingtalk://"))
        && link.len() <= 1000
        && !link.chars().any(|c| c.is_whitespace() || c.is_control() || c == '(' || c == ')')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> Notification {
        Notification {
            id: id.to_owned(),
            title: "t".to_owned(),
            severity: "high".to_owned(),
            markdown: Markdown::new(),
            link: None,
            recipients: vec![],
        }
    }

    #[test]
    fn ids_must_fit_a_header() {
        assert!(alert("alert-01HZX").validate().is_ok());
        for bad in ["", "a b", "a\nb", "é", &"x".repeat(129)] {
            assert!(alert(bad).validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_bytes("澳門資料", 4), "澳");
        assert_eq!(truncate_bytes("abc", 10), "abc");
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("澳門資料", 7), "澳門…");
    }
}
