//! What the address book said of each person over time, so an event is judged by the directory as it stood when
//! the event happened, whenever it is read. An event arrives late as a matter of course (DingTalk's failed-push
//! list, a polled audit log, a consumer catching up), and a download made on Wednesday by someone who left on
//! Friday is not a download by a departed user.
//!
//! Each person keeps the changes of the last [`HISTORY_RETENTION_MS`] (at most [`HISTORY_MAX_CHANGES`]); older
//! ones are folded into the state they left behind. So memory and what is saved grow with the people, not with
//! the events, and an event older than the retention is judged by the oldest state kept.

use serde::{Deserialize, Serialize};

use crate::{Department, DirectoryChange, User};

/// How far back the directory answers "as of then" change by change.
pub const HISTORY_RETENTION_MS: i64 = 30 * 24 * 3_600_000;
/// Changes kept per person, whatever their age: no stream of events can grow one person's history without
/// bound.
pub const HISTORY_MAX_CHANGES: usize = 64;

/// One person's kept changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHistory {
    /// The person as they stood before the first kept change; `None` when that is the directory file's record,
    /// or no record at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded: Option<User>,
    /// When each change took effect, and the change, in that order.
    pub changes: Vec<(i64, DirectoryChange)>,
}

/// A department as the address book left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepartmentState {
    Present(Department),
    Removed,
}

impl UserHistory {
    /// Where a change at `at_ms` goes: after every change at the same time or earlier.
    pub(crate) fn insert(&mut self, at_ms: i64, change: DirectoryChange) -> bool {
        let at = self.changes.partition_point(|(t, _)| *t <= at_ms);
        let in_order = at == self.changes.len();
        self.changes.insert(at, (at_ms, change));
        in_order
    }

    pub(crate) fn last_change_ms(&self) -> Option<i64> {
        self.changes.last().map(|(t, _)| *t)
    }

    /// The changes to fold into `folded`: past the count, or older than the retention before the newest.
    pub(crate) fn to_fold(&self) -> usize {
        let Some(newest) = self.last_change_ms() else { return 0 };
        let horizon = newest.saturating_sub(HISTORY_RETENTION_MS);
        let old = self.changes.iter().take_while(|(t, _)| *t < horizon).count();
        old.max(self.changes.len().saturating_sub(HISTORY_MAX_CHANGES))
    }
}

impl User {
    /// This record as it stood at `at_ms`: someone recorded as having left later was still a member then.
    pub fn as_of(mut self, at_ms: i64) -> Self {
        if self.left_at_ms.is_some_and(|left| at_ms < left) {
            self.active = true;
            self.left_at_ms = None;
        }
        self
    }

    /// The part of a change that concerns this user's own record.
    pub(crate) fn change(&mut self, change: &DirectoryChange) {
        match change {
            DirectoryChange::UserJoined { name, .. } => {
                self.active = true;
                self.left_at_ms = None;
                if let Some(name) = name {
                    self.name.clone_from(name);
                }
            }
            DirectoryChange::UserLeft { at_ms, .. } => {
                self.active = false;
                self.left_at_ms = Some(*at_ms);
            }
            DirectoryChange::UserModified { diff, .. } => {
                if let Some(name) = &diff.name {
                    self.name.clone_from(name);
                }
                if let Some(departments) = &diff.departments {
                    self.departments.clone_from(departments);
                }
                if diff.manager.as_ref().is_some_and(|m| *m != self.id) {
                    self.manager.clone_from(&diff.manager);
                } else if diff.clear_manager {
                    self.manager = None;
                }
            }
            DirectoryChange::DepartmentCreated { .. }
            | DirectoryChange::DepartmentModified { .. }
            | DirectoryChange::DepartmentRemoved { .. } => {}
        }
    }
}
