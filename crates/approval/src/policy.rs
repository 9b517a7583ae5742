use serde::{Deserialize, Serialize};

/// Who may fill a slot. The approval router resolves each to user ids from the directory when a request is made,
/// and the ids are frozen onto the request for the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotRole {
    /// A data protection officer.
    Dpo,
    /// A head of one of the requester's departments.
    DeptHead,
    /// Any of the named people.
    AnyOf(Vec<String>),
}

impl SlotRole {
    pub fn label(&self) -> String {
        match self {
            Self::Dpo => "dpo".into(),
            Self::DeptHead => "dept_head".into(),
            Self::AnyOf(users) => format!("any_of({})", users.join(", ")),
        }
    }

    /// The role a slot's [`label`](Self::label) names when it is held by a directory role; `None` for named
    /// people, whose slot lists them itself.
    pub fn of_label(label: &str) -> Option<Self> {
        match label {
            "dpo" => Some(Self::Dpo),
            "dept_head" => Some(Self::DeptHead),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSpec {
    pub role: SlotRole,
    /// Approvals the slot needs, from distinct people.
    pub approvals: u32,
}

/// Slots combined with AND, the time a request stays open, and when its approvers are reminded and escalated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub slots: Vec<SlotSpec>,
    pub ttl_ms: i64,
    /// Reminders, as times before expiry.
    pub remind_before_ms: Vec<i64>,
    /// When, before expiry, a slot still open is opened to its deputies too.
    pub escalate_before_ms: i64,
}

impl Default for Policy {
    /// The DPO and the requester's department head, one approval each, 24 hours, reminders 4 h and 1 h before
    /// expiry, escalation to deputies 2 h before.
    fn default() -> Self {
        Self {
            slots: vec![
                SlotSpec { role: SlotRole::Dpo, approvals: 1 },
                SlotSpec { role: SlotRole::DeptHead, approvals: 1 },
            ],
            ttl_ms: 24 * 3_600_000,
            remind_before_ms: vec![4 * 3_600_000, 3_600_000],
            escalate_before_ms: 2 * 3_600_000,
        }
    }
}
