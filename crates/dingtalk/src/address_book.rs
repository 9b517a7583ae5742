//! DingTalk's address-book API (https://open.dingtalk.com/document/orgapp/user-management-overview): the answers
//! a directory sync reads, and the events of ours it writes for what it found.
//!
//! * `POST /topapi/v2/department/listsub` `{dept_id}` → the direct sub-departments (the root is 1).
//! * `POST /topapi/v2/department/get` `{dept_id}` → one department with `dept_manager_userid_list`, its heads.
//! * `POST /topapi/v2/user/list` `{dept_id, cursor, size ≤ 100}` → a page of a department's people, each with
//!   `dept_id_list`, `manager_userid` and `leader` (heads this department); `has_more` and `next_cursor`.
//! * `POST /topapi/v2/user/get` `{userid}` → one person.
//! * `POST /topapi/user/listadmin` → the organisation's administrators.
//! * `POST /topapi/smartwork/hrm/employee/querydimission` `{offset, size ≤ 50}` → ids of people who left, and
//!   `POST /topapi/smartwork/hrm/employee/listdimission` `{userid_list}` → when each left (`last_work_day`).
//!
//! Every answer is `{"errcode":0, "result": …}`; the legacy client checks `errcode`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const LIST_SUB_PATH: &str = "/topapi/v2/department/listsub";
pub const DEPARTMENT_PATH: &str = "/topapi/v2/department/get";
pub const USER_LIST_PATH: &str = "/topapi/v2/user/list";
pub const USER_PATH: &str = "/topapi/v2/user/get";
pub const ADMINS_PATH: &str = "/topapi/user/listadmin";
pub const LEAVER_IDS_PATH: &str = "/topapi/smartwork/hrm/employee/querydimission";
pub const LEAVERS_PATH: &str = "/topapi/smartwork/hrm/employee/listdimission";

/// The root department of every organisation.
pub const ROOT_DEPARTMENT: i64 = 1;
/// The most people one `user/list` page holds.
pub const MAX_USER_PAGE: usize = 100;
/// The most leaver ids one `querydimission` page holds.
pub const MAX_LEAVER_PAGE: usize = 50;

/// The type of the event a sync writes for one person, and for one department: ours, not DingTalk's.
pub const USER_EVENT: &str = "directory_user";
pub const DEPARTMENT_EVENT: &str = "directory_department";

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Answer<T> {
    pub result: T,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubDepartment {
    pub dept_id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DepartmentDetail {
    pub dept_id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<i64>,
    #[serde(default)]
    pub dept_manager_userid_list: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UserPage {
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub next_cursor: Option<i64>,
    #[serde(default)]
    pub list: Vec<AddressBookUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AddressBookUser {
    pub userid: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub dept_id_list: Vec<i64>,
    #[serde(default)]
    pub manager_userid: Option<String>,
    /// Heads the department whose list this came from.
    #[serde(default)]
    pub leader: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Admin {
    pub userid: String,
    /// 1 the main administrator, 2 a sub-administrator.
    #[serde(default)]
    pub sys_level: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeaverIds {
    #[serde(default)]
    pub data_list: Vec<String>,
    #[serde(default)]
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Leaver {
    pub userid: String,
    /// When they left, ms.
    #[serde(default)]
    pub last_work_day: Option<i64>,
}

/// A person as a sync found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedUser {
    pub id: String,
    pub name: String,
    pub departments: Vec<String>,
    pub manager: Option<String>,
    /// When they left, for someone on the leavers' list.
    pub left_at_ms: Option<i64>,
    pub org_admin: bool,
}

/// A department as a sync found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncedDepartment {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    pub head: Option<String>,
    /// Gone from the address book since the last sync.
    #[serde(default)]
    pub removed: bool,
}

impl From<AddressBookUser> for SyncedUser {
    /// A person as a department's list or `user/get` gives them: present, not an administrator until the
    /// administrators' list says so.
    fn from(person: AddressBookUser) -> Self {
        Self {
            id: person.userid,
            name: person.name,
            departments: person.dept_id_list.iter().map(i64::to_string).collect(),
            manager: person.manager_userid.filter(|m| !m.is_empty()),
            left_at_ms: None,
            org_admin: false,
        }
    }
}

impl SyncedUser {
    /// Someone the address book names only by id (a leaver a sync never saw present).
    pub fn known_only_by(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: id.to_owned(),
            departments: Vec::new(),
            manager: None,
            left_at_ms: None,
            org_admin: false,
        }
    }

    /// Our `directory_user` event, dated `at_ms` (when the sync saw it), under `event_id`.
    pub fn event(&self, corp_id: Option<&str>, at_ms: i64, event_id: &str) -> Vec<u8> {
        let mut event = json!({
            "EventType": USER_EVENT, "EventTime": at_ms, "eventId": event_id,
            "userId": self.id, "name": self.name, "deptIdList": self.departments,
            "active": self.left_at_ms.is_none(), "orgAdmin": self.org_admin,
        });
        if let Some(corp) = corp_id {
            event["CorpId"] = Value::from(corp);
        }
        if let Some(manager) = &self.manager {
            event["managerUserid"] = Value::from(manager.as_str());
        }
        if let Some(left) = self.left_at_ms {
            event["leftAtMs"] = Value::from(left);
        }
        serde_json::to_vec(&event).unwrap_or_default()
    }
}

impl SyncedDepartment {
    /// Our `directory_department` event, dated `at_ms`, under `event_id`.
    pub fn event(&self, corp_id: Option<&str>, at_ms: i64, event_id: &str) -> Vec<u8> {
        let mut event = json!({
            "EventType": DEPARTMENT_EVENT, "EventTime": at_ms, "eventId": event_id,
            "deptId": self.id, "name": self.name,
        });
        if let Some(corp) = corp_id {
            event["CorpId"] = Value::from(corp);
        }
        if let Some(parent) = &self.parent {
            event["parentId"] = Value::from(parent.as_str());
        }
        if let Some(head) = &self.head {
            event["deptManagerUserid"] = Value::from(head.as_str());
        }
        if self.removed {
            event["removed"] = Value::Bool(true);
        }
        serde_json::to_vec(&event).unwrap_or_default()
    }
}
