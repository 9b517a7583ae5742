//! The running audit-chain check: bounded passes that resume where the last stopped, and a changed or removed row
//! counted as `broken` until it is put back.

use std::time::Duration;

use dingguard_approver::{AuditCheck, Checked};
use dingguard_audit::ChainError;
use dingguard_store::{Store, StoreConfig};
use prometheus_client::registry::Registry;
use serde_json::json;

fn metric(registry: &Registry, name: &str) -> f64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

async fn append(store: &Store, from: usize, to: usize) {
    for i in from..to {
        let at = 1_000 + i64::try_from(i).unwrap();
        store.append_audit("user_dpo", "approved", "dlr_0001", json!({"step": i}), at).await.unwrap();
    }
}

#[tokio::test]
async fn passes_resume_where_the_last_stopped_and_a_changed_row_counts_broken() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store = Store::open(&StoreConfig::Sqlite(db.clone())).await.unwrap();
    let mut registry = Registry::default();
    let mut check = AuditCheck::new(store.clone(), Duration::from_secs(300), &mut registry).with_budget(3);
    let (ok, broken) = (r#"dingguard_audit_chain_checks_total{outcome="ok"}"#, r#"{outcome="broken"}"#);
    let broken = format!("dingguard_audit_chain_checks_total{broken}");
    let verified = "dingguard_audit_chain_verified_entries";

    assert_eq!(check.check().await.unwrap(), Checked::Intact { verified: 0 }, "an empty chain is intact");
    assert_eq!(metric(&registry, ok), 1.0);
    assert_eq!(metric(&registry, &broken), 0.0, "both outcomes are exposed from the start");

    // Seven entries, three a pass: the passes take them in turn.
    append(&store, 0, 7).await;
    for expected in [3, 6, 7] {
        assert_eq!(check.check().await.unwrap(), Checked::Intact { verified: expected });
        assert_eq!(metric(&registry, verified), expected as f64);
    }

    // Someone turns an approval already verified into a rejection, straight in the database: the passes that
    // re-verify the older entries reach it within the chain's length in budgets.
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(conn.execute("UPDATE audit_log SET action = 'rejected' WHERE seq = 2", []).unwrap(), 1);
    let mut found = None;
    for _ in 0..4 {
        if let Checked::Broken(error) = check.check().await.unwrap() {
            found = Some(error);
            break;
        }
    }
    assert_eq!(found, Some(ChainError::Altered { seq: 2 }));
    assert_eq!(metric(&registry, &broken), 1.0);

    // It stays broken, pass after pass, new entries or not, and the verified count does not grow past it.
    append(&store, 7, 12).await;
    for _ in 0..3 {
        assert_eq!(check.check().await.unwrap(), Checked::Broken(ChainError::Altered { seq: 2 }));
    }
    assert_eq!(metric(&registry, &broken), 4.0);
    assert_eq!(metric(&registry, verified), 7.0);

    // Put back, the chain verifies again.
    conn.execute("UPDATE audit_log SET action = 'approved' WHERE seq = 2", []).unwrap();
    assert!(matches!(check.check().await.unwrap(), Checked::Intact { .. }));
}

#[tokio::test]
async fn a_rewritten_or_removed_newest_entry_is_found_on_the_next_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store = Store::open(&StoreConfig::Sqlite(db.clone())).await.unwrap();
    let mut registry = Registry::default();
    let mut check = AuditCheck::new(store.clone(), Duration::from_secs(300), &mut registry);
    append(&store, 0, 5).await;
    assert_eq!(check.check().await.unwrap(), Checked::Intact { verified: 5 });

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE audit_log SET details = '{\"step\":99}' WHERE seq = 5", []).unwrap();
    assert_eq!(check.check().await.unwrap(), Checked::Broken(ChainError::Altered { seq: 5 }));

    // Removing the newest entry and appending again forks the chain: the new fifth entry is not the one verified.
    conn.execute("DELETE FROM audit_log WHERE seq = 5", []).unwrap();
    append(&store, 5, 6).await;
    assert_eq!(check.check().await.unwrap(), Checked::Broken(ChainError::Altered { seq: 5 }));

    // A row removed in the middle is a gap, on a check that starts afresh as after a restart.
    conn.execute("DELETE FROM audit_log WHERE seq = 3", []).unwrap();
    let mut fresh = AuditCheck::new(store, Duration::from_secs(300), &mut Registry::default());
    assert_eq!(fresh.check().await.unwrap(), Checked::Broken(ChainError::Gap { seq: 4, expected: 3 }));
    assert_eq!(metric(&registry, r#"dingguard_audit_chain_checks_total{outcome="broken"}"#), 2.0);
}
