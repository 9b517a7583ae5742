//! Durable state: SQLite for the embedded default, PostgreSQL for scaled deployments. One set of migrations and
//! one set of statements serve both.

mod alerts;
mod approvals;
mod audit;
pub mod console;
mod db;
mod delegations;
mod keyed;
mod migrate;
mod outbox;

use std::path::PathBuf;

pub use alerts::{Alert, AlertEvent, AlertFilter, AlertStatus, AlertTx, NewAlert, Recorded, Silence};
pub use approvals::{FileFact, Grant, StoredRequest};
pub use delegations::Delegation;
pub use keyed::{StateRow, Written};
pub use outbox::{Channel, OutboxItem};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

/// Where state lives.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sqlite(PathBuf),
    /// A `postgres://` URL, which may carry a password.
    Postgres {
        url: dingguard_model::Secret,
        max_connections: usize,
    },
}

#[derive(Clone)]
pub struct Store {
    db: db::Db,
}

impl Store {
    /// Opens the database and brings its schema up to date.
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let db = match config {
            StoreConfig::Sqlite(path) => db::Db::open_sqlite(path)?,
            StoreConfig::Postgres { url, max_connections } => db::Db::open_postgres(url.expose(), *max_connections)?,
        };
        migrate::run(&db).await?;
        Ok(Self { db })
    }

    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    /// A transaction for the alerter's per-batch work; nothing is visible until `commit`.
    pub async fn begin(&self) -> Result<AlertTx<'_>, StoreError> {
        Ok(AlertTx::new(self.db.begin().await?))
    }

    /// Readiness probe: a trivial query.
    pub async fn check(&self) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.query("SELECT 1", &[]).await?;
        tx.commit().await
    }
}
