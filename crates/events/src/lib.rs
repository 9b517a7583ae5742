//! Canonical compliance events and the normaliser that makes them from stored DingTalk payloads.
//!
//! The event log keeps every payload exactly as it arrived; [`normalise`] decides what it means, reading both of
//! DingTalk's spellings, judging people against the [`Directory`](dingguard_directory::Directory) and, through
//! [`normalise_with_tracker`], inferring group creation that DingTalk never announces. Rules then see each event
//! as the flat, typed fields listed in [`field_catalog`].

mod catalog;
mod chat;
mod event;
mod fields;
mod normalise;
mod sync;
mod tracker;

pub use catalog::{Field, FieldType, LATE_AFTER_MS, event_types, field_catalog, rule_catalog};
pub use dingguard_directory::Affiliation;
pub use event::{Actor, CanonicalEvent, DeptChange, EventKind, FileMove, FileRecord, MAX_MEMBERS, Member};
pub use fields::fields_to_json;
pub use normalise::{NormaliseError, normalise};
pub use sync::{believed_type, may_change_directory};
pub use tracker::{GroupTracker, InMemoryGroupTracker, normalise_with_tracker};
