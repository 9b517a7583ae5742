//! A record on the event log, in CloudEvents' Kafka binary mode: the value is the event data and the attributes
//! travel as `ce_*` headers.

use bytes::Bytes;
use dingguard_dingtalk::EventHeader;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{AppName, CeId};

/// Header names, spelled as the CloudEvents Kafka binding spells them.
pub mod header {
    pub const SPECVERSION: &str = "ce_specversion";
    pub const ID: &str = "ce_id";
    pub const SOURCE: &str = "ce_source";
    pub const TYPE: &str = "ce_type";
    pub const TIME: &str = "ce_time";
    pub const SUBJECT: &str = "ce_subject";
    pub const CORPID: &str = "corpid";
    pub const CONTENT_TYPE: &str = "content-type";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The entity whose events must stay in order; the log partitions by it.
    pub key: String,
    pub headers: Vec<(String, String)>,
    pub value: Bytes,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn ce_id(&self) -> Option<&str> {
        self.header(header::ID)
    }
}

impl CeId {
    /// `eventId`, else `BizId`, else a digest of the ciphertext, so an exact replay maps to the same id.
    pub fn for_callback(event: &EventHeader, ciphertext: &str) -> Self {
        let chosen = event.event_id.as_deref().or(event.biz_id.as_deref()).and_then(|id| Self::parse(id).ok());
        chosen.unwrap_or_else(|| {
            Self::parse(&hex::encode(Sha256::digest(ciphertext.as_bytes()))).expect("hex is a valid id")
        })
    }
}

fn rfc3339_millis(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339).expect("every timestamp formats as RFC 3339")
}

/// Builds the log record of an accepted callback. The value is the decrypted JSON exactly as DingTalk sent it.
pub fn callback_record(app: &AppName, id: &CeId, event: &EventHeader, message: Bytes, received_ms: i64) -> Record {
    let corp = event.corp_id.as_deref().unwrap_or("unknown");
    let event_type = event.event_type.as_deref().unwrap_or("unknown");
    let (key, subject) = match (event.is_chat_event(), &event.chat_id, &event.user_id) {
        (true, Some(chat), _) => (format!("{corp}/chat/{chat}"), Some(chat.as_str())),
        (_, _, Some(user)) => (format!("{corp}/user/{user}"), Some(user.as_str())),
        (_, Some(chat), None) => (format!("{corp}/chat/{chat}"), Some(chat.as_str())),
        _ => (corp.to_owned(), None),
    };
    let mut headers = vec![
        (header::SPECVERSION.to_owned(), "1.0".to_owned()),
        (header::ID.to_owned(), id.as_str().to_owned()),
        (header::SOURCE.to_owned(), format!("/dingtalk/{corp}/{app}")),
        (header::TYPE.to_owned(), format!("dingtalk.{event_type}")),
        (header::TIME.to_owned(), rfc3339_millis(event.event_time_ms.unwrap_or(received_ms))),
        (header::CORPID.to_owned(), corp.to_owned()),
        (header::CONTENT_TYPE.to_owned(), "application/json".to_owned()),
    ];
    if let Some(subject) = subject {
        headers.push((header::SUBJECT.to_owned(), subject.to_owned()));
    }
    Record { key, headers, value: message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> EventHeader {
        EventHeader::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn ce_id_prefers_event_id_then_biz_id_then_ciphertext_digest() {
        let both = event(r#"{"eventId":"e1","BizId":"b1"}"#);
        assert_eq!(CeId::for_callback(&both, "c").as_str(), "e1");
        assert_eq!(CeId::for_callback(&event(r#"{"BizId":"b1"}"#), "c").as_str(), "b1");
        let digest = CeId::for_callback(&event("{}"), "cipher");
        assert_eq!(digest.as_str().len(), 64);
        assert_ne!(digest, CeId::for_callback(&event("{}"), "other"));
    }

    #[test]
    fn chat_events_key_by_group_and_others_by_user() {
        let app = AppName::default_app();
        let chat =
            event(r#"{"EventType":"chat_add_member","CorpId":"dingc","chatId":"g1","userId":["u9"],"EventTime":0}"#);
        let id = CeId::parse("x").unwrap();
        let record = callback_record(&app, &id, &chat, Bytes::from_static(b"{}"), 5);
        assert_eq!(record.key, "dingc/chat/g1");
        assert_eq!(record.header(header::TYPE), Some("dingtalk.chat_add_member"));
        assert_eq!(record.header(header::SOURCE), Some("/dingtalk/dingc/default"));
        assert_eq!(record.header(header::TIME), Some("1970-01-01T00:00:00Z"));
        let user = event(r#"{"EventType":"user_leave_org","CorpId":"dingc","userId":["u9"]}"#);
        let record = callback_record(&app, &id, &user, Bytes::from_static(b"{}"), 1_700_000_000_123);
        assert_eq!(record.key, "dingc/user/u9");
        assert_eq!(record.header(header::TIME), Some("2023-11-14T22:13:20.123Z"));
        assert_eq!(record.ce_id(), Some("x"));
    }
}
