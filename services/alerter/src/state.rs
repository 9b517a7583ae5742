//! What the alerter remembers between batches — rule windows, the groups it has seen and their titles, the
//! directory's history from address-book events — saved a row per thing in the transaction of the batch that
//! changed it. A batch writes what it changed, so catching up on a long backlog does not slow down as state grows.
//!
//! Replicas share these rows, and a rule's key is not the record's: a download (keyed by its user) and an
//! outsider joining (keyed by the group) meet in one group's window, wherever their partitions are read. So a
//! window is not owned by a partition; each replica keeps the rows it has seen with their versions, writes a row
//! only over the version it read ([`Saved::Stale`] when another replica wrote it since: the batch is judged
//! again on fresh state), and takes in what the others wrote between batches ([`AlerterState::refresh`]).
//! A partition that moves in a rebalance needs nothing of its own: its windows are the rows.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

use dingguard_directory::{DeptId, Directory, DirectoryChange, UserId};
use dingguard_events::InMemoryGroupTracker;
use dingguard_rules::{Engine, WindowState};
use dingguard_store::{AlertTx, StateRow, StoreError, Written};
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

/// How far before the last refresh to read again: a replica's transaction may commit a little after the time it
/// stamped on its rows, and replicas' clocks differ by a little.
const REFRESH_OVERLAP_MS: i64 = 10_000;

/// Kinds of row written only over the version read: they accumulate, so a stale copy would lose what another
/// replica added. Titles and the groups seen are facts the last writer states whole.
const VERSIONED: [&str; 3] = ["window", "user", "dept"];

pub(crate) struct AlerterState {
    pub engine: Engine,
    pub groups: InMemoryGroupTracker,
    pub titles: GroupTitles,
    pub directory: Directory,
    /// The version of each versioned row as this replica last read or wrote it.
    versions: HashMap<(&'static str, String), i64>,
    /// Where the next refresh reads from, by the writers' clocks.
    refreshed_ms: i64,
    /// The earlier layout's row, to delete once its contents are saved as rows.
    moved_whole_state: bool,
}

/// What saving a batch's changes found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Saved {
    Done,
    /// Another replica changed this row since it was read: nothing of the batch may be committed.
    Stale {
        kind: &'static str,
        key: String,
    },
}

/// A token no other writer gives a row: a random prefix for this process and a count within it.
fn next_version() -> i64 {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = *PREFIX.get_or_init(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        (hasher.finish() >> 33) as u32
    });
    (i64::from(prefix) << 32) | i64::from(COUNT.fetch_add(1, Ordering::Relaxed))
}

fn versioned(kind: &str) -> Option<&'static str> {
    VERSIONED.into_iter().find(|k| *k == kind)
}

fn corrupt(what: &str, key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("alerter state {what} {key:?}: {e}"))
}

impl AlerterState {
    pub async fn load(shared: &Shared) -> Result<Self, StoreError> {
        // Read from before the load, so what another replica commits while it runs is read again.
        let started_ms = shared.clock.now_ms();
        let mut state = Self {
            engine: Engine::new(shared.rules.read().clone()),
            groups: InMemoryGroupTracker::default(),
            titles: GroupTitles::default(),
            directory: shared.directory.clone(),
            versions: HashMap::new(),
            refreshed_ms: started_ms,
            moved_whole_state: false,
        };
        let rows = shared.store.load_keyed_state(OWNER).await?;
        if rows.is_empty()
            && let Some(text) = shared.store.load_state(WHOLE_STATE).await?
        {
            state.move_whole_state(&text)?;
            return Ok(state);
        }
        state.take_in(rows)?;
        Ok(state)
    }

