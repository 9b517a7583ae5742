//! Shared by the test files: the demo directory and the payload fixtures.

// Each test file uses a different subset.
#![allow(dead_code)]

use dingguard_directory::{DEMO_YAML, Directory};
use dingguard_events::{CanonicalEvent, normalise};
use serde_json::Value;

/// A day after the fixtures happened: their own times are believed.
pub const RECEIVED_MS: i64 = 1_772_500_000_000;

pub fn directory() -> Directory {
    Directory::from_yaml(DEMO_YAML).expect("demo directory loads")
}

pub fn payload(name: &str) -> Vec<u8> {
    let all: Value = serde_json::from_str(include_str!("../../fixtures/payloads.json")).unwrap();
    let one = all.get(name).unwrap_or_else(|| panic!("no fixture {name}"));
    serde_json::to_vec(one).unwrap()
}

/// Normalises a fixture under its own `EventType`.
pub fn events(name: &str) -> Vec<CanonicalEvent> {
    let bytes = payload(name);
    let raw: Value = serde_json::from_slice(&bytes).unwrap();
    let event_type = raw["EventType"].as_str().unwrap().to_owned();
    normalise(&event_type, &format!("ce-{name}"), &bytes, &directory(), RECEIVED_MS).unwrap()
}

pub fn one(name: &str) -> CanonicalEvent {
    let mut all = events(name);
    assert_eq!(all.len(), 1, "{name} should give one event");
    all.remove(0)
}
