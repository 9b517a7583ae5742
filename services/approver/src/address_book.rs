//! The approver keeps its directory current from the address-book events on the events topic (people joining,
//! leaving, changing departments; departments changing), so approvers are resolved and checked against the
//! organisation as it is. What changed is saved a row per person or department with the intake's offsets, and
//! read back on start.

use std::sync::Arc;

use dingguard_directory::{DeptId, Directory, DirectoryChange, UserId};
use dingguard_events::may_change_directory;
use dingguard_store::StoreError;

use crate::Shared;

const OWNER: &str = "approver";
/// The single row the changes used to be saved in, moved into rows on first start.
const WHOLE_STATE: &str = "approver:directory_changes";

fn corrupt(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("approver directory {key:?}: {e}"))
}

/// Builds the directory from the file and the saved rows. True when the earlier layout's row was found: the next
/// [`persist`] saves it as rows and drops it.
pub(crate) async fn restore(shared: &Shared) -> Result<bool, StoreError> {
    let mut directory = shared.base_directory.clone();
    let rows = shared.store.load_keyed_state(OWNER).await?;
    let mut moved = false;
    if rows.is_empty()
        && let Some(text) = shared.store.load_state(WHOLE_STATE).await?
    {
        let changes: Vec<DirectoryChange> = serde_json::from_str(&text).map_err(|e| corrupt(WHOLE_STATE, e))?;
        for change in changes {
            let at = match &change {
                DirectoryChange::UserLeft { at_ms, .. } => *at_ms,
                _ => 0,
            };
            directory.apply_at(change, at);
        }
        moved = true;
    }
    take_in(&mut directory, &rows)?;
    if !moved {
        directory.take_changed();
    }
    *shared.directory.write() = Arc::new(directory);
    Ok(moved)
}

/// Puts saved people and departments into `directory`: people first, so a removed department then leaves every
/// record they are in.
fn take_in(directory: &mut Directory, rows: &[dingguard_store::StateRow]) -> Result<(), StoreError> {
    let mut departments = Vec::new();
    for row in rows {
        match row.kind.as_str() {
            "user" => {
                let id = UserId::parse(&row.key).map_err(|e| corrupt(&row.key, e))?;
                directory.restore_user(id, serde_json::from_str(&row.value).map_err(|e| corrupt(&row.key, e))?);
            }
            "dept" => {
                let id = DeptId::parse(&row.key).map_err(|e| corrupt(&row.key, e))?;
                departments.push((id, serde_json::from_str(&row.value).map_err(|e| corrupt(&row.key, e))?));
            }
            other => tracing::warn!(kind = other, key = %row.key, "unknown approver state row ignored"),
        }
    }
    for (id, dept) in departments {
        directory.restore_department(id, dept);
    }
    Ok(())
}

/// Takes in the people and departments replicas saved at or after `since_ms`: each replica reads only some of the
/// events topic's partitions, so an address-book event another replica read reaches this one through the store.
/// Call between batches, with nothing unsaved.
pub(crate) async fn refresh(shared: &Shared, since_ms: i64) -> Result<usize, StoreError> {
    let rows = shared.store.keyed_state_since(OWNER, since_ms).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut directory = shared.directory.write();
    let directory = Arc::make_mut(&mut directory);
    take_in(directory, &rows)?;
    directory.take_changed();
    Ok(rows.len())
}

/// Applies what an address-book event changes, as of when it happened; true when it changed anything.
pub(crate) fn absorb(shared: &Shared, event_type: &str, ce_id: &str, value: &[u8], received_ms: i64) -> bool {
    if !may_change_directory(event_type) {
        return false;
    }
    let current = shared.directory();
    let events = match crate::normalise(event_type, ce_id, value, &current, received_ms) {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, ce_id, "address-book event cannot be read; the directory stays as it is");
            return false;
        }
    };
    drop(current);
    let mut changed = 0;
    let mut directory = shared.directory.write();
    // Copied only if a reader still holds the previous one; a backlog of address-book events is not a copy each.
    let directory = Arc::make_mut(&mut directory);
    for event in &events {
        for (change, at) in event.directory_changes_at() {
            directory.apply_at(change, at);
            changed += 1;
        }
    }
    if changed > 0 {
        tracing::info!(ce_id, changes = changed, "directory updated from the address book");
    }
    changed > 0
}

/// Saves what changed; called before the offsets of the events that carried it are committed.
pub(crate) async fn persist(shared: &Shared, moved_whole_state: bool) -> Result<(), StoreError> {
    let now = shared.clock.now_ms();
    let (rows, departments) = {
        let mut directory = shared.directory.write();
        let directory = Arc::make_mut(&mut directory);
        let (users, departments) = directory.take_changed();
        let users: Vec<(String, String)> = users
            .iter()
            .filter_map(|id| Some((id.to_string(), serde_json::to_string(directory.user_history(id.as_str())?).ok()?)))
            .collect();
        let departments: Vec<(String, String)> = departments
            .iter()
            .filter_map(|id| {
                Some((id.to_string(), serde_json::to_string(&directory.department_state(id.as_str())).ok()?))
            })
            .collect();
        (users, departments)
    };
    if rows.is_empty() && departments.is_empty() && !moved_whole_state {
        return Ok(());
    }
    let mut tx = shared.store.begin().await?;
    for (key, value) in &rows {
        tx.put_state(OWNER, "user", key, value, now).await?;
    }
    for (key, value) in &departments {
        tx.put_state(OWNER, "dept", key, value, now).await?;
    }
    if moved_whole_state {
        tx.delete_whole_state(WHOLE_STATE).await?;
    }
    tx.commit().await
}
