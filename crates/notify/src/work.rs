//! DingTalk work notifications (工作通知, https://open.dingtalk.com/document/development/asynchronous-sending-of-enterprise-session-messages) with a cached legacy access token (https://open.dingtalk.com/document/development/obtain-the-access-token-of-an-internal-app).

use std::sync::Arc;
use std::time::Duration;

use dingguard_model::Clock;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    BoxFuture, DINGTALK_OAPI, Delivered, DeliveryStats, Notification, Notifier, NotifyError, Secret, http, inert,
    is_plain_url, one_line, truncate_bytes,
};

const MAX_RECIPIENTS_PER_CALL: usize = 100;
/// DingTalk's limit on the serialised `msg`.
const MSG_MAX_BYTES: usize = 2048;
const SINGLE_URL_MAX: usize = 500;
/// Invalid and expired access token: the cached token is thrown away and the send tried once more.
const TOKEN_REJECTED: [i64; 2] = [40014, 42001];
/// Refresh this long before DingTalk says the token expires, so a send never races the expiry.
const REFRESH_MARGIN_MS: i64 = 300_000;

#[derive(Debug, Clone)]
pub struct WorkConfig {
    pub name: String,
    pub base_url: String,
    pub app_key: String,
    pub app_secret: Secret,
    pub agent_id: i64,
    pub timeout: Duration,
}

impl WorkConfig {
    pub fn new(app_key: impl Into<String>, app_secret: Secret, agent_id: i64) -> Self {
        Self {
            name: "dingtalk-work".to_owned(),
            base_url: DINGTALK_OAPI.to_owned(),
            app_key: app_key.into(),
            app_secret,
            agent_id,
            timeout: Duration::from_secs(10),
        }
    }
}

struct CachedToken {
    token: Secret,
    refresh_at_ms: i64,
}

#[derive(Deserialize)]
struct TokenReply {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    access_token: Option<String>,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct SendReply {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    task_id: Option<i64>,
}

pub struct WorkNotifier {
    config: WorkConfig,
    token_url: Url,
    send_url: Url,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// Held across the fetch, so a burst of sends after expiry asks DingTalk for one token, not one each.
    token: tokio::sync::Mutex<Option<CachedToken>>,
    stats: DeliveryStats,
}

impl WorkNotifier {
    pub fn new(config: WorkConfig, clock: Arc<dyn Clock>) -> Result<Self, NotifyError> {
        if config.app_key.is_empty() || config.app_secret.expose().is_empty() {
            return Err(NotifyError::InvalidConfig("work notification app key and secret must be set".to_owned()));
        }
        let token_url = http::endpoint(&config.base_url, "gettoken")?;
        let send_url = http::endpoint(&config.base_url, "topapi/message/corpconversation/asyncsend_v2")?;
        let client = http::client(config.timeout)?;
        let token = tokio::sync::Mutex::new(None);
        Ok(Self { config, token_url, send_url, client, clock, token, stats: DeliveryStats::default() })
    }

    async fn send_one(&self, n: &Notification) -> Result<Delivered, NotifyError> {
        n.validate()?;
        let recipients = recipients(n)?;
        let msg = render_msg(n);
        let mut tasks = Vec::new();
        // A retry after a partial failure resends every chunk; DingTalk's own rule that identical content reaches
        // a user once a day keeps the already-served users from seeing it twice.
        for chunk in recipients.chunks(MAX_RECIPIENTS_PER_CALL) {
            let body = json!({ "agent_id": self.config.agent_id, "userid_list": chunk.join(","), "msg": msg });
            tasks.push(self.send_chunk(&body).await?);
        }
        Ok(Delivered::Sent { receipt: Some(tasks.join(",")) })
    }

    async fn send_chunk(&self, body: &Value) -> Result<String, NotifyError> {
        let token = self.token(None).await?;
        match self.post(&token, body).await {
            Err(NotifyError::DingTalk { errcode, .. }) if TOKEN_REJECTED.contains(&errcode) => {
                tracing::info!(notifier = %self.config.name, errcode, "access token refused; fetching a new one");
                let fresh = self.token(Some(&token)).await?;
                self.post(&fresh, body).await
            }
            other => other,
        }
    }

    /// The cached token, or a new one when it is due for refresh or is the `refused` one.
    async fn token(&self, refused: Option<&Secret>) -> Result<Secret, NotifyError> {
        let mut cached = self.token.lock().await;
        let now = self.clock.now_ms();
        let usable = cached.as_ref().filter(|c| now < c.refresh_at_ms && refused != Some(&c.token));
        if let Some(current) = usable {
            return Ok(current.token.clone());
        }
        let fresh = self.fetch_token(now).await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    async fn fetch_token(&self, now: i64) -> Result<CachedToken, NotifyError> {
        let mut url = self.token_url.clone();
        url.query_pairs_mut()
            .append_pair("appkey", &self.config.app_key)
            .append_pair("appsecret", self.config.app_secret.expose());
        let reply: TokenReply = http::send_json(self.client.get(url)).await?;
        if reply.errcode != 0 {
            return Err(NotifyError::DingTalk { api: "gettoken", errcode: reply.errcode, errmsg: reply.errmsg });
        }
        let token = reply
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| NotifyError::MalformedResponse("gettoken reply has no access_token".to_owned()))?;
        let lifetime_ms = reply.expires_in.unwrap_or(7200).max(0).saturating_mul(1000);
        let margin = REFRESH_MARGIN_MS.min(lifetime_ms / 2);
        Ok(CachedToken { token: Secret::new(token), refresh_at_ms: now.saturating_add(lifetime_ms - margin) })
    }

