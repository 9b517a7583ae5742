//! What a tenant does, as DingTalk (or an enterprise integration, for our own event types) reports it.

use rand::Rng;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    ExternalMember,
    GroupCreated,
    FileDownload,
    DownloadRequest,
    AddressBook,
    CheckUrl,
    BulkDownload,
    AfterHoursDownload,
    LeaverDownload,
    ExternalThenDownload,
    DlpFileSend,
    BenignDay,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown scenario `{0}`; `dingguard simulate --list` shows the scenarios")]
pub struct UnknownScenario(pub String);

/// The tenant a scenario plays in.
#[derive(Debug, Clone)]
pub struct ScenarioContext {
    pub corp_id: String,
    pub now_ms: i64,
}

impl ScenarioContext {
    pub fn new(corp_id: impl Into<String>, now_ms: i64) -> Self {
        Self { corp_id: corp_id.into(), now_ms }
    }
}

pub fn random_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    format!("{prefix}{:016x}{:08x}", rng.r#gen::<u64>(), rng.r#gen::<u32>())
}

impl Scenario {
    pub const ALL: [Scenario; 12] = [
        Self::ExternalMember,
        Self::GroupCreated,
        Self::FileDownload,
        Self::DownloadRequest,
        Self::AddressBook,
        Self::CheckUrl,
        Self::BulkDownload,
        Self::AfterHoursDownload,
        Self::LeaverDownload,
        Self::ExternalThenDownload,
        Self::DlpFileSend,
        Self::BenignDay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ExternalMember => "external-member",
            Self::GroupCreated => "group-created",
            Self::FileDownload => "file-download",
            Self::DownloadRequest => "download-request",
            Self::AddressBook => "address-book",
            Self::CheckUrl => "check-url",
            Self::BulkDownload => "bulk-download",
            Self::AfterHoursDownload => "after-hours-download",
            Self::LeaverDownload => "leaver-download",
            Self::ExternalThenDownload => "external-then-download",
            Self::DlpFileSend => "dlp-file-send",
            Self::BenignDay => "benign-day",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::ExternalMember => "a person outside the company is added to a group (DingTalk chat_add_member)",
            Self::GroupCreated => "a group is created with its first members (our chat_create)",
            Self::FileDownload => "an employee downloads a file (our file_download, as from the file audit log)",
            Self::DownloadRequest => "an employee asks to download a sensitive file (our file_download_request)",
            Self::AddressBook => {
                "an employee joins, changes and leaves (DingTalk user_add_org, user_modify_org, user_leave_org)"
            }
            Self::CheckUrl => "DingTalk verifies the callback URL (check_url); answered, never stored",
            Self::BulkDownload => "one employee downloads 25 different files within a few minutes",
            Self::AfterHoursDownload => "a confidential file is downloaded at 23:30 Macau time",
            Self::LeaverDownload => "an employee downloads a confidential file, then leaves the company",
            Self::ExternalThenDownload => "an outsider joins a group, then a file is downloaded from that group",
            Self::DlpFileSend => "DingTalk's DLP detects a customer list being sent (org_file_send_check)",
            Self::BenignDay => "a day of ordinary work by the demo directory's employees; must raise no alert",
        }
    }

    pub fn parse(name: &str) -> Result<Self, UnknownScenario> {
        Self::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| UnknownScenario(name.to_owned()))
    }

    /// The events of one run of the scenario, each with a fresh `eventId`.
    pub fn events(self, ctx: &ScenarioContext) -> Vec<Value> {
        let corp = ctx.corp_id.as_str();
        let now = ctx.now_ms;
        let chat = random_id("chat");
        match self {
            Self::ExternalMember => vec![json!({
                "EventType": "chat_add_member", "EventTime": now, "CorpId": corp, "BizId": random_id(""),
                "eventId": random_id(""), "timeStamp": now, "chatId": chat, "openConversationId": random_id("cid"),
                "corpId": corp, "operator": "user_sales_lead", "operatorUnionId": random_id("union"),
                "userId": ["ext_partner_wong"], "unionId": [random_id("union")], "eventType": "chat_add_member"
            })],
            Self::GroupCreated => vec![json!({
                "EventType": "chat_create", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                "chatId": chat, "openConversationId": random_id("cid"), "title": "HR onboarding files",
                "owner": "user_hr_manager", "operator": "user_hr_manager",
                "userId": ["user_hr_manager", "user_hr_clerk", "ext_recruiter_lam"], "timeStamp": now
            })],
            Self::FileDownload => vec![json!({
                "EventType": "file_download", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                "userId": "user_hr_clerk", "fileId": random_id("file"), "fileName": "confidential-salaries-2026.xlsx",
                "spaceId": "space_hr", "action": 2, "platform": 11, "ipAddress": "10.0.0.23",
                "source": "fileAuditLogs", "timeStamp": now
            })],
            Self::DownloadRequest => vec![json!({
                "EventType": "file_download_request", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                "requestId": random_id("req"), "userId": "user_hr_clerk", "fileId": random_id("file"),
                "fileName": "身份證-scans.zip", "spaceId": "space_hr", "reason": "annual audit of staff records",
                "timeStamp": now
            })],
            Self::AddressBook => {
                let user = random_id("user_");
                vec![
                    json!({"EventType": "user_add_org", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                           "timeStamp": now.to_string(), "userId": [user]}),
                    json!({"EventType": "user_modify_org", "EventTime": now + 1, "CorpId": corp,
                           "eventId": random_id(""), "timeStamp": (now + 1).to_string(), "userId": [user],
                           "diffInfo": {"userid": user, "prev": {"name": "Chan Tai Man"}, "curr": {"name": "陳大文"}}}),
                    json!({"EventType": "user_leave_org", "EventTime": now + 2, "CorpId": corp,
                           "eventId": random_id(""), "timeStamp": (now + 2).to_string(), "userId": [user]}),
                ]
            }
            Self::CheckUrl => vec![json!({"EventType": "check_url"})],
            Self::BulkDownload => (0..25)
                .map(|i| {
                    download(
                        corp,
                        now + i * 5_000,
                        "user_fin_accountant",
                        &format!("invoice-2026-{i:04}.pdf"),
                        "space_finance",
                        None,
                    )
                })
                .collect(),
            Self::AfterHoursDownload => {
                vec![download(
                    corp,
                    at_macau_time(now, 23, 30, false),
                    "user_fin_accountant",
                    "confidential-budget-2027.xlsx",
                    "space_finance",
                    None,
                )]
            }
            Self::LeaverDownload => vec![
                // Their own person: a leaver shared with benign-day would make its ordinary work look suspect.
                download(corp, now - 86_400_000, LEAVER, "confidential-price-list.xlsx", "space_sales", None),
                json!({"EventType": "user_leave_org", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                       "timeStamp": now.to_string(), "userId": [LEAVER]}),
            ],
            Self::ExternalThenDownload => vec![
                json!({"EventType": "chat_add_member", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                       "chatId": chat, "openConversationId": random_id("cid"), "operator": "user_sales_lead",
                       "userId": ["ext_partner_chan"], "timeStamp": now}),
                download(corp, now + 600_000, "user_sales_rep", "quarterly-pipeline.xlsx", "space_sales", Some(&chat)),
            ],
            Self::DlpFileSend => vec![json!({
                "EventType": "org_file_send_check", "EventTime": now, "CorpId": corp, "eventId": random_id(""),
                "fileRecords": [{"openCid": random_id("cid"), "fileName": "客戶名單-2026.xlsx", "ossKey": random_id("oss"),
                                 "requestId": random_id("dlpId"), "userId": "user_sales_rep"}]
            })],
            // The last working day that is over: none of its events is dated after now.
            Self::BenignDay => benign_day(corp, at_macau_time(now - BENIGN_DAY_MS, 9, 0, true)),
        }
    }
}

