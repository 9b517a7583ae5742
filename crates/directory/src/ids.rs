use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use dingguard_model::{DeptId, UserId};

/// What a user may do beyond being an employee. Approval slots and alert routing are typed by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Data protection officer: fills the DPO slot of every dual approval.
    Dpo,
    /// Receives and handles violation alerts.
    Security,
    /// Administers dingguard itself.
    Admin,
    /// May approve requests routed to them outside the DPO and head slots.
    Approver,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Dpo, Role::Security, Role::Admin, Role::Approver];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpo => "dpo",
            Self::Security => "security",
            Self::Admin => "admin",
            Self::Approver => "approver",
        }
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(raw: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw).ok_or(())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
