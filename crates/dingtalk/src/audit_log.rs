//! The Exclusive DingTalk file audit log (`GET /v1.0/exclusive/fileAuditLogs`,
//! https://open.dingtalk.com/document/development/obtain-file-operation-records): the only place DingTalk records
//! that someone downloaded a file. Pages go forward from `startDate`, each after the last record of the page before
//! (`nextGmtCreate` and `nextBizId`, sent together). [`event_of`] turns a download record into our
//! `file_download` event, dated when it happened (`gmtCreate`), under an id made from the record itself so the same
//! record read twice (overlapping windows, a restart) is one event.

use serde::Deserialize;
use serde_json::{Value, json};

/// The most records one page may ask for.
pub const MAX_PAGE: usize = 500;

/// One page of the audit log.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuditPage {
    #[serde(default)]
    pub list: Vec<AuditRecord>,
}

/// A record as the API documents it; only what an event needs is read, each field leniently.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AuditRecord {
    pub action: Option<i64>,
    pub user_id: Option<String>,
    /// The file's id.
    pub biz_id: Option<String>,
    /// The file's name.
    pub resource: Option<String>,
    pub target_space_id: Option<String>,
    pub platform: Option<i64>,
    pub ip_address: Option<String>,
    pub receiver_name: Option<String>,
    /// 0 single chat, 1 group, 2 DingDrive, 3 document.
    pub receiver_type: Option<i64>,
    pub gmt_create: Option<i64>,
}

/// What an audit-log action is to us: the actions that move a file towards someone, each our own event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// 2 (download) and 32 (knowledge-base download): `file_download`.
    Download,
    /// 5, an external share link created: `file_share_link`.
    ShareLink,
    /// 8, copied or forwarded: `file_copy`.
    Copy,
    /// 9, handed over when its owner resigned: `file_handover`.
    Handover,
    /// 12, a document exported: `file_export`.
    Export,
}

impl AuditAction {
    pub fn of(code: i64) -> Option<Self> {
        match code {
            2 | 32 => Some(Self::Download),
            5 => Some(Self::ShareLink),
            8 => Some(Self::Copy),
            9 => Some(Self::Handover),
            12 => Some(Self::Export),
            _ => None,
        }
    }

    /// The event type the record becomes.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Download => "file_download",
            Self::ShareLink => "file_share_link",
            Self::Copy => "file_copy",
            Self::Handover => "file_handover",
            Self::Export => "file_export",
        }
    }
}

impl AuditRecord {
    /// The cursor of the page after the one this record ends: `nextGmtCreate`, `nextBizId`.
    pub fn cursor(&self) -> Option<(i64, String)> {
        Some((self.gmt_create?, self.biz_id.clone()?))
    }

    /// A stable id: the same record always, and only it, gets it.
    pub fn event_id(&self) -> String {
        let parts = [
            self.gmt_create.map(|t| t.to_string()),
            self.user_id.clone(),
            self.biz_id.clone(),
            self.action.map(|a| a.to_string()),
            self.ip_address.clone(),
        ]
        .map(Option::unwrap_or_default);
        crate::record::digest_id("fal_", &parts.each_ref().map(String::as_str))
    }
}

/// The event of a record dingguard judges, or `None` for an action it does not (a preview, a rename) or a record
/// without who, what or when.
pub fn event_of(record: &AuditRecord, corp_id: Option<&str>) -> Option<Vec<u8>> {
    let action = record.action?;
    let kind = AuditAction::of(action)?;
    let (user, file, at) = (record.user_id.as_ref()?, record.biz_id.as_ref()?, record.gmt_create?);
    if user.trim().is_empty() || file.trim().is_empty() || at <= 0 {
        return None;
    }
    let event = json!({
        "EventType": kind.event_type(),
        "EventTime": at,
        "CorpId": corp_id,
        "eventId": record.event_id(),
        "userId": user,
        "fileId": file,
        "fileName": record.resource,
        "spaceId": record.target_space_id,
        "action": action,
        "platform": record.platform,
        "ipAddress": record.ip_address,
        "receiverName": record.receiver_name,
        "receiverType": record.receiver_type,
        "source": "fileAuditLogs",
    });
    let Value::Object(mut map) = event else { return None };
    map.retain(|_, v| !v.is_null());
    serde_json::to_vec(&map).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventHeader;

    fn record(action: i64) -> AuditRecord {
        serde_json::from_value(json!({"action": action, "userId": "user_hr_clerk", "bizId": "file1",
            "resource": "salaries.xlsx", "targetSpaceId": "space_hr", "platform": 11, "ipAddress": "10.0.0.2",
            "gmtCreate": 1_764_540_000_000i64, "somethingElse": [1]}))
        .unwrap()
    }

    #[test]
    fn a_download_becomes_our_event_dated_when_it_happened_under_a_stable_id() {
        for action in [2, 32] {
            let bytes = event_of(&record(action), Some("dingc")).unwrap();
            let header = EventHeader::parse(&bytes).unwrap();
            assert_eq!(header.event_type.as_deref(), Some("file_download"));
            assert_eq!(header.event_time_ms, Some(1_764_540_000_000));
            assert_eq!(header.event_id, Some(record(action).event_id()));
        }
        assert_eq!(record(2).event_id(), record(2).event_id());
        assert_ne!(record(2).event_id(), record(32).event_id());
        assert_eq!(record(2).cursor(), Some((1_764_540_000_000, "file1".into())));
    }

    #[test]
    fn sharing_copying_handing_over_and_exporting_are_events_of_their_own() {
        for (action, kind) in [(5, "file_share_link"), (8, "file_copy"), (9, "file_handover"), (12, "file_export")] {
            let with_receiver = AuditRecord { receiver_name: Some("ext partner".into()), ..record(action) };
            let bytes = event_of(&with_receiver, Some("dingc")).unwrap();
            let event: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(event["EventType"], kind);
            assert_eq!((event["userId"].as_str(), event["fileId"].as_str()), (Some("user_hr_clerk"), Some("file1")));
            assert_eq!(event["receiverName"], "ext partner");
            assert_eq!(event["ipAddress"], "10.0.0.2");
            assert_eq!(event["platform"], 11);
        }
    }

    #[test]
    fn other_actions_and_records_without_who_what_or_when_are_not_events() {
        assert!(event_of(&record(3), Some("dingc")).is_none(), "a preview");
        assert!(event_of(&AuditRecord { user_id: None, ..record(2) }, Some("dingc")).is_none());
        assert!(event_of(&AuditRecord { gmt_create: Some(-5), ..record(2) }, Some("dingc")).is_none());
        assert!(event_of(&AuditRecord { biz_id: Some(" ".into()), ..record(2) }, Some("dingc")).is_none());
    }
}
