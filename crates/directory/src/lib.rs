//! Who belongs to the organisation, who heads what and who may approve: the facts rules judge events against and
//! the approval router resolves approvers from.
//!
//! A [`Directory`] is loaded once from YAML ([`Directory::from_yaml`]), checked as a whole, then kept current by
//! address-book events ([`Directory::apply`]). No I/O happens here; the caller reads the file.

mod change;
mod directory;
mod error;
mod history;
mod ids;
mod load;
mod model;

pub use change::{DepartmentDiff, DirectoryChange, UserDiff};
pub use directory::Directory;
pub use error::DirectoryError;
pub use history::{DepartmentState, HISTORY_MAX_CHANGES, HISTORY_RETENTION_MS, UserHistory};
pub use ids::{DeptId, Role, UserId};
pub use model::{Affiliation, Department, TrustedPartner, User};

/// The demo organisation shipped with the project, so `make run` and the simulator's ids have someone to judge.
pub const DEMO_YAML: &str = include_str!("../demo/directory.yaml");
