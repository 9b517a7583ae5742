//! Download requests and grants. The request's state machine is stored whole as JSON; the columns beside it are
//! what queries need. Updates are optimistic: each names the version it read, and a stale one changes nothing.

use serde::Serialize;

use crate::alerts::AlertTx;
use crate::console::TokenKind;
use crate::db::{Row, Val};
use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRequest {
    pub id: String,
    pub source_id: String,
    pub requester: String,
    pub status: String,
    pub file_id: String,
    pub file_name: String,
    pub state: String,
    pub version: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub next_deadline_ms: Option<i64>,
}

const COLUMNS: &str = "id, source_id, requester, status, file_id, file_name, state, version, created_ms, updated_ms, \
     next_deadline_ms";

fn request_from(row: &Row) -> Result<StoredRequest, StoreError> {
    Ok(StoredRequest {
        id: row.text(0)?,
        source_id: row.text(1)?,
        requester: row.text(2)?,
        status: row.text(3)?,
        file_id: row.text(4)?,
        file_name: row.text(5)?,
        state: row.text(6)?,
        version: row.int(7)?,
        created_ms: row.int(8)?,
        updated_ms: row.int(9)?,
        next_deadline_ms: row.opt_int(10)?,
    })
}

impl AlertTx<'_> {
    /// Inserts a new request; false when one with the same id or source already exists.
    pub async fn insert_request(&mut self, r: &StoredRequest) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute(
                &format!(
                    "INSERT INTO download_requests ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT DO NOTHING"
                ),
                &[
                    r.id.as_str().into(),
                    r.source_id.as_str().into(),
                    r.requester.as_str().into(),
                    r.status.as_str().into(),
                    r.file_id.as_str().into(),
                    r.file_name.as_str().into(),
                    r.state.as_str().into(),
                    Val::Int(r.version),
                    Val::Int(r.created_ms),
                    Val::Int(r.updated_ms),
                    r.next_deadline_ms.into(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Writes a changed request if nobody changed it since `read_version`; false means someone did.
    pub async fn update_request(
        &mut self,
        id: &str,
        status: &str,
        state: &str,
        next_deadline_ms: Option<i64>,
        read_version: i64,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute(
                "UPDATE download_requests SET status = $2, state = $3, next_deadline_ms = $4, version = version + 1, \
                 updated_ms = $6 WHERE id = $1 AND version = $5",
                &[
                    id.into(),
                    status.into(),
                    state.into(),
                    next_deadline_ms.into(),
                    Val::Int(read_version),
                    Val::Int(at_ms),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn insert_grant(
        &mut self,
        request_id: &str,
        user_id: &str,
        file_id: &str,
        granted_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO grants (request_id, user_id, file_id, granted_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (request_id) DO NOTHING",
                &[request_id.into(), user_id.into(), file_id.into(), Val::Int(granted_at_ms), Val::Int(expires_at_ms)],
            )
            .await?;
        Ok(())
    }
}

impl Store {
    pub async fn request(&self, id: &str) -> Result<Option<StoredRequest>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query(&format!("SELECT {COLUMNS} FROM download_requests WHERE id = $1"), &[id.into()]).await?;
        rows.first().map(request_from).transpose()
    }

    pub async fn request_by_source(&self, source_id: &str) -> Result<Option<StoredRequest>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(&format!("SELECT {COLUMNS} FROM download_requests WHERE source_id = $1"), &[source_id.into()])
            .await?;
        rows.first().map(request_from).transpose()
    }

    /// Pending requests whose next reminder, escalation or expiry is due.
    pub async fn due_requests(&self, now_ms: i64, limit: i64) -> Result<Vec<StoredRequest>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM download_requests WHERE status = 'pending' AND next_deadline_ms <= $1 \
                     ORDER BY next_deadline_ms, id LIMIT $2"
                ),
                &[Val::Int(now_ms), Val::Int(limit)],
            )
            .await?;
        rows.iter().map(request_from).collect()
    }

    /// Every unexpired grant as (user, file).
    pub async fn active_grants(&self, now_ms: i64) -> Result<Vec<(String, String)>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows =
            tx.query("SELECT user_id, file_id FROM grants WHERE expires_at_ms > $1", &[Val::Int(now_ms)]).await?;
        rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?))).collect()
    }

    /// Whether `user` holds an unexpired grant for `file`.
    pub async fn has_grant(&self, user_id: &str, file_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT request_id FROM grants WHERE user_id = $1 AND file_id = $2 AND expires_at_ms > $3 LIMIT 1",
                &[user_id.into(), file_id.into(), Val::Int(now_ms)],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}

impl AlertTx<'_> {
    /// Keeps a decision link by its hash, in the transaction that queues the notification carrying it, so a
    /// notification never names a link that was not stored.
    pub async fn create_decision_link(
        &mut self,
        token_hash: &str,
        user_id: &str,
        request_id: &str,
        created_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO console_tokens (token_hash, kind, user_id, created_at_ms, expires_at_ms, subject) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    token_hash.into(),
                    TokenKind::DecisionLink.as_str().into(),
                    user_id.into(),
                    Val::Int(created_at_ms),
                    Val::Int(expires_at_ms),
                    request_id.into(),
                ],
            )
            .await?;
        Ok(())
    }
}

impl Store {
    /// Uses up a decision link presented by `user_id` and says which request it opens. A link of someone else,
    /// used, expired or unknown opens nothing and stays as it was. One statement, so two tabs cannot both win.
    pub async fn redeem_decision_link(
        &self,
        token_hash: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "UPDATE console_tokens SET used_at_ms = $4 WHERE token_hash = $1 AND kind = $2 AND user_id = $3 \
                 AND used_at_ms IS NULL AND expires_at_ms > $4 RETURNING subject",
                &[token_hash.into(), TokenKind::DecisionLink.as_str().into(), user_id.into(), Val::Int(now_ms)],
            )
            .await?;
        let subject = rows.first().map(|r| r.opt_text(0)).transpose()?.flatten();
        tx.commit().await?;
        Ok(subject)
    }

    /// Pending requests, oldest first, for approval inboxes.
    pub async fn pending_requests(&self, limit: i64) -> Result<Vec<StoredRequest>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM download_requests WHERE status = 'pending' ORDER BY created_ms, id LIMIT $1"
                ),
                &[Val::Int(limit)],
            )
            .await?;
        rows.iter().map(request_from).collect()
    }
}
