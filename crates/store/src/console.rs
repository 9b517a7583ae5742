//! What the security console keeps: server-side sessions, sign-in links and API tokens (by hash only, so a copy of
//! the database signs nobody in), failed sign-ins for rate limiting, and the queries its live feed polls.

use serde::Serialize;

use crate::alerts::{ALERT_COLUMNS, alert_from};
use crate::db::Val;
use crate::{Alert, Store, StoreError};

/// A signed-in console user. The session id itself lives only in the browser's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user_id: String,
    /// Sent back with every state-changing request of this session.
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// How the session was started (`password`, `sign_in_link`): decisions taken in it record it.
    pub via: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Single use and short-lived: redeemed once, then dead.
    SignInLink,
    /// Presented on every API call as a bearer token.
    Api,
    /// Single use, bound to one approver and one request (its subject), alive until the request expires.
    DecisionLink,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignInLink => "sign_in_link",
            Self::Api => "api",
            Self::DecisionLink => "decision_link",
        }
    }
}

/// Failed sign-ins against one subject inside the back-off window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: i64,
    pub latest_at_ms: Option<i64>,
}

/// What a failed sign-in counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureScope {
    /// The user id tried, from a browser that never signed that user in.
    User,
    /// The client address the attempt came from, whatever user id it tried.
    Client,
    /// A browser that signed the user in before.
    Device,
    /// Every attempt anywhere: the global budget.
    Global,
}

impl FailureScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::Device => "device",
            Self::Global => "global",
        }
    }
}

