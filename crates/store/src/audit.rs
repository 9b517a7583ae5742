//! The audit chain in the database. Appends happen inside the transaction of the change they record, and are
//! serialised so two writers (two approver replicas on PostgreSQL) never fork the chain.

use dingguard_audit::Entry;
use serde_json::Value;

use crate::alerts::AlertTx;
use crate::db::{Row, Val};
use crate::{Store, StoreError};

const COLUMNS: &str = "seq, at_ms, actor, action, subject, details, prev_hash, hash";

fn entry_from(row: &Row) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq: row.int(0)?,
        at_ms: row.int(1)?,
        actor: row.text(2)?,
        action: row.text(3)?,
        subject: row.text(4)?,
        // A row whose details no longer parse is kept as text, so verification reports it as altered.
        details: serde_json::from_str(&row.text(5)?).unwrap_or_else(|_| Value::String(row.text(5).unwrap_or_default())),
        prev_hash: row.text(6)?,
        hash: row.text(7)?,
    })
}

impl AlertTx<'_> {
    /// Appends one entry to the chain as part of this transaction.
    pub async fn append_audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        details: Value,
        at_ms: i64,
    ) -> Result<Entry, StoreError> {
        if self.tx.is_postgres() {
            self.tx.batch("LOCK TABLE audit_log IN EXCLUSIVE MODE").await?;
        }
        let last = self.tx.query(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT 1"), &[]).await?;
        let previous = last.first().map(entry_from).transpose()?;
        let entry = Entry::next(previous.as_ref(), at_ms, actor, action, subject, details);
        self.tx
            .execute(
                "INSERT INTO audit_log (seq, at_ms, actor, action, subject, details, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    Val::Int(entry.seq),
                    Val::Int(entry.at_ms),
                    entry.actor.as_str().into(),
                    entry.action.as_str().into(),
                    entry.subject.as_str().into(),
                    entry.details.to_string().into(),
                    entry.prev_hash.as_str().into(),
                    entry.hash.as_str().into(),
                ],
            )
            .await?;
        Ok(entry)
    }
}

impl Store {
    /// Appends one entry in a transaction of its own.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        details: Value,
        at_ms: i64,
    ) -> Result<Entry, StoreError> {
        let mut tx = self.begin().await?;
        let entry = tx.append_audit(actor, action, subject, details, at_ms).await?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Up to `limit` entries after `after_seq`, in order: a piece of the chain for a verification that resumes.
    pub async fn audit_entries_after(&self, after_seq: i64, limit: i64) -> Result<Vec<Entry>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                &format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"),
                &[Val::Int(after_seq), Val::Int(limit)],
            )
            .await?;
        rows.iter().map(entry_from).collect()
    }

    /// The entry numbered `seq`, if the chain holds one.
    pub async fn audit_entry(&self, seq: i64) -> Result<Option<Entry>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query(&format!("SELECT {COLUMNS} FROM audit_log WHERE seq = $1"), &[Val::Int(seq)]).await?;
        rows.first().map(entry_from).transpose()
    }

    /// The whole chain in order, for verification and export.
    pub async fn audit_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"), &[]).await?;
        rows.iter().map(entry_from).collect()
    }
}
