//! Address-book updates. DingTalk's events are facts about the organisation, so they are applied even when they
//! name someone or something the file did not list: the directory follows DingTalk, never the other way round.

use serde::{Deserialize, Serialize};

use crate::history::{DepartmentState, UserHistory};
use crate::{Affiliation, Department, DeptId, Directory, User, UserId};

/// One address-book change, reduced to what the directory keeps. Serialisable so a consumer can keep the
/// changes it applied and rebuild the same directory after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryChange {
    /// Also a return: a user who left and rejoins becomes active again.
    UserJoined {
        id: UserId,
        name: Option<String>,
    },
    UserLeft {
        id: UserId,
        at_ms: i64,
    },
    UserModified {
        id: UserId,
        diff: UserDiff,
    },
    DepartmentCreated {
        id: DeptId,
        diff: DepartmentDiff,
    },
    DepartmentModified {
        id: DeptId,
        diff: DepartmentDiff,
    },
    DepartmentRemoved {
        id: DeptId,
    },
}

/// The fields that changed; `None` means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDiff {
    pub name: Option<String>,
    pub departments: Option<Vec<DeptId>>,
    pub manager: Option<UserId>,
    /// The person has no manager any more (a sync states it; an event's diff never does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear_manager: bool,
}

/// The fields that changed; `None` means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentDiff {
    pub name: Option<String>,
    pub parent: Option<DeptId>,
    pub head: Option<UserId>,
    pub deputy_head: Option<UserId>,
    /// The department has no head any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear_head: bool,
}

impl DirectoryChange {
    /// The person a change is about; `None` for department changes.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Self::UserJoined { id, .. } | Self::UserLeft { id, .. } | Self::UserModified { id, .. } => Some(id),
            Self::DepartmentCreated { .. } | Self::DepartmentModified { .. } | Self::DepartmentRemoved { .. } => None,
        }
    }

    /// The department a change is about; `None` for changes to a person.
    pub fn department(&self) -> Option<&DeptId> {
        match self {
            Self::DepartmentCreated { id, .. }
            | Self::DepartmentModified { id, .. }
            | Self::DepartmentRemoved { id } => Some(id),
            Self::UserJoined { .. } | Self::UserLeft { .. } | Self::UserModified { .. } => None,
        }
    }
}

impl Directory {
    /// Applies a change as if it had always been so, keeping no history: for changes made before any event
    /// (configuration, tests).
    pub fn apply(&mut self, change: DirectoryChange) {
        self.apply_change(&change);
    }

    /// Applies a change that took effect at `at_ms` (the address-book event's own time). A person's change is
    /// kept in their history, so [`Directory::user_at`] answers for earlier moments too; one that arrives after
    /// later changes of the same person is put in its place and the person's record rebuilt.
    pub fn apply_at(&mut self, change: DirectoryChange, at_ms: i64) {
        let Some(id) = change.user().cloned() else {
            if let Some(id) = change.department() {
                self.dirty_departments.insert(id.clone());
            }
            self.apply_change(&change);
            return;
        };
        let history = self.history.entry(id.clone()).or_default();
        if history.insert(at_ms, change.clone()) {
            self.apply_change(&change);
        } else {
            self.rebuild_user(&id);
        }
        self.fold_old_changes(&id);
        self.dirty_users.insert(id);
    }

    /// The record a person's history starts from: what was folded, else the file's, else a bare placeholder —
    /// not yet a member if their history starts with joining, a member known only by id otherwise.
    fn history_base(&self, id: &UserId) -> User {
        let history = self.history.get(id);
        let folded = history.and_then(|h| h.folded.clone());
        folded.or_else(|| self.file_users.get(id).cloned()).unwrap_or_else(|| {
            let mut user = User::placeholder(id.clone());
            let joins = history
                .and_then(|h| h.changes.first())
                .is_some_and(|(_, c)| matches!(c, DirectoryChange::UserJoined { .. }));
            user.active = !joins;
            user
        })
    }

    /// Replays a person's kept changes onto where their history starts.
    fn rebuild_user(&mut self, id: &UserId) {
        let base = self.history_base(id);
        self.users.insert(id.clone(), base);
        let changes: Vec<DirectoryChange> =
            self.history.get(id).map(|h| h.changes.iter().map(|(_, c)| c.clone()).collect()).unwrap_or_default();
        for change in &changes {
            self.apply_change(change);
        }
    }

    /// Folds the changes past the retention, or past the count, into where the history starts.
    fn fold_old_changes(&mut self, id: &UserId) {
        let count = self.history.get(id).map_or(0, UserHistory::to_fold);
        if count == 0 {
            return;
        }
        let mut base = self.history_base(id);
        let Some(history) = self.history.get_mut(id) else { return };
        for (_, change) in history.changes.drain(..count) {
            base.change(&change);
        }
        history.folded = Some(base);
    }

