//! What the alerter remembers between batches — rule windows, the groups it has seen and their titles, the
//! directory's history from address-book events — saved a row per thing in the transaction of the batch that
//! changed it. A batch writes what it changed, so catching up on a long backlog does not slow down as state grows.

use dingguard_directory::{DeptId, Directory, DirectoryChange, UserId};
use dingguard_events::InMemoryGroupTracker;
use dingguard_rules::{Engine, WindowState};
use dingguard_store::{AlertTx, StoreError};
use serde::Deserialize;

use crate::Shared;
use crate::enrich::GroupTitles;

const OWNER: &str = "alerter";
/// The single row the whole state used to be saved in, moved into rows on first start.
const WHOLE_STATE: &str = "alerter";

/// The state of the earlier layout, read once to move it.
#[derive(Deserialize)]
struct WholeState {
    #[serde(default)]
    windows: WindowState,
    #[serde(default)]
    groups: InMemoryGroupTracker,
    #[serde(default)]
    titles: GroupTitles,
    #[serde(default)]
    directory_changes: Vec<DirectoryChange>,
}

pub(crate) struct AlerterState {
    pub engine: Engine,
    pub groups: InMemoryGroupTracker,
    pub titles: GroupTitles,
    pub directory: Directory,
    /// The earlier layout's row, to delete once its contents are saved as rows.
    moved_whole_state: bool,
}

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("alerter state {what} {key:?}: {e}"))
}

impl AlerterState {
    pub async fn load(shared: &Shared) -> Result<Self, StoreError> {
        let mut state = Self {
            engine: Engine::new(shared.rules.read().clone()),
            groups: InMemoryGroupTracker::default(),
            titles: GroupTitles::default(),
            directory: shared.directory.clone(),
            moved_whole_state: false,
        };
        let rows = shared.store.load_keyed_state(OWNER).await?;
        if rows.is_empty()
            && let Some(text) = shared.store.load_state(WHOLE_STATE).await?
        {
            state.move_whole_state(&text)?;
            return Ok(state);
        }
        let mut departments = Vec::new();
        for row in rows {
            let (key, value) = (row.key.as_str(), row.value.as_str());
            match row.kind.as_str() {
                "window" => {
                    let window = serde_json::from_str(value).map_err(|e| corrupt("window", key, e))?;
                    state.engine.state_mut().restore(row.key, window);
                }
                "seen" | "alias" => state.groups.restore(&row.kind, key, value),
                "title" => state.titles.restore(key, value),
                "user" => {
                    let id = UserId::parse(key).map_err(|e| corrupt("user", key, e))?;
                    let history = serde_json::from_str(value).map_err(|e| corrupt("user", key, e))?;
                    state.directory.restore_user(id, history);
                }
                "dept" => {
                    let id = DeptId::parse(key).map_err(|e| corrupt("department", key, e))?;
                    departments.push((id, serde_json::from_str(value).map_err(|e| corrupt("department", key, e))?));
                }
                other => tracing::warn!(kind = other, key, "unknown alerter state row ignored"),
            }
        }
        // People first: a removed department then leaves every record they are in.
        for (id, dept) in departments {
            state.directory.restore_department(id, dept);
        }
        state.directory.take_changed();
        Ok(state)
    }

    /// Takes the single row of the earlier layout apart; the next save writes it as rows and deletes it.
    fn move_whole_state(&mut self, text: &str) -> Result<(), StoreError> {
        let whole: WholeState = serde_json::from_str(text).map_err(|e| corrupt("row", WHOLE_STATE, e))?;
        self.engine = Engine::with_state(self.engine.rules().clone(), whole.windows);
        self.engine.state_mut().mark_all_changed();
        self.groups = whole.groups;
        self.titles = whole.titles;
        self.titles.mark_all_changed();
        // The earlier layout kept no times with its changes; only a leave carries its own.
        for change in whole.directory_changes {
            let at = match &change {
                DirectoryChange::UserLeft { at_ms, .. } => *at_ms,
                _ => 0,
            };
            self.directory.apply_at(change, at);
        }
        self.moved_whole_state = true;
        tracing::info!("alerter state moved from one row to a row per window, group and person");
        Ok(())
    }

    /// Writes what changed since the last save into `tx`, the batch's own transaction.
    pub async fn save(&mut self, tx: &mut AlertTx<'_>, now_ms: i64) -> Result<(), StoreError> {
        for (id, window) in self.engine.state_mut().take_changed() {
            match window {
                Some(window) => {
                    let value = serde_json::to_string(&window).map_err(|e| corrupt("window", &id, e))?;
                    tx.put_state(OWNER, "window", &id, &value, now_ms).await?;
                }
                None => tx.delete_state(OWNER, "window", &id).await?,
            }
        }
        let groups = if self.moved_whole_state { self.groups.all_rows() } else { self.groups.take_changed() };
        for (kind, key, value) in groups {
            tx.put_state(OWNER, kind, &key, &value, now_ms).await?;
        }
        for (group, title) in self.titles.take_changed() {
            tx.put_state(OWNER, "title", &group, &title, now_ms).await?;
        }
        let (users, departments) = self.directory.take_changed();
        for id in users {
            if let Some(history) = self.directory.user_history(id.as_str()) {
                let value = serde_json::to_string(history).map_err(|e| corrupt("user", id.as_str(), e))?;
                tx.put_state(OWNER, "user", id.as_str(), &value, now_ms).await?;
            }
        }
        for id in departments {
            let value = serde_json::to_string(&self.directory.department_state(id.as_str()))
                .map_err(|e| corrupt("department", id.as_str(), e))?;
            tx.put_state(OWNER, "dept", id.as_str(), &value, now_ms).await?;
        }
        if self.moved_whole_state {
            tx.delete_whole_state(WHOLE_STATE).await?;
            self.moved_whole_state = false;
        }
        Ok(())
    }
}
