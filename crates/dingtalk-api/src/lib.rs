//! A client for DingTalk's server APIs, shared by every source that calls them (Stream mode, the failed-push
//! list, the file audit log, the address book).
//!
//! Access tokens for the new APIs (`POST /v1.0/oauth2/accessToken`,
//! https://open.dingtalk.com/document/development/obtain-the-access-token-of-an-internal-app) and the legacy
//! `oapi` ones (`GET /gettoken`) are cached per app and refreshed before they expire, one refresh at a time however
//! many calls wait. Every call is bounded (3 s, after which DingTalk itself counts a call as timed out) and
//! retried with exponential backoff and full jitter while DingTalk says it is throttled or busy, or does not answer.
//! A refusal no retry can mend comes back at once as a typed [`ApiError`]: bad credentials, or the permission the
//! app lacks, named. Base URLs are settings, so tests and demos point the client at a stand-in.

mod error;
mod retry;
mod token;

use std::sync::Arc;
use std::time::Duration;

use dingguard_model::{Clock, Secret};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::ApiError;
pub use retry::{Backoff, MAX_ANSWER_BYTES};
use token::{TokenCache, TokenKind};

/// Where DingTalk is and how this app signs in to it.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The new APIs, `https://api.dingtalk.com`.
    pub api_url: String,
    /// The legacy APIs, `https://oapi.dingtalk.com`.
    pub oapi_url: String,
    /// The app's client id (AppKey).
    pub client_id: String,
    /// The app's client secret (AppSecret).
    pub client_secret: Secret,
    /// The bound on one call.
    pub call_timeout: Duration,
    pub backoff: Backoff,
}

impl ApiConfig {
    pub const API_URL: &'static str = "https://api.dingtalk.com";
    pub const OAPI_URL: &'static str = "https://oapi.dingtalk.com";

    pub fn new(client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self {
            api_url: Self::API_URL.to_owned(),
            oapi_url: Self::OAPI_URL.to_owned(),
            client_id: client_id.into(),
            client_secret,
            call_timeout: Duration::from_secs(3),
            backoff: Backoff::default(),
        }
    }
}

/// One app's client. Cheap to share behind an `Arc`; every clone of the `Arc` uses the same cached tokens.
pub struct DingTalkApi {
    http: reqwest::Client,
    config: ApiConfig,
    api_base: Url,
    oapi_base: Url,
    clock: Arc<dyn Clock>,
    new_token: TokenCache,
    legacy_token: TokenCache,
}

/// Legacy codes that mean the token itself was refused (expired early, or revoked): fetch a new one, once.
const LEGACY_TOKEN_REJECTED: [i64; 2] = [40014, 42001];

fn base_url(raw: &str, what: &str) -> Result<Url, ApiError> {
    let url = Url::parse(raw.trim_end_matches('/')).map_err(|e| ApiError::Config(format!("{what} `{raw}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(ApiError::Config(format!("{what} `{raw}` is not an http(s) base URL")));
    }
    Ok(url)
}

fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // An error only means a provider is installed already, which is all that is needed.
    ONCE.call_once(|| drop(rustls::crypto::ring::default_provider().install_default()));
}

impl DingTalkApi {
    pub fn new(config: ApiConfig, clock: Arc<dyn Clock>) -> Result<Self, ApiError> {
        if config.client_id.trim().is_empty() || config.client_secret.expose().is_empty() {
            return Err(ApiError::Config("the DingTalk client id and client secret must both be set".into()));
        }
        let api_base = base_url(&config.api_url, "DingTalk API URL")?;
        let oapi_base = base_url(&config.oapi_url, "DingTalk oapi URL")?;
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.call_timeout)
            .connect_timeout(config.call_timeout)
            .build()
            .map_err(|e| ApiError::Config(format!("HTTP client: {}", e.without_url())))?;
        Ok(Self {
            http,
            config,
            api_base,
            oapi_base,
            clock,
            new_token: TokenCache::new(TokenKind::New),
            legacy_token: TokenCache::new(TokenKind::Legacy),
        })
    }

    fn url(&self, base: &Url, path: &str) -> Url {
        let mut url = base.clone();
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path.trim_start_matches('/'));
        url.set_path(&joined);
        url
    }

    /// The token for the new APIs, cached until shortly before it expires.
    pub async fn access_token(&self) -> Result<Secret, ApiError> {
        self.new_token.get(self, None).await
    }

    /// The token for the legacy `oapi` APIs, cached the same way.
    pub async fn legacy_access_token(&self) -> Result<Secret, ApiError> {
        self.legacy_token.get(self, None).await
    }

    /// Calls a new API (`/v1.0/…`) with the token in `x-acs-dingtalk-access-token` and decodes its answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        self.request(TokenKind::New, method, path, query, body).await
    }

    /// Calls a legacy `oapi` API with `access_token` in the query; DingTalk's `errcode` decides the outcome.
    pub async fn oapi<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        self.request(TokenKind::Legacy, method, path, query, body).await
    }

    /// The two kinds differ only in their base URL and where the token goes.
    async fn request<T: DeserializeOwned>(
        &self,
        kind: TokenKind,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let base = match kind {
            TokenKind::New => &self.api_base,
            TokenKind::Legacy => &self.oapi_base,
        };
        let url = self.url(base, path);
        let value = self
            .with_token(kind, path, |token| {
                let request = self.http.request(method.clone(), url.clone()).query(query);
                let request = match kind {
                    TokenKind::New => request.header("x-acs-dingtalk-access-token", token.expose()),
                    TokenKind::Legacy => request.query(&[("access_token", token.expose())]),
                };
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        decode(path, value)
    }

    /// Sends what `build` makes with a token of `kind`, retrying as [`retry::run`] does; a token DingTalk refuses
    /// is replaced once.
    async fn with_token(
        &self,
        kind: TokenKind,
        api: &str,
        build: impl Fn(&Secret) -> reqwest::RequestBuilder,
    ) -> Result<Value, ApiError> {
        let cache = match kind {
            TokenKind::New => &self.new_token,
            TokenKind::Legacy => &self.legacy_token,
        };
        let mut refused = None;
        for _ in 0..2 {
            let token = cache.get(self, refused.as_ref()).await?;
            let outcome = retry::run(&self.config.backoff, api, self.config.call_timeout, || {
                let sent = build(&token).send();
                async move {
                    match kind {
                        TokenKind::New => retry::new_api_answer(api, sent.await).await,
                        TokenKind::Legacy => retry::legacy_answer(api, sent.await).await,
                    }
                }
            })
            .await;
            match outcome {
                Err(error) if refused.is_none() && token_refused(kind, &error) => refused = Some(token),
                other => return other,
            }
        }
        Err(ApiError::Refused {
            api: api.to_owned(),
            status: 401,
            code: "token".into(),
            message: "a fresh token was refused too".into(),
        })
    }
}

/// Whether DingTalk refused the token itself (expired early, or revoked), not the call.
fn token_refused(kind: TokenKind, error: &ApiError) -> bool {
    match (kind, error) {
        (TokenKind::New, ApiError::Refused { status: 401, .. }) => true,
        (TokenKind::Legacy, ApiError::Refused { code, .. }) => {
            LEGACY_TOKEN_REJECTED.iter().any(|c| c.to_string() == *code)
        }
        _ => false,
    }
}

fn decode<T: DeserializeOwned>(api: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::Malformed { api: api.to_owned(), what: e.to_string() })
}
