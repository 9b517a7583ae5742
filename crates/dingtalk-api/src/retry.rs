//! One call's attempts: what each answer means (done, retry, or a refusal for good), and the waits between them.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

use crate::ApiError;

/// Exponential backoff with full jitter: before retry `n` (from 0) a wait drawn uniformly from zero to
/// `first × 2ⁿ`, capped at `max`; at most `attempts` calls in all. Jitter keeps replicas that were throttled
/// together from coming back together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { attempts: 5, first: Duration::from_millis(250), max: Duration::from_secs(8) }
    }
}

impl Backoff {
    /// The longest wait before retry `n`.
    pub fn ceiling(&self, n: u32) -> Duration {
        self.first.saturating_mul(1u32 << n.min(16)).min(self.max)
    }

    /// A wait before retry `n`, drawn at random below its ceiling.
    pub fn wait(&self, n: u32) -> Duration {
        let ceiling = self.ceiling(n);
        // Never a tight loop: at least a tenth of the ceiling.
        let floor = ceiling / 10;
        floor + ceiling.saturating_sub(floor).mul_f64(rand::thread_rng().r#gen::<f64>())
    }
}

/// What one attempt came to.
pub enum Attempt {
    Done(Value),
    /// Worth another try: throttled, busy, no answer, no connection.
    Retry(Transient),
    Fail(ApiError),
}

pub enum Transient {
    Throttled,
    Timeout,
    Unreachable(String),
}

/// Runs `call` until it is done, refused, or out of attempts.
pub(crate) async fn run<F, Fut>(backoff: &Backoff, api: &str, timeout: Duration, call: F) -> Result<Value, ApiError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let attempts = backoff.attempts.max(1);
    let mut last = Transient::Timeout;
    for n in 0..attempts {
        if n > 0 {
            tokio::time::sleep(backoff.wait(n - 1)).await;
        }
        match call().await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(error) => return Err(error),
            Attempt::Retry(why) => {
                tracing::debug!(api, attempt = n + 1, "DingTalk call to be retried");
                last = why;
            }
        }
    }
    let api = api.to_owned();
    Err(match last {
        Transient::Throttled => ApiError::Throttled { api, attempts },
        Transient::Timeout => {
            ApiError::Timeout { api, timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX), attempts }
        }
        Transient::Unreachable(reason) => ApiError::Unreachable { api, reason },
    })
}

fn transport(error: &reqwest::Error) -> Attempt {
    if error.is_timeout() {
        Attempt::Retry(Transient::Timeout)
    } else if error.is_builder() {
        Attempt::Fail(ApiError::Config(error.to_string()))
    } else {
        // `without_url`: a legacy URL carries the access token in its query.
        Attempt::Retry(Transient::Unreachable(error_text(error)))
    }
}

fn error_text(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_connect() { "connection failed" } else { "request failed" });
    if let Some(status) = error.status() {
        text.push_str(&format!(" (HTTP {status})"));
    }
    text
}

/// The most an answer may hold: 500 audit-log records with their document members are well under it.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The answer's body, read no further than [`MAX_ANSWER_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, Attempt> {
    if response.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(Attempt::Fail(ApiError::Malformed {
            api: response.url().path().to_owned(),
            what: format!("an answer of more than {MAX_ANSWER_BYTES} bytes"),
        }));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(Attempt::Fail(ApiError::Malformed {
                        api: response.url().path().to_owned(),
                        what: format!("an answer of more than {MAX_ANSWER_BYTES} bytes"),
                    }));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(error) => return Err(transport(&error.without_url())),
        }
    }
}

