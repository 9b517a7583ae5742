use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DirectoryError;

fn valid(raw: &str) -> bool {
    (1..=256).contains(&raw.len()) && !raw.chars().any(char::is_control)
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, DirectoryError> {
                if valid(raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(DirectoryError::InvalidId { what: $what, id: raw.to_owned() })
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = DirectoryError;
            fn try_from(raw: String) -> Result<Self, DirectoryError> {
                if valid(&raw) { Ok(Self(raw)) } else { Err(DirectoryError::InvalidId { what: $what, id: raw }) }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        // Lets maps keyed by the id be queried with the `&str` an event carries.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// A DingTalk `userId` (the org-scoped staff id, not the `unionId`).
    UserId,
    "user"
);
text_id!(
    /// A department id. DingTalk's are numbers; the file may use readable names, so both are kept as text.
    DeptId,
    "department"
);

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
