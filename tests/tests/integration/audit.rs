//! `dingguard audit verify` proves the chain intact, and names the row someone changed.

use anyhow::Result;
use dingguard_store::{Store, StoreConfig};
use dingguard_tests::process::run;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_one_row_is_found_and_named() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("state.db");
    let store = Store::open(&StoreConfig::Sqlite(db.clone())).await?;
    for (i, (actor, action)) in [
        ("user_hr_clerk", "requested"),
        ("user_dpo", "approved"),
        ("user_hr_manager", "approved"),
        ("system", "granted"),
        ("user_hr_clerk", "downloaded"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .append_audit(actor, action, "dlr_0001", json!({"file": "身份證-scans.zip", "step": i}), 1_000 + i as i64)
            .await?;
    }
    drop(store);
    let envs = [("DINGGUARD_DATA_DIR", dir.path().display().to_string())];

    let (ok, out, err) = run(&["audit", "verify"], &envs).await?;
    assert!(ok, "{err}");
    assert!(out.contains("intact: 5 entries"), "{out}");
    let (ok, export, _) = run(&["audit", "export"], &envs).await?;
    assert!(ok);
    assert_eq!(export.lines().count(), 5);

    // Someone turns the department head's approval into a rejection, straight in the database.
    let conn = rusqlite::Connection::open(&db)?;
    let changed = conn.execute("UPDATE audit_log SET action = 'rejected' WHERE seq = 3", [])?;
    assert_eq!(changed, 1);
    drop(conn);
    let (ok, _, err) = run(&["audit", "verify"], &envs).await?;
    assert!(!ok, "a tampered chain must fail verification");
    assert!(err.contains("broken at entry 3"), "{err}");

    // Deleting a row is found too.
    let conn = rusqlite::Connection::open(&db)?;
    conn.execute("UPDATE audit_log SET action = 'approved' WHERE seq = 3", [])?;
    conn.execute("DELETE FROM audit_log WHERE seq = 2", [])?;
    drop(conn);
    let (ok, _, err) = run(&["audit", "verify"], &envs).await?;
    assert!(!ok && err.contains("broken at entry 3"), "{err}");
    Ok(())
}
