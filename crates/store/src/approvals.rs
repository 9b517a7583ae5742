//! Download requests and grants. The request's state machine is stored whole as JSON; the columns beside it are
//! what queries need. Updates are optimistic: each names the version it read, and a stale one changes nothing.

use dingguard_model::RequestStatus;
use serde::{Deserialize, Serialize};

use crate::alerts::AlertTx;
use crate::console::TokenKind;
use crate::db::{Row, Val};
use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRequest {
    pub id: String,
    pub source_id: String,
    pub requester: String,
    pub status: RequestStatus,
    pub file_id: String,
    pub file_name: String,
    pub state: String,
    pub version: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub next_deadline_ms: Option<i64>,
}

/// What is known of a file besides its id: its name and space as one source stated them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFact {
    pub name: Option<String>,
    pub space: Option<String>,
}

/// A grant as the alerter judges downloads by it: whose, for which file, when, and the file facts it was decided
/// on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub request_id: String,
    pub user_id: String,
    pub file_id: String,
    pub granted_at_ms: i64,
    pub expires_at_ms: i64,
    pub facts: Vec<FileFact>,
}

/// Distinct facts kept per file: renames are few, and an outsider who controls file names must not be able to
/// grow the table without bound.
const MAX_FACTS_PER_FILE: i64 = 32;

fn stated(value: Option<&str>) -> String {
    value.map(str::trim).unwrap_or_default().to_owned()
}

