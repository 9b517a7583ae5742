//! The few fields of a decrypted event that routing needs; the event itself is stored untouched.
//!
//! DingTalk sends two spellings (legacy PascalCase, current lowerCamel) and sometimes both in one payload, so each
//! spelling is a separate field and the current one wins.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("decrypted message is not a JSON object: {0}")]
    NotJsonObject(String),
}

/// What the receiver reads from a decrypted event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// `EventType`; `None` when the sender omitted it — the event is still stored.
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub biz_id: Option<String>,
    pub corp_id: Option<String>,
    /// When DingTalk says the event happened, in milliseconds.
    pub event_time_ms: Option<i64>,
    pub chat_id: Option<String>,
    pub user_id: Option<String>,
    /// The `Random` of the legacy suite URL checks, which the reply must echo instead of `success`.
    pub random: Option<String>,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "EventType", borrow)]
    event_type_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "eventType", borrow)]
    event_type_camel: Option<Cow<'a, str>>,
    #[serde(rename = "eventId")]
    event_id: Option<&'a RawValue>,
    #[serde(rename = "EventId")]
    event_id_pascal: Option<&'a RawValue>,
    #[serde(rename = "BizId")]
    biz_id: Option<&'a RawValue>,
    #[serde(rename = "bizId")]
    biz_id_camel: Option<&'a RawValue>,
    #[serde(rename = "CorpId", borrow)]
    corp_id_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "corpId", borrow)]
    corp_id_camel: Option<Cow<'a, str>>,
    #[serde(rename = "EventTime")]
    event_time: Option<&'a RawValue>,
    #[serde(rename = "TimeStamp")]
    time_stamp_pascal: Option<&'a RawValue>,
    #[serde(rename = "timeStamp")]
    time_stamp_camel: Option<&'a RawValue>,
    #[serde(rename = "ChatId", borrow)]
    chat_id_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "chatId", borrow)]
    chat_id_camel: Option<Cow<'a, str>>,
    #[serde(rename = "OpenConversationId", borrow)]
    open_conversation_pascal: Option<Cow<'a, str>>,
    #[serde(rename = "openConversationId", borrow)]
    open_conversation_camel: Option<Cow<'a, str>>,
    #[serde(rename = "UserId")]
    user_id_pascal: Option<&'a RawValue>,
    #[serde(rename = "userId")]
    user_id_camel: Option<&'a RawValue>,
    #[serde(rename = "staffId")]
    staff_id: Option<&'a RawValue>,
    #[serde(rename = "Operator")]
    operator_pascal: Option<&'a RawValue>,
    #[serde(rename = "operator")]
    operator_camel: Option<&'a RawValue>,
    #[serde(rename = "Random", borrow)]
    random: Option<Cow<'a, str>>,
}

/// A string, or the first string of an array; numbers are rendered as DingTalk ids sometimes arrive unquoted.
fn text(value: Option<&RawValue>) -> Option<String> {
    let raw = value?.get();
    match raw.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<'_, str>>(raw).ok().filter(|s| !s.is_empty()).map(Cow::into_owned),
        b'[' => serde_json::from_str::<Vec<&RawValue>>(raw).ok()?.into_iter().find_map(|item| text(Some(item))),
        b'-' | b'0'..=b'9' => match serde_json::from_str(raw).ok()? {
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn millis(value: Option<&RawValue>) -> Option<i64> {
    match serde_json::from_str(value?.get()).ok()? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The first of the spellings that is present and not empty: an empty field never hides the other spelling.
fn first_text<const N: usize>(spellings: [Option<Cow<'_, str>>; N]) -> Option<String> {
    spellings.into_iter().flatten().find(|s| !s.is_empty()).map(Cow::into_owned)
}

impl EventHeader {
    /// Reads the routing fields, borrowing from `message` until a field is chosen: an event carries many fields
    /// and arrays the receiver never looks at, and this runs for every callback.
    pub fn parse(message: &[u8]) -> Result<Self, PayloadError> {
        let raw: Raw<'_> = serde_json::from_slice(message).map_err(|e| PayloadError::NotJsonObject(e.to_string()))?;
        Ok(Self {
            event_type: first_text([raw.event_type_pascal, raw.event_type_camel]),
            event_id: text(raw.event_id.or(raw.event_id_pascal)),
            biz_id: text(raw.biz_id.or(raw.biz_id_camel)),
            corp_id: first_text([raw.corp_id_pascal, raw.corp_id_camel]),
            event_time_ms: millis(raw.event_time).or(millis(raw.time_stamp_camel)).or(millis(raw.time_stamp_pascal)),
            chat_id: first_text([
                raw.chat_id_camel,
                raw.chat_id_pascal,
                raw.open_conversation_camel,
                raw.open_conversation_pascal,
            ]),
            user_id: text(raw.user_id_camel)
                .or_else(|| text(raw.user_id_pascal))
                .or_else(|| text(raw.staff_id))
                .or_else(|| text(raw.operator_camel))
                .or_else(|| text(raw.operator_pascal)),
            random: first_text([raw.random]),
        })
    }

    /// Group events are ordered per group; everything else per user.
    pub fn is_chat_event(&self) -> bool {
        self.event_type.as_deref().is_some_and(|t| t.starts_with("chat_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> EventHeader {
        EventHeader::parse(json.as_bytes()).expect("an object")
    }

    #[test]
    fn ids_may_be_strings_numbers_or_arrays() {
        let event = parse(
            r#"{"EventType":"chat_add_member","eventId":123,"bizId":"b\"1","userId":["",["u\u0032"],"u3"],"CorpId":"dingc"}"#,
        );
        assert_eq!(event.event_type.as_deref(), Some("chat_add_member"));
        assert_eq!(event.event_id.as_deref(), Some("123"));
        assert_eq!(event.biz_id.as_deref(), Some("b\"1"), "escaped text is decoded");
        assert_eq!(event.user_id.as_deref(), Some("u2"), "the first non-empty string, arrays nested or not");
        assert_eq!(event.corp_id.as_deref(), Some("dingc"));
    }

    #[test]
    fn the_current_spelling_wins_and_empty_or_null_fields_are_absent() {
        let event = parse(
            r#"{"EventType":"","eventType":"user_add_org","EventId":"old","eventId":"new","chatId":null,
                "ChatId":"g1","UserId":"","staffId":"s1","TimeStamp":"1700000000000","EventTime":null}"#,
        );
        assert_eq!(event.event_type.as_deref(), Some("user_add_org"), "an empty spelling does not hide the other");
        assert_eq!(event.event_id.as_deref(), Some("new"));
        assert_eq!(event.chat_id.as_deref(), Some("g1"));
        assert_eq!(event.user_id.as_deref(), Some("s1"), "falls back past an empty UserId");
        assert_eq!(event.event_time_ms, Some(1_700_000_000_000), "times may be quoted");
        assert_eq!(event.random, None);
    }

    #[test]
    fn a_field_of_the_wrong_kind_or_not_an_object_is_refused() {
        assert!(EventHeader::parse(br#"{"CorpId":7}"#).is_err());
        assert!(EventHeader::parse(b"[1,2]").is_err());
        assert!(EventHeader::parse(b"not json").is_err());
        assert_eq!(parse(r#"{"eventId":{"nested":1},"userId":true}"#).event_id, None);
    }
}
