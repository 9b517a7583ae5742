//! The work-notification stand-in is shared with the end-to-end tests.

pub use dingguard_testkit::work_standin::*;
