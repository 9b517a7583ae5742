//! Reading a DingTalk OA approval instance (https://open.dingtalk.com/document/development/obtains-the-details-of-a-single-approval-instance-pop): the `bpms_instance_change` callback
//! says an instance started but not what its form holds, so the form is fetched with the app's new-API token.

use std::sync::Arc;
use std::time::Duration;

use dingguard_model::Clock;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

use crate::{NotifyError, Secret, http};

/// Where DingTalk's new (`/v1.0`) APIs live.
pub const DINGTALK_API: &str = "https://api.dingtalk.com";
const REFRESH_MARGIN_MS: i64 = 300_000;

#[derive(Debug, Clone)]
pub struct OaConfig {
    pub base_url: String,
    pub app_key: String,
    pub app_secret: Secret,
    pub timeout: Duration,
}

impl OaConfig {
    pub fn new(app_key: impl Into<String>, app_secret: Secret) -> Self {
        Self {
            base_url: DINGTALK_API.to_owned(),
            app_key: app_key.into(),
            app_secret,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What dingguard needs of an approval instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OaInstance {
    pub id: String,
    pub title: String,
    pub originator: String,
    /// `RUNNING`, `TERMINATED` or `COMPLETED`.
    pub status: String,
    /// Form components as (label, value), in form order.
    pub form: Vec<(String, String)>,
}

impl OaInstance {
    /// The value of the form component labelled `name`, if it is filled in.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenReply {
    access_token: Option<String>,
    expire_in: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceReply {
    result: Option<InstanceResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceResult {
    #[serde(default)]
    title: String,
    #[serde(default)]
    originator_user_id: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    form_component_values: Vec<FormValue>,
}

#[derive(Deserialize)]
struct FormValue {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: Option<String>,
}

struct CachedToken {
    token: Secret,
    refresh_at_ms: i64,
}

pub struct OaClient {
    config: OaConfig,
    token_url: Url,
    instance_url: Url,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

impl OaClient {
    pub fn new(config: OaConfig, clock: Arc<dyn Clock>) -> Result<Self, NotifyError> {
        if config.app_key.is_empty() || config.app_secret.expose().is_empty() {
            return Err(NotifyError::InvalidConfig("the OA app key and secret must be set".to_owned()));
        }
        let token_url = http::endpoint(&config.base_url, "v1.0/oauth2/accessToken")?;
        let instance_url = http::endpoint(&config.base_url, "v1.0/workflow/processInstances")?;
        let client = http::client(config.timeout)?;
        Ok(Self { config, token_url, instance_url, client, clock, token: tokio::sync::Mutex::new(None) })
    }

    async fn token(&self) -> Result<Secret, NotifyError> {
        let mut cached = self.token.lock().await;
        let now = self.clock.now_ms();
        if let Some(current) = cached.as_ref().filter(|c| now < c.refresh_at_ms) {
            return Ok(current.token.clone());
        }
        let body = json!({ "appKey": self.config.app_key, "appSecret": self.config.app_secret.expose() });
        let reply: TokenReply = http::send_json(self.client.post(self.token_url.clone()).json(&body)).await?;
        let token = reply
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| NotifyError::MalformedResponse("accessToken reply has no accessToken".to_owned()))?;
        let lifetime_ms = reply.expire_in.unwrap_or(7200).max(0).saturating_mul(1000);
        let refresh_at_ms = now.saturating_add(lifetime_ms - REFRESH_MARGIN_MS.min(lifetime_ms / 2));
        let token = Secret::new(token);
        *cached = Some(CachedToken { token: token.clone(), refresh_at_ms });
        Ok(token)
    }

    /// The instance with this id and its form. A token DingTalk no longer accepts (401) is dropped and the
    /// call made once more with a new one.
    pub async fn instance(&self, id: &str) -> Result<OaInstance, NotifyError> {
        match self.fetch(id).await {
            Err(NotifyError::HttpStatus { status: 401 }) => {
                *self.token.lock().await = None;
                self.fetch(id).await
            }
            other => other,
        }
    }

    async fn fetch(&self, id: &str) -> Result<OaInstance, NotifyError> {
        let token = self.token().await?;
        let mut url = self.instance_url.clone();
        url.query_pairs_mut().append_pair("processInstanceId", id);
        let request = self.client.get(url).header("x-acs-dingtalk-access-token", token.expose());
        let reply: InstanceReply = http::send_json(request).await?;
        let result =
            reply.result.ok_or_else(|| NotifyError::MalformedResponse("instance reply has no result".into()))?;
        Ok(OaInstance {
            id: id.to_owned(),
            title: result.title,
            originator: result.originator_user_id,
            status: result.status,
            form: result.form_component_values.into_iter().map(|f| (f.name, f.value.unwrap_or_default())).collect(),
        })
    }
}
