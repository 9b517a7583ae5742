//! One ordered list of migrations for both databases, applied once each and recorded.

use crate::StoreError;
use crate::db::{Db, Val};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "alerts", include_str!("../migrations/0001_alerts.sql")),
    (2, "console", include_str!("../migrations/0002_console.sql")),
    (3, "audit", include_str!("../migrations/0003_audit.sql")),
    (4, "changed_at", include_str!("../migrations/0004_changed_at.sql")),
    (5, "approvals", include_str!("../migrations/0005_approvals.sql")),
    (6, "decision_links", include_str!("../migrations/0006_decision_links.sql")),
    (7, "outbox_order", include_str!("../migrations/0007_outbox_order.sql")),
    (8, "delegations", include_str!("../migrations/0008_delegations.sql")),
    (9, "hardening", include_str!("../migrations/0009_hardening.sql")),
    (10, "keyed_state", include_str!("../migrations/0010_keyed_state.sql")),
    (11, "outbox_channels", include_str!("../migrations/0011_outbox_channels.sql")),
    (12, "state_versions", include_str!("../migrations/0012_state_versions.sql")),
];

pub(crate) async fn run(db: &Db) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    tx.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)")
        .await?;
    tx.commit().await?;
    for (version, name, sql) in MIGRATIONS {
        let mut tx = db.begin().await?;
        // PostgreSQL: serialise concurrent starters of several replicas on the same database.
        if db.backend() == "postgres" {
            tx.batch("LOCK TABLE schema_migrations IN EXCLUSIVE MODE").await?;
        }
        let done = tx.query("SELECT version FROM schema_migrations WHERE version = $1", &[Val::Int(*version)]).await?;
        if done.is_empty() {
            tracing::info!(version, name, backend = db.backend(), "applying migration");
            tx.batch(sql).await.map_err(|e| StoreError::Migration(format!("{version} {name}: {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
                &[Val::Int(*version), Val::from(*name), Val::Int(now_ms())],
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
