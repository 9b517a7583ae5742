//! `[notify]`: where alerts go besides the alerts topic. Secrets may be given inline or as files.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use dingguard_alerter::Route;
use dingguard_model::Clock;
use dingguard_notify::{
    RobotConfig, RobotNotifier, Secret, WebhookConfig, WebhookNotifier, WebhookSecret, WorkConfig, WorkNotifier,
};
use dingguard_rules::Severity;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// Public base URL of the console, for links in notifications.
    pub console_url: Option<String>,
    #[serde(default)]
    pub robots: Vec<RobotSection>,
    #[serde(default)]
    pub webhooks: Vec<WebhookSection>,
    pub work: Option<WorkSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotSection {
    pub name: String,
    pub access_token: Option<Secret>,
    pub access_token_file: Option<PathBuf>,
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub base_url: Option<String>,
    pub keyword: Option<String>,
    pub min_severity: Option<Severity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub name: String,
    pub url: String,
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub min_severity: Option<Severity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkSection {
    pub app_key: String,
    pub app_secret: Option<Secret>,
    pub app_secret_file: Option<PathBuf>,
    pub agent_id: i64,
    /// Who hears of alerts by work notification; empty sends no alerts this way (approvals and sign-in links
    /// still use the app).
    #[serde(default)]
    pub recipients: Vec<String>,
    pub base_url: Option<String>,
    pub min_severity: Option<Severity>,
}

impl NotifySection {
    /// Reads every secret given as a file, once, at start-up: afterwards each is held inline, and a file that
    /// cannot be read stops start-up with the setting's name.
    pub fn read_secret_files(&mut self) -> Result<()> {
        let read = |what: String, inline: &mut Option<Secret>, file: &mut Option<PathBuf>| -> Result<()> {
            *inline = Secret::from_value_or_file(&what, inline.take(), file.take().as_deref())?;
            if inline.is_none() {
                bail!("{what}: set it, or its _file");
            }
            Ok(())
        };
        for r in &mut self.robots {
            let what = format!("notify.robots {}", r.name);
            read(format!("{what} access_token"), &mut r.access_token, &mut r.access_token_file)?;
            read(format!("{what} secret"), &mut r.secret, &mut r.secret_file)?;
        }
        for w in &mut self.webhooks {
            read(format!("notify.webhooks {} secret", w.name), &mut w.secret, &mut w.secret_file)?;
        }
        if let Some(w) = &mut self.work {
            read("notify.work app_secret".into(), &mut w.app_secret, &mut w.app_secret_file)?;
        }
        Ok(())
    }
}

/// A secret [`NotifySection::read_secret_files`] has read.
fn secret(what: &str, value: Option<&Secret>) -> Result<Secret> {
    value.cloned().with_context(|| format!("{what} is not set"))
}

/// The DingTalk app that sends work notifications (alerts, approval requests, sign-in links), when configured.
pub fn work_notifier(section: &NotifySection, clock: Arc<dyn Clock>) -> Result<Option<Arc<WorkNotifier>>> {
    let Some(w) = &section.work else { return Ok(None) };
    let app_secret = secret("notify.work app_secret", w.app_secret.as_ref())?;
    let mut config = WorkConfig::new(w.app_key.clone(), app_secret, w.agent_id);
    if let Some(base) = &w.base_url {
        config.base_url.clone_from(base);
    }
    Ok(Some(Arc::new(WorkNotifier::new(config, clock).context("notify.work")?)))
}

/// The client that reads OA approval forms, with the `[notify.work]` app's credentials.
pub fn oa_client(
    section: &NotifySection,
    base_url: Option<&str>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dingguard_notify::OaClient>> {
    let Some(w) = &section.work else {
        bail!(
            "[approver.oa] reads approval forms with the DingTalk app of [notify.work]; configure its app_key and app_secret"
        );
    };
    let app_secret = secret("notify.work app_secret", w.app_secret.as_ref())?;
    let mut config = dingguard_notify::OaConfig::new(w.app_key.clone(), app_secret);
    if let Some(base) = base_url {
        config.base_url = base.to_owned();
    }
    Ok(Arc::new(dingguard_notify::OaClient::new(config, clock).context("approver.oa")?))
}

/// Builds the notifiers; a notifier that cannot be built stops start-up with the reason.
pub fn routes(section: &NotifySection, work: Option<Arc<WorkNotifier>>, clock: Arc<dyn Clock>) -> Result<Vec<Route>> {
    let mut routes = Vec::new();
    for r in &section.robots {
        let what = format!("notify.robots {}", r.name);
        let mut config = RobotConfig::new(
            secret(&format!("{what} access_token"), r.access_token.as_ref())?,
            secret(&format!("{what} secret"), r.secret.as_ref())?,
        );
        config.name.clone_from(&r.name);
        config.keyword.clone_from(&r.keyword);
        if let Some(base) = &r.base_url {
            config.base_url.clone_from(base);
        }
        let robot = Arc::new(RobotNotifier::new(config, clock.clone()).with_context(|| what.clone())?);
        routes.push(Route::robot(robot, r.min_severity.unwrap_or(Severity::Medium)));
    }
    for w in &section.webhooks {
        let what = format!("notify.webhooks {}", w.name);
        let key = WebhookSecret::parse(secret(&format!("{what} secret"), w.secret.as_ref())?.expose())
            .with_context(|| what.clone())?;
        let mut config = WebhookConfig::new(w.url.clone(), key);
        config.name.clone_from(&w.name);
        let notifier = WebhookNotifier::new(config, clock.clone()).with_context(|| what.clone())?;
        routes.push(Route::new(Arc::new(notifier), w.min_severity.unwrap_or(Severity::Medium)));
    }
    if let (Some(w), Some(notifier)) = (section.work.as_ref().filter(|w| !w.recipients.is_empty()), work) {
        let mut route = Route::new(notifier, w.min_severity.unwrap_or(Severity::High));
        route.recipients.clone_from(&w.recipients);
        routes.push(route);
    }
    let mut names: Vec<&str> = routes.iter().map(|r| r.notifier.name()).collect();
    names.sort_unstable();
    if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("two notifiers are named {:?}; names must be unique", dup[0]);
    }
    Ok(routes)
}
