use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::{DeptId, Role, UserId};

/// How an identity relates to the organisation, as far as the directory can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Affiliation {
    /// A current member of the organisation.
    Internal,
    /// Not a member, but from a partner the organisation has vetted (an auditor, a law firm).
    TrustedExternal,
    /// Anyone else, including ids the directory has never heard of and people who have left.
    External,
}

impl Affiliation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::TrustedExternal => "trusted_external",
            Self::External => "external",
        }
    }

    pub fn is_external(self) -> bool {
        self != Self::Internal
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// In the order the file or DingTalk listed them; the first is treated as the primary department.
    pub departments: Vec<DeptId>,
    pub roles: BTreeSet<Role>,
    /// Who acts for this user while they are away.
    pub deputy: Option<UserId>,
    /// The user's line manager, as DingTalk's `managerUserid` reports it.
    pub manager: Option<UserId>,
    /// False once the user has left; the record stays so late activity can still be judged.
    pub active: bool,
    pub left_at_ms: Option<i64>,
}

impl User {
    /// A user known only by id, as address-book events introduce them before any sync fills in the rest.
    pub(crate) fn placeholder(id: UserId) -> Self {
        Self {
            name: id.as_str().to_owned(),
            id,
            departments: Vec::new(),
            roles: BTreeSet::new(),
            deputy: None,
            manager: None,
            active: true,
            left_at_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    pub id: DeptId,
    pub name: String,
    pub parent: Option<DeptId>,
    pub head: Option<UserId>,
    pub deputy_head: Option<UserId>,
}

impl Department {
    pub(crate) fn placeholder(id: DeptId) -> Self {
        Self { name: id.as_str().to_owned(), id, parent: None, head: None, deputy_head: None }
    }
}

/// An outside organisation whose people are vetted. Matching is by DingTalk corp id or by user-id prefix, because
/// an external member's corp id is usually not in the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustedPartner {
    pub name: String,
    pub corp_ids: Vec<String>,
    pub user_id_prefixes: Vec<String>,
}

impl TrustedPartner {
    pub fn matches(&self, user_id: &str, corp_id: Option<&str>) -> bool {
        corp_id.is_some_and(|corp| self.corp_ids.iter().any(|c| c == corp))
            || self.user_id_prefixes.iter().any(|p| user_id.starts_with(p.as_str()))
    }
}