    async fn post(&self, token: &Secret, body: &Value) -> Result<String, NotifyError> {
        let mut url = self.send_url.clone();
        url.query_pairs_mut().append_pair("access_token", token.expose());
        let reply: SendReply = http::send_json(self.client.post(url).json(body)).await?;
        if reply.errcode != 0 {
            return Err(NotifyError::DingTalk { api: "asyncsend_v2", errcode: reply.errcode, errmsg: reply.errmsg });
        }
        Ok(reply.task_id.map(|id| id.to_string()).unwrap_or_default())
    }
}

impl Notifier for WorkNotifier {
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

/// Distinct user ids in their given order; a comma would split one id into two in `userid_list`.
fn recipients(n: &Notification) -> Result<Vec<&str>, NotifyError> {
    let mut out: Vec<&str> = Vec::with_capacity(n.recipients.len());
    for id in &n.recipients {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 || id.chars().any(|c| c == ',' || c.is_whitespace() || c.is_control()) {
            return Err(NotifyError::InvalidNotification("recipient user ids must be 1 to 64 characters, no commas"));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    if out.is_empty() {
        return Err(NotifyError::InvalidNotification("a work notification needs at least one recipient"));
    }
    Ok(out)
}

/// An action card when there is a link to open, plain markdown otherwise, cut to fit DingTalk's 2048 bytes.
fn render_msg(n: &Notification) -> Value {
    let title = one_line(&n.title, 128);
    let severity = one_line(&n.severity, 32);
    let head = format!("#### [{severity}] {title}\n\n");
    // DingTalk silently drops content a user already got the same day; the id makes every message unique.
    let foot = format!("\n\nRef `{}`", inert(&n.id));
    let link = n.link.as_deref().filter(|l| is_plain_url(l) && l.len() <= SINGLE_URL_MAX);
    let mut room = n.markdown.len();
    loop {
        let body = truncate_bytes(n.markdown.as_str(), room);
        let ellipsis = if body.len() < n.markdown.len() { "…" } else { "" };
        let text = format!("{head}{body}{ellipsis}{foot}");
        let msg = match link {
            Some(url) => json!({
                "msgtype": "action_card",
                "action_card": { "title": title, "markdown": text, "single_title": "查看详情", "single_url": url },
            }),
            None => json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } }),
        };
        let size = serde_json::to_vec(&msg).map_or(usize::MAX, |v| v.len());
        if size <= MSG_MAX_BYTES || body.is_empty() {
            return msg;
        }
        room = body.len().saturating_sub(size - MSG_MAX_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Notification {
        Notification {
            id: "alert-7".to_owned(),
            title: "Bulk download by external member".to_owned(),
            severity: "critical".to_owned(),
            markdown: crate::Markdown::new().raw("**who:** ").text("u-1"),
            link: Some("https://dingguard.example/alerts/alert-7".to_owned()),
            recipients: vec!["u1".to_owned(), "u2".to_owned(), "u1".to_owned()],
        }
    }

    #[test]
    fn a_link_makes_an_action_card_and_the_id_is_always_in_the_text() {
        let msg = render_msg(&alert());
        assert_eq!(msg["msgtype"], "action_card");
        assert_eq!(msg["action_card"]["single_title"], "查看详情");
        assert!(msg["action_card"]["markdown"].as_str().unwrap().contains("alert-7"));
        let plain = render_msg(&Notification { link: None, ..alert() });
        assert_eq!(plain["msgtype"], "markdown");
        assert!(plain["markdown"]["text"].as_str().unwrap().ends_with("Ref `alert-7`"));
    }

    #[test]
    fn long_text_is_cut_to_2048_bytes_keeping_the_id() {
        for text in ["澳門\n\"x\"".repeat(800), "a".repeat(5000)] {
            let msg = render_msg(&Notification { markdown: crate::Markdown::new().text(&text), ..alert() });
            assert!(serde_json::to_vec(&msg).unwrap().len() <= MSG_MAX_BYTES);
            let text = msg["action_card"]["markdown"].as_str().unwrap();
            assert!(text.contains('…') && text.ends_with("Ref `alert-7`"));
        }
    }

    #[test]
    fn recipients_are_deduplicated_and_checked() {
        assert_eq!(recipients(&alert()).unwrap(), ["u1", "u2"]);
        assert!(recipients(&Notification { recipients: vec![], ..alert() }).is_err());
        assert!(recipients(&Notification { recipients: vec!["a,b".into()], ..alert() }).is_err());
    }
}