    /// Who `id` was at `at_ms`, by their kept history; `None` when the directory has never heard of them.
    pub fn user_at(&self, id: &str, at_ms: i64) -> Option<User> {
        let current = self.users.get(id)?;
        let Some(history) = self.history.get(id).filter(|h| h.last_change_ms().is_some_and(|t| t > at_ms)) else {
            return Some(current.clone().as_of(at_ms));
        };
        let mut user = self.history_base(&current.id);
        for (_, change) in history.changes.iter().take_while(|(t, _)| *t <= at_ms) {
            user.change(change);
        }
        Some(user.as_of(at_ms))
    }

    /// Whether `id` was a current member at `at_ms`.
    pub fn is_member_at(&self, id: &str, at_ms: i64) -> bool {
        match self.history.get(id) {
            Some(h) if h.last_change_ms().is_some_and(|t| t > at_ms) => {
                self.user_at(id, at_ms).is_some_and(|u| u.active)
            }
            _ => self.users.get(id).is_some_and(|u| u.active || u.left_at_ms.is_some_and(|left| at_ms < left)),
        }
    }

    /// [`Directory::classify`] as of `at_ms`: someone who left after then was still internal.
    pub fn classify_at(&self, user_id: &str, corp_id: Option<&str>, at_ms: i64) -> Affiliation {
        if self.is_member_at(user_id, at_ms) { Affiliation::Internal } else { self.classify(user_id, corp_id) }
    }

    /// A person's kept history, to save.
    pub fn user_history(&self, id: &str) -> Option<&UserHistory> {
        self.history.get(id)
    }

    /// A department as the address book left it, to save.
    pub fn department_state(&self, id: &str) -> DepartmentState {
        self.departments.get(id).map_or(DepartmentState::Removed, |d| DepartmentState::Present(d.clone()))
    }

    /// Puts back a person's saved history and rebuilds their record from it.
    pub fn restore_user(&mut self, id: UserId, history: UserHistory) {
        self.history.insert(id.clone(), history);
        self.rebuild_user(&id);
    }

    /// Puts back a department as it was saved.
    pub fn restore_department(&mut self, id: DeptId, state: DepartmentState) {
        match state {
            DepartmentState::Present(dept) => {
                self.departments.insert(id, dept);
            }
            DepartmentState::Removed => self.remove_department(&id),
        }
    }

    /// The people and departments changed since the last call, to save.
    pub fn take_changed(&mut self) -> (Vec<UserId>, Vec<DeptId>) {
        (
            std::mem::take(&mut self.dirty_users).into_iter().collect(),
            std::mem::take(&mut self.dirty_departments).into_iter().collect(),
        )
    }

    fn apply_change(&mut self, change: &DirectoryChange) {
        match change {
            DirectoryChange::UserJoined { id, .. } | DirectoryChange::UserLeft { id, .. } => {
                self.user_entry(id.clone()).change(change);
            }
            DirectoryChange::UserModified { id, diff } => {
                if let Some(manager) = &diff.manager {
                    self.ensure_user(manager);
                }
                for dept in diff.departments.iter().flatten() {
                    self.ensure_department(dept);
                }
                self.user_entry(id.clone()).change(change);
            }
            DirectoryChange::DepartmentCreated { id, diff } | DirectoryChange::DepartmentModified { id, diff } => {
                self.modify_department(id.clone(), diff.clone());
            }
            DirectoryChange::DepartmentRemoved { id } => self.remove_department(id),
        }
    }

    fn user_entry(&mut self, id: UserId) -> &mut User {
        self.users.entry(id.clone()).or_insert_with(|| User::placeholder(id))
    }

    fn ensure_user(&mut self, id: &UserId) {
        self.user_entry(id.clone());
    }

    fn ensure_department(&mut self, id: &DeptId) {
        self.departments.entry(id.clone()).or_insert_with(|| Department::placeholder(id.clone()));
    }

    fn modify_department(&mut self, id: DeptId, diff: DepartmentDiff) {
        for user in [&diff.head, &diff.deputy_head].into_iter().flatten() {
            self.ensure_user(user);
        }
        self.ensure_department(&id);
        // A parent that would put the department inside itself is refused; the rest of the change still applies.
        let parent = diff.parent.filter(|p| *p != id && !self.ancestors(p.as_str()).any(|a| *a == id));
        if let Some(parent) = &parent {
            self.ensure_department(parent);
        }
        let Some(dept) = self.departments.get_mut(&id) else { return };
        if let Some(name) = diff.name {
            dept.name = name;
        }
        if parent.is_some() {
            dept.parent = parent;
        }
        if diff.head.is_some() {
            dept.head = diff.head;
        } else if diff.clear_head {
            dept.head = None;
        }
        if diff.deputy_head.is_some() {
            dept.deputy_head = diff.deputy_head;
        }
    }

    /// Children move up to the removed department's parent so heads can still be resolved through them.
    fn remove_department(&mut self, id: &DeptId) {
        let Some(removed) = self.departments.remove(id) else { return };
        for dept in self.departments.values_mut() {
            if dept.parent.as_ref() == Some(id) {
                dept.parent.clone_from(&removed.parent);
            }
        }
        for user in self.users.values_mut() {
            user.departments.retain(|d| d != id);
        }
    }
}
