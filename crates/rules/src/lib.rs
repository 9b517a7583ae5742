//! Compliance rules, reviewed like code: YAML files of `list`, `macro` and `rule` items whose conditions are checked
//! against the normaliser's field catalog at load time, with thresholds, sequences, exceptions and inline tests.

mod catalog;
mod cond;
mod duration;
mod engine;
mod expr;
mod fields;
mod ruleset;
mod template;
mod testing;

pub use catalog::{Catalog, FieldType};
pub use engine::{
    Engine, LATENESS_MS, Match, Outcome, SEQUENCE_STEPS_KEPT, SEQUENCE_UPDATES_PER_EVENT, SavedWindow, SequenceWindow,
    Step, Suppressed, THRESHOLD_EVENTS_BEHIND, WindowState,
};
pub use fields::{FieldValue, Fields, Slot, write_field};
pub use ruleset::{AlertPer, Rule, RuleError, RuleSet, Severity};
pub use template::{LIST_IN_TEXT, TEXT_MAX, VALUE_IN_TEXT, value_text};
pub use testing::{TEST_EPOCH_MS, TestFailure, TestReport, run_inline_tests};