    /// Takes in what other replicas wrote since the last refresh; rows this replica holds at the same version
    /// are its own writes and stay as they are. Call between batches, with nothing unsaved.
    pub async fn refresh(&mut self, shared: &Shared) -> Result<usize, StoreError> {
        let started_ms = shared.clock.now_ms();
        let rows = shared.store.keyed_state_since(OWNER, self.refreshed_ms - REFRESH_OVERLAP_MS).await?;
        self.refreshed_ms = started_ms;
        let fresh: Vec<StateRow> = rows
            .into_iter()
            .filter(|row| match versioned(&row.kind) {
                Some(kind) => self.versions.get(&(kind, row.key.clone())) != Some(&row.version),
                None => true,
            })
            .collect();
        let taken = fresh.len();
        self.take_in(fresh)?;
        Ok(taken)
    }

    fn take_in(&mut self, rows: Vec<StateRow>) -> Result<(), StoreError> {
        let state = self;
        let mut departments = Vec::new();
        for row in rows {
            if let Some(kind) = versioned(&row.kind) {
                state.versions.insert((kind, row.key.clone()), row.version);
            }
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
        Ok(())
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

    /// Writes what changed since the last save into `tx`, the batch's own transaction; [`Saved::Stale`] when a row
    /// changed under it, and then the transaction must be dropped and the state loaded again.
    pub async fn save(&mut self, tx: &mut AlertTx<'_>, now_ms: i64) -> Result<Saved, StoreError> {
        let mut windows = self.engine.state_mut().take_changed();
        // One order for every replica, so two batches over the same rows wait on each other, never deadlock.
        windows.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, window) in windows {
            let value = match window {
                Some(window) => Some(serde_json::to_string(&window).map_err(|e| corrupt("window", &id, e))?),
                None => None,
            };
            if let Saved::Stale { kind, key } = self.write(tx, "window", id, value, now_ms).await? {
                return Ok(Saved::Stale { kind, key });
            }
        }
        let groups = if self.moved_whole_state { self.groups.all_rows() } else { self.groups.take_changed() };
        for (kind, key, value) in groups {
            tx.put_state(OWNER, kind, &key, &value, now_ms).await?;
        }
        for (group, title) in self.titles.take_changed() {
            tx.put_state(OWNER, "title", &group, &title, now_ms).await?;
        }
        let (mut users, mut departments) = self.directory.take_changed();
        users.sort();
        departments.sort();
        for id in users {
            if let Some(history) = self.directory.user_history(id.as_str()) {
                let value = serde_json::to_string(history).map_err(|e| corrupt("user", id.as_str(), e))?;
                if let Saved::Stale { kind, key } =
                    self.write(tx, "user", id.as_str().to_owned(), Some(value), now_ms).await?
                {
                    return Ok(Saved::Stale { kind, key });
                }
            }
        }
        for id in departments {
            let value = serde_json::to_string(&self.directory.department_state(id.as_str()))
                .map_err(|e| corrupt("department", id.as_str(), e))?;
            if let Saved::Stale { kind, key } =
                self.write(tx, "dept", id.as_str().to_owned(), Some(value), now_ms).await?
            {
                return Ok(Saved::Stale { kind, key });
            }
        }
        if self.moved_whole_state {
            tx.delete_whole_state(WHOLE_STATE).await?;
            self.moved_whole_state = false;
        }
        Ok(Saved::Done)
    }

    /// Writes (or, without a value, deletes) one versioned row over the version this replica holds.
    async fn write(
        &mut self,
        tx: &mut AlertTx<'_>,
        kind: &'static str,
        key: String,
        value: Option<String>,
        now_ms: i64,
    ) -> Result<Saved, StoreError> {
        let slot = (kind, key);
        let expected = self.versions.get(&slot).copied();
        let written = match &value {
            Some(value) => {
                let version = next_version();
                let written = tx.put_state_if(OWNER, kind, &slot.1, value, now_ms, expected, version).await?;
                if written == Written::Done {
                    self.versions.insert(slot.clone(), version);
                }
                written
            }
            None => {
                let written = tx.delete_state_if(OWNER, kind, &slot.1, expected).await?;
                if written == Written::Done {
                    self.versions.remove(&slot);
                }
                written
            }
        };
        Ok(match written {
            Written::Done => Saved::Done,
            Written::Stale => Saved::Stale { kind, key: slot.1 },
        })
    }
}
