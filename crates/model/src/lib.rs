//! Identifiers, topic names and the record shape every dingguard part shares.
//!
//! Values are parsed once at the edge into these types, so code further in never re-checks them.

mod clock;
mod glob;
mod ids;
mod record;
mod request_status;
mod secret;
mod severity;
pub mod time;
pub mod token;

pub use clock::{Clock, ManualClock, SystemClock};
pub use glob::glob_match;
pub use ids::{AlertId, AppName, CeId, CorpId, DeptId, IdError, RequestId, SilenceId, TopicPrefix, Topics, UserId};
pub use record::{Origin, Record, header, parse_rfc3339_ms, rfc3339_ms};
pub use request_status::RequestStatus;
pub use secret::{RedactedProperties, Secret, SecretError, is_secret_property};
pub use severity::Severity;
pub use time::{TimeSource, event_time};