/// The error body of the new APIs.
#[derive(Deserialize, Default)]
#[serde(default)]
struct NewApiError {
    code: String,
    message: String,
    #[serde(alias = "accessDeniedDetail")]
    accessdenieddetail: Option<AccessDenied>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AccessDenied {
    #[serde(rename = "requiredScopes")]
    required_scopes: Vec<String>,
}

/// What a new-API answer means. Throttling comes as HTTP 429 or a `…QpsLimit…` / `Throttling…` code, a timeout
/// as 504; a missing permission as 403 with the scopes the app needs in `accessdenieddetail.requiredScopes`.
pub(crate) async fn new_api_answer(api: &str, sent: Result<reqwest::Response, reqwest::Error>) -> Attempt {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return transport(&error.without_url()),
    };
    let status = response.status().as_u16();
    let text = match read_capped(response).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(attempt) => return attempt,
    };
    if (200..300).contains(&status) {
        return match serde_json::from_str(&text) {
            Ok(value) => Attempt::Done(value),
            Err(e) => Attempt::Fail(ApiError::Malformed { api: api.to_owned(), what: e.to_string() }),
        };
    }
    let body: NewApiError = serde_json::from_str(&text).unwrap_or_default();
    let throttled = status == 429 || body.code.contains("QpsLimit") || body.code.starts_with("Throttling");
    match status {
        _ if throttled => Attempt::Retry(Transient::Throttled),
        504 | 408 => Attempt::Retry(Transient::Timeout),
        500..=599 => Attempt::Retry(Transient::Unreachable(format!("HTTP {status}"))),
        403 if body.accessdenieddetail.is_some() || body.code.contains("PermissionDenied") => {
            let scopes = body.accessdenieddetail.map(|d| d.required_scopes).unwrap_or_default();
            Attempt::Fail(ApiError::MissingPermission { api: api.to_owned(), scopes, message: clip(&body.message) })
        }
        _ => Attempt::Fail(ApiError::Refused {
            api: api.to_owned(),
            status,
            code: clip(&body.code),
            message: clip(&body.message),
        }),
    }
}

/// Legacy codes worth retrying: system busy, the two timeout codes, and "calls too frequent".
const LEGACY_TRANSIENT: [i64; 4] = [-1, 15, 88, 90018];
/// Legacy codes for an API the app has no permission for.
const LEGACY_NO_PERMISSION: [i64; 2] = [60011, 60020];

/// What a legacy answer means: DingTalk reports in `errcode` inside a 200.
pub(crate) async fn legacy_answer(api: &str, sent: Result<reqwest::Response, reqwest::Error>) -> Attempt {
    let response = match sent {
        Ok(response) => response,
        Err(error) => return transport(&error.without_url()),
    };
    let status = response.status().as_u16();
    match status {
        429 => return Attempt::Retry(Transient::Throttled),
        504 | 408 => return Attempt::Retry(Transient::Timeout),
        500..=599 => return Attempt::Retry(Transient::Unreachable(format!("HTTP {status}"))),
        _ => {}
    }
    let bytes = match read_capped(response).await {
        Ok(bytes) => bytes,
        Err(attempt) => return attempt,
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => return Attempt::Fail(ApiError::Malformed { api: api.to_owned(), what: e.to_string() }),
    };
    let errcode = value.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    let errmsg = clip(value.get("errmsg").and_then(Value::as_str).unwrap_or_default());
    match errcode {
        0 => Attempt::Done(value),
        code if LEGACY_TRANSIENT.contains(&code) => {
            Attempt::Retry(if code == 15 || code == 88 { Transient::Timeout } else { Transient::Throttled })
        }
        code if LEGACY_NO_PERMISSION.contains(&code) => Attempt::Fail(ApiError::MissingPermission {
            api: api.to_owned(),
            scopes: scopes_in(&errmsg),
            message: errmsg,
        }),
        code => {
            Attempt::Fail(ApiError::Refused { api: api.to_owned(), status, code: code.to_string(), message: errmsg })
        }
    }
}

/// The permission codes a legacy message names in brackets (`…权限：[qyapi_get_member]`).
fn scopes_in(message: &str) -> Vec<String> {
    let Some(open) = message.find('[') else { return Vec::new() };
    let Some(close) = message[open..].find(']') else { return Vec::new() };
    message[open + 1..open + close]
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .collect()
}

/// DingTalk's text, bounded, for errors and logs.
fn clip(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_are_capped_and_never_zero() {
        let backoff = Backoff { attempts: 10, first: Duration::from_millis(100), max: Duration::from_secs(1) };
        for n in 0..10 {
            let wait = backoff.wait(n);
            assert!(wait <= backoff.ceiling(n) && wait >= backoff.ceiling(n) / 10, "{n}: {wait:?}");
        }
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(9), Duration::from_secs(1));
    }

    #[test]
    fn permission_codes_are_read_from_legacy_messages() {
        assert_eq!(scopes_in("应用尚未开通所需的权限：[qyapi_get_member]"), vec!["qyapi_get_member"]);
        assert_eq!(scopes_in("no permission"), Vec::<String>::new());
        assert_eq!(scopes_in("[<script>]"), Vec::<String>::new());
    }
}
