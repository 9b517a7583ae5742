//! Keeps the directory current from the address-book events the normaliser produced.

use dingguard_dingtalk::fields;
use dingguard_directory::{DepartmentDiff, DeptId, DirectoryChange, UserDiff, UserId};
use serde_json::Value;

use crate::{CanonicalEvent, DeptChange, EventKind};

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `user_modify_org`'s `curr` side, in the spellings DingTalk's user objects use.
fn user_diff(diff: &Value) -> UserDiff {
    let curr = diff.get("curr");
    let departments = curr
        .and_then(|c| fields::USER_DEPARTMENTS.list_in(c))
        .map(|list| list.iter().filter_map(|d| text(Some(d)).and_then(|d| DeptId::parse(&d).ok())).collect());
    UserDiff {
        name: curr.and_then(|c| fields::USER_NAME.text_in(c)),
        departments,
        manager: curr.and_then(|c| fields::USER_MANAGER.text_in(c)).and_then(|m| UserId::parse(&m).ok()),
        clear_manager: false,
    }
}

/// The type to judge a record as. Our address-book types are facts only the directory source states (it marks its
/// records `source: directory`); from anyone else, such as an integration posting through the signed callback, they
/// would let the poster name department heads or mark people gone, so they are judged as what they are: a claim,
/// which changes nothing.
pub fn believed_type<'a>(event_type: &'a str, origin: Option<&str>) -> &'a str {
    let ours = matches!(
        event_type,
        dingguard_dingtalk::address_book::USER_EVENT | dingguard_dingtalk::address_book::DEPARTMENT_EVENT
    );
    if ours && origin != Some(dingguard_model::Origin::Directory.as_str()) { "directory_claim" } else { event_type }
}

/// Whether a stored record of this DingTalk type can yield [`CanonicalEvent::directory_changes`], so a consumer
/// that only keeps the directory current can skip normalising everything else.
pub fn may_change_directory(event_type: &str) -> bool {
    matches!(
        event_type,
        "user_add_org"
            | "user_leave_org"
            | "user_modify_org"
            | dingguard_dingtalk::address_book::USER_EVENT
            | dingguard_dingtalk::address_book::DEPARTMENT_EVENT
    ) || event_type.starts_with("org_dept_")
}

impl CanonicalEvent {
    /// What this event changes in the directory; empty for events that are not address-book changes. Apply these
    /// after judging the event, so its actor is seen as they were when it happened.
    pub fn directory_changes(&self) -> Vec<DirectoryChange> {
        self.directory_changes_at().into_iter().map(|(change, _)| change).collect()
    }

    /// [`Self::directory_changes`], each with when it took effect: the event's time, except a synced leaver's
    /// departure, which took effect when they left.
    pub fn directory_changes_at(&self) -> Vec<(DirectoryChange, i64)> {
        let at = self.occurred_at_ms;
        let user = |id: &str| UserId::parse(id).ok();
        let dept = |id: &str| DeptId::parse(id).ok();
        match &self.kind {
            EventKind::UserSynced { user: id, name, departments, manager, left_at_ms, .. } => {
                let Some(id) = user(id) else { return Vec::new() };
                // A sync states the whole record: no manager means none.
                let manager = manager.as_deref().and_then(user);
                let diff = UserDiff {
                    name: name.clone(),
                    departments: Some(departments.iter().filter_map(|d| dept(d)).collect()),
                    clear_manager: manager.is_none(),
                    manager,
                };
                let modified = DirectoryChange::UserModified { id: id.clone(), diff };
                match left_at_ms {
                    // Their facts as last known, then the departure when it happened (never after the sync).
                    Some(left) => {
                        // Never after the sync saw them gone; a time before 2000 is no time, so the sync's.
                        let left = if *left < 946_684_800_000 { at } else { (*left).min(at) };
                        vec![(modified, left.saturating_sub(1)), (DirectoryChange::UserLeft { id, at_ms: left }, left)]
                    }
                    None => vec![(DirectoryChange::UserJoined { id, name: name.clone() }, at), (modified, at)],
                }
            }
            EventKind::DepartmentSynced { dept_id, removed: true, .. } => {
                dept(dept_id).map(|id| (DirectoryChange::DepartmentRemoved { id }, at)).into_iter().collect()
            }
            EventKind::DepartmentSynced { dept_id, name, parent, head, .. } => {
                let Some(id) = dept(dept_id) else { return Vec::new() };
                let head = head.as_deref().and_then(user);
                let diff = DepartmentDiff {
                    name: name.clone(),
                    parent: parent.as_deref().and_then(dept),
                    clear_head: head.is_none(),
                    head,
                    deputy_head: None,
                };
                vec![(DirectoryChange::DepartmentModified { id, diff }, at)]
            }
            _ => self.address_book_changes().into_iter().map(|change| (change, at)).collect(),
        }
    }

    fn address_book_changes(&self) -> Vec<DirectoryChange> {
        let user = |id: &str| UserId::parse(id).ok();
        match &self.kind {
            EventKind::UserJoined { user: id } => {
                user(id).map(|id| DirectoryChange::UserJoined { id, name: None }).into_iter().collect()
            }
            EventKind::UserLeft { user: id } => {
                user(id).map(|id| DirectoryChange::UserLeft { id, at_ms: self.occurred_at_ms }).into_iter().collect()
            }
            EventKind::UserChanged { user: id, diff } => {
                user(id).map(|id| DirectoryChange::UserModified { id, diff: user_diff(diff) }).into_iter().collect()
            }
            EventKind::DepartmentChanged { change, dept_ids } => dept_ids
                .iter()
                .filter_map(|d| DeptId::parse(d).ok())
                .map(|id| match change {
                    DeptChange::Created => DirectoryChange::DepartmentCreated { id, diff: DepartmentDiff::default() },
                    DeptChange::Modified => DirectoryChange::DepartmentModified { id, diff: DepartmentDiff::default() },
                    DeptChange::Removed => DirectoryChange::DepartmentRemoved { id },
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}
