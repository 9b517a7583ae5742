//! A consumer's state as rows, one per thing it remembers, written a batch's changes at a time.

use crate::alerts::AlertTx;
use crate::db::Val;
use crate::{Store, StoreError};

/// One remembered thing: of `kind` (a window, a group, a person), under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub kind: String,
    pub key: String,
    pub value: String,
}

impl AlertTx<'_> {
    /// Saves one thing `owner` remembers, in this transaction.
    pub async fn put_state(
        &mut self,
        owner: &str,
        kind: &str,
        key: &str,
        value: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO keyed_state (owner, kind, key, value, updated_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (owner, kind, key) DO UPDATE SET value = $4, updated_ms = $5",
                &[owner.into(), kind.into(), key.into(), value.into(), Val::Int(at_ms)],
            )
            .await?;
        Ok(())
    }

    /// Forgets one thing `owner` remembered.
    pub async fn delete_state(&mut self, owner: &str, kind: &str, key: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "DELETE FROM keyed_state WHERE owner = $1 AND kind = $2 AND key = $3",
                &[owner.into(), kind.into(), key.into()],
            )
            .await?;
        Ok(())
    }

    /// Drops a whole-state row of the earlier layout, once its contents are saved as rows.
    pub async fn delete_whole_state(&mut self, name: &str) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM engine_state WHERE name = $1", &[name.into()]).await?;
        Ok(())
    }
}

impl Store {
    /// Everything `owner` remembers.
    pub async fn load_keyed_state(&self, owner: &str) -> Result<Vec<StateRow>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query("SELECT kind, key, value FROM keyed_state WHERE owner = $1 ORDER BY kind, key", &[owner.into()])
            .await?;
        rows.iter().map(|r| Ok(StateRow { kind: r.text(0)?, key: r.text(1)?, value: r.text(2)? })).collect()
    }

    /// How many rows `owner` keeps: a bound to watch.
    pub async fn keyed_state_rows(&self, owner: &str) -> Result<i64, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query("SELECT COUNT(*) FROM keyed_state WHERE owner = $1", &[owner.into()]).await?;
        rows.first().map_or(Ok(0), |r| r.int(0))
    }
}