/// The demo directory's person who leaves in `leaver-download`, and does nothing in any other scenario.
pub const LEAVER: &str = "user_sales_temp";

/// Our `file_download` event, as a file-audit-log poller posts it.
fn download(corp: &str, at: i64, user: &str, name: &str, space: &str, chat: Option<&str>) -> Value {
    let mut event = json!({
        "EventType": "file_download", "EventTime": at, "CorpId": corp, "eventId": random_id(""), "userId": user,
        "fileId": random_id("file"), "fileName": name, "spaceId": space, "action": 2, "source": "fileAuditLogs",
        "timeStamp": at
    });
    if let Some(chat) = chat {
        event["chatId"] = json!(chat);
    }
    event
}

/// The most recent moment before `now_ms` that is `hour:minute` in Macau (UTC+8), on a weekday if asked.
pub fn at_macau_time(now_ms: i64, hour: i64, minute: i64, weekday: bool) -> i64 {
    const DAY: i64 = 86_400_000;
    const OFFSET: i64 = 8 * 3_600_000;
    let local = now_ms + OFFSET;
    let mut day = local.div_euclid(DAY);
    loop {
        let candidate = day * DAY + hour * 3_600_000 + minute * 60_000 - OFFSET;
        // 1970-01-01 was a Thursday: day 0 has weekday 4 with Monday as 1.
        let weekday_no = (day + 3).rem_euclid(7) + 1;
        if candidate <= now_ms && (!weekday || weekday_no <= 5) {
            return candidate;
        }
        day -= 1;
    }
}

