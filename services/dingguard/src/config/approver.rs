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
    /// How often the running process verifies the audit chain (what it appended since, and a stretch of the
    /// rest).
    pub audit_check_interval_secs: Option<u64>,
    pub request_ttl_hours: Option<u64>,
    pub grant_ttl_hours: Option<u64>,
    pub oa: Option<OaSection>,
    pub policy: Option<PolicySection>,
    /// Pending requests one person may have at once.
    pub max_open_requests_per_requester: Option<u32>,
    /// Requests one person may make within an hour.
    pub max_requests_per_hour: Option<u32>,
}

/// Who must approve: slots combined with AND, e.g. two DPOs and the department head, or `any_of` named people.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub slots: Option<Vec<dingguard_approval::SlotSpec>>,
    pub remind_before_hours: Option<Vec<u64>>,
    pub escalate_before_hours: Option<u64>,
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
    /// How often the open and expiring-soon request gauges are read from the store.
    pub gauge_interval: Duration,
    pub audit_check_interval: Duration,
    pub grant_ttl_ms: i64,
    pub oa: Option<OaConfigured>,
    pub policy: dingguard_approval::Policy,
    pub limits: dingguard_approver::RequestLimits,
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
    let audit_check = parse_env::<u64>(env, "DINGGUARD_AUDIT_CHECK_INTERVAL_SECS")?
        .or(section.audit_check_interval_secs)
        .unwrap_or(300);
    if !(1..=86_400).contains(&audit_check) {
        bail!("approver audit_check_interval_secs {audit_check} must be between 1 s and one day");
    }
    let request_ttl = section.request_ttl_hours.unwrap_or(24);
    let grant_ttl = section.grant_ttl_hours.unwrap_or(24);
    if !(1..=24 * 30).contains(&request_ttl) {
        bail!("approver request_ttl_hours {request_ttl} must be between 1 and 720");
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
    let mut policy = dingguard_approval::Policy { ttl_ms: hours(request_ttl), ..dingguard_approval::Policy::default() };
    if let Some(p) = section.policy {
        if let Some(slots) = p.slots {
            if slots.is_empty() || slots.iter().any(|s| s.approvals == 0 || s.approvals > 10) {
                bail!("approver.policy.slots needs at least one slot, each needing 1 to 10 approvals");
            }
            if slots.iter().any(|s| matches!(&s.role, dingguard_approval::SlotRole::AnyOf(users) if users.is_empty())) {
                bail!("approver.policy.slots: an any_of slot must name at least one user");
            }
            policy.slots = slots;
        }
        if let Some(remind) = p.remind_before_hours {
            policy.remind_before_ms = remind.into_iter().map(hours).collect();
        }
        if let Some(escalate) = p.escalate_before_hours {
            policy.escalate_before_ms = hours(escalate);
        }
    }
    if policy.remind_before_ms.iter().chain([&policy.escalate_before_ms]).any(|&before| before >= policy.ttl_ms) {
        bail!(
            "approver reminders and escalation must come before a request expires: each of remind_before_hours and \
             escalate_before_hours must be under request_ttl_hours ({request_ttl})"
        );
    }
    let defaults = dingguard_approver::RequestLimits::default();
    let limits = dingguard_approver::RequestLimits {
        max_open_per_requester: parse_env::<u32>(env, "DINGGUARD_APPROVER_MAX_OPEN_PER_REQUESTER")?
            .or(section.max_open_requests_per_requester)
            .unwrap_or(defaults.max_open_per_requester),
        max_per_hour: parse_env::<u32>(env, "DINGGUARD_APPROVER_MAX_REQUESTS_PER_HOUR")?
            .or(section.max_requests_per_hour)
            .unwrap_or(defaults.max_per_hour),
    };
    if !(1..=1000).contains(&limits.max_open_per_requester) || !(1..=10_000).contains(&limits.max_per_hour) {
        bail!(
            "approver.max_open_requests_per_requester must be 1 to 1000 and approver.max_requests_per_hour 1 to \
             10000: they keep one person's requests from flooding every approver's inbox"
        );
    }
    if limits.max_per_hour < limits.max_open_per_requester {
        bail!(
            "approver.max_requests_per_hour ({}) is below max_open_requests_per_requester ({}): nobody could reach \
             the open limit; raise the hourly one",
            limits.max_per_hour,
            limits.max_open_per_requester
        );
    }
    Ok(ApproverConfig {
        tick_interval: Duration::from_millis(tick),
        gauge_interval: Duration::from_secs(30),
        audit_check_interval: Duration::from_secs(audit_check),
        grant_ttl_ms: hours(grant_ttl),
        oa,
        policy,
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn parse(text: &str) -> Result<ApproverConfig> {
        approver(toml::from_str(text)?, &NoEnv)
    }

    #[test]
    fn two_dpos_or_named_people_can_be_required() {
        let config = parse(
            "[policy]\nslots = [{ role = \"dpo\", approvals = 2 }, { role = { any_of = [\"u1\", \"u2\"] }, approvals = 1 }]\n",
        )
        .unwrap();
        assert_eq!(config.policy.slots.len(), 2);
        assert_eq!(config.policy.slots[0].approvals, 2);
        assert_eq!(config.policy.slots[1].role, dingguard_approval::SlotRole::AnyOf(vec!["u1".into(), "u2".into()]));
    }

    #[test]
    fn the_audit_check_runs_every_five_minutes_unless_set() {
        assert_eq!(parse("").unwrap().audit_check_interval, Duration::from_secs(300));
        assert_eq!(parse("audit_check_interval_secs = 60\n").unwrap().audit_check_interval, Duration::from_secs(60));
    }

    #[test]
    fn impossible_policies_are_refused_with_the_reason() {
        for (text, says) in [
            ("[policy]\nslots = []\n", "at least one slot"),
            ("[policy]\nslots = [{ role = \"dpo\", approvals = 0 }]\n", "1 to 10 approvals"),
            ("[policy]\nslots = [{ role = { any_of = [] }, approvals = 1 }]\n", "must name at least one user"),
            ("request_ttl_hours = 3\n", "under request_ttl_hours (3)"),
            ("[oa]\nprocess_codes = []\n", "at least one DingTalk OA process code"),
            ("audit_check_interval_secs = 0\n", "between 1 s and one day"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
