//! What the pages and the API both do: read filters, move alerts along their lifecycle, create silences, issue
//! sign-in links. Input is checked here, once, with messages a person can act on.

use dingguard_store::console::TokenKind;
use dingguard_store::{Alert, AlertFilter, AlertStatus, Silence};
use serde::Deserialize;

use crate::auth::{self, Viewer};
use crate::{ConsoleError, Shared, ms};

pub(crate) const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];
pub(crate) const STATUSES: [&str; 3] = ["open", "acknowledged", "resolved"];
pub(crate) const MAX_SILENCE_HOURS: i64 = 24 * 30;
const MAX_TEXT: usize = 1000;

/// `?severity=&rule=&status=&limit=`; empty or `all` means no filter.
#[derive(Debug, Default, Clone, Deserialize, utoipa::IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub(crate) struct FilterQuery {
    /// `low`, `medium`, `high`, `critical`, or empty or `all`.
    pub severity: String,
    /// A rule id, or empty or `all`.
    pub rule: String,
    /// `open`, `acknowledged`, `resolved`, or empty or `all`.
    pub status: String,
    /// At most this many alerts (1 to 1000, default 200).
    pub limit: Option<i64>,
}

impl FilterQuery {
    pub fn to_filter(&self) -> Result<AlertFilter, ConsoleError> {
        let status = match self.status.trim() {
            "" | "all" => None,
            "open" => Some(AlertStatus::Open),
            "acknowledged" => Some(AlertStatus::Acknowledged),
            "resolved" => Some(AlertStatus::Resolved),
            other => {
                return Err(ConsoleError::Invalid(format!(
                    "Status must be open, acknowledged, resolved or all, not {other:?}"
                )));
            }
        };
        let severity = match self.severity.trim() {
            "" | "all" => None,
            s if SEVERITIES.contains(&s) => dingguard_model::Severity::parse(s),
            other => {
                return Err(ConsoleError::Invalid(format!(
                    "Severity must be one of {}, not {other:?}",
                    SEVERITIES.join(", ")
                )));
            }
        };
        let rule = Some(self.rule.trim()).filter(|r| !r.is_empty()).map(str::to_owned);
        if rule.as_ref().is_some_and(|r| r.len() > 200) {
            return Err(ConsoleError::Invalid("The rule filter is at most 200 characters".into()));
        }
        if self.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
            return Err(ConsoleError::Invalid("Limit must be between 1 and 1000".into()));
        }
        Ok(AlertFilter { status, severity, rule, limit: self.limit })
    }
}

/// A query string that does not parse; what it said is not repeated back.
pub(crate) fn invalid_query() -> ConsoleError {
    ConsoleError::Invalid("The query string has parameters of the wrong type; see the API document".into())
}

/// Acknowledge or resolve as the viewer; a move the lifecycle forbids is a conflict and changes nothing.
pub(crate) async fn move_alert(
    shared: &Shared,
    viewer: &Viewer,
    id: &str,
    to: AlertStatus,
) -> Result<Alert, ConsoleError> {
    let alert = shared.store.transition(id, to, &viewer.user_id, shared.clock.now_ms()).await?;
    tracing::info!(alert = id, user = %viewer.user_id, status = to.as_str(), "alert moved");
    Ok(alert)
}

/// A silence as a form or a JSON body states it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub(crate) struct SilenceInput {
    pub rule: Option<String>,
    pub dedup_key: Option<String>,
    pub reason: Option<String>,
    pub expires_in_hours: Option<i64>,
}

fn text(value: Option<String>, what: &str) -> Result<Option<String>, ConsoleError> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.chars().count() > MAX_TEXT) {
        return Err(ConsoleError::Invalid(format!("The {what} is at most {MAX_TEXT} characters")));
    }
    Ok(value)
}

/// Every silence names its rule, its creator and why, and ends: none is open-ended or anonymous.
pub(crate) async fn create_silence(
    shared: &Shared,
    viewer: &Viewer,
    input: SilenceInput,
) -> Result<Silence, ConsoleError> {
    let rule = text(input.rule, "rule")?.ok_or_else(|| ConsoleError::Invalid("A silence needs a rule".into()))?;
    let dedup_key = text(input.dedup_key, "dedup key")?;
    let reason = text(input.reason, "reason")?
        .ok_or_else(|| ConsoleError::Invalid("A silence needs a reason: say why these alerts may wait".into()))?;
    let hours = input.expires_in_hours.filter(|h| (1..=MAX_SILENCE_HOURS).contains(h)).ok_or_else(|| {
        ConsoleError::Invalid(format!(
            "A silence needs an expiry: a whole number of hours from 1 to {MAX_SILENCE_HOURS}"
        ))
    })?;
    let now = shared.clock.now_ms();
    let silence = Silence {
        id: dingguard_model::SilenceId::with_suffix(&hex::encode(rand::random::<[u8; 12]>())).into(),
        rule: Some(rule),
        dedup_key,
        creator: viewer.user_id.clone(),
        reason,
        created_at_ms: now,
        expires_at_ms: now + hours * 3_600_000,
        matched_count: 0,
    };
    shared.store.create_silence(&silence).await?;
    tracing::info!(silence = %silence.id, rule = ?silence.rule, user = %viewer.user_id, hours, "silence created");
    Ok(silence)
}

/// A single-use sign-in URL for `user_id` and when it stops working, issued at `actor`'s request and recorded on
/// the audit chain as such.
pub(crate) async fn sign_in_link(shared: &Shared, actor: &str, user_id: &str) -> Result<(String, i64), ConsoleError> {
    auth::member_access(shared, user_id)?;
    let token = auth::random_token();
    let now = shared.clock.now_ms();
    let expires = now.saturating_add(ms(shared.settings.sign_in_link_ttl));
    shared
        .store
        .create_console_token(&auth::token_hash(&token), TokenKind::SignInLink, user_id, now, Some(expires))
        .await?;
    let details = serde_json::json!({"expires_at_ms": expires});
    shared.store.append_audit(actor, "issued sign-in link", user_id, details, now).await?;
    tracing::info!(user = user_id, actor, "sign-in link issued");
    Ok((format!("{}/login/link/{token}", shared.settings.public_url.trim_end_matches('/')), expires))
}

/// The display name of a user id, for "acknowledged by".
pub(crate) fn display_name(shared: &Shared, user_id: &str) -> String {
    match shared.directory().user(user_id) {
        Some(user) if user.name != user_id => format!("{}, {user_id}", user.name),
        _ => user_id.to_owned(),
    }
}