/// Ordinary work between 09:00 and 17:00: colleagues join groups, everyday files are opened, an approval runs.
/// From the first event of the benign day to its last.
const BENIGN_DAY_MS: i64 = 420 * 60_000;

fn benign_day(corp: &str, start: i64) -> Vec<Value> {
    let minute = 60_000;
    let project = random_id("chat");
    vec![
        json!({"EventType": "chat_create", "EventTime": start, "CorpId": corp, "eventId": random_id(""),
               "chatId": project, "title": "Marketing launch plan", "owner": "user_sales_lead",
               "operator": "user_sales_lead", "userId": ["user_sales_lead", "user_sales_rep", "user_it_admin"]}),
        json!({"EventType": "chat_add_member", "EventTime": start + 30 * minute, "CorpId": corp, "eventId": random_id(""),
               "chatId": project, "operator": "user_sales_lead", "userId": ["user_fin_accountant"]}),
        download(corp, start + 60 * minute, "user_sales_rep", "launch-slides.pptx", "space_sales", Some(&project)),
        download(corp, start + 90 * minute, "user_fin_accountant", "budget-summary.pdf", "space_finance", None),
        download(corp, start + 120 * minute, "user_it_admin", "network-diagram.png", "space_it", None),
        json!({"EventType": "user_modify_org", "EventTime": start + 180 * minute, "CorpId": corp, "eventId": random_id(""),
               "timeStamp": (start + 180 * minute).to_string(), "userId": ["user_sales_rep"],
               "diffInfo": {"userid": "user_sales_rep", "prev": {"telephone": "2888 0001"}, "curr": {"telephone": "2888 0002"}}}),
        json!({"EventType": "bpms_instance_change", "EventTime": start + 240 * minute, "CorpId": corp, "eventId": random_id(""),
               "processInstanceId": random_id("proc"), "processCode": "PROC-LEAVE", "type": "start",
               "staffId": "user_sales_rep", "title": "Annual leave", "createTime": start + 240 * minute}),
        download(corp, start + 300 * minute, "user_sales_lead", "customer-visit-notes.docx", "space_sales", None),
        json!({"EventType": "chat_remove_member", "EventTime": start + 420 * minute, "CorpId": corp, "eventId": random_id(""),
               "chatId": project, "operator": "user_sales_lead", "userId": ["user_it_admin"]}),
    ]
}

/// A distinct group-membership event for load runs.
pub fn load_event(corp: &str, now_ms: i64, seq: u64) -> Value {
    json!({
        "EventType": "chat_add_member", "EventTime": now_ms, "CorpId": corp, "BizId": format!("biz{seq}"),
        "eventId": format!("{}{:08x}", random_id(""), seq as u32), "timeStamp": now_ms,
        "chatId": format!("chat{:04}", seq % 1000), "corpId": corp, "operator": "user_ops",
        "userId": [format!("user{:05}", seq % 50_000)], "eventType": "chat_add_member"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Played at any hour of any day, the ordinary day is over: an event dated after now would be judged as the
    /// newest thing its person did, and the day would depend on when the test runs.
    #[test]
    fn the_benign_day_is_in_the_past_whenever_it_is_played() {
        let monday_midnight_macau = 1_795_449_600_000 - 8 * 3_600_000;
        for hour in 0..(7 * 24) {
            let now = monday_midnight_macau + hour * 3_600_000 + 1_234;
            let events = Scenario::BenignDay.events(&ScenarioContext::new("corp", now));
            for event in &events {
                let at = event["EventTime"].as_i64().unwrap();
                assert!(at <= now && at > now - 4 * 86_400_000, "hour {hour}: {event}");
            }
        }
    }
}
