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
    pub const ALL: [Scenario; 6] = [
        Self::ExternalMember,
        Self::GroupCreated,
        Self::FileDownload,
        Self::DownloadRequest,
        Self::AddressBook,
        Self::CheckUrl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::ExternalMember => "external-member",
            Self::GroupCreated => "group-created",
            Self::FileDownload => "file-download",
            Self::DownloadRequest => "download-request",
            Self::AddressBook => "address-book",
            Self::CheckUrl => "check-url",
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
        }
    }
}

/// A distinct group-membership event for load runs.
pub fn load_event(corp: &str, now_ms: i64, seq: u64) -> Value {
    json!({
        "EventType": "chat_add_member", "EventTime": now_ms, "CorpId": corp, "BizId": format!("biz{seq}"),
        "eventId": format!("load{seq:012}{}", random_id("")), "timeStamp": now_ms,
        "chatId": format!("chat{:04}", seq % 1000), "corpId": corp, "operator": "user_ops",
        "userId": [format!("user{:05}", seq % 50_000)], "eventType": "chat_add_member"
    })
}
