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
    pub oa: Option<OaSection>,
}

/// DingTalk OA approvals that are download requests. The forms are read with the `[notify.work]` app.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OaSection {
    pub process_codes: Vec<String>,
    pub base_url: Option<String>,
    pub file_id_field: Option<String>,
    pub file_name_field: Option<String>,
    pub space_field: Option<String>,
    pub reason_field: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ApproverConfig {
    pub tick_interval: Duration,
    pub request_ttl_ms: i64,
    pub grant_ttl_ms: i64,
    pub oa: Option<OaConfigured>,
}

#[derive(Debug, Clone)]
pub struct OaConfigured {
    pub process_codes: Vec<String>,
    pub base_url: Option<String>,
    pub fields: dingguard_approver::OaFields,
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
    let oa = match section.oa {
        Some(oa) if oa.process_codes.iter().any(|c| c.trim().is_empty()) || oa.process_codes.is_empty() => {
            bail!("approver.oa.process_codes must list at least one DingTalk OA process code, none empty")
        }
        Some(oa) => {
            let defaults = dingguard_approver::OaFields::default();
            Some(OaConfigured {
                process_codes: oa.process_codes,
                base_url: oa.base_url,
                fields: dingguard_approver::OaFields {
                    file_id: oa.file_id_field.unwrap_or(defaults.file_id),
                    file_name: oa.file_name_field.unwrap_or(defaults.file_name),
                    space: oa.space_field.unwrap_or(defaults.space),
                    reason: oa.reason_field.unwrap_or(defaults.reason),
                },
            })
        }
        None => None,
    };
    let hours = |h: u64| i64::try_from(h).unwrap_or(i64::MAX).saturating_mul(3_600_000);
    Ok(ApproverConfig {
        tick_interval: Duration::from_millis(tick),
        request_ttl_ms: hours(request_ttl),
        grant_ttl_ms: hours(grant_ttl),
        oa,
    })
}
