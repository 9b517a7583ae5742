/// Why a directory file was refused. Each variant names the offending id so the fix is obvious.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory file is not valid YAML of the expected shape: {0}")]
    Yaml(String),
    #[error("{what} id {id:?} must be 1–256 characters without control characters")]
    InvalidId { what: &'static str, id: String },
    #[error("user id `{0}` appears more than once")]
    DuplicateUser(String),
    #[error("union id `{union_id}` is given to both `{}` and `{}`", users[0], users[1])]
    DuplicateUnionId { union_id: String, users: [String; 2] },
    #[error("department id `{0}` appears more than once")]
    DuplicateDepartment(String),
    #[error("user `{user}` belongs to unknown department `{department}`")]
    UnknownDepartment { user: String, department: String },
    #[error("department `{department}` has unknown parent `{parent}`")]
    UnknownParent { department: String, parent: String },
    #[error("department `{department}` is inside itself through its parents")]
    DepartmentCycle { department: String },
    #[error("department `{department}` names `{user}` as its {slot}, but no such user exists")]
    UnknownHead { department: String, user: String, slot: &'static str },
    #[error("user `{user}` names `{other}` as their {relation}, but no such user exists")]
    UnknownRelation { user: String, other: String, relation: &'static str },
    #[error("user `{0}` cannot be their own deputy")]
    SelfDeputy(String),
    #[error("user `{user}` has unknown role `{role}` (expected dpo, security, admin or approver)")]
    UnknownRole { user: String, role: String },
    #[error("DPO `{0}` is not a known user")]
    UnknownDpo(String),
    #[error("trusted partner `{0}` has an empty corp id or user-id prefix, which would trust everyone")]
    EmptyTrust(String),
}

impl From<dingguard_model::IdError> for DirectoryError {
    fn from(error: dingguard_model::IdError) -> Self {
        match error {
            dingguard_model::IdError::Invalid { what, id } => Self::InvalidId { what, id },
            other => Self::InvalidId { what: "an", id: other.to_string() },
        }
    }
}
