//! `[approver]`: how often deadlines are applied and queued events and notifications go out, how long requests
//! stay open and grants last, and the DingTalk OA process codes whose new instances are download requests.

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::{Env, parse_env};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverSection {
    pub tick_interval_ms: Option<u64>,
    pub request_ttl_hours: Option<u64>,
    pub grant_ttl_hours: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ApproverConfig {
    pub tick_interval: Duration,
    pub request_ttl_ms: i64,
    pub grant_ttl_ms: i64,
}

pub fn approver(section: ApproverSection, env: &dyn Env) -> Result<ApproverConfig> {
    let tick = parse_env::<u64>(env, "DINGGUARD_APPROVER_TICK_MS")?.or(section.tick_interval_ms).unwrap_or(1000);
    if !(10..=3_600_000).contains(&tick) {
        bail!("approver tick interval {tick} ms must be between 10 ms and one hour");
    }
    let request_ttl = section.request_ttl_hours.unwrap_or(24);
    let grant_ttl = section.grant_ttl_hours.unwrap_or(24);
    // Reminders go out 4 h and 1 h before expiry and escalation 2 h before: a shorter life would fire them at once.
    if !(5..=24 * 30).contains(&request_ttl) {
        bail!("approver request_ttl_hours {request_ttl} must be between 5 and 720");
    }
    if !(1..=24 * 365).contains(&grant_ttl) {
        bail!("approver grant_ttl_hours {grant_ttl} must be between 1 and 8760");
    }
    let hours = |h: u64| i64::try_from(h).unwrap_or(i64::MAX).saturating_mul(3_600_000);
    Ok(ApproverConfig {
        tick_interval: Duration::from_millis(tick),
        request_ttl_ms: hours(request_ttl),
        grant_ttl_ms: hours(grant_ttl),
    })
}
