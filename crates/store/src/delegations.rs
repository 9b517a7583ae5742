//! Delegations of approvers who are away: one per approver, replaced when set again, in force from `from_ms`
//! until `until_ms`. Changes go through [`AlertTx`] so they land with their audit entry.

use serde::Serialize;

use crate::alerts::AlertTx;
use crate::db::{Row, Val};
use crate::{Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delegation {
    pub principal: String,
    pub delegate: String,
    pub from_ms: i64,
    pub until_ms: i64,
}

const COLUMNS: &str = "principal, delegate, from_ms, until_ms";

impl Delegation {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self { principal: r.text(0)?, delegate: r.text(1)?, from_ms: r.int(2)?, until_ms: r.int(3)? })
    }
}

impl AlertTx<'_> {
    pub async fn set_delegation(&mut self, d: &Delegation, at_ms: i64) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM delegations WHERE principal = $1", &[d.principal.as_str().into()]).await?;
        self.tx
            .execute(
                "INSERT INTO delegations (principal, delegate, from_ms, until_ms, created_ms) VALUES ($1, $2, $3, $4, $5)",
                &[
                    d.principal.as_str().into(),
                    d.delegate.as_str().into(),
                    Val::Int(d.from_ms),
                    Val::Int(d.until_ms),
                    Val::Int(at_ms),
                ],
            )
            .await?;
        Ok(())
    }

    /// True when there was one to end.
    pub async fn end_delegation(&mut self, principal: &str) -> Result<bool, StoreError> {
        Ok(self.tx.execute("DELETE FROM delegations WHERE principal = $1", &[principal.into()]).await? > 0)
    }
}

impl Store {
    /// `principal`'s delegation, whether or not it is in force now.
    pub async fn delegation(&self, principal: &str) -> Result<Option<Delegation>, StoreError> {
        let mut tx = self.db.begin().await?;
        let sql = format!("SELECT {COLUMNS} FROM delegations WHERE principal = $1");
        let rows = tx.query(&sql, &[principal.into()]).await?;
        rows.first().map(Delegation::from_row).transpose()
    }

    /// Delegations in force at `now_ms`: to `delegate` when given, else all of them.
    pub async fn delegations_in_force(
        &self,
        delegate: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Delegation>, StoreError> {
        self.begin().await?.delegations_in_force(delegate, now_ms).await
    }
}

impl AlertTx<'_> {
    /// As [`Store::delegations_in_force`], inside this transaction.
    pub async fn delegations_in_force(
        &mut self,
        delegate: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<Delegation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM delegations \
             WHERE ($1 = '' OR delegate = $1) AND from_ms <= $2 AND until_ms > $2 ORDER BY principal"
        );
        let rows = self.tx.query(&sql, &[delegate.unwrap_or_default().into(), Val::Int(now_ms)]).await?;
        rows.iter().map(Delegation::from_row).collect()
    }
}
