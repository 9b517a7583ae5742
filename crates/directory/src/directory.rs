use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::history::UserHistory;
use crate::{Affiliation, Department, DeptId, Role, TrustedPartner, User, UserId};

/// The organisation as dingguard knows it. Built by [`Directory::from_yaml`], updated by [`Directory::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    pub(crate) organisation: Option<String>,
    pub(crate) users: BTreeMap<UserId, User>,
    pub(crate) departments: BTreeMap<DeptId, Department>,
    /// In file order, so the first listed DPO is asked first where order matters.
    pub(crate) dpos: Vec<UserId>,
    pub(crate) trusted: Vec<TrustedPartner>,
    /// The people as the directory file lists them: where a history without a folded state starts.
    pub(crate) file_users: Arc<BTreeMap<UserId, User>>,
    /// The address-book changes kept per person, with when they took effect.
    pub(crate) history: HashMap<UserId, UserHistory>,
    /// DingTalk `unionId` → the person's `userId`, as the directory file states them.
    pub(crate) unions: BTreeMap<String, UserId>,
    pub(crate) dirty_users: BTreeSet<UserId>,
    pub(crate) dirty_departments: BTreeSet<DeptId>,
}

impl Directory {
    pub fn organisation(&self) -> Option<&str> {
        self.organisation.as_deref()
    }

    /// The `userId` of the person an id names: the id itself when it is a `userId` the directory knows, else the
    /// person whose DingTalk `unionId` it is. `None` for an id the directory cannot vouch for.
    pub fn resolve_id<'a>(&'a self, id: &str) -> Option<&'a UserId> {
        self.users.get_key_value(id).map(|(k, _)| k).or_else(|| self.unions.get(id))
    }

    /// Whether the directory file itself records `id` as gone by `at_ms` — a fact that does not depend on when
    /// address-book events are read, unlike a departure an event reports.
    pub fn listed_as_left_at(&self, id: &str, at_ms: i64) -> bool {
        self.file_users.get(id).is_some_and(|u| !u.active && u.left_at_ms.is_none_or(|left| left <= at_ms))
    }

    /// Any user the directory has a record of, including those who have left.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.get(id)
    }

    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    pub fn trusted_partners(&self) -> &[TrustedPartner] {
        &self.trusted
    }

    /// A current member: known and not departed.
    pub fn is_member(&self, id: &str) -> bool {
        self.user(id).is_some_and(|u| u.active)
    }

    /// Unknown ids are external: a group member the directory cannot vouch for must be treated as an outsider.
    /// People who have left are external too, since they no longer have a business need for the data.
    pub fn classify(&self, user_id: &str, corp_id: Option<&str>) -> Affiliation {
        if self.is_member(user_id) {
            Affiliation::Internal
        } else if self.trusted.iter().any(|p| p.matches(user_id, corp_id)) {
            Affiliation::TrustedExternal
        } else {
            Affiliation::External
        }
    }

    /// Only current members hold roles; a departed DPO must not fill an approval slot.
    pub fn has_role(&self, user_id: &str, role: Role) -> bool {
        self.user(user_id).is_some_and(|u| u.active && u.roles.contains(&role))
    }

    /// Whether a current member holds any say over others' data: a role, a department to head (or deputise for),
    /// or someone to stand in for. Such people decide approvals, so nobody may mint a way into their account.
    pub fn holds_responsibility(&self, user_id: &str) -> bool {
        let Some(user) = self.user(user_id).filter(|u| u.active) else { return false };
        !user.roles.is_empty()
            || self.dpos.iter().any(|d| d.as_str() == user_id)
            || self.departments.values().any(|d| {
                d.head.as_ref().is_some_and(|h| h.as_str() == user_id)
                    || d.deputy_head.as_ref().is_some_and(|h| h.as_str() == user_id)
            })
            || self.users.values().any(|u| u.deputy.as_ref().is_some_and(|d| d.as_str() == user_id))
    }

    /// The DPOs who can act now.
    pub fn dpos(&self) -> Vec<UserId> {
        self.dpos.iter().filter(|id| self.is_member(id.as_str())).cloned().collect()
    }

    /// The parents of a department, nearest first. Stops after as many steps as there are departments, so a
    /// cycle introduced by events cannot hang a caller.
    pub fn ancestors<'a>(&'a self, dept: &str) -> impl Iterator<Item = &'a DeptId> + 'a {
        let mut current = self.departments.get(dept).and_then(|d| d.parent.as_ref());
        std::iter::from_fn(move || {
            let here = current?;
            current = self.departments.get(here).and_then(|d| d.parent.as_ref());
            Some(here)
        })
        .take(self.departments.len())
    }

    /// Who approves as "head of the requester's department", one per department the user is in.
    ///
    /// The requester never approves their own request, so a head's request goes to the head of the parent
    /// department (not to their own deputy, who reports to them). A head who has left, or a department without
    /// one, falls to the deputy head, then to the parent department.
    pub fn department_heads_of(&self, user_id: &str) -> Vec<UserId> {
        let mut heads: Vec<UserId> = Vec::new();
        for dept_id in self.user(user_id).map(|u| u.departments.as_slice()).unwrap_or_default() {
            let chain = std::iter::once(dept_id).chain(self.ancestors(dept_id.as_str()));
            let found = chain.filter_map(|d| self.departments.get(d)).find_map(|dept| {
                if dept.head.as_ref().is_some_and(|h| h.as_str() == user_id) {
                    return None;
                }
                self.stand_in(&dept.head, user_id).or_else(|| self.stand_in(&dept.deputy_head, user_id))
            });
            if let Some(head) = found
                && !heads.contains(head)
            {
                heads.push(head.clone());
            }
        }
        heads
    }

    /// The candidate, if they are a current member other than the requester.
    fn stand_in<'a>(&self, candidate: &'a Option<UserId>, requester: &str) -> Option<&'a UserId> {
        candidate.as_ref().filter(|id| id.as_str() != requester && self.is_member(id.as_str()))
    }

    /// Who acts for a user while they are away: their own deputy, else the deputy head of a department they head.
    pub fn deputy_of(&self, user_id: &str) -> Option<UserId> {
        let user = self.user(user_id)?;
        let own = user.deputy.as_ref().filter(|d| self.is_member(d.as_str()));
        let as_head = || {
            let mut headed = self.departments.values().filter(|d| d.head.as_ref() == Some(&user.id));
            headed.find_map(|d| self.stand_in(&d.deputy_head, user_id))
        };
        own.or_else(as_head).cloned()
    }
}
