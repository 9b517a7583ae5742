//! The log record of a callback: the one place a DingTalk event becomes a CloudEvents record, with its id, its key
//! (the group or the person whose events must stay in order) and its time.

use bytes::Bytes;
use dingguard_model::time::{TimeSource, event_time};
use dingguard_model::{AppName, CeId, Record, header, rfc3339_ms};
use sha2::{Digest, Sha256};

use crate::EventHeader;

/// `eventId`, else `BizId`, else a digest of the decrypted event in a canonical form (object keys sorted,
/// no whitespace). The ciphertext would not do: each encryption starts with 16 random bytes, so a re-encrypted
/// copy of one event (a retry, a reconciler) must still map to the same id. Plaintext that is not JSON is
/// digested as it is.
pub fn callback_ce_id(event: &EventHeader, plaintext: &[u8]) -> CeId {
    let chosen = event.event_id.as_deref().or(event.biz_id.as_deref()).and_then(|id| CeId::parse(id).ok());
    chosen.unwrap_or_else(|| {
        let mut hasher = Sha256::new();
        match serde_json::from_slice::<serde_json::Value>(plaintext) {
            Ok(value) => canonical(&value, &mut hasher),
            Err(_) => hasher.update(plaintext),
        }
        CeId::parse(&hex::encode(hasher.finalize())).expect("hex is a valid id")
    })
}

/// An id made from `parts`, the same parts always and only giving it: each part is followed by a unit separator,
/// so `("ab", "c")` and `("a", "bc")` differ. For events of ours made from what a source read (an audit-log
/// record, a directory finding), so the same thing read twice is one record.
pub fn digest_id(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    format!("{prefix}{}", &hex::encode(hasher.finalize())[..32])
}

/// Feeds `value` to `hasher` in one canonical spelling. Nesting is bounded by the JSON parser's own limit.
fn canonical(value: &serde_json::Value, hasher: &mut Sha256) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hasher.update(serde_json::to_string(key).unwrap_or_default().as_bytes());
                hasher.update(b":");
                canonical(&map[key], hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

/// Builds the log record of an accepted callback. The value is the decrypted JSON exactly as DingTalk sent it.
pub fn callback_record(app: &AppName, id: &CeId, event: &EventHeader, message: Bytes, received_ms: i64) -> Record {
    let corp = event.corp_id.as_deref().unwrap_or("unknown");
    let event_type = event.event_type.as_deref().unwrap_or("unknown");
    let (time_ms, source) = event_time(event.event_time_ms, received_ms);
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
        (header::TIME.to_owned(), rfc3339_ms(time_ms)),
        (header::CORPID.to_owned(), corp.to_owned()),
        (header::CONTENT_TYPE.to_owned(), "application/json".to_owned()),
    ];
    if source == TimeSource::Received {
        headers.push((header::TIME_SOURCE.to_owned(), source.as_str().to_owned()));
    }
    if let Some(subject) = subject {
        headers.push((header::SUBJECT.to_owned(), subject.to_owned()));
    }
    Record { key, headers, value: message }.with_origin(dingguard_model::Origin::Push)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> EventHeader {
        EventHeader::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn ce_id_prefers_event_id_then_biz_id_then_a_digest_of_the_event() {
        let both = event(r#"{"eventId":"e1","BizId":"b1"}"#);
        assert_eq!(callback_ce_id(&both, b"c").as_str(), "e1");
        assert_eq!(callback_ce_id(&event(r#"{"BizId":"b1"}"#), b"c").as_str(), "b1");
        let bare = event("{}");
        let one = callback_ce_id(&bare, br#"{"EventType":"user_leave_org","userId":["u1"],"timeStamp":1}"#);
        assert_eq!(one.as_str().len(), 64);
        // The same event spelled with other key order and spacing is the same event.
        let same =
            callback_ce_id(&bare, br#"{ "timeStamp" : 1, "userId" : [ "u1" ], "EventType" : "user_leave_org" }"#);
        assert_eq!(one, same);
        let other = callback_ce_id(&bare, br#"{"EventType":"user_leave_org","userId":["u2"],"timeStamp":1}"#);
        assert_ne!(one, other);
        let nested =
            |t: &str| callback_ce_id(&bare, format!(r#"{{"a":{{"y":1,"x":[{{"q":{t},"p":2}}]}}}}"#).as_bytes());
        assert_eq!(nested("1"), callback_ce_id(&bare, br#"{"a":{"x":[{"p":2,"q":1}],"y":1}}"#));
        assert_ne!(nested("1"), nested("\"1\""), "a string is not a number");
        assert_eq!(callback_ce_id(&bare, b"not json").as_str().len(), 64);
    }

    #[test]
    fn chat_events_key_by_group_and_others_by_user() {
        let app = AppName::default_app();
        let chat =
            event(r#"{"EventType":"chat_add_member","CorpId":"dingc","chatId":"g1","userId":["u9"],"EventTime":0}"#);
        let id = CeId::parse("x").unwrap();
        let record = callback_record(&app, &id, &chat, Bytes::from_static(b"{}"), 1_700_000_000_000);
        assert_eq!(record.key, "dingc/chat/g1");
        assert_eq!(record.header(header::TYPE), Some("dingtalk.chat_add_member"));
        assert_eq!(record.header(header::SOURCE), Some("/dingtalk/dingc/default"));
        assert_eq!(record.header(header::TIME), Some("2023-11-14T22:13:20Z"), "an EventTime of 0 is no time");
        assert_eq!(record.header(header::TIME_SOURCE), Some("received"));
        let user = event(r#"{"EventType":"user_leave_org","CorpId":"dingc","userId":["u9"]}"#);
        let record = callback_record(&app, &id, &user, Bytes::from_static(b"{}"), 1_700_000_000_123);
        assert_eq!(record.key, "dingc/user/u9");
        assert_eq!(record.header(header::TIME), Some("2023-11-14T22:13:20.123Z"));
        assert_eq!(record.ce_id(), Some("x"));
    }

    #[test]
    fn any_event_time_makes_a_record_and_believable_ones_are_kept() {
        let app = AppName::default_app();
        let id = CeId::parse("x").unwrap();
        let received = 1_764_547_200_000;
        for time in ["-380000000000000", "\"-62000000000000\"", "9223372036854775807", "1.5e300", "\"soon\"", "[1]"] {
            let event = event(&format!(r#"{{"EventType":"file_download","EventTime":{time}}}"#));
            let record = callback_record(&app, &id, &event, Bytes::from_static(b"{}"), received);
            assert_eq!(record.header(header::TIME), Some("2025-12-01T00:00:00Z"), "{time}");
            assert_eq!(record.header(header::TIME_SOURCE), Some("received"), "{time}");
        }
        let seconds = event(r#"{"EventType":"file_download","EventTime":1764540000}"#);
        let record = callback_record(&app, &id, &seconds, Bytes::from_static(b"{}"), received);
        assert_eq!(record.header(header::TIME), Some("2025-11-30T22:00:00Z"), "ten digits are seconds");
        assert_eq!(record.header(header::TIME_SOURCE), None);
        assert_eq!(dingguard_model::parse_rfc3339_ms("2025-11-30T22:00:00Z"), Some(1_764_540_000_000));
        assert_eq!(dingguard_model::parse_rfc3339_ms("not a time"), None);
    }
}
