//! The outbox: side effects (topic records, notifications) written in the same transaction as the state change
//! that causes them, then delivered and marked by a relay. A crash between the two re-sends with the same id,
//! which every channel treats as an idempotency key.

use serde::Serialize;

use crate::alerts::AlertTx;
use crate::db::Val;
use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxItem {
    pub id: String,
    pub channel: String,
    pub payload: String,
    pub attempts: i64,
}

impl AlertTx<'_> {
    pub async fn enqueue(&mut self, id: &str, channel: &str, payload: &str, at_ms: i64) -> Result<(), StoreError> {
        self.queued += 1;
        self.tx
            .execute(
                "INSERT INTO outbox (id, channel, payload, created_at_ms, next_attempt_ms, ord) \
                 VALUES ($1, $2, $3, $4, $4, $5) ON CONFLICT (id) DO NOTHING",
                &[id.into(), channel.into(), payload.into(), Val::Int(at_ms), Val::Int(self.queued)],
            )
            .await?;
        Ok(())
    }
}

impl Store {
    /// Undelivered items of a channel that are due, oldest first.
    pub async fn due(&self, channel: &str, now_ms: i64, limit: i64) -> Result<Vec<OutboxItem>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT id, channel, payload, attempts FROM outbox WHERE channel = $1 AND delivered_at_ms IS NULL \
                 AND next_attempt_ms <= $2 ORDER BY created_at_ms, ord, id LIMIT $3",
                &[channel.into(), Val::Int(now_ms), Val::Int(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok(OutboxItem { id: r.text(0)?, channel: r.text(1)?, payload: r.text(2)?, attempts: r.int(3)? }))
            .collect()
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
