//! The few fields of a decrypted event that routing needs; the event itself is stored untouched.
//!
//! DingTalk sends two spellings (legacy PascalCase, current lowerCamel) and sometimes both in one payload, so each
//! spelling is a separate field and the current one wins.

use serde::Deserialize;
use serde_json::Value;

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
struct Raw {
    #[serde(rename = "EventType")]
    event_type_pascal: Option<String>,
    #[serde(rename = "eventType")]
    event_type_camel: Option<String>,
    #[serde(rename = "eventId")]
    event_id: Option<Value>,
    #[serde(rename = "EventId")]
    event_id_pascal: Option<Value>,
    #[serde(rename = "BizId")]
    biz_id: Option<Value>,
    #[serde(rename = "bizId")]
    biz_id_camel: Option<Value>,
    #[serde(rename = "CorpId")]
    corp_id_pascal: Option<String>,
    #[serde(rename = "corpId")]
    corp_id_camel: Option<String>,
    #[serde(rename = "EventTime")]
    event_time: Option<Value>,
    #[serde(rename = "TimeStamp")]
    time_stamp_pascal: Option<Value>,
    #[serde(rename = "timeStamp")]
    time_stamp_camel: Option<Value>,
    #[serde(rename = "ChatId")]
    chat_id_pascal: Option<String>,
    #[serde(rename = "chatId")]
    chat_id_camel: Option<String>,
    #[serde(rename = "OpenConversationId")]
    open_conversation_pascal: Option<String>,
    #[serde(rename = "openConversationId")]
    open_conversation_camel: Option<String>,
    #[serde(rename = "UserId")]
    user_id_pascal: Option<Value>,
    #[serde(rename = "userId")]
    user_id_camel: Option<Value>,
    #[serde(rename = "staffId")]
    staff_id: Option<Value>,
    #[serde(rename = "Operator")]
    operator_pascal: Option<Value>,
    #[serde(rename = "operator")]
    operator_camel: Option<Value>,
    #[serde(rename = "Random")]
    random: Option<String>,
}

/// A string, or the first string of an array; numbers are rendered as DingTalk ids sometimes arrive unquoted.
fn text(value: Option<Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => items.into_iter().find_map(|item| text(Some(item))),
        _ => None,
    }
}

fn millis(value: Option<Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.is_empty())
}

impl EventHeader {
    pub fn parse(message: &[u8]) -> Result<Self, PayloadError> {
        let raw: Raw = serde_json::from_slice(message).map_err(|e| PayloadError::NotJsonObject(e.to_string()))?;
        Ok(Self {
            event_type: non_empty(raw.event_type_pascal.or(raw.event_type_camel)),
            event_id: text(raw.event_id.or(raw.event_id_pascal)),
            biz_id: text(raw.biz_id.or(raw.biz_id_camel)),
            corp_id: non_empty(raw.corp_id_pascal.or(raw.corp_id_camel)),
            event_time_ms: millis(raw.event_time).or(millis(raw.time_stamp_camel)).or(millis(raw.time_stamp_pascal)),
            chat_id: non_empty(
                raw.chat_id_camel
                    .or(raw.chat_id_pascal)
                    .or(raw.open_conversation_camel)
                    .or(raw.open_conversation_pascal),
            ),
            user_id: text(raw.user_id_camel)
                .or(text(raw.user_id_pascal))
                .or(text(raw.staff_id))
                .or(text(raw.operator_camel))
                .or(text(raw.operator_pascal)),
            random: non_empty(raw.random),
        })
    }

    /// Group events are ordered per group; everything else per user.
    pub fn is_chat_event(&self) -> bool {
        self.event_type.as_deref().is_some_and(|t| t.starts_with("chat_"))
    }
}
