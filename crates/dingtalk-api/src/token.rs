//! Access tokens, one cache per kind per app. The lock is held across a refresh, so a burst of calls after expiry
//! asks DingTalk for one token, not one each.

use dingguard_model::Secret;
use serde_json::{Value, json};

use crate::{ApiError, DingTalkApi, retry};

/// Refreshed this long before DingTalk says it expires (or half its life, if that is shorter), so no call
/// starts with a token about to lapse.
const REFRESH_MARGIN_MS: i64 = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// `POST /v1.0/oauth2/accessToken`.
    New,
    /// `GET /gettoken`.
    Legacy,
}

struct Cached {
    token: Secret,
    refresh_at_ms: i64,
}

pub(crate) struct TokenCache {
    kind: TokenKind,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl TokenCache {
    pub(crate) fn new(kind: TokenKind) -> Self {
        Self { kind, cached: tokio::sync::Mutex::new(None) }
    }

    /// The cached token, or a new one when it is due for refresh or is the `refused` one.
    pub(crate) async fn get(&self, api: &DingTalkApi, refused: Option<&Secret>) -> Result<Secret, ApiError> {
        let mut cached = self.cached.lock().await;
        let now = api.clock.now_ms();
        if let Some(current) = cached.as_ref().filter(|c| now < c.refresh_at_ms && refused != Some(&c.token)) {
            return Ok(current.token.clone());
        }
        let (token, lifetime_ms) = self.fetch(api).await?;
        let margin = REFRESH_MARGIN_MS.min(lifetime_ms / 2);
        let refresh_at_ms = api.clock.now_ms().saturating_add(lifetime_ms - margin);
        *cached = Some(Cached { token: token.clone(), refresh_at_ms });
        tracing::debug!(kind = ?self.kind, lifetime_ms, "DingTalk access token fetched");
        Ok(token)
    }

    async fn fetch(&self, api: &DingTalkApi) -> Result<(Secret, i64), ApiError> {
        let config = &api.config;
        let (name, value) = match self.kind {
            TokenKind::New => {
                let url = api.url(&api.api_base, "/v1.0/oauth2/accessToken");
                let body = json!({"appKey": config.client_id, "appSecret": config.client_secret.expose()});
                let value = retry::run(&config.backoff, "oauth2/accessToken", config.call_timeout, || {
                    let request = api.http.post(url.clone()).json(&body);
                    async move { retry::new_api_answer("oauth2/accessToken", request.send().await).await }
                })
                .await;
                ("oauth2/accessToken", value)
            }
            TokenKind::Legacy => {
                let url = api.url(&api.oapi_base, "/gettoken");
                let query = [("appkey", config.client_id.as_str()), ("appsecret", config.client_secret.expose())];
                let value = retry::run(&config.backoff, "gettoken", config.call_timeout, || {
                    let request = api.http.get(url.clone()).query(&query);
                    async move { retry::legacy_answer("gettoken", request.send().await).await }
                })
                .await;
                ("gettoken", value)
            }
        };
        let value = value.map_err(|error| match error {
            ApiError::Refused { message, .. } | ApiError::MissingPermission { message, .. } => {
                ApiError::BadCredentials { api: name, message }
            }
            other => other,
        })?;
        let (token_field, life_field) = match self.kind {
            TokenKind::New => ("accessToken", "expireIn"),
            TokenKind::Legacy => ("access_token", "expires_in"),
        };
        let token = value.get(token_field).and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::Malformed { api: name.to_owned(), what: format!("no `{token_field}` in the answer") }
        })?;
        let lifetime_s = value.get(life_field).and_then(Value::as_i64).unwrap_or(7200).clamp(1, 86_400);
        Ok((Secret::new(token.to_owned()), lifetime_s * 1000))
    }
}