impl Store {
    /// Records a new session; sessions and tokens that have expired are cleared on the way, so neither table
    /// grows without bound.
    pub async fn create_console_session(&self, id_hash: &str, session: &ConsoleSession) -> Result<(), StoreError> {
        let now = session.created_at_ms;
        let mut tx = self.db.begin().await?;
        tx.execute("DELETE FROM console_sessions WHERE expires_at_ms <= $1", &[Val::Int(now)]).await?;
        tx.execute("DELETE FROM console_tokens WHERE expires_at_ms <= $1", &[Val::Int(now)]).await?;
        tx.execute(
            "INSERT INTO console_sessions (id_hash, user_id, csrf_token, created_at_ms, expires_at_ms, via) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                id_hash.into(),
                session.user_id.as_str().into(),
                session.csrf_token.as_str().into(),
                Val::Int(session.created_at_ms),
                Val::Int(session.expires_at_ms),
                session.via.as_str().into(),
            ],
        )
        .await?;
        tx.commit().await
    }

    /// The session with this id hash, if it exists and has not expired at `now_ms`.
    pub async fn console_session(&self, id_hash: &str, now_ms: i64) -> Result<Option<ConsoleSession>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT user_id, csrf_token, created_at_ms, expires_at_ms, via FROM console_sessions \
                 WHERE id_hash = $1 AND expires_at_ms > $2",
                &[id_hash.into(), Val::Int(now_ms)],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(ConsoleSession {
                    user_id: r.text(0)?,
                    csrf_token: r.text(1)?,
                    created_at_ms: r.int(2)?,
                    expires_at_ms: r.int(3)?,
                    via: r.text(4)?,
                })
            })
            .transpose()
    }

    pub async fn end_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute("DELETE FROM console_sessions WHERE id_hash = $1", &[id_hash.into()]).await?;
        tx.commit().await
    }

    /// Keeps a token by its hash. `expires_at_ms` of `None` means until revoked.
    pub async fn create_console_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
        user_id: &str,
        created_at_ms: i64,
        expires_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "INSERT INTO console_tokens (token_hash, kind, user_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
            &[token_hash.into(), kind.as_str().into(), user_id.into(), Val::Int(created_at_ms), expires_at_ms.into()],
        )
        .await?;
        tx.commit().await
    }

    /// Whose token this is, if it is live at `now_ms` and unused; does not use it up.
    pub async fn console_token_user(
        &self,
        token_hash: &str,
        kind: TokenKind,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT user_id FROM console_tokens WHERE token_hash = $1 AND kind = $2 AND used_at_ms IS NULL \
                 AND (expires_at_ms IS NULL OR expires_at_ms > $3)",
                &[token_hash.into(), kind.as_str().into(), Val::Int(now_ms)],
            )
            .await?;
        rows.first().map(|r| r.text(0)).transpose()
    }

    /// The one bearer-token check of every JSON API: whose live API token an `Authorization` header carries.
    /// `None` when there is no header, it is not `Bearer <token>` (the scheme in any case), or the token is
    /// unknown, expired or revoked. What the user may then do is the caller's to decide.
    pub async fn bearer_user(&self, authorization: Option<&str>, now_ms: i64) -> Result<Option<String>, StoreError> {
        let token = authorization
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty() && token.len() <= 256);
        let Some(token) = token else { return Ok(None) };
        self.console_token_user(&dingguard_model::token::token_hash(token), TokenKind::Api, now_ms).await
    }

    /// Uses a token up and says whose it was. A single statement, so two concurrent redemptions cannot both win.
    pub async fn redeem_console_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "UPDATE console_tokens SET used_at_ms = $3 WHERE token_hash = $1 AND kind = $2 AND used_at_ms IS NULL \
                 AND (expires_at_ms IS NULL OR expires_at_ms > $3) RETURNING user_id",
                &[token_hash.into(), kind.as_str().into(), Val::Int(now_ms)],
            )
            .await?;
        let user = rows.first().map(|r| r.text(0)).transpose()?;
        tx.commit().await?;
        Ok(user)
    }

    /// Tokens of a kind issued to a user after `since_ms`, used or not: how often someone asked for a link.
    pub async fn console_tokens_issued(
        &self,
        user_id: &str,
        kind: TokenKind,
        since_ms: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT COUNT(*) FROM console_tokens WHERE user_id = $1 AND kind = $2 AND created_at_ms > $3",
                &[user_id.into(), kind.as_str().into(), Val::Int(since_ms)],
            )
            .await?;
        rows.first().map_or(Ok(0), |r| r.int(0))
    }

    /// Failed sign-ins against `subject` after `since_ms`, and when the latest was.
    pub async fn login_failures(
        &self,
        scope: FailureScope,
        subject: &str,
        since_ms: i64,
    ) -> Result<LoginFailures, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT COUNT(*), MAX(at_ms) FROM login_failures WHERE scope = $1 AND subject = $2 AND at_ms > $3",
                &[scope.as_str().into(), subject.into(), Val::Int(since_ms)],
            )
            .await?;
        let row = rows.first().ok_or_else(|| StoreError::Corrupt("COUNT returned no row".into()))?;
        Ok(LoginFailures { count: row.int(0)?, latest_at_ms: row.opt_int(1)? })
    }

    /// Counts one failed sign-in against each of `against`; failures older than `forget_before_ms` (of anyone)
    /// are dropped on the way, so the table holds one window's worth.
    pub async fn record_login_failure(
        &self,
        against: &[(FailureScope, &str)],
        at_ms: i64,
        forget_before_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute("DELETE FROM login_failures WHERE at_ms <= $1", &[Val::Int(forget_before_ms)]).await?;
        for (scope, subject) in against {
            tx.execute(
                "INSERT INTO login_failures (scope, subject, at_ms) VALUES ($1, $2, $3)",
                &[scope.as_str().into(), (*subject).into(), Val::Int(at_ms)],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Forgets the failures against `subject` (after a successful sign-in).
    pub async fn clear_login_failures(&self, scope: FailureScope, subject: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "DELETE FROM login_failures WHERE scope = $1 AND subject = $2",
            &[scope.as_str().into(), subject.into()],
        )
        .await?;
        tx.commit().await
    }

    /// Remembers a browser that signed `user_id` in, by the hash of its device token.
    pub async fn create_console_device(
        &self,
        token_hash: &str,
        user_id: &str,
        created_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute("DELETE FROM console_devices WHERE expires_at_ms <= $1", &[Val::Int(created_at_ms)]).await?;
        tx.execute(
            "INSERT INTO console_devices (token_hash, user_id, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_hash) DO NOTHING",
            &[token_hash.into(), user_id.into(), Val::Int(created_at_ms), Val::Int(expires_at_ms)],
        )
        .await?;
        tx.commit().await
    }

    /// Whom the device with this token hash signed in before, if it is still remembered.
    pub async fn console_device_user(&self, token_hash: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT user_id FROM console_devices WHERE token_hash = $1 AND expires_at_ms > $2",
                &[token_hash.into(), Val::Int(now_ms)],
            )
            .await?;
        rows.first().map(|r| r.text(0)).transpose()
    }

    /// Alerts first seen, folded into, acknowledged or resolved after `since_ms`, most recently seen first.
    ///
    /// `last_seen_ms` is the time of the triggering event, so an event that reaches the alerter late lands
    /// before the cursor; callers poll with an overlap and sweep [`Store::unresolved_alerts`] for those.
    pub async fn alerts_changed_since(&self, since_ms: i64, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE changed_at_ms > $1 ORDER BY changed_at_ms DESC, id LIMIT $2"
        );
        let rows = tx.query(&sql, &[Val::Int(since_ms), Val::Int(limit.clamp(1, 10_000))]).await?;
        rows.iter().map(alert_from).collect()
    }

    /// Open and acknowledged alerts, newest first.
    pub async fn unresolved_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let mut tx = self.db.begin().await?;
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE status IN ('open', 'acknowledged') \
             ORDER BY first_seen_ms DESC, id LIMIT $1"
        );
        let rows = tx.query(&sql, &[Val::Int(limit.clamp(1, 100_000))]).await?;
        rows.iter().map(alert_from).collect()
    }
}
