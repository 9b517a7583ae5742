//! The approver keeps its directory current from the address-book events on the events topic (people joining,
//! leaving, changing departments; departments changing), so approvers are resolved and checked against the
//! organisation as it is. The changes are saved with the intake's offsets and replayed on start.

use std::sync::Arc;

use dingguard_directory::DirectoryChange;
use dingguard_events::may_change_directory;
use dingguard_store::StoreError;

use crate::Shared;

const STATE: &str = "approver:directory_changes";

/// The changes saved so far, applied on top of the directory file.
pub(crate) async fn restore(shared: &Shared) -> Result<Vec<DirectoryChange>, StoreError> {
    let changes: Vec<DirectoryChange> = match shared.store.load_state(STATE).await? {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{STATE}: {e}")))?,
        None => Vec::new(),
    };
    let mut directory = shared.base_directory.clone();
    for change in &changes {
        directory.apply(change.clone());
    }
    *shared.directory.write() = Arc::new(directory);
    Ok(changes)
}

/// Applies what an address-book event changes; true when it changed anything.
pub(crate) fn absorb(
    shared: &Shared,
    changes: &mut Vec<DirectoryChange>,
    event_type: &str,
    ce_id: &str,
    value: &[u8],
) -> bool {
    if !may_change_directory(event_type) {
        return false;
    }
    let now = shared.clock.now_ms();
    let current = shared.directory();
    let events = match crate::normalise(event_type, ce_id, value, &current, now) {
        Ok(events) => events,
        Err(error) => {
            tracing::warn!(%error, ce_id, "address-book event cannot be read; the directory stays as it is");
            return false;
        }
    };
    let new: Vec<DirectoryChange> = events.iter().flat_map(|e| e.directory_changes()).collect();
    if new.is_empty() {
        return false;
    }
    let mut directory = (*current).clone();
    for change in &new {
        directory.apply(change.clone());
    }
    *shared.directory.write() = Arc::new(directory);
    tracing::info!(ce_id, changes = new.len(), "directory updated from the address book");
    changes.extend(new);
    true
}

/// Saves the changes; called before the offsets of the events that carried them are committed.
pub(crate) async fn persist(shared: &Shared, changes: &[DirectoryChange]) -> Result<(), StoreError> {
    let state = serde_json::to_string(changes).expect("directory changes serialise");
    let mut tx = shared.store.begin().await?;
    tx.save_state(STATE, &state, shared.clock.now_ms()).await?;
    tx.commit().await
}
