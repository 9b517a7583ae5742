//! The outbox: side effects (topic records, notifications) written in the same transaction as the state change
//! that causes them, then delivered and marked by a relay. A crash between the two re-sends with the same id,
//! which every channel treats as an idempotency key.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::alerts::AlertTx;
use crate::db::Val;
use crate::{Store, StoreError};

/// Where an outbox item goes. A notifier's channel is `notify:` and its name, and no internal channel starts so:
/// a notifier cannot be named into another's deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Alert records for the alerts topic.
    AlertsTopic,
    /// Events that cannot be judged, for the dead-letter topic.
    DeadLetters,
    /// Approval outcomes for the approvals topic.
    ApprovalsTopic,
    /// The approver's messages to approvers and requesters.
    ApprovalNotices,
    /// Alert notifications for the notifier of this name.
    Notifier(String),
}

impl Channel {
    /// The name stored with each item.
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            Self::AlertsTopic => "alerts-topic".into(),
            Self::DeadLetters => "dlq".into(),
            Self::ApprovalsTopic => "approvals-topic".into(),
            Self::ApprovalNotices => "approval-notices".into(),
            Self::Notifier(name) => format!("notify:{name}").into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    pub id: String,
    pub channel: String,
    pub payload: String,
    pub attempts: i64,
}

impl OutboxItem {
    /// The item's message, as its channel's writer queued it; `None` when it is not one (written by a version
    /// that spelled it otherwise, or damaged).
    pub fn message<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.payload).ok()
    }
}

impl AlertTx<'_> {
    /// Queues `message` on `channel` under `id`, once: the same id again changes nothing.
    pub async fn enqueue(
        &mut self,
        id: &str,
        channel: &Channel,
        message: &(impl Serialize + ?Sized),
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let payload =
            serde_json::to_string(message).map_err(|e| StoreError::Corrupt(format!("outbox message: {e}")))?;
        let channel = channel.name();
        self.queued += 1;
        self.tx
            .execute(
                "INSERT INTO outbox (id, channel, payload, created_at_ms, next_attempt_ms, ord) \
                 VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (id) DO NOTHING",
                &[id.into(), channel.as_ref().into(), payload.into(), Val::Int(at_ms), Val::Int(self.queued)],
            )
            .await?;
        Ok(())
    }
}

impl Store {
    /// Undelivered items of a channel that are due, oldest first.
    pub async fn due(&self, channel: &Channel, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let channel = channel.name();
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT id, channel, payload, attempts FROM outbox WHERE channel = $1 AND delivered_at_ms IS NULL \
                 AND next_attempt_ms <= $2 ORDER BY created_at_ms, ord, id LIMIT $3",
                &[channel.as_ref().into(), Val::Int(now_ms), Val::Int(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok(OutboxItem { id: r.text(0)?, channel: r.text(1)?, payload: r.text(2)?, attempts: r.int(3)? }))
            .collect()
    }

    /// Takes up to `limit` due items of `channel` for this caller alone until `lease_until_ms`: replicas sending
    /// the same channel each get other items, and an item whose sender died is due again once its lease ends.
    pub async fn claim_due(
        &self,
        channel: &Channel,
        now_ms: i64,
        limit: i64,
        lease_until_ms: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let channel = channel.name();
        // PostgreSQL: rows another sender is taking right now are passed over, so it gets the next ones instead of
        // waiting for them. SQLite: the transaction is the database's only writer.
        let skip_locked = if self.db.backend() == "postgres" { " FOR UPDATE SKIP LOCKED" } else { "" };
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT id, channel, payload, attempts FROM outbox WHERE channel = $1 AND delivered_at_ms IS NULL \
                     AND next_attempt_ms <= $2 ORDER BY created_at_ms, ord, id LIMIT $3{skip_locked}"
                ),
                &[channel.as_ref().into(), Val::Int(now_ms), Val::Int(limit)],
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for r in &rows {
            let item = OutboxItem { id: r.text(0)?, channel: r.text(1)?, payload: r.text(2)?, attempts: r.int(3)? };
            tx.execute(
                "UPDATE outbox SET next_attempt_ms = $2 WHERE id = $1",
                &[item.id.as_str().into(), Val::Int(lease_until_ms)],
            )
            .await?;
            claimed.push(item);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Gives back items taken by [`Store::claim_due`] and not sent, due again at `now_ms`.
    pub async fn release(&self, ids: &[String], now_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for id in ids {
            tx.execute(
                "UPDATE outbox SET next_attempt_ms = $2 WHERE id = $1 AND delivered_at_ms IS NULL",
                &[id.as_str().into(), Val::Int(now_ms)],
            )
            .await?;
        }
        tx.commit().await
    }

    pub async fn delivered(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE outbox SET delivered_at_ms = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
            &[id.into(), Val::Int(at_ms)],
        )
        .await?;
        tx.commit().await
    }

    /// Marks several items delivered in one transaction.
    pub async fn delivered_many(&self, ids: &[String], at_ms: i64) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin().await?;
        for id in ids {
            tx.execute(
                "UPDATE outbox SET delivered_at_ms = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
                &[id.as_str().into(), Val::Int(at_ms)],
            )
            .await?;
        }
        tx.commit().await
    }

    pub async fn failed(&self, id: &str, error: &str, retry_at_ms: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_ms = $3 WHERE id = $1",
            &[id.into(), error.into(), Val::Int(retry_at_ms)],
        )
        .await?;
        tx.commit().await
    }
}
