//! The events crate's tests: normalising DingTalk payloads, fields, directory sync and the group tracker.

#[macro_use]
mod common;
mod fields;
mod normalise;
mod sync;
mod tracker;