fn unstated(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

const COLUMNS: &str = "id, source_id, requester, status, file_id, file_name, state, version, created_ms, updated_ms, \
     next_deadline_ms";

fn request_from(row: &Row) -> Result<StoredRequest, StoreError> {
    Ok(StoredRequest {
        id: row.text(0)?,
        source_id: row.text(1)?,
        requester: row.text(2)?,
        status: {
            let name = row.text(3)?;
            RequestStatus::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("request status {name:?}")))?
        },
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
        status: RequestStatus,
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
                    status.as_str().into(),
                    state.into(),
                    next_deadline_ms.into(),
                    Val::Int(read_version),
                    Val::Int(at_ms),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        let facts = serde_json::to_string(&grant.facts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx
            .execute(
                "INSERT INTO grants (request_id, user_id, file_id, granted_at_ms, expires_at_ms, facts) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id) DO NOTHING",
                &[
                    grant.request_id.as_str().into(),
                    grant.user_id.as_str().into(),
                    grant.file_id.as_str().into(),
                    Val::Int(grant.granted_at_ms),
                    Val::Int(grant.expires_at_ms),
                    facts.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Remembers what an event of `source` said about a file; a fact already known, or one past the file's
    /// bound, changes nothing.
    pub async fn record_file_fact(
        &mut self,
        file_id: &str,
        fact: &FileFact,
        source: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO file_facts (file_id, name, space, source, first_seen_ms) \
                 SELECT $1, $2, $3, $4, CAST($5 AS BIGINT) \
                 WHERE (SELECT COUNT(*) FROM file_facts WHERE file_id = $1) < CAST($6 AS BIGINT) \
                 ON CONFLICT (file_id, name, space) DO NOTHING",
                &[
                    file_id.into(),
                    stated(fact.name.as_deref()).into(),
                    stated(fact.space.as_deref()).into(),
                    source.into(),
                    Val::Int(at_ms),
                    Val::Int(MAX_FACTS_PER_FILE),
                ],
            )
            .await?;
        Ok(())
    }

    /// Replaces the people a request waits on (none once it is decided or expired).
    pub async fn set_waiting(
        &mut self,
        request_id: &str,
        requester: &str,
        created_ms: i64,
        expires_ms: i64,
        users: &[String],
    ) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM request_waiting WHERE request_id = $1", &[request_id.into()]).await?;
        for user in users {
            self.tx
                .execute(
                    "INSERT INTO request_waiting (request_id, user_id, requester, created_ms, expires_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, user_id) DO NOTHING",
                    &[
                        request_id.into(),
                        user.as_str().into(),
                        requester.into(),
                        Val::Int(created_ms),
                        Val::Int(expires_ms),
                    ],
                )
                .await?;
        }
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

    /// Every grant still in force after `floor_ms`: the grants an event that happened since then may fall under.
    pub async fn grants_after(&self, floor_ms: i64) -> Result<Vec<Grant>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT request_id, user_id, file_id, granted_at_ms, expires_at_ms, facts FROM grants \
                 WHERE expires_at_ms > $1",
                &[Val::Int(floor_ms)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Grant {
                    request_id: r.text(0)?,
                    user_id: r.text(1)?,
                    file_id: r.text(2)?,
                    granted_at_ms: r.int(3)?,
                    expires_at_ms: r.int(4)?,
                    facts: serde_json::from_str(&r.text(5)?)
                        .map_err(|e| StoreError::Corrupt(format!("grant facts: {e}")))?,
                })
            })
            .collect()
    }

    /// What dingguard has itself seen of a file.
    pub async fn file_facts(&self, file_id: &str) -> Result<Vec<FileFact>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT name, space FROM file_facts WHERE file_id = $1 ORDER BY first_seen_ms, name, space",
                &[file_id.into()],
            )
            .await?;
        rows.iter().map(|r| Ok(FileFact { name: unstated(r.text(0)?), space: unstated(r.text(1)?) })).collect()
    }

    /// How many of `requester`'s requests are pending, and the soonest one of them expires.
    pub async fn open_requests_of(&self, requester: &str) -> Result<(i64, Option<i64>), StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT COUNT(*) FROM download_requests WHERE requester = $1 AND status = 'pending'",
                &[requester.into()],
            )
            .await?;
        let open = rows.first().map_or(Ok(0), |r| r.int(0))?;
        let rows =
            tx.query("SELECT MIN(expires_ms) FROM request_waiting WHERE requester = $1", &[requester.into()]).await?;
        let soonest = rows.first().map(|r| r.opt_int(0)).transpose()?.flatten();
        Ok((open, soonest))
    }

    /// How many requests `requester` made after `since_ms`, and when the first of them was.
    pub async fn requests_made_since(&self, requester: &str, since_ms: i64) -> Result<(i64, Option<i64>), StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT COUNT(*), MIN(created_ms) FROM download_requests WHERE requester = $1 AND created_ms > $2",
                &[requester.into(), Val::Int(since_ms)],
            )
            .await?;
        let row = rows.first().ok_or_else(|| StoreError::Corrupt("COUNT returned no row".into()))?;
        Ok((row.int(0)?, row.opt_int(1)?))
    }

    /// Pending requests waiting on `user`, or on one of `principals` (people `user` stands in for) when `user` is
    /// not their requester: oldest first, `limit` from `offset`, with how many there are in all.
    pub async fn inbox(
        &self,
        user: &str,
        principals: &[String],
        now_ms: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<StoredRequest>, i64), StoreError> {
        let mut params: Vec<Val> = vec![user.into(), Val::Int(now_ms)];
        let mut stand_in = String::new();
        for principal in principals.iter().take(100) {
            params.push(principal.as_str().into());
            let n = params.len();
            stand_in.push_str(if stand_in.is_empty() { "" } else { ", " });
            stand_in.push_str(&format!("${n}"));
        }
        let who = if stand_in.is_empty() {
            "w.user_id = $1".to_owned()
        } else {
            format!("(w.user_id = $1 OR (w.user_id IN ({stand_in}) AND w.requester <> $1))")
        };
        let matching = format!(
            "FROM download_requests WHERE status = 'pending' AND id IN \
             (SELECT w.request_id FROM request_waiting w WHERE w.expires_ms > $2 AND {who})"
        );
        let mut tx = self.db.begin().await?;
        let total = tx.query(&format!("SELECT COUNT(*) {matching}"), &params).await?;
        let total = total.first().map_or(Ok(0), |r| r.int(0))?;
        let n = params.len();
        params.push(Val::Int(limit.clamp(1, 500)));
        params.push(Val::Int(offset.max(0)));
        let sql = format!("SELECT {COLUMNS} {matching} ORDER BY created_ms, id LIMIT ${} OFFSET ${}", n + 1, n + 2);
        let rows = tx.query(&sql, &params).await?;
        Ok((rows.iter().map(request_from).collect::<Result<_, _>>()?, total))
    }

    /// Pending requests with no record of whom they wait on (made before that was kept), for the approver to
    /// fill in at start-up.
    pub async fn pending_without_waiting(&self, limit: i64) -> Result<Vec<StoredRequest>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM download_requests WHERE status = 'pending' AND id NOT IN \
                     (SELECT request_id FROM request_waiting) ORDER BY created_ms, id LIMIT $1"
                ),
                &[Val::Int(limit)],
            )
            .await?;
        rows.iter().map(request_from).collect()
    }

    /// How many requests are pending, and how many of those still wait on someone and expire after `now_ms` but
    /// no later than `until_ms`: two counts, whatever the number of requests.
    pub async fn pending_counts(&self, now_ms: i64, until_ms: i64) -> Result<(i64, i64), StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query("SELECT COUNT(*) FROM download_requests WHERE status = 'pending'", &[]).await?;
        let open = rows.first().map_or(Ok(0), |r| r.int(0))?;
        // The waiting list holds the people of undecided slots only, and the request's expiry with them.
        let rows = tx
            .query(
                "SELECT COUNT(*) FROM download_requests WHERE status = 'pending' AND id IN \
                 (SELECT w.request_id FROM request_waiting w WHERE w.expires_ms > $1 AND w.expires_ms <= $2)",
                &[Val::Int(now_ms), Val::Int(until_ms)],
            )
            .await?;
        let expiring = rows.first().map_or(Ok(0), |r| r.int(0))?;
        Ok((open, expiring))
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
}
