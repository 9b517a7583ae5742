//! A webhook signed per the Standard Webhooks spec, and [`verify`] for whoever receives it.

use std::sync::Arc;
use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use dingguard_model::Clock;
use hmac::{Hmac, Mac};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde::Serialize;
use sha2::Sha256;

use crate::{BoxFuture, Delivered, DeliveryStats, Notification, Notifier, NotifyError, WebhookSecret, http};

/// How far `webhook-timestamp` may be from the receiver's clock, either way.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    pub secret: WebhookSecret,
    pub timeout: Duration,
}

impl WebhookConfig {
    pub fn new(url: impl Into<String>, secret: WebhookSecret) -> Self {
        Self { name: "webhook".to_owned(), url: url.into(), secret, timeout: Duration::from_secs(10) }
    }
}

/// The body: the alert without its recipients, which are DingTalk user ids, personal data that mean nothing to
/// a receiver outside DingTalk.
#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    title: &'a str,
    severity: &'a str,
    markdown: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
}

pub struct WebhookNotifier {
    config: WebhookConfig,
    url: Url,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    stats: DeliveryStats,
}

impl WebhookNotifier {
    pub fn new(config: WebhookConfig, clock: Arc<dyn Clock>) -> Result<Self, NotifyError> {
        let url = http::parse_url(&config.url)?;
        let client = http::client(config.timeout)?;
        Ok(Self { config, url, client, clock, stats: DeliveryStats::default() })
    }

    async fn send_one(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        n.validate()?;
        let body = Body {
            id: &n.id,
            title: &n.title,
            severity: &n.severity,
            markdown: n.markdown.as_str(),
            link: n.link.as_deref(),
        };
        let body = serde_json::to_vec(&body).expect("a struct of strings serialises");
        // Each attempt is signed afresh: a retry keeps the id but must not carry a timestamp that went stale.
        let timestamp = self.clock.now_ms().div_euclid(1000);
        let signature = sign(&self.config.secret, &n.id, timestamp, &body);
        let response = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ID, &n.id)
            .header(TIMESTAMP, timestamp.to_string())
            .header(SIGNATURE, signature)
            .body(body)
            .send()
            .await
            .map_err(NotifyError::transport)?;
        let status = response.status();
        if status.is_success() {
            Ok(Delivered::Sent { receipt: None })
        } else {
            Err(NotifyError::HttpStatus { status: status.as_u16() })
        }
    }
}

impl Notifier for WebhookNotifier {
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

fn mac(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.key()).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(secret, id, timestamp, body).finalize().into_bytes()))
}

/// Checks a received webhook: the timestamp within [`WEBHOOK_TOLERANCE_SECS`] of `now_unix_s`, and one of the
/// space-separated signatures (several during a key rotation) matching, compared in constant time.
pub fn verify(secret: &WebhookSecret, headers: &HeaderMap, body: &[u8], now_unix_s: i64) -> Result<(), NotifyError> {
    let header = |name: &'static str| -> Result<&str, NotifyError> {
        let value = headers.get(name).ok_or(NotifyError::MissingHeader(name))?;
        value.to_str().map_err(|_| NotifyError::MalformedHeader(name))
    };
    let id = header(ID)?;
    let timestamp: i64 = header(TIMESTAMP)?.trim().parse().map_err(|_| NotifyError::MalformedHeader(TIMESTAMP))?;
    let signatures = header(SIGNATURE)?;
    if now_unix_s.abs_diff(timestamp) > WEBHOOK_TOLERANCE_SECS.unsigned_abs() {
        return Err(NotifyError::TimestampOutOfTolerance {
            timestamp,
            now: now_unix_s,
            tolerance_secs: WEBHOOK_TOLERANCE_SECS,
        });
    }
    let expected = mac(secret, id, timestamp, body);
    let matched = signatures
        .split(' ')
        .filter_map(|candidate| candidate.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|given| expected.clone().verify_slice(&given).is_ok());
    if matched { Ok(()) } else { Err(NotifyError::SignatureMismatch) }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(ID, HeaderValue::from_str(id).unwrap());
        map.insert(TIMESTAMP, HeaderValue::from_str(&timestamp.to_string()).unwrap());
        map.insert(SIGNATURE, HeaderValue::from_str(signature).unwrap());
        map
    }

    #[test]
    fn signature_matches_the_published_standard_webhooks_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let rotated = format!("v1,bm9wZQ== {signature}");
        verify(&secret, &headers("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, &rotated), body, 1_614_265_330)
            .unwrap();
    }

    #[test]
    fn round_trip_and_rejections() {
        let secret = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let (id, ts, body) = ("alert-1", 1_700_000_000, br#"{"id":"alert-1"}"#.as_slice());
        let good = headers(id, ts, &sign(&secret, id, ts, body));
        verify(&secret, &good, body, ts + WEBHOOK_TOLERANCE_SECS).unwrap();
        verify(&secret, &good, body, ts - WEBHOOK_TOLERANCE_SECS).unwrap();

        assert!(matches!(verify(&secret, &good, br#"{"id":"alert-2"}"#, ts), Err(NotifyError::SignatureMismatch)));
        let late = verify(&secret, &good, body, ts + WEBHOOK_TOLERANCE_SECS + 1);
        assert!(matches!(late, Err(NotifyError::TimestampOutOfTolerance { .. })));
        let other = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        assert!(matches!(verify(&other, &good, body, ts), Err(NotifyError::SignatureMismatch)));
        let replayed_as = headers("alert-2", ts, &sign(&secret, id, ts, body));
        assert!(matches!(verify(&secret, &replayed_as, body, ts), Err(NotifyError::SignatureMismatch)));
        assert!(matches!(verify(&secret, &headers(id, ts, "v2,abc"), body, ts), Err(NotifyError::SignatureMismatch)));

        let mut missing = good.clone();
        missing.remove(SIGNATURE);
        assert!(matches!(verify(&secret, &missing, body, ts), Err(NotifyError::MissingHeader(SIGNATURE))));
        let mut garbled = good;
        garbled.insert(TIMESTAMP, HeaderValue::from_static("soon"));
        assert!(matches!(verify(&secret, &garbled, body, ts), Err(NotifyError::MalformedHeader(TIMESTAMP))));
    }
}
