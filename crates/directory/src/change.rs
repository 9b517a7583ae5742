//! Address-book updates. DingTalk's events are facts about the organisation, so they are applied even when they
//! name someone or something the file did not list: the directory follows DingTalk, never the other way round.

use serde::{Deserialize, Serialize};

use crate::{Department, DeptId, Directory, User, UserId};

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
}

/// The fields that changed; `None` means unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepartmentDiff {
    pub name: Option<String>,
    pub parent: Option<DeptId>,
    pub head: Option<UserId>,
    pub deputy_head: Option<UserId>,
}

impl Directory {
    pub fn apply(&mut self, change: DirectoryChange) {
        match change {
            DirectoryChange::UserJoined { id, name } => {
                let user = self.user_entry(id);
                user.active = true;
                user.left_at_ms = None;
                if let Some(name) = name {
                    user.name = name;
                }
            }
            DirectoryChange::UserLeft { id, at_ms } => {
                let user = self.user_entry(id);
                user.active = false;
                user.left_at_ms = Some(at_ms);
            }
            DirectoryChange::UserModified { id, diff } => self.modify_user(id, diff),
            DirectoryChange::DepartmentCreated { id, diff } | DirectoryChange::DepartmentModified { id, diff } => {
                self.modify_department(id, diff);
            }
            DirectoryChange::DepartmentRemoved { id } => self.remove_department(&id),
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

    fn modify_user(&mut self, id: UserId, diff: UserDiff) {
        if let Some(manager) = &diff.manager {
            self.ensure_user(manager);
        }
        for dept in diff.departments.iter().flatten() {
            self.ensure_department(dept);
        }
        let user = self.user_entry(id);
        if let Some(name) = diff.name {
            user.name = name;
        }
        if let Some(departments) = diff.departments {
            user.departments = departments;
        }
        if diff.manager.as_ref().is_some_and(|m| *m != user.id) {
            user.manager = diff.manager;
        }
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
        let dept = self.departments.get_mut(&id).expect("ensured above");
        if let Some(name) = diff.name {
            dept.name = name;
        }
        if parent.is_some() {
            dept.parent = parent;
        }
        if diff.head.is_some() {
            dept.head = diff.head;
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
