//! Builds DingTalk callbacks byte for byte as DingTalk sends them, and drives load against a receiver.
//!
//! Scenarios describe what happened in a tenant; the [`Signer`] wraps each event in DingTalk's signed, encrypted
//! envelope; [`load`] replays pre-built callbacks so the generator is never the bottleneck.

pub mod load;
mod scenario;
mod signer;

pub use scenario::{Scenario, ScenarioContext, UnknownScenario, load_event, random_id};
pub use signer::{SignedCallback, Signer};
