//! The YAML file shape and the whole-file checks run before a directory is accepted.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::{Department, DeptId, Directory, DirectoryError, Role, TrustedPartner, User, UserId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    organisation: Option<String>,
    #[serde(default)]
    departments: Vec<RawDepartment>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    dpos: Vec<String>,
    #[serde(default)]
    trusted_partners: Vec<RawPartner>,
}

/// DingTalk department ids are integers, so a file copied from the API may leave them unquoted.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDeptId {
    Text(String),
    Number(i64),
}

impl RawDeptId {
    fn parse(&self) -> Result<DeptId, DirectoryError> {
        match self {
            Self::Text(s) => Ok(DeptId::parse(s)?),
            Self::Number(n) => Ok(DeptId::parse(&n.to_string())?),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDepartment {
    id: RawDeptId,
    name: String,
    parent: Option<RawDeptId>,
    head: Option<String>,
    deputy_head: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    id: String,
    name: String,
    #[serde(default)]
    departments: Vec<RawDeptId>,
    #[serde(default)]
    roles: Vec<String>,
    deputy: Option<String>,
    manager: Option<String>,
    /// Defaults to "has not left".
    active: Option<bool>,
    left_at_ms: Option<i64>,
    /// DingTalk's cross-organisation id for the person, which some events name them by instead of `userId`.
    union_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    name: String,
    #[serde(default)]
    corp_ids: Vec<String>,
    #[serde(default)]
    user_id_prefixes: Vec<String>,
}

fn opt_user(raw: Option<&String>) -> Result<Option<UserId>, DirectoryError> {
    Ok(raw.map(|s| UserId::parse(s)).transpose()?)
}

fn department(raw: &RawDepartment) -> Result<Department, DirectoryError> {
    Ok(Department {
        id: raw.id.parse()?,
        name: raw.name.clone(),
        parent: raw.parent.as_ref().map(RawDeptId::parse).transpose()?,
        head: opt_user(raw.head.as_ref())?,
        deputy_head: opt_user(raw.deputy_head.as_ref())?,
    })
}

fn user(raw: &RawUser) -> Result<User, DirectoryError> {
    let id = UserId::parse(&raw.id)?;
    let roles = raw
        .roles
        .iter()
        .map(|r| r.parse::<Role>().map_err(|()| DirectoryError::UnknownRole { user: raw.id.clone(), role: r.clone() }))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(User {
        departments: raw.departments.iter().map(RawDeptId::parse).collect::<Result<_, _>>()?,
        roles,
        deputy: opt_user(raw.deputy.as_ref())?,
        manager: opt_user(raw.manager.as_ref())?,
        active: raw.active.unwrap_or(raw.left_at_ms.is_none()),
        left_at_ms: raw.left_at_ms,
        name: raw.name.clone(),
        id,
    })
}

fn check_departments(dir: &Directory, order: &[DeptId]) -> Result<(), DirectoryError> {
    for id in order {
        let dept = &dir.departments[id];
        if let Some(parent) = &dept.parent
            && !dir.departments.contains_key(parent)
        {
            return Err(DirectoryError::UnknownParent { department: id.to_string(), parent: parent.to_string() });
        }
        for (slot, user) in [("head", &dept.head), ("deputy head", &dept.deputy_head)] {
            if let Some(user) = user
                && !dir.users.contains_key(user)
            {
                return Err(DirectoryError::UnknownHead { department: id.to_string(), user: user.to_string(), slot });
            }
        }
        if dir.ancestors(id.as_str()).any(|a| a == id) {
            return Err(DirectoryError::DepartmentCycle { department: id.to_string() });
        }
    }
    Ok(())
}

fn check_users(dir: &Directory, order: &[UserId]) -> Result<(), DirectoryError> {
    for id in order {
        let user = &dir.users[id];
        if let Some(dept) = user.departments.iter().find(|d| !dir.departments.contains_key(*d)) {
            return Err(DirectoryError::UnknownDepartment { user: id.to_string(), department: dept.to_string() });
        }
        if user.deputy.as_ref() == Some(id) {
            return Err(DirectoryError::SelfDeputy(id.to_string()));
        }
        for (relation, other) in [("deputy", &user.deputy), ("manager", &user.manager)] {
            if let Some(other) = other
                && !dir.users.contains_key(other)
            {
                return Err(DirectoryError::UnknownRelation {
                    user: id.to_string(),
                    other: other.to_string(),
                    relation,
                });
            }
        }
    }
    Ok(())
}

impl Directory {
    /// Parses and checks a whole directory file. Nothing is accepted unless every reference resolves, so queries
    /// never meet a dangling id from the file.
    pub fn from_yaml(text: &str) -> Result<Directory, DirectoryError> {
        let raw: RawFile = serde_norway::from_str(text).map_err(|e| DirectoryError::Yaml(e.to_string()))?;
        let mut dir = Directory { organisation: raw.organisation, ..Directory::default() };

        let mut dept_order = Vec::with_capacity(raw.departments.len());
        for raw_dept in &raw.departments {
            let dept = department(raw_dept)?;
            dept_order.push(dept.id.clone());
            if let Some(dup) = dir.departments.insert(dept.id.clone(), dept) {
                return Err(DirectoryError::DuplicateDepartment(dup.id.to_string()));
            }
        }
        let mut user_order = Vec::with_capacity(raw.users.len());
        for raw_user in &raw.users {
            let user = user(raw_user)?;
            user_order.push(user.id.clone());
            if let Some(union) = raw_user.union_id.as_deref().map(str::trim).filter(|u| !u.is_empty())
                && let Some(other) = dir.unions.insert(union.to_owned(), user.id.clone())
            {
                return Err(DirectoryError::DuplicateUnionId {
                    union_id: union.to_owned(),
                    users: [other.to_string(), user.id.to_string()],
                });
            }
            if let Some(dup) = dir.users.insert(user.id.clone(), user) {
                return Err(DirectoryError::DuplicateUser(dup.id.to_string()));
            }
        }
        check_departments(&dir, &dept_order)?;
        check_users(&dir, &user_order)?;

        // The list and the role say the same thing; accept either and keep them in step.
        let mut dpos = Vec::new();
        for raw_id in &raw.dpos {
            let id = UserId::parse(raw_id)?;
            let user = dir.users.get_mut(&id).ok_or_else(|| DirectoryError::UnknownDpo(raw_id.clone()))?;
            user.roles.insert(Role::Dpo);
            if !dpos.contains(&id) {
                dpos.push(id);
            }
        }
        for id in &user_order {
            if dir.users[id].roles.contains(&Role::Dpo) && !dpos.contains(id) {
                dpos.push(id.clone());
            }
        }
        dir.dpos = dpos;
        dir.file_users = std::sync::Arc::new(dir.users.clone());

        for partner in raw.trusted_partners {
            if partner.corp_ids.iter().chain(&partner.user_id_prefixes).any(|s| s.trim().is_empty()) {
                return Err(DirectoryError::EmptyTrust(partner.name));
            }
            dir.trusted.push(TrustedPartner {
                name: partner.name,
                corp_ids: partner.corp_ids,
                user_id_prefixes: partner.user_id_prefixes,
            });
        }
        Ok(dir)
    }
}
