//! A consumer's state as rows, one per thing it remembers, written a batch's changes at a time.
//!
//! Replicas of a consumer share these rows. A row that accumulates (a rule window, a person's history) is
//! written with [`AlertTx::put_state_if`]: only over the version its writer read, so a replica holding a stale
//! copy finds out instead of overwriting what another counted.

use crate::alerts::AlertTx;
use crate::db::Val;
use crate::{Store, StoreError};

/// One remembered thing: of `kind` (a window, a group, a person), under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub kind: String,
    pub key: String,
    pub value: String,
    /// Who wrote it last, as a token: equal tokens mean the same contents.
    pub version: i64,
}

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// Another writer changed the row since it was read; nothing was written.
    Stale,
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

    /// Saves one thing as `version`, only if the row is still at `expected` (`None`: only if there is none).
    /// A concurrent writer of the same row waits for this transaction and then finds it stale.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_state_if(
        &mut self,
        owner: &str,
        kind: &str,
        key: &str,
        value: &str,
        at_ms: i64,
        expected: Option<i64>,
        version: i64,
    ) -> Result<Written, StoreError> {
        let n = match expected {
            None => {
                self.tx
                    .execute(
                        "INSERT INTO keyed_state (owner, kind, key, value, updated_ms, version) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner, kind, key) DO NOTHING",
                        &[owner.into(), kind.into(), key.into(), value.into(), Val::Int(at_ms), Val::Int(version)],
                    )
                    .await?
            }
            Some(expected) => {
                self.tx
                    .execute(
                        "UPDATE keyed_state SET value = $4, updated_ms = $5, version = $6 \
                         WHERE owner = $1 AND kind = $2 AND key = $3 AND version = $7",
                        &[
                            owner.into(),
                            kind.into(),
                            key.into(),
                            value.into(),
                            Val::Int(at_ms),
                            Val::Int(version),
                            Val::Int(expected),
                        ],
                    )
                    .await?
            }
        };
        Ok(if n == 1 { Written::Done } else { Written::Stale })
    }

    /// Forgets one thing, only if the row is still at `expected` (`None`: only if there is none).
    pub async fn delete_state_if(
        &mut self,
        owner: &str,
        kind: &str,
        key: &str,
        expected: Option<i64>,
    ) -> Result<Written, StoreError> {
        let fresh = match expected {
            None => self
                .tx
                .query(
                    "SELECT 1 FROM keyed_state WHERE owner = $1 AND kind = $2 AND key = $3",
                    &[owner.into(), kind.into(), key.into()],
                )
                .await?
                .is_empty(),
            Some(expected) => {
                self.tx
                    .execute(
                        "DELETE FROM keyed_state WHERE owner = $1 AND kind = $2 AND key = $3 AND version = $4",
                        &[owner.into(), kind.into(), key.into(), Val::Int(expected)],
                    )
                    .await?
                    == 1
            }
        };
        Ok(if fresh { Written::Done } else { Written::Stale })
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

fn state_row(r: &crate::db::Row) -> Result<StateRow, StoreError> {
    Ok(StateRow { kind: r.text(0)?, key: r.text(1)?, value: r.text(2)?, version: r.int(3)? })
}

impl Store {
    /// Everything `owner` remembers.
    pub async fn load_keyed_state(&self, owner: &str) -> Result<Vec<StateRow>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT kind, key, value, version FROM keyed_state WHERE owner = $1 ORDER BY kind, key",
                &[owner.into()],
            )
            .await?;
        rows.iter().map(state_row).collect()
    }

    /// What `owner`'s replicas wrote at or after `since_ms`, by the writers' clocks.
    pub async fn keyed_state_since(&self, owner: &str, since_ms: i64) -> Result<Vec<StateRow>, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx
            .query(
                "SELECT kind, key, value, version FROM keyed_state WHERE owner = $1 AND updated_ms >= $2 \
                 ORDER BY kind, key",
                &[owner.into(), Val::Int(since_ms)],
            )
            .await?;
        rows.iter().map(state_row).collect()
    }

    /// How many rows `owner` keeps: a bound to watch.
    pub async fn keyed_state_rows(&self, owner: &str) -> Result<i64, StoreError> {
        let mut tx = self.db.begin().await?;
        let rows = tx.query("SELECT COUNT(*) FROM keyed_state WHERE owner = $1", &[owner.into()]).await?;
        rows.first().map_or(Ok(0), |r| r.int(0))
    }
}
